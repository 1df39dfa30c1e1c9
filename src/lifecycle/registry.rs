//! The handle registry: turns the host's opaque `ffid_ctx*` into a live context, or a
//! refusal, without ever dereferencing the host's pointer.
//!
//! A handle's bits are `generation << 32 | tag << 17 | (slot index + 1)`: never null,
//! and a garbage value points at no slot or at a slot of another generation. `tag` (15
//! bits) tells this copy of the registry from another one in the same process (each
//! cdylib built on this crate has its own), and every copy starts its generations at
//! its own random value: a handle of another library is refused instead of aliasing one
//! of ours (it would have to guess 47 bits). Slots live in chunks that are allocated on
//! demand and freed only when the library is unloaded with no context left
//! (`lifecycle/unload.rs`), so a lookup can always read a slot safely.
//!
//! Each slot has one state word: `generation << 32 | CLOSING | users`. A call enters by
//! CAS-incrementing `users` while the generation matches and `CLOSING` is clear, and
//! leaves by decrementing it ([`Guard`]). `destroy` sets `CLOSING` (refusing new calls),
//! waits for `users` to drain, and only then frees the context and bumps the generation,
//! so a context is never freed under a call, and a handle used after destroy is refused.
//! A generation is 32 bits: a slot would have to be reused 2^32 times for a stale handle
//! to alias a live one.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use crate::abi::{InvalidCtx, Refusal};
use crate::lifecycle::Context;
use crate::sync::{AtomicU64, Ordering};
use std::sync::atomic::AtomicPtr;

const CHUNK_SLOTS: usize = 256;
const CHUNKS: usize = 256;
/// Contexts alive at once in one process (per copy of this crate).
pub const MAX_CONTEXTS: usize = CHUNK_SLOTS * CHUNKS;

const CLOSING: u64 = 1 << 31;
const USERS: u64 = CLOSING - 1;

struct Slot {
    state: SlotState,
    core: AtomicPtr<Context>,
}

/// A slot's state word, `generation << 32 | CLOSING | users`, and its transitions: the
/// part of the registry that races (`loom_models` in `lifecycle/mod.rs` checks it against
/// destroy).
pub(crate) struct SlotState(AtomicU64);

impl SlotState {
    /// A closing slot of `generation`: nothing enters until [`SlotState::open`].
    pub(crate) fn new(generation: u64) -> Self {
        SlotState(AtomicU64::new(generation << 32 | CLOSING))
    }

    fn generation(&self) -> u32 {
        (self.0.load(Ordering::Relaxed) >> 32) as u32
    }

    /// Opens the slot for calls. The Release store publishes what was stored before it
    /// (the core) to every `enter` that sees this generation.
    pub(crate) fn open(&self) {
        let generation = self.generation() as u64;
        self.0.store(generation << 32, Ordering::Release);
    }

