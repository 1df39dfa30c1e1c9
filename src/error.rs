//! The error a handler answers with.

use std::borrow::Cow;
use std::fmt;

/// A failed call: the message the host receives with `RET_ERR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError(Cow<'static, str>);

impl CallError {
    /// An error with this message (an empty one reaches the host as `"unknown error"`).
    pub fn new(msg: impl Into<Cow<'static, str>>) -> Self {
        CallError(msg.into())
    }
    /// An error from anything displayable.
    pub fn from_display(e: impl fmt::Display) -> Self {
        CallError(Cow::Owned(e.to_string()))
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallError {}

impl From<String> for CallError {
    fn from(s: String) -> Self {
        CallError(Cow::Owned(s))
    }
}

impl From<&'static str> for CallError {
    fn from(s: &'static str) -> Self {
        CallError(Cow::Borrowed(s))
    }
}
