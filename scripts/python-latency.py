#!/usr/bin/env python3
"""The Python sync scalar round trip of the generated echo module, set against a bare
ctypes call of a C function measured in the same run, and the raw `_sync` export called
through ctypes with a prebuilt args struct (the round trip without the module's own
work: building the args and out values, range checks, the method call).

    cargo build --release -p echo
    ECHO_LIBRARY=target/release/libecho.so python3 scripts/python-latency.py [calls]

Prints the median over 15 batches of ns per call for each row, and each row's ratio to
the bare call. UniFFI's Python bindings publish about 1.6 us per call for comparison.
"""

import ctypes
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples" / "echo" / "bindings" / "python"))
import echo  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
BATCHES = 15


def per_call_ns(fn):
    fn(1000)  # warm-up
    runs = []
    for _ in range(BATCHES):
        t0 = time.perf_counter_ns()
        fn(CALLS)
        runs.append((time.perf_counter_ns() - t0) / CALLS)
    return statistics.median(runs), min(runs)


def main():
    path = echo.load()
    lib = ctypes.CDLL(path)
    bare = lib.echo_interface_hash
    bare.restype, bare.argtypes = ctypes.c_uint64, []

    def bare_calls(n):
        for _ in range(n):
            bare()

    with echo.Context("bench") as ctx:
        # The export as the module calls it (no argtypes: each argument a ctypes object).
        raw = echo._A.echo_scalar_check_sync
        args = echo._EchoScalarCheckArgs(3, 4, 0.5)
        out = ctypes.c_bool()
        handle = ctypes.c_void_p(ctx.handle)
        ref_args, ref_out = ctypes.byref(args), ctypes.byref(out)
        expected = ctx.scalar_check(3, 4, 0.5)
        if raw(handle, ref_args, ref_out, 0) != echo.RET_OK or out.value != expected:
            raise SystemExit("the raw call did not answer like the module")

        def raw_calls(n):
            for _ in range(n):
                raw(handle, ref_args, ref_out, 0)

        def module_calls(n):
            f = ctx.scalar_check
            for _ in range(n):
                f(3, 4, 0.5)

        rows = [
            ("bare ctypes call (echo_interface_hash)", per_call_ns(bare_calls)),
            ("raw echo_scalar_check_sync via ctypes", per_call_ns(raw_calls)),
            ("echo.Context.scalar_check (generated)", per_call_ns(module_calls)),
        ]
    floor = rows[0][1][0]
    print(f"{CALLS} calls x {BATCHES} batches, Python {sys.version.split()[0]}")
    print(f"{'row':<42} {'median ns':>10} {'min ns':>8} {'x bare':>7}")
    for name, (med, low) in rows:
        print(f"{name:<42} {med:>10.0f} {low:>8.0f} {med / floor:>7.1f}")
    print("UniFFI Python, published: ~1600 ns per call")
    for name, (med, low) in rows:
        print(f"csv,{name},{med:.0f},{low:.0f},{med / floor:.2f}")


if __name__ == "__main__":
    main()
