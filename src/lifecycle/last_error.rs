//! `<lib>_last_error`: the calling thread's reason for its last refusal, failed create or
//! failed blocking call.
//!
//! A refusal only stores its `Copy` value ([`refuse`]); the text is worded into the
//! thread's buffer when the host reads it ([`last_error`]). A host that retries a
//! `BUSY` ring in a loop pays a thread-local store per refusal, no formatting and no
//! allocation.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int};
use std::fmt::{self, Write};

use crate::abi::Refusal;

/// The longest `ffid_last_error` text, in bytes (longer reasons are cut at a character
/// boundary).
const LAST_ERROR_MAX: usize = 511;

thread_local! {
    /// The worded reason, NUL-terminated (empty: a create or blocking call since
    /// succeeded). Plain values, no destructor: a thread-local with one would keep the
    /// library loaded for as long as the host's thread lives.
    static TEXT: RefCell<[u8; LAST_ERROR_MAX + 1]> =
        const { RefCell::new([0; LAST_ERROR_MAX + 1]) };
    /// A refusal newer than `TEXT`, not worded yet.
    static UNWORDED: Cell<Option<Refusal>> = const { Cell::new(None) };
}

/// A refusal on its way out of an export: it becomes the calling thread's last error,
/// its code the export's return value.
#[cold]
pub(crate) fn refuse(refusal: Refusal) -> c_int {
    UNWORDED.with(|r| r.set(Some(refusal)));
    refusal.code()
}

/// Sets the calling thread's last error to `msg` (an interior NUL ends it early).
pub(crate) fn set_last_error(msg: impl fmt::Display) {
    UNWORDED.with(|r| r.set(None));
    word(msg);
}

/// Writes `msg` into `TEXT`, cut to `LAST_ERROR_MAX` bytes at a character boundary.
fn word(msg: impl fmt::Display) {
    TEXT.with(|cell| {
        let Ok(mut buf) = cell.try_borrow_mut() else {
            return;
        };
        let mut out = Truncating {
            buf: &mut buf[..LAST_ERROR_MAX],
            len: 0,
        };
        let _ = write!(out, "{msg}");
        let end = out.len;
        buf[end] = 0;
    });
}

/// A `fmt::Write` into a fixed buffer that keeps what fits, whole characters only.
struct Truncating<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `const char* ffid_last_error(void)`: why the calling thread's last create returned
/// NULL, its last call was refused (any non-zero return) or its last blocking call
/// failed; "" after a create or blocking call that succeeded. Calls that are accepted
/// leave it as it is (errno's rule: read it right after the failure). The text stays
/// in place until that thread's next refusal, create or blocking call; never NULL.
#[no_mangle]
pub extern "C" fn ffid_last_error() -> *const c_char {
    last_error()
}

/// `ffid_last_error` for `<lib>_last_error`, which must reach this runtime's thread-local
/// even when another ffi-dispatch library in the process also exports `ffid_last_error`
/// (the dynamic linker may bind calls to that symbol to the other copy).
pub fn last_error() -> *const c_char {
    if let Some(refusal) = UNWORDED.with(Cell::take) {
        word(refusal);
    }
    // The thread's own buffer: rewritten when this thread next reads a newer reason.
    TEXT.with(|cell| cell.as_ptr().cast::<c_char>().cast_const())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{Busy, RET_BUSY};

    fn read() -> String {
        // SAFETY: the thread's buffer, NUL-terminated, read before its next change.
        unsafe { std::ffi::CStr::from_ptr(last_error()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_refusal_is_worded_when_read_and_a_text_replaces_it() {
        set_last_error("first");
        assert_eq!(refuse(Refusal::Busy(Busy::RingFull)), RET_BUSY);
        assert!(read().starts_with("the ring is full"), "{}", read());
        set_last_error("");
        assert_eq!(read(), "");
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        // 'é' is two bytes: 300 of them do not fit 511 bytes, and the cut is whole.
        set_last_error("é".repeat(300));
        let text = read();
        assert_eq!(text.len(), 510);
        assert!(text.chars().all(|c| c == 'é'));
    }
}