    /// A call enters: only while the generation matches and the slot is not closing.
    #[inline]
    #[must_use]
    pub(crate) fn enter(&self, generation: u32) -> bool {
        let mut state = self.0.load(Ordering::Relaxed);
        loop {
            if (state >> 32) as u32 != generation || state & CLOSING != 0 || state & USERS == USERS
            {
                return false;
            }
            match self.0.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// A call leaves (Release: what it did inside is visible to `drained`).
    #[inline]
    pub(crate) fn leave(&self) {
        self.0.fetch_sub(1, Ordering::Release);
    }

    /// Sets `CLOSING`; false if another close won. The caller holds a user count.
    #[must_use]
    pub(crate) fn close(&self) -> bool {
        let mut state = self.0.load(Ordering::Relaxed);
        loop {
            if state & CLOSING != 0 {
                return false;
            }
            match self.0.compare_exchange_weak(
                state,
                state | CLOSING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// No call is inside (Acquire: the effects of every call that left are visible).
    pub(crate) fn drained(&self) -> bool {
        self.0.load(Ordering::Acquire) & USERS == 0
    }

    /// Retires a closed, drained slot: the next generation (never 0), still closing.
    pub(crate) fn retire(&self, generation: u32) {
        let next = match generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        self.0
            .store((next as u64) << 32 | CLOSING, Ordering::Release);
    }
}

type Chunk = [Slot; CHUNK_SLOTS];

static CHUNK_TABLE: [AtomicPtr<Chunk>; CHUNKS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; CHUNKS];

/// Cold-path bookkeeping: which slots are free. Lookups never take this lock.
struct FreeList {
    next_fresh: usize,
    free: Vec<usize>,
}

static FREE: Mutex<FreeList> = Mutex::new(FreeList {
    next_fresh: 0,
    free: Vec::new(),
});

#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let chunk = CHUNK_TABLE
        .get(index / CHUNK_SLOTS)?
        .load(Ordering::Acquire);
    // SAFETY: a non-null chunk pointer was published (Release) after the chunk was fully
    // initialised, and chunks are freed only at unload, when no lookup runs (`release`),
    // so the reference is valid for as long as anyone can hold it.
    let chunk = unsafe { chunk.as_ref() }?;
    Some(&chunk[index % CHUNK_SLOTS])
}

const INDEX_BITS: u32 = 17;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
const TAG_MASK: u64 = (1 << (32 - INDEX_BITS)) - 1;

/// This copy of the registry's tag: a fold of the address it was loaded at, so two
/// copies in one process differ (computed, not loaded: a few instructions per lookup).
#[inline]
fn registry_tag() -> u64 {
    let a = std::ptr::addr_of!(CHUNK_TABLE) as u64;
    ((a >> 12) ^ (a >> 27) ^ (a >> 42)) & TAG_MASK
}

/// The generation a new slot starts at: random per copy of the registry and per run.
fn first_generation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 finaliser over the clock and the registry's address.
    let mut z = nanos ^ (std::ptr::addr_of!(CHUNK_TABLE) as u64).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) & 0xffff_ffff | 1
}

#[inline]
fn decode(handle: *mut c_void) -> Option<(usize, u32)> {
    let bits = handle as usize as u64;
    if (bits >> INDEX_BITS) & TAG_MASK != registry_tag() {
        return None;
    }
    let index = (bits & INDEX_MASK).checked_sub(1)? as usize;
    Some((index, (bits >> 32) as u32))
}

fn encode(index: usize, generation: u32) -> *mut c_void {
    ((generation as u64) << 32 | registry_tag() << INDEX_BITS | (index as u64 + 1)) as usize
        as *mut c_void
}

/// Registers a context and returns its handle, or `None` when the registry is full.
pub(crate) fn insert(core: Arc<Context>) -> Option<*mut c_void> {
    let index = {
        let mut free = crate::sync::lock(&FREE);
        match free.free.pop() {
            Some(i) => i,
            None if free.next_fresh < MAX_CONTEXTS => {
                let i = free.next_fresh;
                let table = &CHUNK_TABLE[i / CHUNK_SLOTS];
                if table.load(Ordering::Relaxed).is_null() {
                    let generation = first_generation();
                    let chunk: Box<Chunk> = Box::new(std::array::from_fn(|_| Slot {
                        // Closing: nothing can enter until `insert` publishes a core.
                        state: SlotState::new(generation),
                        core: AtomicPtr::new(std::ptr::null_mut()),
                    }));
                    table.store(Box::into_raw(chunk), Ordering::Release);
                }
                free.next_fresh += 1;
                i
            }
            None => return None,
        }
    };
    let slot = slot(index).expect("allocated above");
    slot.core
        .store(Arc::into_raw(core).cast_mut(), Ordering::Relaxed);
    // The generation was bumped when the slot was freed; `open` publishes `core`.
    let generation = slot.state.generation();
    slot.state.open();
    Some(encode(index, generation))
}

/// A call's hold on a live context: while it exists the context is not freed.
pub(crate) struct Guard {
    slot: &'static Slot,
    core: *const Context,
}

impl Guard {
    #[inline]
    pub(crate) fn context(&self) -> &Context {
        // SAFETY: `users > 0` while this guard lives, and `remove` waits for users to
        // reach 0 before it releases the Arc that `core` points into.
        unsafe { &*self.core }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        self.slot.state.leave();
    }
}

/// Enters a live, not-closing context. Refused `InvalidCtx` for a null handle or one this
/// registry never issued (another tag, a slot that does not exist), `Closed` for one of
/// its slots whose context is closing or gone (another generation: a destroyed or
/// fork-inherited handle; garbage passes the tag check 1 time in 2^15).
#[inline]
pub(crate) fn acquire(handle: *mut c_void) -> Result<Guard, Refusal> {
    let unknown = || {
        Refusal::InvalidCtx(match handle.is_null() {
            true => InvalidCtx::Null,
            false => InvalidCtx::Unknown,
        })
    };
    let (index, generation) = decode(handle).ok_or_else(unknown)?;
    let slot = slot(index).ok_or_else(unknown)?;
    if !slot.state.enter(generation) {
        return Err(Refusal::Closed);
    }
    let core = slot.core.load(Ordering::Relaxed);
    Ok(Guard { slot, core })
}

/// Marks a context closing (later `acquire`s fail) and returns it, if the handle is live,
/// `accept` approves the context, and no other `close` won. Finish with [`remove`].
pub(crate) fn close(
    handle: *mut c_void,
    accept: impl FnOnce(&Context) -> Result<(), Refusal>,
) -> Result<Arc<Context>, Refusal> {
    // Entering first keeps the context alive while `accept` looks at it.
    let guard = acquire(handle)?;
    accept(guard.context())?;
    if !guard.slot.state.close() {
        return Err(Refusal::Closed);
    }
    // SAFETY: the slot holds one strong count (from `insert`) and our guard keeps it
    // alive; we add one count for the caller and hand it over in the returned Arc.
    unsafe {
        Arc::increment_strong_count(guard.core);
        Ok(Arc::from_raw(guard.core))
    }
}

/// True once no call holds the closing context at `handle`.
pub(crate) fn drained(handle: *mut c_void) -> bool {
    let (index, _) = decode(handle).expect("closed handles decode");
    slot(index)
        .expect("closed handles have a slot")
        .state
        .drained()
}

/// Frees the slot of a closed, drained context: drops the registry's reference, bumps the
/// generation (the handle is stale from now on) and recycles the index.
pub(crate) fn remove(handle: *mut c_void) {
    let (index, generation) = decode(handle).expect("closed handles decode");
    let slot = slot(index).expect("closed handles have a slot");
    debug_assert!(drained(handle));
    let core = slot.core.swap(std::ptr::null_mut(), Ordering::Relaxed);
    slot.state.retire(generation);
    // SAFETY: this is the strong count `insert` leaked; users is 0 and CLOSING keeps it 0.
    drop(unsafe { Arc::from_raw(core) });
    crate::sync::lock(&FREE).free.push(index);
}

/// Frees the chunks and the free list, if no context is live, and says whether it did.
///
/// # Safety
/// No call is in progress or can start: the library is being unloaded (`lifecycle/unload.rs`).
pub(crate) unsafe fn release() -> bool {
    let Ok(mut free) = FREE.try_lock() else {
        return false;
    };
    if free.free.len() != free.next_fresh {
        return false; // a context is live (the static one, say): leave everything
    }
    for table in &CHUNK_TABLE {
        let chunk = table.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !chunk.is_null() {
            // SAFETY: from `Box::into_raw` in `insert`; no slot is in use and no lookup
            // can run (the caller's contract).
            drop(unsafe { Box::from_raw(chunk) });
        }
    }
    *free = FreeList {
        next_fresh: 0,
        free: Vec::new(),
    };
    true
}

/// Taken to create a static-method context ([`crate::lifecycle::static_context`]); fork
/// holds it, as it holds `FREE`, so that a child never inherits it locked.
pub(crate) static STATIC_INIT: Mutex<()> = Mutex::new(());

/// How many times this process has been a fork child since the registry was loaded: a
/// static-method context made before the last fork belongs to the parent.
static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn forks() -> u64 {
    FORKS.load(Ordering::Relaxed)
}

/// Contexts do not survive `fork`: the child has none of their threads. Registers,
/// once, handlers that keep the registry's locks out of the fork (a child would inherit
/// them held by a thread it does not have) and that, in the child, retire every slot
/// in use, so each inherited handle is refused (`ERR`, no callback; destroy `ERR`) and
/// its context is left as it is, never freed: its memory is the parent's state.
pub(crate) fn guard_fork() {
    // Miri models no `pthread_atfork`; its tests never fork.
    #[cfg(not(miri))]
    {
        static REGISTER: std::sync::Once = std::sync::Once::new();
        // SAFETY: the handlers are `extern "C"` functions of this library that touch
        // only its statics. glibc removes them when the library is unloaded (they are
        // registered with its `__dso_handle`; `tests/c/reload.c` forks after unloads).
        REGISTER.call_once(|| unsafe {
            libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
        });
    }
}

/// The locks `fork_prepare` took, released on both sides of the fork. A static rather
/// than a thread-local: a thread-local with a destructor would keep the library loaded
/// for as long as the forking thread lives.
#[cfg(not(miri))]
struct ForkHold(
    std::cell::UnsafeCell<
        Option<(
            std::sync::MutexGuard<'static, ()>,
            std::sync::MutexGuard<'static, FreeList>,
        )>,
    >,
);

// SAFETY: only the fork handlers touch it, and only while holding `STATIC_INIT`: the
// prepare handler writes it after taking the lock, and the parent's or the child's
// handler (on the forking thread, or the child's copy of it) takes it back before the
// guard inside releases the lock. So one fork at a time, on its own thread.
#[cfg(not(miri))]
unsafe impl Sync for ForkHold {}

#[cfg(not(miri))]
static FORK_HOLD: ForkHold = ForkHold(std::cell::UnsafeCell::new(None));

#[cfg(not(miri))]
extern "C" fn fork_prepare() {
    let init = crate::sync::lock(&STATIC_INIT);
    let free = crate::sync::lock(&FREE);
    // SAFETY: see `ForkHold`.
    unsafe { *FORK_HOLD.0.get() = Some((init, free)) };
}

#[cfg(not(miri))]
extern "C" fn fork_parent() {
    // SAFETY: see `ForkHold`.
    drop(unsafe { (*FORK_HOLD.0.get()).take() });
}

#[cfg(not(miri))]
extern "C" fn fork_child() {
    // The child's only thread: nothing races these stores.
    for table in &CHUNK_TABLE {
        // SAFETY: as in `slot`: a published chunk is initialised, and not freed while
        // the library is loaded with a slot in use.
        let Some(chunk) = (unsafe { table.load(Ordering::Acquire).as_ref() }) else {
            continue;
        };
        for slot in chunk {
            if !slot.core.load(Ordering::Relaxed).is_null() {
                slot.state.retire(slot.state.generation());
            }
        }
    }
    FORKS.fetch_add(1, Ordering::Relaxed);
    crate::threads::forget_thread_after_fork();
    // A parent thread may have been inside a pool queue's push: the child starts a
    // pool of its own (the parent's buffers stay where they are).
    crate::envelope::pool::forget_after_fork();
    // SAFETY: see `ForkHold`; the child's copy of the locks is released by its only
    // thread, the copy of the one that took them.
    drop(unsafe { (*FORK_HOLD.0.get()).take() });
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn garbage_handles_decode_to_nothing_live() {
        let foreign = encode(0, 1) as usize ^ (1 << INDEX_BITS);
        for bits in [
            0usize,
            1,
            0xdead_beef,
            usize::MAX,
            0x7fff_ffff_0000_0001,
            foreign,
        ] {
            // Garbage that happens to carry this registry's tag names one of its slots:
            // refused as closed (another generation), or unknown if the slot is not there.
            let expected = match (bits, decode(bits as *mut c_void)) {
                (0, _) => vec![Refusal::InvalidCtx(InvalidCtx::Null)],
                (_, None) => vec![Refusal::InvalidCtx(InvalidCtx::Unknown)],
                (_, Some(_)) => vec![Refusal::InvalidCtx(InvalidCtx::Unknown), Refusal::Closed],
            };
            let acquired = acquire(bits as *mut c_void).err().expect("refused");
            assert!(expected.contains(&acquired), "{bits:#x}: {acquired:?}");
            let closed = close(bits as *mut c_void, |_| Ok(()))
                .err()
                .expect("refused");
            assert!(expected.contains(&closed), "{bits:#x}: {closed:?}");
        }
        assert_eq!(decode(foreign as *mut c_void), None);
    }

    #[test]
    fn encode_decode_round_trip() {
        for (i, g) in [(0usize, 1u32), (255, 7), (MAX_CONTEXTS - 1, u32::MAX)] {
            let h = encode(i, g);
            assert!(!h.is_null());
            assert_eq!(decode(h), Some((i, g)));
            // The same slot and generation under another registry's tag is not ours.
            let foreign = (h as usize ^ (1 << INDEX_BITS)) as *mut c_void;
            assert_eq!(decode(foreign), None);
        }
        assert!(
            MAX_CONTEXTS as u64 <= INDEX_MASK,
            "every index + 1 fits its bits"
        );
    }
}
