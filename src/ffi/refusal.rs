//! Why a call was refused: the status code an export returns, and the text the calling
//! thread's `<lib>_last_error()` says. A refusal is a small `Copy` value, made where the
//! problem is found and worded only on its way out (`set_last_error`), so a hot path
//! that refuses nothing pays nothing for the words.

use std::ffi::c_int;
use std::fmt;

use super::status::{
    RET_BUSY, RET_CLOSED, RET_ERR, RET_INVALID_CTX, RET_MISSING_CALLBACK, RET_TOO_LARGE,
};

/// The most bytes one request's arguments may take once copied (`FFID_MAX_REQUEST_BYTES`
/// in `include/ffi_dispatch.h`): a native struct with everything it points to, or a CBOR
/// buffer. Larger calls are refused `RET_TOO_LARGE`.
pub const MAX_REQUEST_BYTES: usize = 1 << 30;

/// Why a call was refused before it reached the ring. No callback follows a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The callback pointer was null (`RET_MISSING_CALLBACK`).
    MissingCallback,
    /// The call would wait where it must not, or for room a rejecting ring does not
    /// have (`RET_BUSY`).
    Busy(Busy),
    /// The context is being destroyed or was destroyed, or was inherited across a fork
    /// (`RET_CLOSED`).
    Closed,
    /// Not a handle of a context of this library (`RET_INVALID_CTX`).
    InvalidCtx(InvalidCtx),
    /// The arguments take more than [`MAX_REQUEST_BYTES`], or more memory than there is
    /// (`RET_TOO_LARGE`).
    TooLarge(TooLarge),
    /// The arguments are invalid (`RET_ERR`; `RET_TOO_LARGE` for a length no memory can
    /// hold): `arg` is the top-level argument, `field` the innermost record field the
    /// fault is in (when it is in a record).
    Invalid {
        /// The argument (or constructor argument) the fault is in.
        arg: Option<&'static str>,
        /// The record field inside `arg`, when the fault is nested.
        field: Option<&'static str>,
        /// What is wrong with it.
        why: Invalid,
    },
    /// Not this context's to do (`RET_ERR`): the method is not served in completion mode
    /// as a blocking call, say.
    Unsupported(&'static str),
}

/// Where a call must not wait (`RET_BUSY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// The ring is full and the context rejects rather than waits.
    RingFull,
    /// A call inside a callback (or on a context's thread) would wait for ring space or
    /// for itself.
    InsideCallback,
    /// Completion mode: the ring is full while an answer waits for the host's drain.
    AwaitingDrain,
    /// Another thread is polling or draining the context (or this is one of its drained
    /// callbacks): one consumer at a time.
    AnotherConsumer,
}

/// What makes a handle not one of ours (`RET_INVALID_CTX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidCtx {
    /// `ctx` is NULL (for a static method: its context could not be started).
    Null,
    /// Not a handle this library issued: garbage, or another library's.
    Unknown,
    /// A live context of another library served by the same runtime copy.
    OtherLibrary,
}

/// Why a request's arguments were not copied (`RET_TOO_LARGE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TooLarge {
    /// They take more than [`MAX_REQUEST_BYTES`].
    OverLimit {
        /// The bytes they take.
        len: usize,
    },
    /// Their copy could not be allocated.
    NoMemory {
        /// The bytes it takes.
        len: usize,
    },
}

/// What is wrong with an argument (`RET_ERR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The args struct pointer is NULL.
    NullArgs,
    /// A string, array or bytes pointer is NULL where a value is required.
    Null,
    /// A string is not UTF-8.
    NotUtf8 {
        /// The offset of its first bad byte.
        at: usize,
    },
    /// An enum field holds a value the enum does not have.
    UnknownEnum {
        /// That value.
        value: i32,
    },
    /// The host's memory changed while the call was copying it.
    ChangedDuringCall,
    /// An array or buffer length larger than any memory can hold (`RET_TOO_LARGE`).
    Length,
    /// A CBOR request or constructor argument is not the map the method takes.
    Cbor,
}

impl Refusal {
    /// The status code an export returns for this refusal.
    #[inline]
    pub fn code(self) -> c_int {
        match self {
            Refusal::MissingCallback => RET_MISSING_CALLBACK,
            Refusal::Busy(_) => RET_BUSY,
            Refusal::Closed => RET_CLOSED,
            Refusal::InvalidCtx(_) => RET_INVALID_CTX,
            Refusal::TooLarge(_) => RET_TOO_LARGE,
            Refusal::Invalid {
                why: Invalid::Length,
                ..
            } => RET_TOO_LARGE,
            Refusal::Invalid { .. } | Refusal::Unsupported(_) => RET_ERR,
        }
    }

    /// An invalid argument, before it is known which.
    #[inline]
    pub const fn invalid(why: Invalid) -> Refusal {
        Refusal::Invalid {
            arg: None,
            field: None,
            why,
        }
    }

