//! Ingress: a host's call becomes an envelope (callback, user data, method id and its
//! copied arguments) on its way to the ring.

pub mod envelope;
pub(crate) mod request;
