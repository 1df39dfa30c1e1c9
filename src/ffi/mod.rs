//! The C side: the vocabulary shared with `include/ffi_dispatch.h`, and calling host
//! code (`host`).

pub mod abi;
pub(crate) mod host;
mod refusal;
mod status;
