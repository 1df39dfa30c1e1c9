//! The checked-in bindings in `include/` (header, the runtime's header, CBOR schema) are
//! what the library hands out about itself now, through the same generator as the
//! `ffi-dispatch-bindgen` command. Regenerate them (for every example) with:
//! FFID_BLESS=1 cargo test --workspace --test generated

#[test]
fn bindings_are_current() {
    // SAFETY: the library's own describing export.
    let lib = unsafe { ffi_dispatch_bindgen::read_exported(kv::kv_ffid_describe) }.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let outputs = ffi_dispatch_bindgen::render(&lib, ffi_dispatch_bindgen::Lang::ALL);
    if let Err(e) = ffi_dispatch_bindgen::keep_current(
        &dir,
        &outputs,
        "FFID_BLESS=1 cargo test --workspace --test generated",
    ) {
        panic!("{e}");
    }
}
