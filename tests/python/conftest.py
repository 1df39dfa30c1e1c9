"""pytest set-up for the generated Python modules: each example's module is imported
from examples/<lib>/bindings/python and loaded from <LIB>_LIBRARY, which tests/python.rs
sets to the cdylib cargo built (run alone: `cargo build -p echo -p kv`, then
ECHO_LIBRARY=target/debug/libecho.so KV_LIBRARY=target/debug/libkv.so python3 -m pytest tests/python)."""

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
for lib in ("echo", "kv"):
    sys.path.insert(0, str(ROOT / "examples" / lib / "bindings" / "python"))
    var = f"{lib.upper()}_LIBRARY"
    if not os.environ.get(var):
        built = ROOT / "target" / "debug" / f"lib{lib}.so"
        if built.exists():
            os.environ[var] = str(built)


@pytest.fixture
def run():
    """Runs a coroutine function to completion on a fresh loop."""
    import asyncio

    def go(fn, *args):
        return asyncio.run(fn(*args))

    return go
