# ---- runtime support (the same in every generated module) ----------------------------

RET_OK = 0  # FFID_RET_OK
RET_ERR = 1  # FFID_RET_ERR
RET_MISSING_CALLBACK = 2  # FFID_RET_MISSING_CALLBACK
RET_STALE_WARN = 3  # FFID_RET_STALE_WARN: a progress ping, never terminal
RET_BUSY = 4  # FFID_RET_BUSY
RET_TIMEOUT = 5  # FFID_RET_TIMEOUT
RET_CLOSED = 6  # FFID_RET_CLOSED: the context is destroyed or being destroyed
RET_INVALID_CTX = 7  # FFID_RET_INVALID_CTX: not a context of this library
RET_TOO_LARGE = 8  # FFID_RET_TOO_LARGE: arguments over FFID_MAX_REQUEST_BYTES

_STATUS = {
    0: "OK",
    1: "ERR",
    2: "MISSING_CALLBACK",
    3: "STALE_WARN",
    4: "BUSY",
    5: "TIMEOUT",
    6: "CLOSED",
    7: "INVALID_CTX",
    8: "TOO_LARGE",
}


class _Options(ctypes.Structure):
    """ffid_options as ffi_dispatch.h declares it (the 112-byte layout)."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("ring_capacity", ctypes.c_uint32),
        ("spin_ns", ctypes.c_uint32),
        ("backpressure", ctypes.c_uint32),
        ("wake", ctypes.c_uint32),
        ("ring", ctypes.c_uint32),
        ("stale_ping_ms", ctypes.c_uint32),
        ("not_responding_ms", ctypes.c_uint32),
        ("listener_stuck_ms", ctypes.c_uint32),
        ("event_ring_capacity", ctypes.c_uint32),
        ("event_backpressure", ctypes.c_uint32),
        ("shutdown_timeout_ms", ctypes.c_uint32),
        ("completion", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("diagnostic", ctypes.c_void_p),
        ("diagnostic_user_data", ctypes.c_void_p),
        ("thread_start", ctypes.c_void_p),
        ("thread_stop", ctypes.c_void_p),
        ("hook_user_data", ctypes.c_void_p),
        ("idle_policy", ctypes.c_uint32),
        ("idle_spin_cap_permille", ctypes.c_uint32),
        ("poison_replies", ctypes.c_uint32),
        ("poll_kinds", ctypes.c_uint32),
    ]


# The options a host may set by name: the numeric ones (the hooks stay unset).
OPTION_NAMES = (
    "ring_capacity", "spin_ns", "backpressure", "wake", "ring", "stale_ping_ms",
    "not_responding_ms", "listener_stuck_ms", "event_ring_capacity", "event_backpressure",
    "shutdown_timeout_ms", "idle_policy", "idle_spin_cap_permille", "poison_replies",
)


class _Stats(ctypes.Structure):
    """ffid_context_stats as ffi_dispatch.h declares it."""

    _fields_ = [("struct_size", ctypes.c_uint32), ("reserved", ctypes.c_uint32)] + [
        (name, ctypes.c_uint64)
        for name in (
            "accepted", "completed", "refused", "queue_depth", "high_water", "wakeups",
            "spin_hits", "parks", "panics", "deferred_pending", "cancelled", "stale_pings",
            "events_emitted", "events_dropped", "events_delivered", "idle_spin_ns",
            "avoidable_wakes",
        )
    ]


# void (*ffid_callback)(int ret, const char* msg, size_t len, void* user_data)
_Callback = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_PU8 = ctypes.POINTER(ctypes.c_uint8)
_byref = ctypes.byref
_U32_MAX = 0xFFFFFFFF

_A = None  # the loaded library (_Api), once load() has run
_LOAD_LOCK = threading.Lock()


class _Api:
    """The loaded library: each export a ctypes function with its prototype set. Calls
    through ctypes.CDLL release the GIL for their duration.

    The call forms (hot) get their return type only: converting four arguments through
    argtypes costs about as much as the call itself, so the module passes each one as
    the ctypes object of its C type (the handle as c_void_p, byref pointers, c_uint32
    timeouts); the argtypes listed in _PROTOTYPES say what each takes."""

    def __init__(self, cdll, path):
        self.path = path
        for name, restype, argtypes, hot in _PROTOTYPES:
            try:
                f = getattr(cdll, name)
            except AttributeError:
                raise _Error(RET_ERR, f"{path} has no export {name}: is it the {_LIB} library?") from None
            f.restype = restype
            if not hot:
                f.argtypes = argtypes
            setattr(self, name, f)
        self.free = getattr(self, f"{_LIB}_free")
        self.last_error = getattr(self, f"{_LIB}_last_error")


def _default_path():
    env = os.environ.get(f"{_LIB.upper()}_LIBRARY")
    if env:
        return env
    found = ctypes.util.find_library(_LIB)
    if found:
        return found
    if sys.platform == "darwin":
        return f"lib{_LIB}.dylib"
    if sys.platform == "win32":
        return f"{_LIB}.dll"
    return f"lib{_LIB}.so"


def load(path=None):
    """Loads the library: from `path`, else the path in the environment variable
    <LIB>_LIBRARY, else wherever the platform's loader finds it. Called by the first
    Context when the host has not. Refuses a library whose interface is not the one this
    module was generated for. Returns the path it loaded; a second call returns the
    first one's path (a different `path` then raises)."""
    global _A
    with _LOAD_LOCK:
        if _A is not None:
            if path is not None and os.fspath(path) != _A.path:
                raise _Error(RET_ERR, f"{_LIB} is already loaded from {_A.path}")
            return _A.path
        where = os.fspath(path) if path is not None else _default_path()
        try:
            cdll = ctypes.CDLL(where)
        except OSError as e:
            raise _Error(RET_ERR, f"cannot load the {_LIB} library from {where}: {e}") from None
        api = _Api(cdll, where)
        theirs = api.__dict__[f"{_LIB}_interface_hash"]()
        if theirs != INTERFACE_HASH:
            raise _Error(
                RET_ERR,
                f"{where} has interface {theirs:#018x}, this module was generated for "
                f"{INTERFACE_HASH:#018x}: regenerate it with ffi-dispatch-bindgen --lang python",
            )
        _A = api
        return where


