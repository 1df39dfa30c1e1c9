//! Helpers of the integration tests, one module per job; each test binary declares
//! `mod support;` and uses what it needs.
//!
//! - [`cbor`]: CBOR requests of the example libraries (`scalar_request`). The benches
//!   `#[path]`-include this file alone.
//! - [`lab`]: `Lab`, a library whose handlers the test controls (block until released,
//!   keep reply tokens, emit events), its call helpers, `PATIENCE`, and `Log`, the
//!   callback recorder (`RECORD` + `Log::ud`) for any library's exports.
//! - [`alloc`]: `Counting`, a global allocator that counts allocations and live heap
//!   bytes; a test binary installs it with its own `#[global_allocator]` static.
#![allow(dead_code)] // each test binary uses a subset

pub mod alloc;
pub mod cbor;
pub mod lab;
