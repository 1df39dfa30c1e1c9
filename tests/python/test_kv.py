"""The generated kv module, driven as a Python host would: every method blocking and
asyncio, records both ways, errors, bad input, destroy with calls in flight, threads."""

import asyncio
import ctypes
import gc
import os
import threading

import pytest

import kv


def entry(key, value=b"v", kind=kv.Kind.BLOB, tags=(), ttl_ms=None, note=None):
    return kv.Entry(key, value, kind, list(tags), ttl_ms, note, kv.Meta(0, 0))


@pytest.fixture
def ctx():
    with kv.Context("store") as c:
        yield c


def test_load_finds_the_library_through_the_environment():
    path = kv.load()
    assert path == os.environ["KV_LIBRARY"]
    assert kv.load() == path  # loading again is a no-op
    with pytest.raises(kv.KvError, match="already loaded"):
        kv.load("/nonexistent/libkv.so")


def test_constants_static_and_inline():
    assert kv.MAX_KEY_LEN == 256 and kv.PROTOCOL == "kv/1"
    assert kv.version().count(".") == 2
    assert kv.check_key("k") is None
    with pytest.raises(kv.KvError) as e:
        kv.check_key("")
    assert e.value.code == kv.RET_ERR and e.value.message == "keys are 1 to 256 bytes"
    with pytest.raises(kv.KvError):
        kv.check_key("x" * 257)


def test_every_method_blocking(ctx):
    assert ctx.name() == "store"
    assert ctx.put("a", b"\x00\x01", kv.Kind.BLOB, ["t1", "t2"], 30) is None
    previous = ctx.put("a", b"two", kv.Kind.TEXT, [], None)
    assert previous.value == b"\x00\x01" and previous.tags == ["t1", "t2"] and previous.ttl_ms == 30
    got = ctx.get("a")
    assert (got.key, got.value, got.kind, got.tags, got.ttl_ms, got.note) == ("a", b"two", kv.Kind.TEXT, [], None, None)
    assert got.meta.version == 2 and isinstance(got.kind, kv.Kind)
    assert ctx.find("a") == got and ctx.find("missing") is None
    assert ctx.put_many([entry("b", b"", note="n", ttl_ms=0), entry("c", b"x" * 10000, tags=["é", ""])]) == 2
    assert ctx.get("b").value == b"" and ctx.get("b").note == "n" and ctx.get("b").ttl_ms == 0
    assert ctx.get("c").value == b"x" * 10000 and ctx.get("c").tags == ["é", ""]
    assert ctx.keys() == ["a", "b", "c"]
    assert [e.key for e in ctx.list()] == ["a", "b", "c"]
    assert [e.key for e in ctx.list(kind=kv.Kind.BLOB)] == ["b", "c"]
    assert [e.key for e in ctx.list("b")] == ["b"]
    assert [e.key for e in ctx.list(limit=1)] == ["a"]
    ctx.put("n", (5).to_bytes(8, "little"), kv.Kind.COUNTER, [], None)
    assert ctx.incr("n", 3) == 8 and ctx.incr("n", -10) == -2
    ctx.annotate("a", "hello")
    assert ctx.get("a").note == "hello"
    ctx.annotate("a", None)
    assert ctx.get("a").note is None
    usage = ctx.usage()
    assert usage.entries == 4 and usage.largest.key == "c" and usage.bytes == 3 + 0 + 10000 + 8
    assert ctx.delete("a") is True and ctx.delete("a") is False
    assert ctx.stats()["completed"] >= 20


def test_an_empty_store_answers_none_and_empty_lists(ctx):
    assert ctx.usage() == kv.Usage(0, 0, None)
    assert ctx.list() == [] and ctx.keys() == []


def test_errors_carry_the_message(ctx):
    with pytest.raises(kv.KvError) as e:
        ctx.get("missing")
    assert e.value.code == kv.RET_ERR and str(e.value) == "not found: missing"
    ctx.put("t", b"text", kv.Kind.TEXT, [], None)
    with pytest.raises(kv.KvError, match="not a counter: t"):
        ctx.incr("t", 1)
    ctx.put("big", (2**63 - 1).to_bytes(8, "little", signed=True), kv.Kind.COUNTER, [], None)
    with pytest.raises(kv.KvError, match="counter overflow"):
        ctx.incr("big", 1)
    with pytest.raises(kv.KvError, match="keys are 1 to 256 bytes"):
        ctx.put("", b"", kv.Kind.TEXT, [], None)


def test_a_failing_constructor_raises_and_a_full_store_refuses():
    with pytest.raises(kv.KvError, match="the store needs a name"):
        kv.Context("")
    with kv.Context("small", 1) as c:
        c.put("a", b"", kv.Kind.TEXT, [], None)
        with pytest.raises(kv.KvError, match=r"store full \(1 entries\)"):
            c.put("b", b"", kv.Kind.TEXT, [], None)


def test_bad_input_is_refused_before_it_reaches_c(ctx):
    with pytest.raises(TypeError):
        ctx.get(b"bytes, not str")
    with pytest.raises(ValueError, match="NUL"):
        ctx.get("a\0b")
    with pytest.raises(OverflowError):
        ctx.incr("n", 2**63)
    with pytest.raises(OverflowError):
        kv.Context("s", -1)
    with pytest.raises(ValueError):
        ctx.put("k", b"", 7, [], None)  # not a Kind
    with pytest.raises(TypeError):
        ctx.put("k", "text, not bytes", kv.Kind.TEXT, [], None)
    with pytest.raises(ValueError, match="unknown option"):
        kv.Context("s", options={"no_such_option": 1})
    ctx.put("k", bytearray(b"ba"), kv.Kind.BLOB, [], None)
    assert ctx.get("k").value == b"ba"


