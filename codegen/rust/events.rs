
// ---- events: listeners and subscriptions ----

use std::cell::{Cell, UnsafeCell};

/// A listener's box: its header (at offset 0, so a [`Subscription`] reaches it without
/// knowing `F`) and the closure.
#[repr(C)]
struct Listener<F> {
    header: ListenerHeader,
    f: UnsafeCell<F>,
}

struct ListenerHeader {
    free: unsafe extern "C" fn(*const c_void),
    /// Set when the subscription is dropped from inside this listener's own call: the
    /// box is then freed when that call returns.
    drop_after_call: Cell<bool>,
}

thread_local! {
    /// The listener box whose call this thread is in (NULL: none).
    static IN_LISTENER: Cell<*mut c_void> = const { Cell::new(std::ptr::null_mut()) };
}

/// Boxes `f` as a listener's `user_data`.
fn ffid_listener_box<F>(free: unsafe extern "C" fn(*const c_void), f: F) -> *mut c_void {
    let header = ListenerHeader {
        free,
        drop_after_call: Cell::new(false),
    };
    let f = UnsafeCell::new(f);
    Box::into_raw(Box::new(Listener { header, f })).cast()
}

/// Frees a listener box made by [`ffid_listener_box`] with this `F`.
///
/// # Safety
/// `user_data` is such a box that the runtime no longer calls, freed once.
unsafe fn ffid_drop_listener<F>(user_data: *mut c_void) {
    // SAFETY: the caller's promise.
    drop(unsafe { Box::from_raw(user_data.cast::<Listener<F>>()) });
}

/// Gives `value` to the closure of listener box `user_data`. A panic in it is caught
/// (it must not unwind into the library); that event is dropped.
///
/// # Safety
/// `user_data` is a live box of [`ffid_listener_box`] with this `F`, and this is the
/// runtime's call of that listener (one at a time, on the context's event thread).
unsafe fn ffid_call_listener<T, F: FnMut(T)>(user_data: *mut c_void, value: T) {
    let listener = user_data.cast::<Listener<F>>();
    let previous = IN_LISTENER.with(|c| c.replace(user_data));
    // SAFETY: the runtime calls a listener one call at a time, so this is the only
    // reference to the closure while it runs.
    let f = unsafe { &mut *(*listener).f.get() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(value)));
    IN_LISTENER.with(|c| c.set(previous));
    // SAFETY: the box is live (freed only here or by its subscription, which defers to
    // here when dropped during this call).
    if unsafe { (*listener).header.drop_after_call.get() } {
        // SAFETY: its subscription was dropped during the call and removed it: this
        // was its last call.
        unsafe { ffid_drop_listener::<F>(user_data) };
    }
}

/// Adds a listener box with `add(user_data) -> id`: the subscription, or the refusal
/// (and the box freed).
fn ffid_subscribe<F>(
    context: &Context,
    user_data: *mut c_void,
    add: impl FnOnce(*mut c_void) -> u64,
) -> Result<Subscription, Error> {
    let id = add(user_data);
    if id == 0 {
        // SAFETY: refused: the runtime never calls it.
        unsafe { ffid_drop_listener::<F>(user_data) };
        return Err(Error::Failed("the listener was refused (the context is not live)".into()));
    }
    Ok(Subscription {
        lib: context.lib.clone(),
        ctx: context.ctx,
        id,
        listener: user_data,
        drop_listener: ffid_drop_listener::<F>,
    })
}

/// A listener added to a context, removed when this is dropped: once the drop returns,
/// the listener is never called again and has been dropped (dropped from inside the
/// listener's own call, it is dropped when that call returns). It may outlive its
/// context: destroying a context removes its listeners.
#[must_use = "dropping a Subscription removes its listener"]
pub struct Subscription {
    lib: Library,
    ctx: *mut raw::ffid_ctx,
    id: u64,
    listener: *mut c_void,
    drop_listener: unsafe fn(*mut c_void),
}

// SAFETY: removal works from any thread (it waits out a call of the listener in
// progress), and the closure it frees is `Send`.
unsafe impl Send for Subscription {}
// SAFETY: `&Subscription` only reads the id.
unsafe impl Sync for Subscription {}

impl Subscription {
    /// The listener's id (what `<lib>_remove_listener` takes).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // SAFETY: any handle may be passed (a destroyed context's is refused, its
        // listeners already gone); once this returns the listener is not called again,
        // except for the call this thread may be in.
        unsafe { (self.lib.loaded.exports.remove_listener)(self.ctx, self.id) };
        if IN_LISTENER.with(|c| c.get()) == self.listener {
            // SAFETY: a live box (its call is running on this thread); the header is
            // at offset 0 of every listener box.
            unsafe { &*self.listener.cast::<ListenerHeader>() }
                .drop_after_call
                .set(true);
        } else {
            // SAFETY: removed, and not running on this thread: never called again.
            unsafe { (self.drop_listener)(self.listener) };
        }
    }
}
