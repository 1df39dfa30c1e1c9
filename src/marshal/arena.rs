//! The arena an answer's C form lives in: what its pointers point to stays put until
//! the callback returns.

use std::ffi::c_char;
use std::mem::{align_of, size_of};

/// Where an answer's C form keeps the data its pointers point to. Allocations are
/// 8-byte aligned and sized in advance, so no pointer handed out moves before the
/// callback returns.
pub struct Arena {
    words: Vec<u64>,
    used: usize,
    /// Where the answer starts: 0, or 8 behind an owned block's header word.
    start: usize,
}

/// `n` rounded up to the arena's 8-byte granule.
pub(crate) const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

impl Arena {
    /// An empty arena (a host written in Rust uses one to build C forms with
    /// [`Native::to_c`]).
    pub fn new() -> Self {
        Arena {
            words: Vec::new(),
            used: 0,
            start: 0,
        }
    }

    /// Empties the arena and makes room for `bytes` (zero-filled); pointers taken
    /// before are invalid afterwards.
    pub fn reset(&mut self, bytes: usize) {
        self.words.clear();
        self.words.resize(round8(bytes) / 8, 0);
        self.used = 0;
        self.start = 0;
    }

    /// Empties the arena for an answer handed over with it ([`Arena::detach`]): as
    /// [`Arena::reset`], behind one header word the block's owner frees it by.
    pub(crate) fn reset_owned(&mut self, bytes: usize) {
        // A fresh allocation of just this size: the block leaves with the answer, and
        // must not carry the room an earlier, larger answer left in the arena.
        self.words = vec![0; 1 + round8(bytes) / 8];
        self.used = 8;
        self.start = 8;
    }

    /// The start of the arena's answer (after the header word of an owned one).
    pub(crate) fn base(&self) -> *const u8 {
        self.words.as_ptr().cast::<u8>().wrapping_add(self.start)
    }

    /// Hands the arena's memory over as an owned block (`marshal/block.rs`):
    /// its data, where the answer was laid out, stays where it is, so every pointer in
    /// the answer stays valid. The arena starts empty again.
    pub(crate) fn detach(&mut self) -> *const u8 {
        debug_assert_eq!(self.start, 8, "detach follows reset_owned");
        let words = std::mem::take(&mut self.words);
        self.used = 0;
        self.start = 0;
        super::block::adopt(words)
    }

    /// Takes `n` bytes (rounded up to 8). Panics, which the worker turns into an `ERR`
    /// answer, if the sizes given to `reset` were short: a bug in a `c_extra`.
    fn take(&mut self, n: usize) -> *mut u8 {
        let end = self.used + round8(n);
        assert!(
            end <= self.words.len() * 8,
            "arena overrun: c_extra and to_c disagree"
        );
        // SAFETY: `used <= end <= words.len() * 8`, so the offset stays inside the
        // allocation; the buffer is not resized until the next `reset`.
        let p = unsafe { self.words.as_mut_ptr().cast::<u8>().add(self.used) };
        self.used = end;
        p
    }

    /// Copies bytes into the arena (never null, even when empty).
    pub fn put_bytes(&mut self, b: &[u8]) -> *const u8 {
        let p = self.take(b.len());
        // SAFETY: `take` returned `b.len()` writable bytes that `b` cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, b.len()) };
        p
    }

    /// Copies a string and a NUL terminator into the arena.
    pub fn put_str(&mut self, s: &str) -> *const c_char {
        let p = self.take(s.len() + 1);
        // SAFETY: `take` returned `s.len() + 1` writable, zero-filled bytes, so the
        // byte after the copy is the terminator.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len()) };
        p.cast()
    }

    /// Room for `n` values of `T` (zero-filled); the caller writes them.
    pub fn array<T: Copy>(&mut self, n: usize) -> *mut T {
        assert!(align_of::<T>() <= 8, "C forms are at most 8-byte aligned");
        self.take(n * size_of::<T>()).cast()
    }

    /// Places one value and returns its address.
    pub fn put<T: Copy>(&mut self, v: T) -> *const T {
        let p = self.array::<T>(1);
        // SAFETY: `array` returned room for one aligned `T`.
        unsafe { p.write(v) };
        p
    }

    /// Fills what the last answer laid out with `byte` (after its callback: see
    /// `Reply::poison`) and forgets it; the next `reset` zero-fills again.
    pub(crate) fn poison(&mut self, byte: u8) {
        let word = u64::from_ne_bytes([byte; 8]);
        let used = self.used.div_ceil(8).min(self.words.len());
        self.words[..used].fill(word);
        // Poisoned once: an answer after it that lays nothing out leaves it be.
        self.used = 0;
    }

    /// Bytes reserved by the last `reset` and not yet taken (tests check `c_extra`
    /// with it).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn unused(&self) -> usize {
        self.words.len() * 8 - self.used
    }

    /// Arena bytes for `n` values of `T`, as [`Arena::array`] takes them.
    pub const fn array_size<T>(n: usize) -> usize {
        round8(n * size_of::<T>())
    }
}
