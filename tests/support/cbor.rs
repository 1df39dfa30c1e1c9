//! CBOR requests of the example libraries, encoded as a host would encode them.
//! Also `#[path]`-included on its own by `benches/roundtrip.rs` and `benches/codec.rs`.

/// The CBOR request of echo's `scalar_check`: `{"a": a, "b": b, "x": x}`.
pub fn scalar_request(a: i64, b: i64, x: f64) -> Vec<u8> {
    let mut v = Vec::new();
    let mut e = minicbor::Encoder::new(&mut v);
    e.map(3)
        .unwrap()
        .str("a")
        .unwrap()
        .i64(a)
        .unwrap()
        .str("b")
        .unwrap()
        .i64(b)
        .unwrap();
    e.str("x").unwrap().f64(x).unwrap();
    v
}
