
// ---- the same in every generated client --------------------------------------------------

/// Why a load, a create or a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `FFID_RET_ERR`: the method's error, or the runtime's refusal of the call (an
    /// argument it refuses, a blocking call in completion mode), with its text.
    Failed(String),
    /// `FFID_RET_TIMEOUT`: a blocking call's timeout passed. The call goes on; the
    /// runtime frees its late answer.
    Timeout,
    /// `FFID_RET_BUSY`: refused: the ring is full and rejects, or a blocking call was made
    /// from inside a callback, where it could not wait.
    Busy(String),
    /// `FFID_RET_CLOSED`: refused: the context is being destroyed or was destroyed.
    Closed(String),
    /// `FFID_RET_INVALID_CTX`: refused: not a context of this library.
    InvalidContext(String),
    /// `FFID_RET_TOO_LARGE`: refused: the arguments take more than
    /// `FFID_MAX_REQUEST_BYTES`, or more memory than the library could have.
    TooLarge(String),
    /// Another status code, with its text.
    Status {
        /// The code (`FFID_RET_*`).
        code: i32,
        /// What the runtime said.
        message: String,
    },
    /// An argument this client cannot pass: text with a NUL byte in it (C text ends at
    /// the first one).
    InvalidArgument(String),
    /// The library could not be loaded: the file, a missing export, or a library that
    /// serves another interface than this client's.
    Load(String),
}

impl Error {
    /// The `FFID_RET_*` code of this error (`FFID_RET_ERR` for the client's own).
    pub fn code(&self) -> i32 {
        match self {
            Error::Timeout => raw::FFID_RET_TIMEOUT,
            Error::Busy(_) => raw::FFID_RET_BUSY,
            Error::Closed(_) => raw::FFID_RET_CLOSED,
            Error::InvalidContext(_) => raw::FFID_RET_INVALID_CTX,
            Error::TooLarge(_) => raw::FFID_RET_TOO_LARGE,
            Error::Status { code, .. } => *code,
            _ => raw::FFID_RET_ERR,
        }
    }

    fn from_status(code: c_int, message: String) -> Error {
        match code {
            raw::FFID_RET_ERR => Error::Failed(message),
            raw::FFID_RET_TIMEOUT => Error::Timeout,
            raw::FFID_RET_BUSY => Error::Busy(message),
            raw::FFID_RET_CLOSED => Error::Closed(message),
            raw::FFID_RET_INVALID_CTX => Error::InvalidContext(message),
            raw::FFID_RET_TOO_LARGE => Error::TooLarge(message),
            code => Error::Status { code, message },
        }
    }

