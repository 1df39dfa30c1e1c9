//! The checked-in bindings are what the library hands out about itself now, through the
//! same generator as the `ffi-dispatch-bindgen` command, in the folders of
//! `ffi_dispatch_bindgen::LAYOUT`: `include/` (header, the runtime's header, C++ binding,
//! CBOR schema), `bindings/python/` (the Python module and its stubs) and
//! `bindings/rust/` (the Rust host client). Regenerate them (for every example) with:
//! FFID_BLESS=1 cargo test --workspace --test generated

#[test]
fn bindings_are_current() {
    // SAFETY: the library's own describing export.
    let lib = unsafe { ffi_dispatch_bindgen::read_exported(kv::kv_ffid_describe) }.unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = ffi_dispatch_bindgen::keep_layout_current(
        &lib,
        root,
        "FFID_BLESS=1 cargo test --workspace --test generated",
    ) {
        panic!("{e}");
    }
}
