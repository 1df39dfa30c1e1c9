//! The checked-in header and CBOR schema are what the library's source renders now.
//! Regenerate both with: FFID_BLESS=1 cargo test --workspace --test generated

use std::path::Path;

use ffi_dispatch::schema::{cddl, check_generated, header, Exports};

const REGENERATE: &str = "FFID_BLESS=1 cargo test --workspace --test generated";

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    check_generated(
        &dir.join("include/echo.h"),
        &header(echo::Echo::SCHEMA, REGENERATE),
        REGENERATE,
    );
}

#[test]
fn cddl_schema_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    check_generated(
        &dir.join("echo.cddl"),
        &cddl(echo::Echo::SCHEMA, REGENERATE),
        REGENERATE,
    );
}
