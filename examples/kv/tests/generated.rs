//! The checked-in header and CBOR schema are what the library's source renders now.
//! Regenerate them (for every example) with: FFID_BLESS=1 cargo test --workspace --test generated

use ffi_dispatch::schema::Exports;
use ffi_dispatch_codegen::check_library;

#[test]
fn header_and_schema_are_current() {
    check_library(
        kv::Kv::SCHEMA,
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "FFID_BLESS=1 cargo test --workspace --test generated",
    );
}
