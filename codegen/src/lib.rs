//! Renders a library's C header and CDDL schema from its descriptor
//! (`ffi_dispatch::schema`), and keeps checked-in copies current. A build-time and
//! test-time crate: libraries do not link it.
//!
//! The C forms follow the table at the top of `ffi_dispatch::marshal`, which lays the
//! fields out at run time.

// The modules: `naming` (shared by both renderers), `c_header` and `cddl` (the
// renderers), `check` (the checked-in copies).
mod c_header;
mod cddl;
mod check;
mod naming;

pub use c_header::header;
pub use cddl::cddl;
pub use check::{check_generated, check_library};
