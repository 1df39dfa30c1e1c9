//! `Counting`: the system allocator, counting. A test binary installs it with
//! `#[global_allocator] static GLOBAL: Counting = Counting::new();` and reads
//! `GLOBAL.allocations()` (every `alloc` and `realloc`, never `dealloc`) or
//! `GLOBAL.live_bytes()` (bytes allocated and not yet freed). The counters are
//! process-wide: a binary that reads them runs its counted work alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};

/// Forwards to [`System`] and counts. Every update and read is `SeqCst`: a reader that
/// has synchronized with the threads that allocated (joined them, or acquired a flag
/// they released afterwards) sees all their updates.
pub struct Counting {
    allocations: AtomicU64,
    live_bytes: AtomicI64,
}

impl Counting {
    pub const fn new() -> Counting {
        Counting {
            allocations: AtomicU64::new(0),
            live_bytes: AtomicI64::new(0),
        }
    }

    /// Allocations so far, on any thread: each `alloc` (and `alloc_zeroed`) and each
    /// `realloc` counts one.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(SeqCst)
    }

    /// Heap bytes allocated and not yet freed (a `realloc` adds its change of size).
    pub fn live_bytes(&self) -> i64 {
        self.live_bytes.load(SeqCst)
    }
}

impl Default for Counting {
    fn default() -> Self {
        Counting::new()
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocations.fetch_add(1, SeqCst);
        // SAFETY: forwarded contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.live_bytes.fetch_add(layout.size() as i64, SeqCst);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live_bytes.fetch_sub(layout.size() as i64, SeqCst);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.allocations.fetch_add(1, SeqCst);
        // SAFETY: forwarded contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block stays allocated, unchanged.
            self.live_bytes
                .fetch_add(new_size as i64 - layout.size() as i64, SeqCst);
        }
        new
    }
}
