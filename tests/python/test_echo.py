"""The generated echo module: timeouts, events, deferred and async handlers, panics,
pings, destroy with asyncio calls in flight, and the GIL released while a call waits."""

import asyncio
import threading
import time

import pytest

import echo


@pytest.fixture
def ctx():
    with echo.Context("p") as c:
        yield c


def test_methods_blocking(ctx):
    assert ctx.shout("hi") == "p: HI"
    # The predicate: ((a + b + trunc(x)) & 1) == 0.
    assert ctx.scalar_check(1, 2, 3.0) is True
    assert ctx.scalar_check(3, 4, 0.5) is False
    assert ctx.scalar_check(-3, 0, -1.9) is True
    assert ctx.payload_check(b"\x01\x02\x03") is False  # (1, 3, 3.0)
    assert ctx.payload_check(b"\x01\x02\x01") is False  # (1, 1, 3.0)
    assert ctx.payload_check(b"\x01\x03") is True  # (1, 3, 2.0)
    assert ctx.payload_check(b"") is True  # (0, 0, 0.0)
    before = ctx.count()
    assert ctx.count() == before + 1
    assert ctx.sleep(1) is None
    assert ctx.echo_later("later", 5) == "later"
    assert ctx.echo_after("after", 5) == "after"
    assert ctx.yield_times(10) == 10
    assert ctx.ping_from_thread(0) == 0
    assert echo.byte_sum(b"\x01\x02\xff") == 258 and echo.byte_sum(b"") == 0
    assert echo.GREETING == 'h\u00e9llo "C"\n' and echo.LOWEST == -7 and echo.RATIO == 0.25 and echo.STRICT is True


def test_failures_panics_and_dropped_replies_raise(ctx):
    with pytest.raises(echo.EchoError, match="^boom$"):
        ctx.fail("boom")
    with pytest.raises(echo.EchoError, match="panic"):
        ctx.panic()
    with pytest.raises(echo.EchoError):
        ctx.drop_reply()
    with pytest.raises(echo.EchoError, match="too many"):
        ctx.yield_times(2_000_000)
    with pytest.raises(echo.EchoError, match="panic"):
        echo.panic_inline()
    assert ctx.shout("still fine") == "p: STILL FINE"


def test_timeouts_raise_timeout_error_and_the_context_goes_on(ctx):
    with pytest.raises(TimeoutError) as e:
        ctx.sleep(300, timeout=0.01)
    assert isinstance(e.value, echo.EchoTimeoutError) and e.value.code == echo.RET_TIMEOUT
    assert ctx.shout("after") == "p: AFTER"  # queued behind the sleep, answered
    with pytest.raises(ValueError):
        ctx.count(timeout=-1)


def test_the_gil_is_released_while_a_call_waits(ctx):
    done = threading.Event()

    def slow():
        ctx.sleep(1500)
        done.set()

    t = threading.Thread(target=slow)
    t.start()
    while ctx.stats()["accepted"] < 1:
        time.sleep(0.001)
    # This thread runs Python while the other waits inside the C call.
    assert sum(range(10000)) == 49995000
    assert not done.is_set()
    t.join()
    assert done.is_set()


def test_events_reach_listeners_until_closed(ctx):
    got = []
    threads = set()
    arrived = threading.Event()

    def on_ping(p):
        got.append(p)
        threads.add(threading.get_ident())
        if len(got) == 3:
            arrived.set()

    sub = ctx.listen_on_perf_ping(on_ping)
    assert sub.active
    assert ctx.trigger_ping(3, 5, 42, 10) == 3
    assert arrived.wait(10)
    assert [(p.seq_no, p.stamp_ns, p.data) for p in got] == [(10 + i, 42, bytes([10 + i]) * 5) for i in range(3)]
    assert threads and threading.get_ident() not in threads  # the event thread
    sub.close()
    assert not sub.active
    ctx.trigger_ping(2, 0, 0, 0)
    ctx.count()
    time.sleep(0.05)
    assert len(got) == 3
    sub.close()  # idempotent


def test_deferred_events_from_another_thread(ctx):
    got = []
    done = threading.Event()
    with ctx.listen_on_perf_ping(lambda p: (got.append(p.seq_no), len(got) == 50 and done.set())):
        assert ctx.ping_from_thread(50) == 50
        assert done.wait(10)
    assert sorted(got) == list(range(50))


def test_listening_on_a_closed_context_raises():
    c = echo.Context("p")
    c.close()
    with pytest.raises(echo.EchoError):
        c.listen_on_perf_ping(lambda p: None)