def test_hostile_options_are_refused_with_the_reason():
    with pytest.raises(kv.KvError) as e:
        kv.Context("s", options={"ring_capacity": 0})
    assert "invalid ffid_options" in e.value.message


def test_closed_contexts_refuse_calls(ctx):
    ctx.close()
    assert ctx.closed and ctx.handle is None
    ctx.close()  # idempotent
    with pytest.raises(kv.KvError):
        ctx.get("a")


def test_many_threads_share_one_context(ctx):
    errors = []

    def worker(t):
        try:
            for i in range(300):
                key = f"t{t}-{i}"
                ctx.put(key, key.encode(), kv.Kind.TEXT, [str(t)], i)
                assert ctx.get(key).value == key.encode()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ctx.usage().entries == 8 * 300


def test_close_with_blocking_calls_in_flight_answers_each():
    c = kv.Context("store")
    outcomes = []
    started = threading.Barrier(5)

    def worker():
        started.wait()
        for i in range(2000):
            try:
                c.put(f"k{i}", b"v", kv.Kind.TEXT, [], None)
            except kv.KvError as e:
                outcomes.append(e.code)
                return
        outcomes.append("done")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    c.close()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert len(outcomes) == 4 and all(o in ("done", kv.RET_CLOSED) for o in outcomes)


def test_every_method_asyncio(run):
    async def main():
        async with kv.AsyncContext("store") as c:
            assert await c.name() == "store"
            assert await c.put("a", b"1", kv.Kind.BLOB, ["x"], 1) is None
            assert (await c.put("a", b"2", kv.Kind.BLOB, [], None)).value == b"1"
            assert (await c.get("a")).value == b"2"
            assert await c.find("zz") is None
            assert await c.put_many([entry("b"), entry("c")]) == 2
            assert await c.keys() == ["a", "b", "c"]
            assert len(await c.list(limit=2)) == 2
            await c.put("n", (1).to_bytes(8, "little"), kv.Kind.COUNTER, [], None)
            assert await c.incr("n", 41) == 42
            await c.annotate("a", "note")
            assert (await c.usage()).entries == 4
            assert await c.delete("b") is True
            with pytest.raises(kv.KvError, match="not found: b"):
                await c.get("b")
            many = await asyncio.gather(*(c.put(f"k{i}", bytes([i % 256]) * i, kv.Kind.BLOB, [], None) for i in range(500)))
            assert many == [None] * 500
            assert (await c.usage()).entries == 503
        assert c.closed
        with pytest.raises(kv.KvError, match="the store needs a name"):
            await kv.AsyncContext.create("")
        c2 = await kv.AsyncContext.create("second", 10)
        assert await c2.name() == "second"
        await c2.aclose()
        assert kv._PENDING == {}  # every callback settled and let go

    run(main)


def test_async_answers_arrive_on_the_loop_thread(run, monkeypatch):
    # The typed replies call the module's _settle: record where each runs.
    threads = []
    settle = kv._settle

    def recording(*args):
        threads.append(threading.get_ident())
        settle(*args)

    monkeypatch.setattr(kv, "_settle", recording)

    async def main():
        loop_thread = threading.get_ident()
        async with kv.AsyncContext("s") as c:
            assert await c.keys() == []
            await asyncio.gather(*(c.put(f"k{i}", b"", kv.Kind.TEXT, [], None) for i in range(50)))
        return loop_thread

    loop_thread = run(main)
    assert len(threads) == 1 + 1 + 50  # create, keys, the puts
    assert set(threads) == {loop_thread}


def test_async_context_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        kv.AsyncContext("s")


def test_answers_outlive_garbage_collection(ctx):
    ctx.put("a", b"x" * 100, kv.Kind.BLOB, ["t"] * 10, None)
    got = [ctx.get("a") for _ in range(200)]
    gc.collect()
    assert all(g.value == b"x" * 100 and g.tags == ["t"] * 10 for g in got)


def test_stubs_name_every_public_function():
    stubs = open(kv.__file__[:-3] + ".pyi").read()
    compile(stubs, "kv.pyi", "exec")
    for name in ("def put(", "def list(", "def version(", "def check_key(", "class Entry:", "class Kind(", "class AsyncContext:"):
        assert name in stubs
    assert ctypes.sizeof(kv._Options) == 112


def test_records_in_arrays_keep_what_they_point_to_for_the_call(ctx):
    # Every text and byte string below exists only for the call: if the module let one
    # go before C copied it, its memory would be reused by the next ones.
    entries = [
        kv.Entry(f"key-{i}", bytes([i % 251]) * (i % 97), kv.Kind.BLOB, [f"tag-{i}-{j}" for j in range(i % 5)], i, f"note {i}" * (i % 3), kv.Meta(0, 0))
        for i in range(300)
    ]
    assert ctx.put_many(entries) == 300
    gc.collect()
    for e in entries:
        got = ctx.get(e.key)
        assert (got.value, got.tags, got.ttl_ms, got.note or "") == (e.value, e.tags, e.ttl_ms, e.note)
