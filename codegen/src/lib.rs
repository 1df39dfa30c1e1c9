//! Renders a library's C header, C++17 binding, Rust client and CDDL schema from its description
//! (`ffi_dispatch::schema::model::Library`, which the built library hands out and
//! `ffi-dispatch-bindgen` reads). Pure functions from the description to text: the
//! generator (`ffi-dispatch-bindgen`) writes and checks the files.
//!
//! The C forms follow the table at `ffi_dispatch::schema::CShape`, which the runtime's
//! marshalling lays out at run time.

// The modules: `naming` (shared by the C and C++ renderers), `c_header`,
// `cpp_header`, `python`, `rust_client` and `cddl` (the renderers).
mod c_header;
mod cddl;
mod cpp_header;
mod naming;
mod python;
mod rust_client;

pub use c_header::{header, runtime_header};
pub use cddl::cddl;
pub use cpp_header::{cpp_header, SUPPORT_HEADER as CPP_SUPPORT_HEADER};
pub use python::{python_module, python_stubs};
pub use rust_client::rust_client;
