//! Egress: answers leave here. The reply buffer (`reply`), the one exit every answer
//! takes (`outbox`), reply tokens answered later from any thread (`deferred`, listed in
//! `pending`), the ping gate that orders an answer against a progress ping (`gate`), and
//! completion mode's queue that the host drains on its own thread (`completion`).

#[cfg(target_os = "linux")]
pub(crate) mod completion;
pub(crate) mod deferred;
pub(crate) mod gate;
pub(crate) mod outbox;
pub mod owned;
pub(crate) mod pending;
pub mod reply;
pub mod typed;
