//! A library description as `ffi-dispatch-bindgen` reads it from a file it is handed:
//! whatever the bytes, decoding never panics; a description that decodes renders a
//! header and a CDDL schema without panicking, and re-encodes to bytes that decode to
//! the same encoding again.
#![no_main]

use ffi_dispatch::schema::model::Library;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(lib) = Library::decode(data) else {
        return;
    };
    let _ = ffi_dispatch_codegen::header(&lib);
    let _ = ffi_dispatch_codegen::cddl(&lib);
    let encoded = lib.encode();
    let again = Library::decode(&encoded).expect("our own encoding decodes");
    // Bytes, not values: a NaN constant is not equal to itself.
    assert_eq!(again.encode(), encoded);
});
