//! `payload_check` round trips with 64 B, 512 B, 4 KiB and 64 KiB, native and CBOR, one
//! host thread, worker hot.

use std::ffi::c_void;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use echo::*;
use ffi_dispatch::{Options, RET_OK};

mod shared;
use shared::{complete, wait, Completion};

/// `{"data": h'...'}` with `n` bytes.
fn cbor_request(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let mut e = minicbor::Encoder::new(&mut v);
    e.map(1)
        .unwrap()
        .str("data")
        .unwrap()
        .bytes(&vec![7u8; n])
        .unwrap();
    v
}

fn payload(c: &mut Criterion) {
    let ctx = shared::make(Options::default());
    let done = Completion::default();
    let ud = &done as *const Completion as *mut c_void;
    let mut group = c.benchmark_group("payload");
    for n in [64usize, 512, 4096, 65536] {
        group.throughput(Throughput::Bytes(n as u64));
        let data = vec![7u8; n];
        let args = EchoPayloadCheckArgs {
            data: data.as_ptr(),
            data_len: n,
        };
        group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    // SAFETY: `args` and `data` live for the call.
                    let rc = unsafe { echo_payload_check(ctx, Some(complete), ud, &args) };
                    assert_eq!(rc, RET_OK);
                    wait(&done);
                }
                start.elapsed()
            })
        });
        let req = cbor_request(n);
        group.bench_with_input(BenchmarkId::new("cbor", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    // SAFETY: `req` lives for the call.
                    let rc = unsafe {
                        echo_payload_check_cbor(ctx, Some(complete), ud, req.as_ptr(), req.len())
                    };
                    assert_eq!(rc, RET_OK);
                    wait(&done);
                }
                start.elapsed()
            })
        });
    }
    group.finish();
    assert_eq!(echo_destroy(ctx), RET_OK);
}

criterion_group! {
    name = benches;
    config = shared::config();
    targets = payload
}
criterion_main!(benches);