    fn no_answer() -> Error {
        Error::Failed("the library answered OK without a value".into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Failed(m)
            | Error::Busy(m)
            | Error::Closed(m)
            | Error::InvalidContext(m)
            | Error::TooLarge(m)
            | Error::InvalidArgument(m)
            | Error::Load(m) => f.write_str(m),
            Error::Timeout => f.write_str("the call timed out (it goes on; its answer is dropped)"),
            Error::Status { code, message } => write!(f, "status {code}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// The loaded file and its exports, shared by the [`Library`] handles, the contexts and
/// the subscriptions made from it: the file stays loaded while any of them lives, and
/// for good once [`Loaded::keep_loaded`] ran.
struct Loaded {
    exports: raw::Exports,
    _file: libloading::Library,
    kept: std::sync::Once,
}

impl Loaded {
    /// Keeps the file loaded until the process exits: some of its threads may outlive
    /// every handle (the static context, a context whose destroy was refused).
    fn keep_loaded(self: &Arc<Self>) {
        self.kept.call_once(|| std::mem::forget(Arc::clone(self)));
    }
}

impl Loaded {
    /// The error of this thread's last refusal, failed create or failed blocking call,
    /// with `code`.
    fn last_error(&self, code: c_int) -> Error {
        // SAFETY: the export takes nothing and never returns NULL; the text is valid
        // until this thread's next refusal, create or blocking call, and copied now.
        let message = unsafe { ffid_text((self.exports.last_error)()) };
        Error::from_status(code, message)
    }
}

/// Resolves export `name` (NUL-terminated) of `file` as a `T`.
///
/// # Safety
/// `T` is the function pointer type the library's header declares for `name`.
unsafe fn ffid_export<T: Copy>(file: &libloading::Library, name: &[u8]) -> Result<T, Error> {
    // SAFETY: the caller's promise: `T` is the symbol's type.
    match unsafe { file.get::<T>(name) } {
        Ok(symbol) => Ok(*symbol),
        Err(e) => Err(Error::Load(format!(
            "it lacks {}: {e}",
            String::from_utf8_lossy(&name[..name.len() - 1])
        ))),
    }
}

/// The `timeout_ms` of a blocking form: 0 (no limit) for `None`, else the timeout
/// rounded up to whole milliseconds (at least 1, at most `u32::MAX`).
fn ffid_timeout_ms(timeout: Option<std::time::Duration>) -> u32 {
    match timeout {
        None => 0,
        Some(t) => u32::try_from(t.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u32::MAX)
            .max(1),
    }
}

/// What the C form of a call's arguments points to, kept until the call returns: the
/// runtime copies what it needs before then.
#[derive(Default)]
struct Keep {
    texts: Vec<CString>,
    blocks: Vec<Box<dyn std::any::Any>>,
}

impl Keep {
    /// `s` as C text; `what` names the argument in the error.
    fn text(&mut self, s: &str, what: &str) -> Result<*const c_char, Error> {
        let c = CString::new(s)
            .map_err(|_| Error::InvalidArgument(format!("`{what}` holds a NUL byte")))?;
        let p = c.as_ptr();
        // Moving the CString moves its handle, not its bytes: `p` stays valid.
        self.texts.push(c);
        Ok(p)
    }

    /// `v` on the heap, kept.
    fn one<T: 'static>(&mut self, v: T) -> *const T {
        let b = Box::new(v);
        let p: *const T = &*b;
        self.blocks.push(b);
        p
    }

    /// `v`'s elements, kept (a non-NULL pointer also when empty).
    fn array<T: 'static>(&mut self, v: Vec<T>) -> *const T {
        let b = v.into_boxed_slice();
        let p = b.as_ptr();
        self.blocks.push(Box::new(b));
        p
    }
}

/// Copies C text (NULL reads as empty).
///
/// # Safety
/// `p` is NULL or NUL-terminated and readable.
unsafe fn ffid_text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Copies optional C text: NULL is `None`.
///
/// # Safety
/// As [`ffid_text`].
unsafe fn ffid_opt_text(p: *const c_char) -> Option<String> {
    // SAFETY: forwarded.
    (!p.is_null()).then(|| unsafe { ffid_text(p) })
}

/// The `len` elements at `p` (none when `p` is NULL).
///
/// # Safety
/// `p` is NULL or points to `len` initialised elements that outlive `'a`.
unsafe fn ffid_slice<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(p, len) }
}

/// A callback's `msg`/`len` as text.
///
/// # Safety
/// As [`ffid_slice`], for `len` bytes.
unsafe fn ffid_message(msg: *const c_char, len: usize) -> String {
    // SAFETY: forwarded.
    String::from_utf8_lossy(unsafe { ffid_slice(msg.cast::<u8>(), len) }).into_owned()
}

/// A native answer's bytes as a fixed-size array (a scalar's native-endian bytes).
fn ffid_ne_bytes<const N: usize>(b: &[u8]) -> Result<[u8; N], Error> {
    b.try_into()
        .map_err(|_| Error::Failed(format!("an answer of {N} bytes was expected, not {}", b.len())))
}

/// A native answer that is one C struct: a copy of it.
///
/// # Safety
/// `b` holds a `T` as the library lays it out (any alignment).
unsafe fn ffid_read_mirror<T>(b: &[u8]) -> Result<T, Error> {
    if b.len() != std::mem::size_of::<T>() {
        return Err(Error::Failed("the answer is not the size of its C struct".into()));
    }
    // SAFETY: the caller's promise; `read_unaligned` needs no alignment.
    Ok(unsafe { b.as_ptr().cast::<T>().read_unaligned() })
}