def test_asyncio_methods_events_and_timeouts(run):
    async def main():
        loop_thread = threading.get_ident()
        async with echo.AsyncContext("a") as c:
            assert await c.shout("x") == "a: X"
            assert await c.echo_later("d", 5) == "d"
            assert await c.echo_after("e", 5) == "e"
            assert await c.yield_times(3) == 3
            with pytest.raises(echo.EchoError, match="boom"):
                await c.fail("boom")
            got = asyncio.Queue()
            sub = c.listen_on_perf_ping(lambda p: got.put_nowait((p.seq_no, threading.get_ident())))
            assert await c.trigger_ping(4, 1, 0, 0) == 4
            events = [await asyncio.wait_for(got.get(), 10) for _ in range(4)]
            assert [s for s, _ in events] == [0, 1, 2, 3]
            assert all(t == loop_thread for _, t in events)  # listeners reach the loop's thread
            sub.close()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.sleep(300), 0.01)
            assert await c.shout("goes on") == "a: GOES ON"
            texts = await asyncio.gather(*(c.echo_after(str(i), i % 3) for i in range(300)))
            assert texts == [str(i) for i in range(300)]
        assert echo._PENDING == {}

    run(main)


def test_close_with_asyncio_calls_in_flight_settles_every_one(run):
    async def main():
        # Deferred answers 10 s away, and destroy waits 100 ms for them.
        c = await echo.AsyncContext.create("d", options={"shutdown_timeout_ms": 100})
        late = [asyncio.ensure_future(c.echo_later(str(i), 10_000)) for i in range(20)]
        queued = [asyncio.ensure_future(c.sleep(20)) for _ in range(20)]
        await asyncio.sleep(0)  # every call submitted
        c.close()
        outcomes = await asyncio.gather(*late, *queued, return_exceptions=True)
        assert all(isinstance(o, echo.EchoError) for o in outcomes[:20]), outcomes[:20]
        assert all(o is None or isinstance(o, echo.EchoError) for o in outcomes[20:]), outcomes[20:]
        with pytest.raises(echo.EchoError):
            await c.shout("closed")
        assert echo._PENDING == {}

    run(main)


def test_many_threads_one_context(ctx):
    results = []

    def worker(t):
        results.append(all(ctx.shout(f"{t}-{i}x") == f"p: {t}-{i}X" for i in range(500)))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8


def test_a_cancelled_asyncio_call_that_has_not_started_never_runs(run):
    async def main():
        async with echo.AsyncContext("c") as c:
            busy = asyncio.ensure_future(c.sleep(300))  # the worker is in here
            queued = asyncio.ensure_future(c.count())  # waits behind it
            await asyncio.sleep(0.05)
            queued.cancel()
            await busy
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert c.stats()["cancelled"] == 1
            assert await c.count() == 1  # sleep ran, count never did
        assert echo._PENDING == {}

    run(main)


def test_a_listener_may_close_its_own_subscription(ctx):
    calls = []
    done = threading.Event()
    box = {}

    def once(p):
        calls.append(p.seq_no)
        box["sub"].close()  # from inside the listener, on the event thread
        done.set()

    box["sub"] = ctx.listen_on_perf_ping(once)
    ctx.trigger_ping(5, 0, 0, 0)
    assert done.wait(10)
    ctx.trigger_ping(5, 0, 0, 0)
    ctx.count()
    time.sleep(0.05)
    assert calls == [0]


def test_the_stubs_are_valid_python():
    for module in (echo,):
        path = module.__file__[:-3] + ".pyi"
        compile(open(path).read(), path, "exec")


def test_no_asyncio_listener_call_after_its_subscription_closes(run):
    async def main():
        async with echo.AsyncContext("l") as c:
            got = []
            sub = c.listen_on_perf_ping(lambda p: got.append(p.seq_no))
            # The call answers once all 200 events are queued for the event thread;
            # some are on their way to the loop when the subscription closes.
            assert await c.trigger_ping(200, 0, 0, 0) == 200
            sub.close()
            at_close = len(got)
            await asyncio.sleep(0.2)
            assert len(got) == at_close
            sub2 = c.listen_on_perf_ping(lambda p: got.append(p.seq_no))
            assert await c.trigger_ping(3, 0, 0, 0) == 3
        after = len(got)
        await asyncio.sleep(0.1)
        assert len(got) == after  # nor after the context closed
        assert not sub2.active

    run(main)


def test_an_asyncio_refusal_names_its_status(run):
    async def main():
        c = await echo.AsyncContext.create("r")
        c.close()
        with pytest.raises(echo.EchoError) as e:
            await c.count()
        assert e.value.code == echo.RET_CLOSED
        assert e.value.message.startswith("refused (CLOSED): the context is being destroyed")

    run(main)
