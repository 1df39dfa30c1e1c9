//! Egress: answers leave here. The reply buffer and the callback invocation
//! (`reply`), reply tokens answered later from any thread (`deferred`), and completion
//! mode's queue that the host drains on its own thread (`completion`).

#[cfg(target_os = "linux")]
pub(crate) mod completion;
pub(crate) mod deferred;
pub(crate) mod gate;
pub mod reply;