    /// Names where the fault is, on its way out of a field's reader: the first name is
    /// the innermost field, the last (the generated export's) the argument.
    #[cold]
    pub fn in_field(self, name: &'static str) -> Refusal {
        match self {
            Refusal::Invalid { arg, field, why } => Refusal::Invalid {
                arg: Some(name),
                field: field.or(arg),
                why,
            },
            other => other,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Refusal::MissingCallback => f.write_str("cb is NULL"),
            Refusal::Busy(Busy::RingFull) => {
                f.write_str("the ring is full and the context rejects rather than waits")
            }
            Refusal::Busy(Busy::InsideCallback) => f.write_str(
                "inside a callback (or on one of the library's threads) a call must not wait: it would wait for the thread it runs on",
            ),
            Refusal::Busy(Busy::AwaitingDrain) => f.write_str(
                "the ring is full while an answer waits for the host's drain (completion mode): drain, then call again",
            ),
            Refusal::Busy(Busy::AnotherConsumer) => f.write_str(
                "another thread is polling or draining this context (one at a time), or this is inside a drained callback",
            ),
            Refusal::Closed => f.write_str(
                "the context is being destroyed or was destroyed (or was inherited across fork)",
            ),
            Refusal::InvalidCtx(InvalidCtx::Null) => f.write_str("ctx is NULL"),
            Refusal::InvalidCtx(InvalidCtx::Unknown) => {
                f.write_str("ctx is not a handle this library issued (garbage, or another library's)")
            }
            Refusal::InvalidCtx(InvalidCtx::OtherLibrary) => {
                f.write_str("ctx is a context of another library")
            }
            Refusal::TooLarge(TooLarge::OverLimit { len }) => write!(
                f,
                "the arguments take {len} bytes, over FFID_MAX_REQUEST_BYTES ({MAX_REQUEST_BYTES})"
            ),
            Refusal::TooLarge(TooLarge::NoMemory { len }) => {
                write!(f, "no memory for a copy of the arguments ({len} bytes)")
            }
            Refusal::Invalid { arg, field, why } => {
                match (arg, field) {
                    (Some(arg), Some(field)) => write!(f, "argument `{arg}`, field `{field}`: ")?,
                    (Some(arg), None) => write!(f, "argument `{arg}`: ")?,
                    (None, Some(field)) => write!(f, "field `{field}`: ")?,
                    (None, None) => {}
                }
                match why {
                    Invalid::NullArgs => f.write_str("the args pointer is NULL"),
                    Invalid::Null => f.write_str("NULL where a value is required"),
                    Invalid::NotUtf8 { at } => write!(f, "invalid UTF-8 at byte {at}"),
                    Invalid::UnknownEnum { value } => write!(f, "unknown enum value {value}"),
                    Invalid::ChangedDuringCall => {
                        f.write_str("the host's memory changed while the call copied it")
                    }
                    Invalid::Length => f.write_str("a length larger than any memory can hold"),
                    Invalid::Cbor => f.write_str(
                        "not the CBOR map the method takes (malformed, a missing, duplicate or mistyped key)",
                    ),
                }
            }
            Refusal::Unsupported(what) => f.write_str(what),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_fault_names_the_argument_and_the_innermost_field() {
        let r = Refusal::invalid(Invalid::NotUtf8 { at: 3 })
            .in_field("name")
            .in_field("owner")
            .in_field("user");
        assert_eq!(r.code(), RET_ERR);
        assert_eq!(
            r.to_string(),
            "argument `user`, field `name`: invalid UTF-8 at byte 3"
        );
        let top = Refusal::invalid(Invalid::Null).in_field("text");
        assert_eq!(
            top.to_string(),
            "argument `text`: NULL where a value is required"
        );
        // A length no memory holds is named too, and is TOO_LARGE.
        let long = Refusal::invalid(Invalid::Length).in_field("tags");
        assert_eq!(long.code(), RET_TOO_LARGE);
        assert_eq!(
            long.to_string(),
            "argument `tags`: a length larger than any memory can hold"
        );
    }

    #[test]
    fn each_refusal_has_its_code_and_a_text() {
        let all = [
            (Refusal::MissingCallback, RET_MISSING_CALLBACK),
            (Refusal::Busy(Busy::RingFull), RET_BUSY),
            (Refusal::Closed, RET_CLOSED),
            (Refusal::InvalidCtx(InvalidCtx::Unknown), RET_INVALID_CTX),
            (
                Refusal::TooLarge(TooLarge::OverLimit { len: 1 << 31 }),
                RET_TOO_LARGE,
            ),
            (Refusal::Unsupported("no"), RET_ERR),
        ];
        for (refusal, code) in all {
            assert_eq!(refusal.code(), code);
            assert!(!refusal.to_string().is_empty());
            // Only an argument fault takes a field name.
            assert_eq!(refusal.in_field("x"), refusal);
        }
    }
}
