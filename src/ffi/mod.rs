//! The C side: the vocabulary shared with `include/ffi_dispatch.h`.

pub mod abi;
