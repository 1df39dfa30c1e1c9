//! The CBOR request decoders directly: argument maps, records, arrays, enums, options,
//! owned and borrowed text and bytes. Nothing may panic, whatever the nesting, declared
//! lengths, indefinite lengths, bad UTF-8, duplicate or unknown keys; and a value that
//! decodes re-encodes to something that decodes to the same value.
#![no_main]

use ffi_dispatch::rt::cbor::{ArgMap, FromCbor};
use ffi_dispatch::Answer;
use libfuzzer_sys::fuzz_target;
use minicbor::{Decoder, Encoder};

fn round_trip<T>(data: &[u8])
where
    T: for<'b> FromCbor<'b> + Answer + PartialEq + std::fmt::Debug,
{
    let mut d = Decoder::new(data);
    if let Ok(v) = T::decode(&mut d) {
        let mut buf = Vec::new();
        v.cbor(&mut Encoder::new(&mut buf))
            .expect("encoding into a Vec cannot fail");
        let again = T::decode(&mut Decoder::new(&buf)).expect("our own encoding decodes");
        assert_eq!(again, v);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ArgMap::parse(data, ["key", "value", "kind", "tags", "ttl_ms"]) {
        let _ = m.arg::<&str>(0);
        let _ = m.arg::<&[u8]>(1);
        let _ = m.arg::<kv::Kind>(2);
        let _ = m.arg::<Vec<String>>(3);
        let _ = m.arg::<Option<u64>>(4);
        let _ = m.arg::<Option<i8>>(4);
        let _ = m.arg::<f64>(4);
        let _ = m.arg::<Vec<kv::Entry>>(3);
    }
    round_trip::<kv::Entry>(data);
    round_trip::<Vec<kv::Entry>>(data);
    round_trip::<Option<kv::Usage>>(data);
    round_trip::<kv::Kind>(data);
    round_trip::<String>(data);
    round_trip::<Vec<u8>>(data);
    round_trip::<Vec<i64>>(data);
    round_trip::<Option<Vec<String>>>(data);
});
