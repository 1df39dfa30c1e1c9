//! The CBOR codec per operation: decoding the example libraries' request maps (as the
//! worker does, zero-copy) and encoding their results.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ffi_dispatch::rt::cbor::ArgMap;
use ffi_dispatch::Answer;
use minicbor::Encoder;

#[path = "../tests/support/cbor.rs"]
mod cbor;
mod shared;

fn entry() -> kv::Entry {
    kv::Entry {
        key: "user:42".into(),
        value: br#"{"name":"Ada"}"#.to_vec(),
        kind: kv::Kind::Text,
        tags: vec!["people".into(), "admin".into()],
        ttl_ms: Some(60_000),
        note: None,
        meta: kv::Meta {
            version: 3,
            seq: 17,
        },
    }
}

fn encode(v: &impl Answer, buf: &mut Vec<u8>) {
    buf.clear();
    v.cbor(&mut Encoder::new(buf)).unwrap();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let scalar = cbor::scalar_request(41, 1, 0.5);
    group.bench_function("decode scalar_check request {a, b, x}", |b| {
        b.iter(|| {
            let m = ArgMap::parse(black_box(&scalar), ["a", "b", "x"]).unwrap();
            (
                m.arg::<i64>(0).unwrap(),
                m.arg::<i64>(1).unwrap(),
                m.arg::<f64>(2).unwrap(),
            )
        })
    });
    let mut shout = Vec::new();
    Encoder::new(&mut shout)
        .map(1)
        .unwrap()
        .str("text")
        .unwrap()
        .str("hello, world")
        .unwrap();
    group.bench_function("decode shout request {text} (borrowed)", |b| {
        b.iter(|| {
            let m = ArgMap::parse(black_box(&shout), ["text"]).unwrap();
            m.arg::<&str>(0).unwrap().len()
        })
    });
    for n in [64usize, 4096] {
        let mut req = Vec::new();
        Encoder::new(&mut req)
            .map(1)
            .unwrap()
            .str("data")
            .unwrap()
            .bytes(&vec![7u8; n])
            .unwrap();
        group.bench_function(
            format!("decode payload_check request {{data}} {n} B (borrowed)"),
            |b| {
                b.iter(|| {
                    let m = ArgMap::parse(black_box(&req), ["data"]).unwrap();
                    m.arg::<&[u8]>(0).unwrap().len()
                })
            },
        );
    }
    let mut put_many = Vec::new();
    {
        let mut e = Encoder::new(&mut put_many);
        e.map(1).unwrap().str("entries").unwrap();
        vec![entry(), entry()].cbor(&mut e).unwrap();
    }
    group.bench_function("decode kv put_many request (2 entries)", |b| {
        b.iter(|| {
            let m = ArgMap::parse(black_box(&put_many), ["entries"]).unwrap();
            m.arg::<Vec<kv::Entry>>(0).unwrap()
        })
    });
    let mut buf = Vec::with_capacity(256);
    group.bench_function("encode bool result", |b| {
        b.iter(|| {
            encode(&black_box(true), &mut buf);
            buf.len()
        })
    });
    let text = String::from("hey: HELLO, WORLD");
    group.bench_function("encode text result", |b| {
        b.iter(|| {
            encode(black_box(&text), &mut buf);
            buf.len()
        })
    });
    let e = entry();
    group.bench_function("encode kv Entry result", |b| {
        b.iter(|| {
            encode(black_box(&e), &mut buf);
            buf.len()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = shared::config();
    targets = codec
}
criterion_main!(benches);
