//! Ingress: a host's call becomes an envelope (callback, user data, method id and its
//! copied arguments, `envelope`) and enters the context's ring through its intake
//! (`intake`), which hands the worker the ring's consumer side.

pub mod envelope;
pub(crate) mod intake;
pub(crate) mod request;