def _api():
    return _A if _A is not None else (load(), _A)[1]


def _message(p, n=None):
    """A C message (msg, and len when given) as text."""
    if not p:
        return ""
    raw = ctypes.string_at(p) if n is None else ctypes.string_at(p, n)
    return raw.decode("utf-8", "replace")


def _fail(rc):
    """Raises the error of a call that did not answer OK, with this thread's last_error."""
    text = _A.last_error().decode("utf-8", "replace") or _STATUS.get(rc, "UNKNOWN")
    if rc == RET_TIMEOUT:
        raise _Timeout(rc, text)
    raise _Error(rc, text)


def _refused(rc):
    """The error of a call the library refused (no answer will come), with the reason
    the runtime left in this thread's last_error."""
    text = _A.last_error().decode("utf-8", "replace")
    return _Error(rc, f"refused ({_STATUS.get(rc, 'UNKNOWN')}): {text}")


def _ms(timeout):
    """A timeout in seconds (None: no limit) as the C forms' timeout_ms (0: no limit)."""
    if timeout is None:
        return 0
    if timeout < 0:
        raise ValueError("timeout must be >= 0 seconds")
    return ctypes.c_uint32(min(_U32_MAX, max(1, int(math.ceil(timeout * 1000)))))


def _options(options, completion):
    opts = _Options()
    _A.ffid_options_init(ctypes.byref(opts))
    for name, value in (options or {}).items():
        if name not in OPTION_NAMES:
            raise ValueError(f"unknown option {name!r} (known: {', '.join(OPTION_NAMES)})")
        if not 0 <= value <= _U32_MAX:
            raise ValueError(f"option {name} = {value} is out of range")
        setattr(opts, name, value)
    opts.completion = completion
    return opts


