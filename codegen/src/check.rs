//! Keeping the checked-in generated files current: compare, or rewrite with
//! `FFID_BLESS=1`.

use ffi_dispatch_schema::LibraryDesc;

use crate::c_header::header;
use crate::cddl::cddl;

/// Checks a library's checked-in `include/<name>.h` and `<name>.cddl` under `dir` (see
/// [`check_generated`]); `regenerate` is the command that rewrites them.
pub fn check_library(lib: &LibraryDesc, dir: &std::path::Path, regenerate: &str) {
    check_generated(
        &dir.join("include").join(format!("{}.h", lib.name)),
        &header(lib, regenerate),
        regenerate,
    );
    check_generated(
        &dir.join(format!("{}.cddl", lib.name)),
        &cddl(lib, regenerate),
        regenerate,
    );
}

/// Compares a checked-in generated file with what the descriptor renders now. With
/// `FFID_BLESS=1` in the environment it rewrites the file instead. A stale file fails
/// with the command that fixes it.
pub fn check_generated(path: &std::path::Path, rendered: &str, regenerate: &str) {
    if std::env::var_os("FFID_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, rendered)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current != rendered {
        let first = current
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(current.lines().count().min(rendered.lines().count()));
        panic!(
            "{} is stale (first difference at line {}).\nRegenerate it with:\n    {regenerate}",
            path.display(),
            first + 1
        );
    }
}