/// A native answer that is a C array: copies of its elements.
///
/// # Safety
/// `b` holds `T`s as the library lays them out (any alignment).
unsafe fn ffid_read_mirrors<T>(b: &[u8]) -> Vec<T> {
    let n = b.len() / std::mem::size_of::<T>().max(1);
    // SAFETY: the caller's promise: element `i` is within `b`.
    (0..n)
        .map(|i| unsafe { b.as_ptr().cast::<T>().add(i).read_unaligned() })
        .collect()
}

/// One answer, handed from the thread that answers to the one waiting for it (a
/// future's task, or a thread blocked in [`Oneshot::wait`]). A mutex, taken once by
/// each side, rather than a lock-free cell: a call is a round trip through the ring,
/// and this keeps the waker hand-off obviously right.
struct Oneshot<T> {
    state: Mutex<Answer<T>>,
    ready: Condvar,
}

enum Answer<T> {
    Waiting(Option<Waker>),
    Ready(T),
    Taken,
}

fn ffid_lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding it; a poisoned lock still holds a consistent state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Oneshot<T> {
    fn new() -> Self {
        Oneshot {
            state: Mutex::new(Answer::Waiting(None)),
            ready: Condvar::new(),
        }
    }

    fn complete(&self, value: T) {
        let waker = match std::mem::replace(&mut *ffid_lock(&self.state), Answer::Ready(value)) {
            Answer::Waiting(w) => w,
            _ => None,
        };
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll(&self, cx: &mut std::task::Context<'_>) -> Poll<T> {
        let mut state = ffid_lock(&self.state);
        match std::mem::replace(&mut *state, Answer::Taken) {
            Answer::Ready(v) => Poll::Ready(v),
            Answer::Waiting(w) => {
                let w = match w {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = Answer::Waiting(Some(w));
                Poll::Pending
            }
            Answer::Taken => panic!("a call's future was polled after it completed"),
        }
    }

    /// Waits for the answer; `idle` runs between checks when given (a completion-mode
    /// create drains its own queue meanwhile).
    fn wait(&self, idle: Option<&dyn Fn()>) -> T {
        let mut state = ffid_lock(&self.state);
        loop {
            match std::mem::replace(&mut *state, Answer::Taken) {
                Answer::Ready(v) => return v,
                waiting => *state = waiting,
            }
            state = match idle {
                None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(idle) => {
                    drop(state);
                    idle();
                    let state = ffid_lock(&self.state);
                    self.ready
                        .wait_timeout(state, std::time::Duration::from_micros(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// A typed call's box: what its reply frees answers with, and where the answer goes.
/// One allocation per call, shared by the future and the reply (an `Arc`: the future
/// may be dropped first).
struct Reply<T> {
    free: unsafe extern "C" fn(*const c_void),
    answer: Oneshot<Result<T, Error>>,
}

/// The answer of an asynchronous call, to come: a [`Future`] (any executor; no thread
/// per call), or [`Pending::wait`] to block for it. Dropping it leaves the call running
/// and drops its answer when it comes. Destroying the context answers it. In completion
/// mode the answer comes when a thread drains the context ([`Context::drain`]).
#[must_use = "a call's answer is dropped with its Pending"]
pub struct Pending<T> {
    reply: Result<Arc<Reply<T>>, Option<Error>>,
}

impl<T> Pending<T> {
    fn refused(e: Error) -> Self {
        Pending { reply: Err(Some(e)) }
    }

    /// Blocks this thread until the answer comes.
    pub fn wait(self) -> Result<T, Error> {
        match self.reply {
            Ok(reply) => reply.answer.wait(None),
            Err(e) => Err(e.unwrap_or_else(Error::no_answer)),
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().reply {
            Ok(reply) => reply.answer.poll(cx),
            Err(e) => Poll::Ready(Err(e.take().unwrap_or_else(Error::no_answer))),
        }
    }
}

/// Makes a typed call: `ffid_submit(user_data)` passes the call's box to the export. A
/// refused call frees the box at once (no reply ever comes); an accepted one frees it
/// after its terminal reply.
fn ffid_submit<T>(loaded: &Loaded, call: impl FnOnce(*mut c_void) -> c_int) -> Pending<T> {
    let reply = Arc::new(Reply {
        free: loaded.exports.free,
        answer: Oneshot::new(),
    });
    let user_data = Arc::into_raw(Arc::clone(&reply)) as *mut c_void;
    let rc = call(user_data);
    if rc != raw::FFID_RET_OK {
        // SAFETY: refused: no reply comes, so the reference given to it is ours again,
        // taken back once.
        drop(unsafe { Arc::from_raw(user_data as *const Reply<T>) });
        return Pending::refused(loaded.last_error(rc));
    }
    Pending { reply: Ok(reply) }
}

/// A typed reply's box, taken back at the call's terminal reply; `None` at a progress
/// ping (`FFID_RET_STALE_WARN`), which comes before it and leaves the box in place.
///
/// # Safety
/// `user_data` is the box [`ffid_submit`] gave this call, whose terminal reply this is (it
/// comes once).
unsafe fn ffid_take_reply<T>(ret: c_int, user_data: *mut c_void) -> Option<Arc<Reply<T>>> {
    if ret == raw::FFID_RET_STALE_WARN {
        return None;
    }
    // SAFETY: the caller's promise.
    Some(unsafe { Arc::from_raw(user_data as *const Reply<T>) })
}

/// The constructor's outcome, reported through the create callback.
type Created = Oneshot<Result<(), Error>>;

unsafe extern "C" fn ffid_created(ret: c_int, msg: *const c_char, len: usize, user_data: *mut c_void) {
    if ret == raw::FFID_RET_STALE_WARN {
        return; // a slow constructor's ping; its outcome follows
    }
    // SAFETY: `user_data` is the reference `create` gave up for the create callback,
    // which reports the outcome once.
    let outcome = unsafe { Arc::from_raw(user_data as *const Created) };
    let result = match ret {
        raw::FFID_RET_OK => Ok(()),
        // SAFETY: the runtime's `msg`: `len` bytes, valid during this call.
        _ => Err(Error::from_status(ret, unsafe { ffid_message(msg, len) })),
    };
    outcome.complete(result);
}

/// Creates a context with `create(hash, callback, user_data)` and waits for the
/// constructor's outcome (draining meanwhile in completion mode).
fn ffid_create_context(
    lib: &Library,
    options: Option<&raw::ffid_options>,
    create: impl FnOnce(u64, raw::ffid_callback, *mut c_void) -> *mut raw::ffid_ctx,
) -> Result<Context, Error> {
    let outcome = Arc::new(Created::new());
    let user_data = Arc::into_raw(Arc::clone(&outcome)) as *mut c_void;
    let ctx = create(INTERFACE_HASH, Some(ffid_created), user_data);
    if ctx.is_null() {
        // SAFETY: refused: no callback comes; the reference given to it is ours again.
        drop(unsafe { Arc::from_raw(user_data as *const Created) });
        return Err(lib.loaded.last_error(raw::FFID_RET_ERR));
    }
    let context = Context {
        lib: lib.clone(),
        ctx,
    };
    let queued = options.is_some_and(|o| o.completion == raw::FFID_COMPLETION_QUEUE);
    let drain = || {
        context.drain(u32::MAX);
    };
    // A failed constructor: `context` is destroyed as it goes.
    outcome
        .wait(queued.then_some(&drain as &dyn Fn()))
        .map(|()| context)
}

impl Library {
    /// The library's exports, for what this client does not wrap: the native callback
    /// and CBOR forms (zero-copy answers), cancellation, stats.
    pub fn raw(&self) -> &raw::Exports {
        &self.loaded.exports
    }

    /// The runtime's default options (`ffid_options_init`): change fields, then pass
    /// them to a create.
    pub fn options(&self) -> raw::ffid_options {
        let mut opts = std::mem::MaybeUninit::<raw::ffid_options>::zeroed();
        // SAFETY: a writable, whole `ffid_options` (the library's layout: the interface
        // check at load matched this client's runtime header); init fills it.
        unsafe {
            (self.loaded.exports.options_init)(opts.as_mut_ptr());
            opts.assume_init()
        }
    }
}

/// A context of the library: its own worker thread and state. Calls may come from any
/// number of threads at once. Dropping it destroys it, answering every call still in
/// flight first.
pub struct Context {
    lib: Library,
    ctx: *mut raw::ffid_ctx,
}

// SAFETY: the runtime takes calls on a handle from any thread, concurrently (handles
// are generation-checked values, never dereferenced by the host side); destroy needs
// the `Context` by value.
unsafe impl Send for Context {}
// SAFETY: as above: every `&self` method is a call the runtime takes concurrently.
unsafe impl Sync for Context {}

impl Context {
    /// The C handle, for the functions of [`raw::Exports`]; still owned by this context.
    pub fn handle(&self) -> *mut raw::ffid_ctx {
        self.ctx
    }

    /// The library this context belongs to.
    pub fn library(&self) -> &Library {
        &self.lib
    }

    /// Destroys the context now: answers every accepted call, runs the library's
    /// teardown and joins its threads. Called from inside a callback (a listener, a
    /// completion-mode drain) it cannot wait and fails; the context then stays alive
    /// and is leaked.
    pub fn destroy(mut self) -> Result<(), Error> {
        let ctx = std::mem::replace(&mut self.ctx, std::ptr::null_mut());
        // SAFETY: our handle, destroyed once (the field is cleared for `Drop`).
        let rc = unsafe { (self.lib.loaded.exports.destroy)(ctx) };
        match rc {
            raw::FFID_RET_OK => Ok(()),
            rc => {
                self.lib.loaded.keep_loaded(); // as in `Drop`
                Err(Error::from_status(
                    rc,
                    "destroy refused: called from inside a callback".into(),
                ))
            }
        }
    }

    /// Completion mode (`ffid_options::completion` = `FFID_COMPLETION_QUEUE`): runs up
    /// to `max` queued callbacks on this thread; how many ran, `None` when the context
    /// is not in that mode.
    pub fn drain(&self, max: u32) -> Option<u32> {
        // SAFETY: our handle; the runtime checks the mode.
        let ran = unsafe { (self.lib.loaded.exports.drain)(self.ctx, max) };
        u32::try_from(ran).ok()
    }

    /// Completion mode: the eventfd that is readable while callbacks are queued
    /// (`None` in the default mode). Owned by the context.
    pub fn completion_fd(&self) -> Option<c_int> {
        // SAFETY: our handle.
        let fd = unsafe { (self.lib.loaded.exports.completion_fd)(self.ctx) };
        (fd >= 0).then_some(fd)
    }

    /// The context's counters.
    pub fn stats(&self) -> Result<raw::ffid_context_stats, Error> {
        let mut out = std::mem::MaybeUninit::<raw::ffid_context_stats>::zeroed();
        // SAFETY: all zeroes is a valid `ffid_context_stats`; the size set tells the
        // runtime how much to write.
        unsafe {
            (*out.as_mut_ptr()).struct_size = std::mem::size_of::<raw::ffid_context_stats>() as u32;
            match (self.lib.loaded.exports.stats)(self.ctx, out.as_mut_ptr()) {
                raw::FFID_RET_OK => Ok(out.assume_init()),
                rc => Err(Error::from_status(rc, "no stats: the handle is not live".into())),
            }
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if !self.ctx.is_null() {
            // SAFETY: our handle, destroyed once.
            let rc = unsafe { (self.lib.loaded.exports.destroy)(self.ctx) };
            if rc != raw::FFID_RET_OK {
                // Refused inside a callback: the context lives on, leaked, and so must
                // the code its threads run.
                self.lib.loaded.keep_loaded();
            }
        }
    }
}