def _range(name, v, lo, hi):
    raise OverflowError(f"{name} = {v!r} does not fit {lo}..={hi}")


def _text(s):
    """A str for a const char* (kept alive by the caller for the call)."""
    if not isinstance(s, str):
        raise TypeError(f"expected str, got {type(s).__name__}")
    b = s.encode()
    if b"\0" in b:
        raise ValueError("text passed to C may not contain NUL")
    return b


def _kept(v, keep):
    """v, alive for the call: a struct copied into another (a record into its parent,
    into an array) does not take its own references along."""
    keep.append(v)
    return v


def _bytes_in(v, keep):
    """A bytes-like value as (const uint8_t*, len), without a copy for bytes."""
    if not isinstance(v, bytes):
        if not isinstance(v, (bytearray, memoryview)):
            raise TypeError(f"expected bytes, got {type(v).__name__}")
        v = bytes(v)
    keep.append(v)
    return ctypes.cast(ctypes.c_char_p(v), _PU8), len(v)


def _array_in(ctype, items, keep):
    """A list of C values as (const T*, len): never NULL, also when empty."""
    a = (ctype * max(1, len(items)))(*items)
    keep.append(items)  # what the elements point to (text), kept for the call
    keep.append(a)
    return ctypes.cast(a, ctypes.POINTER(ctype)), len(items)


def _ref(obj, keep):
    """A pointer to obj, kept alive for the call."""
    keep.append(obj)
    return ctypes.pointer(obj)


def _dec(b):
    return b.decode() if b is not None else ""


def _bytes_of(p, n):
    return ctypes.string_at(p, n) if n else b""


def _take_text(p):
    """An owned answer's text: read, then freed."""
    if not p:
        return ""
    try:
        return ctypes.string_at(p).decode()
    finally:
        _A.free(p)


def _take_opt_text(p):
    return None if not p else _take_text(p)


def _take_bytes(p, n):
    if not p:
        return b""
    try:
        return ctypes.string_at(p, n)
    finally:
        _A.free(p)


def _take_opt(p, conv):
    """An owned answer behind a pointer (a record, an enum): converted, then freed."""
    if not p:
        return None
    try:
        return conv(p[0])
    finally:
        _A.free(p)


def _take_list(p, n, conv):
    """An owned array of n elements: converted, then freed."""
    if not p:
        return []
    try:
        return [conv(p[i]) for i in range(n)] if conv is not None else p[:n]
    finally:
        _A.free(p)


def _ident(v):
    return v


