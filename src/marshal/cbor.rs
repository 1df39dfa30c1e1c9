//! CBOR codec helpers for the `_cbor` view of a method.
//!
//! A request is a map whose text keys are the parameter names. [`ArgMap::parse`] walks
//! the map once, records where each known key's value starts, and checks that the whole
//! buffer is one well-formed map; [`ArgMap::get`] then decodes a value in place, so
//! `&str` and `&[u8]` arguments borrow from the request buffer (zero-copy).
//!
//! Rules: an empty buffer is an empty map; unknown keys (and non-text keys) are ignored;
//! a duplicate known key, a missing key, or a value of the wrong type is an error that
//! names the key; anything after the map is an error. `Option` parameters accept null
//! and an absent key alike. Records nest as maps under the same rules, `Vec<T>` is an
//! array, and enums travel as their variant's name. `&str` and `&[u8]` parameters borrow
//! from the request, so they need definite-length strings; `String` and `Vec<u8>` also
//! take chunked (indefinite-length) ones.

use minicbor::data::Type;
use minicbor::Decoder;

use crate::CallError;

/// Where each expected key's value sits in a request buffer.
pub struct ArgMap<'b, const N: usize> {
    req: &'b [u8],
    keys: [&'static str; N],
    at: [Option<usize>; N],
}

fn malformed(e: minicbor::decode::Error) -> CallError {
    CallError::new(format!("malformed CBOR request: {e}"))
}

impl<'b, const N: usize> ArgMap<'b, N> {
    /// Indexes `req` for the parameters `keys`: `req` must hold exactly one map (or
    /// nothing, which counts as an empty map).
    pub fn parse(req: &'b [u8], keys: [&'static str; N]) -> Result<Self, CallError> {
        if req.is_empty() {
            return Ok(ArgMap {
                req,
                keys,
                at: [None; N],
            });
        }
        let mut d = Decoder::new(req);
        let map = Self::parse_at(&mut d, keys).map_err(|e| match e {
            MapError::Malformed(e) => malformed(e),
            MapError::Other(msg) => CallError::new(msg),
        })?;
        if d.position() != req.len() {
            return Err(CallError::new(
                "malformed CBOR request: trailing bytes after the map",
            ));
        }
        Ok(map)
    }

    /// Indexes the map at `d`'s position (a record nested in a request) and leaves `d`
    /// after it.
    pub fn parse_nested(
        d: &mut Decoder<'b>,
        keys: [&'static str; N],
    ) -> Result<Self, minicbor::decode::Error> {
        Self::parse_at(d, keys).map_err(|e| match e {
            MapError::Malformed(e) => e,
            MapError::Other(msg) => minicbor::decode::Error::message(msg),
        })
    }

    fn parse_at(d: &mut Decoder<'b>, keys: [&'static str; N]) -> Result<Self, MapError> {
        let mut map = ArgMap {
            req: d.input(),
            keys,
            at: [None; N],
        };
        if !matches!(d.datatype()?, Type::Map | Type::MapIndef) {
            return Err(MapError::Other(
                "malformed CBOR request: expected a map".into(),
            ));
        }
        let mut remaining = d.map()?;
        loop {
            match remaining {
                Some(0) => break,
                Some(ref mut n) => *n -= 1,
                None if d.datatype()? == Type::Break => {
                    d.skip()?;
                    break;
                }
                None => {}
            }
            let slot = match map.known_short_key(d) {
                Some(i) => Some(i),
                None => {
                    let key = match d.datatype()? {
                        Type::String => Some(d.str()?),
                        _ => {
                            d.skip()?;
                            None
                        }
                    };
                    key.and_then(|k| map.keys.iter().position(|&want| want == k))
                }
            };
            if let Some(i) = slot {
                if map.at[i].is_some() {
                    return Err(MapError::Other(format!("duplicate key `{}`", map.keys[i])));
                }
                map.at[i] = Some(d.position());
                let key = map.keys[i];
                d.skip().map_err(|e| {
                    MapError::Other(format!("malformed CBOR request: key `{key}`: {e}"))
                })?;
            } else {
                d.skip()?;
            }
        }
        Ok(map)
    }

    /// The fast path of key lookup: a short definite text key (under 24 bytes, as
    /// parameter names are) whose bytes equal an expected key is that key, with no UTF-8
    /// check needed (the expected keys are valid UTF-8). On a match `d` moves past the
    /// key; otherwise nothing moves and the caller decodes the key the general way.
    #[inline]
    fn known_short_key(&self, d: &mut Decoder<'b>) -> Option<usize> {
        let pos = d.position();
        let head = *self.req.get(pos)?;
        if !(0x60..=0x77).contains(&head) {
            return None;
        }
        let end = pos + 1 + (head & 0x1f) as usize;
        let raw = self.req.get(pos + 1..end)?;
        let i = self.keys.iter().position(|k| k.as_bytes() == raw)?;
        d.set_position(end);
        Some(i)
    }

    /// Decodes the argument `keys[i]`. A missing key is an error, except for `Option`
    /// parameters, for which it means `None` (as null does).
    pub fn arg<T: FromCbor<'b>>(&self, i: usize) -> Result<T, CallError> {
        let Some(pos) = self.at[i] else {
            return T::absent()
                .ok_or_else(|| CallError::new(format!("missing key `{}`", self.keys[i])));
        };
        let mut d = Decoder::new(self.req);
        d.set_position(pos);
        T::decode(&mut d).map_err(|e| {
            if e.is_type_mismatch() {
                CallError::new(format!("key `{}`: expected {}", self.keys[i], T::EXPECTED))
            } else {
                CallError::new(format!("key `{}`: {e}", self.keys[i]))
            }
        })
    }

    /// [`ArgMap::arg`] for a required argument, as a decode error (inside records).
    pub fn field<T: FromCbor<'b>>(&self, i: usize) -> Result<T, minicbor::decode::Error> {
        self.arg(i)
            .map_err(|e| minicbor::decode::Error::message(e.message().to_owned()))
    }

    /// Decodes the argument `keys[i]`: an error if it is missing or of the wrong type.
    pub fn get<T: FromCbor<'b>>(&self, i: usize) -> Result<T, CallError> {
        self.opt(i)?
            .ok_or_else(|| CallError::new(format!("missing key `{}`", self.keys[i])))
    }

    /// Decodes the optional argument `keys[i]`: `None` when absent or null.
    pub fn opt<T: FromCbor<'b>>(&self, i: usize) -> Result<Option<T>, CallError> {
        self.arg::<Option<T>>(i)
    }
}

