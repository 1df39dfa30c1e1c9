//! A context's stats snapshot, read from the parts that keep each counter: the worker's
//! board, the intake (`refused`, the queue), the outbox (deferred completions, pings)
//! and the event hub.
//!
//! None of them is written on a producer's hot path. `accepted` is derived from what the
//! worker has popped plus what is still queued; the worker's own counters have a single
//! writer (`sync/counter.rs`); counters that several threads bump (`refused`, deferred
//! completions, dropped events) are touched only on paths that already left the fast
//! lane.

use crate::abi::ffid_context_stats;

/// A snapshot of a context's counters: the C struct itself, which the Rust API returns
/// too (see [`ffid_context_stats`] for each field's meaning). `struct_size` is its full
/// size and `reserved` is 0.
pub type Stats = ffid_context_stats;

impl crate::lifecycle::Context {
    /// A snapshot of the context's counters, from the parts that keep them.
    pub(crate) fn stats(&self) -> Stats {
        let w = &self.board.counters;
        let queued = self.intake.len() as u64;
        let (events_emitted, events_dropped, events_delivered) = self.events.counts();
        Stats {
            struct_size: std::mem::size_of::<Stats>() as u32,
            reserved: 0,
            accepted: w.popped.get() - w.task_wakes.get() + queued,
            completed: w.answered.get() + self.outbox.deferred_answered.get(),
            refused: self.intake.refused.get(),
            queue_depth: queued,
            high_water: w.high_water.get().max(queued),
            wakeups: self.intake.wakes(),
            spin_hits: w.spin_hits.get(),
            parks: w.parks.get(),
            panics: w.panics.get(),
            deferred_pending: self.outbox.pending.len() as u64,
            cancelled: w.cancelled.get(),
            stale_pings: self.outbox.stale_pings.get(),
            events_emitted,
            events_dropped,
            events_delivered,
            idle_spin_ns: w.idle_spin_ns.get(),
            avoidable_wakes: w.avoidable_wakes.get(),
        }
    }
}