class Subscription:
    """A listener added to a context: it is called until close() (or the context's
    close). Also a context manager."""

    def __init__(self, owner, listener_id, on_close=None):
        self._owner = owner
        self._id = listener_id
        self._on_close = on_close

    @property
    def active(self):
        """Whether the listener is still added."""
        return self._id != 0 and self._owner._ctx is not None

    def close(self):
        """Removes the listener: once this returns it is not called again (called from
        the listener itself: once it returns). Idempotent."""
        listener_id, self._id = self._id, 0
        if listener_id:
            if self._on_close is not None:
                self._on_close()
            self._owner._remove_listener(listener_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_INLINE = threading.local()  # an inline export's answer, on the calling thread
_IN_LISTENER = threading.local()  # .on while this thread runs a listener
# Callback objects C may still call although their context object is gone (its destroy
# was refused, or never ran): kept for the life of the process.
_IMMORTAL = []


def _call_listener(fn, value):
    """Runs a listener, marking the thread (see _Base._remove_listener). An exception
    from fn goes where Python sends those of callbacks: sys.unraisablehook."""
    _IN_LISTENER.on = True
    try:
        fn(value)
    finally:
        _IN_LISTENER.on = False
_PENDING = {}  # user_data -> the future an answer settles
_NEXT_ID = itertools.count(1)


def _track(fut):
    ud = next(_NEXT_ID)
    _PENDING[ud] = fut
    return ud


def _settle(ud, ret, value, msg):
    """Settles the future behind ud with a terminal answer (on the thread answering)."""
    fut = _PENDING.pop(ud, None)
    if fut is None or fut.done():
        return
    try:
        if ret == RET_OK:
            fut.set_result(value)
        else:
            fut.set_exception(_Timeout(ret, msg) if ret == RET_TIMEOUT else _Error(ret, msg))
    except RuntimeError:
        pass  # its loop is closed: nobody can await it any more


def _settle_raised(ud, e):
    fut = _PENDING.pop(ud, None)
    if fut is not None and not fut.done():
        try:
            fut.set_exception(e)
        except RuntimeError:
            pass  # its loop is closed


def _on_created(ret, msg, n, ud):
    # The create callback: the constructor's outcome.
    if ret != RET_STALE_WARN:
        _settle(ud, ret, None, _message(msg, n))


_CREATED = _Callback(_on_created)


_NULL = ctypes.c_void_p()


class _Base:
    """What Context and AsyncContext share: the handle, listeners, stats, close."""

    _ctx = None  # the handle (an int); None once closed
    _cv = _NULL  # the handle as the call forms take it; kept by close (calls: CLOSED)

    def _start(self, submit, fut, options, completion):
        """Creates the context: the create callback settles fut with the constructor's
        outcome. Returns the handle; raises when create refused."""
        _api()
        self._listeners = {}
        self._retired = []
        self._lock = threading.Lock()
        opts = _options(options, completion)
        ud = _track(fut)
        ctx = submit(_CREATED, ud, ctypes.byref(opts))
        if not ctx:
            _PENDING.pop(ud, None)
            raise _Error(RET_ERR, _A.last_error().decode("utf-8", "replace"))
        self._ctx = ctx
        self._cv = ctypes.c_void_p(ctx)

    @property
    def handle(self):
        """The C handle (ffid_ctx*) as an int, for a host that mixes in C calls; None
        once closed."""
        return self._ctx

    @property
    def closed(self):
        """Whether close() has run."""
        return self._ctx is None

    def stats(self):
        """The context's counters (ffid_context_stats) as a dict."""
        s = _Stats()
        s.struct_size = ctypes.sizeof(_Stats)
        rc = getattr(_A, f"{_LIB}_stats")(self._ctx, ctypes.byref(s))
        if rc != RET_OK:
            raise _refused(rc)
        return {name: getattr(s, name) for name, _ in _Stats._fields_[2:]}

    def _listen(self, add, listener, on_close=None):
        ctx = self._ctx
        listener_id = add(ctx, listener, None) if ctx is not None else 0
        if listener_id == 0:
            if ctx is None:
                raise _Error(RET_CLOSED, "the listener was refused: the context is closed")
            raise _refused(RET_ERR)
        with self._lock:
            self._listeners[listener_id] = listener  # alive while C may call it
        return Subscription(self, listener_id, on_close)

    def _remove_listener(self, listener_id):
        ctx = self._ctx
        if ctx is not None:
            getattr(_A, f"{_LIB}_remove_listener")(ctx, listener_id)
        with self._lock:
            listener = self._listeners.pop(listener_id, None)
            if getattr(_IN_LISTENER, "on", False):
                # Maybe inside that very listener, whose ctypes thunk must outlive its
                # call: freed with the context.
                self._retired.append(listener)

    def _destroy(self):
        if self._ctx is None:
            return
        with self._lock:
            # _cv keeps the handle: a call racing or following close is refused
            # CLOSED by the runtime (a destroyed handle stays refused).
            ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        rc = getattr(_A, f"{_LIB}_destroy")(ctx)
        if rc != RET_OK:
            # Inside a callback the context cannot be waited for: keep it usable, and
            # its listeners alive even if this object goes (its __del__ came here).
            self._ctx = ctx
            _IMMORTAL.append((self._listeners, self._retired))
            raise _refused(rc)
        self._listeners.clear()  # destroy returned: no listener is called again
        self._retired.clear()


class _Context(_Base):
    """A context of the library, for threads: its methods block the calling thread (not
    the GIL) until the answer comes. Safe to share between threads. close() (or leaving
    a `with` block) destroys it, answering every call in flight first."""

    def _create(self, submit, options):
        fut = concurrent.futures.Future()
        self._start(submit, fut, options, 0)
        try:
            fut.result()
        except BaseException:
            self._destroy()
            raise

    def close(self):
        """Destroys the context: every accepted call is answered first (those still
        queued with an error), then no listener is called again. Idempotent."""
        self._destroy()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._destroy()
        except Exception:
            pass

    def _listen_with(self, add, make, fn):
        return self._listen(add, make(fn))


class _AsyncContext(_Base):
    """A context of the library for asyncio: created on the running loop in completion
    mode; its answers (and its listeners' calls) reach Python on that loop's thread.
    `async with AsyncContext(...) as ctx`, or `ctx = await AsyncContext.create(...)`.
    Methods are coroutines; a call cancelled while waiting drops its answer."""

    def _create(self, submit, options):
        self._loop = asyncio.get_running_loop()
        fut = self._loop.create_future()
        self._start(submit, fut, options, 1)
        self._drain_fn = getattr(_A, f"{_LIB}_drain")
        self._last_request_id = getattr(_A, f"{_LIB}_last_request_id")
        self._cancel = getattr(_A, f"{_LIB}_cancel")
        self._fd = getattr(_A, f"{_LIB}_completion_fd")(self._ctx)
        self._loop.add_reader(self._fd, self._drain)
        self._created = fut

    def _drain(self):
        ctx = self._ctx
        while ctx is not None and self._drain_fn(ctx, 256) == 256:
            pass

    async def _ready(self):
        try:
            await self._created
        except BaseException:
            self.close()
            raise
        return self

    def __await__(self):
        return self._ready().__await__()

    async def __aenter__(self):
        return await self._ready()

    async def __aexit__(self, *exc):
        self.close()

    def close(self):
        """Destroys the context on the loop's thread: every accepted call is answered
        first (their coroutines then finish), then no listener is called again.
        Idempotent."""
        if self._ctx is not None:
            try:
                self._loop.remove_reader(self._fd)
            except Exception:
                pass  # the loop is closed, and its readers with it
        self._destroy()

    def __del__(self):
        # Never closed: destroyed here, wherever the collector runs (answers still
        # queued then settle futures nobody awaits).
        try:
            self.close()
        except Exception:
            pass

    async def aclose(self):
        """close(), as a coroutine."""
        self.close()

    async def _call(self, submit):
        fut = self._loop.create_future()
        ud = _track(fut)
        rc = submit(self._cv, ctypes.c_void_p(ud))
        if rc != RET_OK:
            _PENDING.pop(ud, None)
            raise _refused(rc)
        request_id = self._last_request_id()
        try:
            return await fut
        except asyncio.CancelledError:
            # Nobody waits any more: a request the worker has not started never runs
            # (its answer, "cancelled", is dropped like any other).
            ctx = self._ctx
            if ctx is not None and request_id:
                self._cancel(self._cv, ctypes.c_uint64(request_id))
            raise

    def _listen_with(self, add, make, fn):
        loop = self._loop
        live = [True]  # read and cleared on the loop's thread

        def deliver(value):
            # Events already handed to the loop when the subscription or the context
            # closed are dropped here, so none reaches fn after close() returns.
            if live[0] and self._ctx is not None:
                _call_listener(fn, value)

        def on_event_thread(value):
            try:
                loop.call_soon_threadsafe(deliver, value)
            except RuntimeError:
                pass  # the loop is closed: nobody is listening any more

        return self._listen(add, make(on_event_thread), lambda: live.__setitem__(0, False))