enum MapError {
    Malformed(minicbor::decode::Error),
    Other(String),
}

impl From<minicbor::decode::Error> for MapError {
    fn from(e: minicbor::decode::Error) -> Self {
        MapError::Malformed(e)
    }
}

/// A parameter type decodable from a CBOR value, borrowing from the buffer where it can.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be decoded from a CBOR request",
    label = "unsupported FFI type",
    note = "supported: bool, fixed-size integers, f32, f64, &str, String, &[u8], Vec<u8>, Option<T>, Vec<T>, and types deriving `ffi_dispatch::Record` or `ffi_dispatch::Enum`"
)]
pub trait FromCbor<'b>: Sized {
    /// What the error message says was expected.
    const EXPECTED: &'static str;
    /// Decodes one value.
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error>;
    /// The value of a missing key: `None` for `Option`, else no value (an error).
    fn absent() -> Option<Self> {
        None
    }
}

impl<'b, T: FromCbor<'b>> FromCbor<'b> for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        if d.datatype()? == Type::Null {
            d.skip()?;
            return Ok(None);
        }
        T::decode(d).map(Some)
    }
    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<'b, T: FromCbor<'b> + crate::marshal::Element> FromCbor<'b> for Vec<T> {
    const EXPECTED: &'static str = "an array";
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        let mut out = Vec::new();
        match d.array()? {
            // Every element takes at least one byte: a declared length beyond the buffer
            // is malformed, and must not size an allocation.
            Some(n) if n > (d.input().len() - d.position()) as u64 => {
                Err(minicbor::decode::Error::end_of_input())
            }
            Some(n) => {
                out.reserve(n as usize);
                for _ in 0..n {
                    out.push(T::decode(d)?);
                }
                Ok(out)
            }
            None => {
                while d.datatype()? != Type::Break {
                    out.push(T::decode(d)?);
                }
                d.skip()?;
                Ok(out)
            }
        }
    }
}

impl<'b> FromCbor<'b> for String {
    const EXPECTED: &'static str = "a text string";
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        decode_text(d)
    }
}

/// Decodes definite or indefinite (chunked) text.
fn decode_text(d: &mut Decoder<'_>) -> Result<String, minicbor::decode::Error> {
    if d.datatype()? == Type::StringIndef {
        let mut s = String::new();
        for chunk in d.str_iter()? {
            s.push_str(chunk?);
        }
        return Ok(s);
    }
    d.str().map(str::to_owned)
}

impl<'b> FromCbor<'b> for Vec<u8> {
    const EXPECTED: &'static str = "a byte string";
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        if d.datatype()? == Type::BytesIndef {
            let mut v = Vec::new();
            for chunk in d.bytes_iter()? {
                v.extend_from_slice(chunk?);
            }
            return Ok(v);
        }
        d.bytes().map(<[u8]>::to_vec)
    }
}

impl<'b> FromCbor<'b> for &'b str {
    const EXPECTED: &'static str = "a text string";
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        d.str()
    }
}

impl<'b> FromCbor<'b> for &'b [u8] {
    const EXPECTED: &'static str = "a byte string";
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        d.bytes()
    }
}

