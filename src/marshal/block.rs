//! Owned blocks: the allocation an owned answer lives in (see `egress/owned.rs`), by
//! the address of the answer in it. A block is `u64` words: the first holds the
//! allocation's capacity (in words), the answer starts at the second.

/// Makes `words` (header word first, answer after it) an owned block; returns the
/// answer's address.
pub(crate) fn adopt(words: Vec<u64>) -> *const u8 {
    let mut words = std::mem::ManuallyDrop::new(words);
    if words.is_empty() {
        words.push(0);
    }
    words[0] = words.capacity() as u64;
    // The allocation now belongs to the block: `free` rebuilds the `Vec` from the
    // header. The answer's pointer travels through C and slices that cover the answer
    // only, so `free` finds the header by address: exposing the allocation's
    // provenance here is what lets that address reach the header again.
    let base = words.as_mut_ptr();
    let _exposed = base as usize;
    base.wrapping_add(1).cast::<u8>().cast_const()
}

/// A new block holding `bytes` and a NUL after them.
pub(crate) fn copy(bytes: &[u8]) -> *const u8 {
    // Zero-filled: the byte after the copy is the NUL.
    let mut words = vec![0u64; 1 + (bytes.len() + 1).div_ceil(8)];
    // SAFETY: the words after the header hold at least `bytes.len() + 1` bytes, and a
    // fresh `Vec` cannot overlap `bytes`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            words.as_mut_ptr().add(1).cast::<u8>(),
            bytes.len(),
        )
    };
    adopt(words)
}

/// Frees a block by its answer's address.
///
/// # Safety
/// `answer` is null or the address [`adopt`] or [`copy`] returned, not freed before.
pub(crate) unsafe fn free(answer: *const u8) {
    if answer.is_null() {
        return;
    }
    // The header, by address (see `adopt`: the allocation's provenance was exposed).
    let header = (answer as usize - 8) as *mut u64;
    // SAFETY: the header word sits right before the answer, at the start of the
    // allocation `adopt` made a block of (the caller's contract), and holds the
    // allocation's capacity; the block is freed once.
    unsafe {
        let capacity = header.read() as usize;
        drop(Vec::from_raw_parts(header, 0, capacity));
    }
}
