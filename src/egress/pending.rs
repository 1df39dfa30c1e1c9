//! The table of a context's outstanding deferred replies: what the monitor walks for
//! progress pings and destroy waits on (see `egress/deferred.rs` for the tokens).

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::abi::Callback;
use crate::egress::gate::PingGate;
use crate::envelope::{Kind, Recipient};
use crate::ffi::host::UserData;
use crate::sync::{lock, AtomicU64, Ordering};

/// One outstanding deferred reply.
pub(crate) struct TokenState {
    /// The request's id.
    pub(crate) id: u64,
    pub(crate) gate: PingGate,
    pub(crate) callback: Callback,
    pub(crate) user_data: UserData,
    pub(crate) kind: Kind,
    created: Instant,
    /// When the monitor pings next, in ms since `created` (the monitor's alone).
    next_ping_ms: AtomicU64,
}

impl TokenState {
    /// Where the request's answer and pings go.
    pub(crate) fn recipient(&self) -> Recipient {
        Recipient {
            callback: self.callback,
            user_data: self.user_data,
            id: self.id,
            kind: self.kind,
        }
    }

    /// A request's token, its gate begun (the monitor may ping it at once).
    pub(crate) fn new(id: u64, callback: Callback, user_data: *mut c_void, kind: Kind) -> Self {
        let state = TokenState {
            id,
            gate: PingGate::new(),
            callback,
            user_data: UserData(user_data),
            kind,
            created: Instant::now(),
            next_ping_ms: AtomicU64::new(0),
        };
        state.gate.begin(id);
        state
    }
}

/// The table of a context's outstanding deferred replies.
#[derive(Default)]
pub(crate) struct Pending {
    tokens: Mutex<Tokens>,
    /// Signalled when the table becomes empty while destroy waits on it.
    emptied: Condvar,
}

#[derive(Default)]
pub(crate) struct Tokens {
    pub(crate) by_id: HashMap<u64, Arc<TokenState>>,
    /// Destroy waits for the table to empty: only then is `emptied` signalled (a
    /// notify is a syscall even with nobody waiting).
    awaited: bool,
}

impl Pending {
    pub(crate) fn insert(&self, token: Arc<TokenState>) {
        lock(&self.tokens).by_id.insert(token.id, token);
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut tokens = lock(&self.tokens);
        tokens.by_id.remove(&id);
        if tokens.by_id.is_empty() && tokens.awaited {
            self.emptied.notify_all();
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.tokens).by_id.len()
    }

    /// Destroy: waits until the table is empty or `deadline` passes, with the lock held
    /// on return.
    pub(crate) fn wait_empty(
        &self,
        deadline: Option<Instant>,
    ) -> std::sync::MutexGuard<'_, Tokens> {
        let mut tokens = lock(&self.tokens);
        tokens.awaited = true;
        while !tokens.by_id.is_empty() {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left,
                    None => break,
                },
                None => Duration::from_secs(3600),
            };
            tokens = crate::sync::wait_timeout(&self.emptied, tokens, wait);
        }
        tokens
    }

    /// The tokens whose next progress ping is due, with their age.
    pub(crate) fn due(&self, now: Instant, interval: Duration) -> Vec<(Arc<TokenState>, Duration)> {
        let tokens = lock(&self.tokens);
        if tokens.by_id.is_empty() {
            return Vec::new();
        }
        let interval_ms = interval.as_millis().max(1) as u64;
        tokens
            .by_id
            .values()
            .filter_map(|t| {
                let age = now.saturating_duration_since(t.created);
                let next = t.next_ping_ms.load(Ordering::Relaxed);
                let next = if next == 0 { interval_ms } else { next };
                if (age.as_millis() as u64) < next {
                    return None;
                }
                t.next_ping_ms.store(next + interval_ms, Ordering::Relaxed);
                Some((t.clone(), age))
            })
            .collect()
    }
}