impl<'b> FromCbor<'b> for bool {
    const EXPECTED: &'static str = "a bool";
    fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> {
        d.bool()
    }
}

macro_rules! from_cbor {
    ($($t:ty => $dec:ident, $what:literal),*) => {$(
        impl<'b> FromCbor<'b> for $t {
            const EXPECTED: &'static str = $what;
            fn decode(d: &mut Decoder<'b>) -> Result<Self, minicbor::decode::Error> { d.$dec() }
        }
    )*};
}
from_cbor!(
    u8 => u8, "an unsigned integer (u8)", u16 => u16, "an unsigned integer (u16)",
    u32 => u32, "an unsigned integer (u32)", u64 => u64, "an unsigned integer (u64)",
    i8 => i8, "an integer (i8)", i16 => i16, "an integer (i16)",
    i32 => i32, "an integer (i32)", i64 => i64, "an integer (i64)",
    f32 => f32, "a float (f32)", f64 => f64, "a float"
);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use minicbor::Encoder;

    fn req(build: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
        let mut v = Vec::new();
        build(&mut Encoder::new(&mut v));
        v
    }

    #[test]
    fn decodes_borrowed_args_and_ignores_unknown_keys() {
        let buf = req(|e| {
            e.map(3)
                .unwrap()
                .str("zz")
                .unwrap()
                .array(2)
                .unwrap()
                .u8(1)
                .unwrap()
                .u8(2)
                .unwrap();
            e.str("text").unwrap().str("hi").unwrap();
            e.u8(9).unwrap().str("non-text key").unwrap();
        });
        let m = ArgMap::parse(&buf, ["text", "n"]).unwrap();
        let text: &str = m.get(0).unwrap();
        assert_eq!(text, "hi");
        let r = buf.as_ptr_range();
        assert!(
            r.contains(&text.as_ptr()),
            "zero-copy: the str borrows the request buffer"
        );
        assert_eq!(m.get::<u32>(1).unwrap_err().message(), "missing key `n`");
        assert_eq!(m.opt::<u32>(1).unwrap(), None);
    }

    #[test]
    fn indefinite_map_and_null_option() {
        let buf = req(|e| {
            e.begin_map()
                .unwrap()
                .str("n")
                .unwrap()
                .null()
                .unwrap()
                .end()
                .unwrap();
        });
        let m = ArgMap::parse(&buf, ["n"]).unwrap();
        assert_eq!(m.opt::<u64>(0).unwrap(), None);
        assert!(m.get::<u64>(0).is_err());
    }

    #[test]
    fn errors_name_the_problem() {
        let wrong_type = req(|e| {
            e.map(1).unwrap().str("n").unwrap().str("seven").unwrap();
        });
        let m = ArgMap::parse(&wrong_type, ["n"]).unwrap();
        assert_eq!(
            m.get::<u64>(0).unwrap_err().message(),
            "key `n`: expected an unsigned integer (u64)"
        );

        let dup = req(|e| {
            e.map(2)
                .unwrap()
                .str("n")
                .unwrap()
                .u8(1)
                .unwrap()
                .str("n")
                .unwrap()
                .u8(2)
                .unwrap();
        });
        assert_eq!(
            ArgMap::parse(&dup, ["n"]).err().unwrap().message(),
            "duplicate key `n`"
        );

        let not_map = req(|e| {
            e.array(0).unwrap();
        });
        assert!(ArgMap::parse(&not_map, ["n"])
            .err()
            .unwrap()
            .message()
            .contains("expected a map"));

        let mut trailing = req(|e| {
            e.map(0).unwrap();
        });
        trailing.push(0);
        assert!(ArgMap::parse(&trailing, ["n"])
            .err()
            .unwrap()
            .message()
            .contains("trailing"));

        // A map that declares more entries than the buffer holds, and a truncated string.
        for bad in [
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0xa1, 0x64, b't', b'e'],
        ] {
            assert!(ArgMap::parse(bad, ["text"])
                .err()
                .unwrap()
                .message()
                .starts_with("malformed CBOR request"));
        }
        // Invalid UTF-8 in a known key's text value: an error naming the key, not a crash.
        let bad_utf8 = [0xa1, 0x61, b't', 0x62, 0xff, 0xfe];
        let e = ArgMap::parse(&bad_utf8, ["t"]).err().unwrap();
        assert!(
            e.message()
                .starts_with("malformed CBOR request: key `t`: invalid utf-8"),
            "{e}"
        );
        // ... and in an unknown key's value it is still malformed input.
        assert!(ArgMap::parse(&bad_utf8, ["other"]).is_err());
    }

    #[test]
    fn empty_buffer_is_an_empty_map() {
        let m = ArgMap::parse(&[], ["a"]).unwrap();
        assert!(m.get::<i64>(0).is_err());
        assert!(ArgMap::<0>::parse(&[0xa0], []).is_ok());
    }
}
