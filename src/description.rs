//! What a built library says about itself: its description (the model of
//! `ffi_dispatch::schema::model`, CBOR-encoded), which `<lib>_ffid_describe` hands to
//! `ffi-dispatch-bindgen`, and its interface hash, which every create checks against
//! the hash the host's header was generated with.

use std::sync::{Mutex, OnceLock};

use crate::schema::model::Library as Model;
use crate::schema::LibraryDesc;

/// This runtime's C header: it travels in every description, so a generated header
/// comes with the `ffi_dispatch.h` of the runtime the library was built with.
pub const RUNTIME_HEADER: &str = include_str!("../include/ffi_dispatch.h");

/// A library's description (one `static` per library, which the `library` macro
/// declares): its interface hash, computed on first use, and its encoding, built when
/// asked for. The encoding is kept in `ENCODINGS`, which the unload frees (a cdylib's
/// statics are not dropped at `dlclose`); the hash needs no heap.
pub struct Description {
    interface_hash: OnceLock<u64>,
}

/// The encodings handed out, by the address of their `Description`: freed at unload
/// (`lifecycle/unload.rs`).
static ENCODINGS: Mutex<Vec<(usize, Box<[u8]>)>> = Mutex::new(Vec::new());

impl Description {
    /// An empty cell.
    pub const fn new() -> Self {
        Description {
            interface_hash: OnceLock::new(),
        }
    }

    fn model(desc: &LibraryDesc) -> Model {
        Model::of(desc, env!("CARGO_PKG_VERSION"), RUNTIME_HEADER)
    }

    /// The interface hash of `desc` (this cell's library).
    pub fn interface_hash(&self, desc: &LibraryDesc) -> u64 {
        *self
            .interface_hash
            .get_or_init(|| Description::model(desc).interface_hash)
    }

    /// Whether a host built against the interface of hash `host` may create a context;
    /// when not, the reason is the calling thread's `ffid_last_error`.
    pub fn admits(&self, desc: &LibraryDesc, host: u64) -> bool {
        let own = self.interface_hash(desc);
        if host == own {
            return true;
        }
        crate::lifecycle::set_last_error(format!(
            "interface mismatch: the host was built against a header of interface hash \
             {host:#018x}, and this library serves {own:#018x}; regenerate the header from \
             this library (ffi-dispatch-bindgen) and rebuild the host"
        ));
        false
    }

    /// Hands the encoding of `desc` to the host: its length into `*len`, its address
    /// returned (valid until the library is unloaded). Null when `len` is null.
    ///
    /// # Safety
    /// `len` is null or writable.
    pub unsafe fn hand_out(&self, desc: &LibraryDesc, len: *mut usize) -> *const u8 {
        if len.is_null() {
            return std::ptr::null();
        }
        let key = self as *const Description as usize;
        let mut encodings = crate::sync::lock(&ENCODINGS);
        let bytes = match encodings.iter().position(|(k, _)| *k == key) {
            Some(i) => &encodings[i].1,
            None => {
                let encoded = Description::model(desc).encode().into_boxed_slice();
                encodings.push((key, encoded));
                &encodings[encodings.len() - 1].1
            }
        };
        // SAFETY: non-null and writable (the contract above).
        unsafe { len.write(bytes.len()) };
        // The boxed bytes stay where they are until the unload frees them.
        bytes.as_ptr()
    }
}

impl Default for Description {
    fn default() -> Self {
        Description::new()
    }
}

/// At unload: frees the encodings handed out.
pub(crate) fn release() {
    drop(std::mem::take(&mut *crate::sync::lock(&ENCODINGS)));
}
