//! The C exports: create, destroy, two per method, and the runtime's per-library calls.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use ffi_dispatch_schema::names::CName;

use super::parse::*;

/// The identifier of an export, spelled by the schema's naming (what the compile-time
/// name check and the description spell too).
fn c_ident(name: CName<'_>) -> syn::Ident {
    format_ident!("{}", name.to_string())
}

/// The native request builder: reads the host's struct `args` into a `Request`.
pub(super) fn native_request(f: &Func, args: &syn::Ident) -> TokenStream {
    if f.params.is_empty() {
        return quote!(::ffi_dispatch::rt::Request::native_checked(|_| {
            ::core::result::Result::Ok(())
        }));
    }
    let v = quote!(__a);
    let writes = f.params.iter().map(|p| p.slot.write(&v));
    // Scalars only: the size is a constant, so one writing pass does (the hot path of
    // calls like `scalar_check`).
    let build = if f.params.iter().all(|p| p.scalar) {
        let sizes = f.params.iter().map(|p| {
            let ty = &p.slot.ty_static;
            quote!(+ <#ty as ::ffi_dispatch::rt::envelope::Scalar>::SIZE)
        });
        quote!(::ffi_dispatch::rt::Request::native_fixed(0 #(#sizes)*, |__w| {
            #(#writes)*
            ::core::result::Result::Ok(())
        }))
    } else {
        quote!(::ffi_dispatch::rt::Request::native_checked(|__w| {
            #(#writes)*
            ::core::result::Result::Ok(())
        }))
    };
    quote! {{
        // SAFETY: the export's contract: `args` is null or a valid struct for the call.
        let __a = unsafe { ::ffi_dispatch::rt::abi::args_ref(#args) }?;
        #build
    }}
}

pub(super) const SAFETY_DOC: &str = "# Safety\nThe contract of the library's header: `ctx` may be any value (it is never dereferenced); \
a non-null argument pointer points to a valid struct whose pointers obey the field docs for the duration of the call; \
a CBOR buffer holds `len` readable bytes.";

/// The static holding the library's description (built on first use).
pub(super) fn description_cell(lib: &Lib) -> syn::Ident {
    format_ident!("__{}_DESCRIPTION", lib.name.to_ascii_uppercase())
}

pub(super) fn ctor_exports(lib: &Lib, ctor: &Func, cfg: &syn::Ident) -> TokenStream {
    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let create = c_ident(CName::export(n, "create_checked", ""));
    let create_cbor = c_ident(CName::export(n, "create_cbor_checked", ""));
    let destroy = format_ident!("{n}_destroy");
    let interface_hash = format_ident!("{n}_interface_hash");
    let describe = format_ident!("{n}_ffid_describe");
    let cell = description_cell(lib);
    let cfg_ident = format_ident!("cfg");
    let (cfg_param, native) = if ctor.params.is_empty() {
        (quote!(), native_request(ctor, &cfg_ident))
    } else {
        (quote!(cfg: *const #cfg,), native_request(ctor, &cfg_ident))
    };
    let keys = ctor.params.iter().map(|p| p.slot.name.to_string());
    let checks = ctor.params.iter().enumerate().map(|(i, p)| {
        let ty = &p.ty_expr;
        let name = p.slot.name.to_string();
        quote!(__m.arg::<#ty>(#i).map_err(|_| {
            ::ffi_dispatch::rt::Refusal::invalid(::ffi_dispatch::rt::abi::Invalid::Cbor).in_field(#name)
        })?;)
    });
    let doc_create = format!(
        "`{n}_create` and `{n}_create_with_options` of `{n}.h` call this with the header's \
         `interface_hash`: creates a context (`opts` may be null for the defaults), or \
         returns null (reason: `ffid_last_error`) when the hash is not this library's.\n\n{SAFETY_DOC}"
    );
    let doc_cbor = format!("`{n}_create_checked` with CBOR arguments.\n\n{SAFETY_DOC}");
    let doc_destroy = format!(
        "`int {n}_destroy(ffid_ctx* ctx)`: answers every accepted call, then frees the context."
    );
    quote! {
        static #cell: ::ffi_dispatch::rt::Description = ::ffi_dispatch::rt::Description::new();

        #[doc = "The hash of the interface this library serves (see `ffi_dispatch::schema::model::Library::compute_interface_hash`)."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #interface_hash() -> u64 {
            #cell.interface_hash(<#self_ty as ::ffi_dispatch::schema::Exports>::SCHEMA)
        }

        #[doc = "The library's description, CBOR-encoded (`ffi_dispatch::schema::model::Library`): `*len` bytes at the returned pointer, valid until the library is unloaded; null (and `*len` untouched) when `len` is null.\n\n# Safety\n`len` is null or writable."]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #describe(len: *mut usize) -> *const u8 {
            // SAFETY: forwarded export contract (`len` is null or writable).
            unsafe { #cell.hand_out(<#self_ty as ::ffi_dispatch::schema::Exports>::SCHEMA, len) }
        }

        #[doc = #doc_create]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #create(
            interface_hash: u64,
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            #cfg_param
            opts: *const ::ffi_dispatch::rt::abi::ffid_options,
        ) -> *mut ::ffi_dispatch::rt::ffid_ctx {
            if !#cell.admits(<#self_ty as ::ffi_dispatch::schema::Exports>::SCHEMA, interface_hash) {
                return ::core::ptr::null_mut();
            }
            // SAFETY: `opts` is null or a valid `ffid_options` (the header's contract).
            let __options = unsafe { ::ffi_dispatch::rt::Options::from_c_ptr(opts) };
            ::ffi_dispatch::rt::create::<#self_ty>(cb, user_data, __options, || #native)
        }

        #[doc = #doc_cbor]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #create_cbor(
            interface_hash: u64,
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            req: *const u8,
            len: usize,
            opts: *const ::ffi_dispatch::rt::abi::ffid_options,
        ) -> *mut ::ffi_dispatch::rt::ffid_ctx {
            if !#cell.admits(<#self_ty as ::ffi_dispatch::schema::Exports>::SCHEMA, interface_hash) {
                return ::core::ptr::null_mut();
            }
            // SAFETY: `opts` is null or a valid `ffid_options` (the header's contract).
            let __options = unsafe { ::ffi_dispatch::rt::Options::from_c_ptr(opts) };
            ::ffi_dispatch::rt::create::<#self_ty>(cb, user_data, __options, || {
                // SAFETY: `req` holds `len` bytes for the call (the header's contract).
                let __req = unsafe { ::ffi_dispatch::rt::abi::bytes_field(req, len) }?;
                // Decoded here as well as on the worker, so that malformed arguments
                // refuse the create (NULL, no callback) instead of failing it later.
                let __m = ::ffi_dispatch::rt::cbor::ArgMap::parse(__req, [#(#keys),*]).map_err(|_| ::ffi_dispatch::rt::Refusal::invalid(::ffi_dispatch::rt::abi::Invalid::Cbor))?;
                let _ = &__m;
                #(#checks)*
                ::ffi_dispatch::rt::Request::cbor(__req)
            })
        }

        #[doc = #doc_destroy]
        #[unsafe(no_mangle)]
        pub extern "C" fn #destroy(ctx: *mut ::ffi_dispatch::rt::ffid_ctx) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::destroy::<#self_ty>(ctx)
        }
    }
}

/// The cell holding the static context's handle: one per library.
pub(super) fn static_cell(lib: &Lib) -> syn::Ident {
    format_ident!("__{}_STATIC_CONTEXT", lib.name.to_ascii_uppercase())
}

/// Who serves a function's calls.
pub(super) enum Server<'a> {
    /// The context's worker (a method).
    Context,
    /// The process-wide static context, of this `Library` type (a static method).
    Static(&'a syn::Ident),
    /// The calling thread, with this `Library` type's table (an inline export).
    Inline(&'a syn::Ident),
}

pub(super) fn call_exports(
    lib: &Lib,
    f: &Func,
    id: u16,
    args_struct: &syn::Ident,
    server: Server<'_>,
) -> TokenStream {
    let n = &lib.name;
    let fname = f.ident.to_string();
    let native_name = c_ident(CName::export(n, &fname, ""));
    let cbor_name = c_ident(CName::export(n, &fname, "_cbor"));
    let args_ident = format_ident!("args");
    let (args_param, unsafety) = if f.params.is_empty() {
        (quote!(), quote!())
    } else {
        (quote!(args: *const #args_struct,), quote!(unsafe))
    };
    let native = native_request(f, &args_ident);
    if let Server::Inline(table) = server {
        let doc_native = format!(
            "Native export of `{}`, run on the calling thread; see `{n}.h`.\n\n{SAFETY_DOC}",
            f.ident
        );
        let doc_cbor = format!(
            "CBOR export of `{}`, run on the calling thread; see `{n}.h`.\n\n{SAFETY_DOC}",
            f.ident
        );
        return quote! {
            #[doc = #doc_native]
            #[unsafe(no_mangle)]
            pub #unsafety extern "C" fn #native_name(
                cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
                user_data: *mut ::core::ffi::c_void,
                #args_param
            ) -> ::core::ffi::c_int {
                ::ffi_dispatch::rt::call_inline::<#table>(cb, user_data, #id, || #native)
            }

            #[doc = #doc_cbor]
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn #cbor_name(
                cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
                user_data: *mut ::core::ffi::c_void,
                req: *const u8,
                len: usize,
            ) -> ::core::ffi::c_int {
                ::ffi_dispatch::rt::call_inline::<#table>(cb, user_data, #id, || {
                    // SAFETY: `req` holds `len` bytes for the call (the header's contract).
                    ::ffi_dispatch::rt::Request::cbor(unsafe {
                        ::ffi_dispatch::rt::abi::bytes_field(req, len)
                    }?)
                })
            }
        };
    }
    let (target, ctx_param, ctx_expr) = match server {
        Server::Static(s) => {
            let cell = static_cell(lib);
            (
                syn::parse_quote!(#s),
                quote!(),
                quote!(::ffi_dispatch::rt::static_context::<#s>(&#cell)),
            )
        }
        _ => (
            lib.self_ty.clone(),
            quote!(ctx: *mut ::ffi_dispatch::rt::ffid_ctx,),
            quote!(ctx),
        ),
    };
    let doc_native = format!(
        "Native export of `{}`; see `{n}.h`.\n\n{SAFETY_DOC}",
        f.ident
    );
    let doc_cbor = format!("CBOR export of `{}`; see `{n}.h`.\n\n{SAFETY_DOC}", f.ident);
    let sync = sync_export(lib, f, id, &target, &ctx_param, &ctx_expr, &args_param);
    let typed = typed_export(lib, f, id, &target, &ctx_param, &ctx_expr, &args_param);
    quote! {
        #sync
        #typed

        #[doc = #doc_native]
        #[unsafe(no_mangle)]
        pub #unsafety extern "C" fn #native_name(
            #ctx_param
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            #args_param
        ) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::submit::<#target>(#ctx_expr, cb, user_data, #id, || #native)
        }

        #[doc = #doc_cbor]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #cbor_name(
            #ctx_param
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            req: *const u8,
            len: usize,
        ) -> ::core::ffi::c_int {
            // SAFETY: forwarded export contract (`req` holds `len` bytes).
            unsafe { ::ffi_dispatch::rt::submit_cbor::<#target>(#ctx_expr, cb, user_data, #id, req, len) }
        }
    }
}

/// The blocking form of a method or static method: `<lib>_<m>_sync(ctx?, args?, out
/// parameters of the answer's C shape, timeout_ms)`.
fn sync_export(
    lib: &Lib,
    f: &Func,
    id: u16,
    target: &syn::Type,
    ctx_param: &TokenStream,
    ctx_expr: &TokenStream,
    args_param: &TokenStream,
) -> TokenStream {
    use crate::types::Shape;
    let fname = f.ident.to_string();
    let sync_name = c_ident(CName::export(&lib.name, &fname, "_sync"));
    let ok = crate::types::with_lifetimes(&f.ok_ty, "'static");
    let out_ty = quote!(<#ok as ::ffi_dispatch::rt::SyncOut>::Out);
    let pair = |i: &str| {
        let i = format_ident!("{i}");
        quote!(<#out_ty as ::ffi_dispatch::rt::marshal::Pair>::#i)
    };
    let unit = matches!(&f.ok_ty, syn::Type::Tuple(t) if t.elems.is_empty());
    let (params, outs) = match f.ok_shape {
        _ if unit => (quote!(), quote!(())),
        Shape::Single => (quote!(out: #out_ty,), quote!(out)),
        Shape::Pair => {
            let (a, b) = (pair("A"), pair("B"));
            (quote!(out: #a, out_len: #b,), quote!((out, out_len)))
        }
        Shape::Flag => {
            let (a, b) = (pair("A"), pair("B"));
            (quote!(has_out: #a, out: #b,), quote!((has_out, out)))
        }
    };
    let native = native_request(f, &format_ident!("args"));
    let doc = format!(
        "Blocking form of `{fname}`: waits up to `timeout_ms` (0: no limit) for the answer and writes it out; see `{}.h`.\n\n{SAFETY_DOC} Each out pointer is null or writable.",
        lib.name
    );
    quote! {
        #[doc = #doc]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #sync_name(
            #ctx_param
            #args_param
            #params
            timeout_ms: u32,
        ) -> ::core::ffi::c_int {
            match ::ffi_dispatch::rt::call_sync::<#target>(#ctx_expr, #id, || #native, timeout_ms) {
                ::core::result::Result::Ok(__answer) => {
                    // SAFETY: the export's contract: each out pointer is null or writable.
                    unsafe { <#ok as ::ffi_dispatch::rt::SyncOut>::store(__answer, #outs) };
                    ::ffi_dispatch::RET_OK
                }
                ::core::result::Result::Err(__code) => __code,
            }
        }
    }
}

/// The typed form of a method or static method: `<lib>_<m>_async(ctx?, args?, reply,
/// user_data)`, `reply` taking the answer's C values (`ffi_dispatch::rt::OutSlots`).
fn typed_export(
    lib: &Lib,
    f: &Func,
    id: u16,
    target: &syn::Type,
    ctx_param: &TokenStream,
    ctx_expr: &TokenStream,
    args_param: &TokenStream,
) -> TokenStream {
    let fname = f.ident.to_string();
    let name = c_ident(CName::export(&lib.name, &fname, "_async"));
    let ok = crate::types::with_lifetimes(&f.ok_ty, "'static");
    let native = native_request(f, &format_ident!("args"));
    let doc = format!(
        "Typed form of `{fname}`: `reply` gets the answer's C values, owned by the host; see `{}.h`.\n\n{SAFETY_DOC}",
        lib.name
    );
    quote! {
        #[doc = #doc]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #name(
            #ctx_param
            #args_param
            reply: ::core::option::Option<<<#ok as ::ffi_dispatch::rt::SyncOut>::Out as ::ffi_dispatch::rt::OutSlots>::Reply>,
            user_data: *mut ::core::ffi::c_void,
        ) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::call_typed::<#target, #ok>(#ctx_expr, #id, || #native, reply, user_data)
        }
    }
}

/// The per-library runtime exports: stats, cancellation, request ids and, when the
/// library declares events, the listener functions. (The `ffid_*` equivalents exist
/// once per shared object; with two libraries in one process the prefixed ones always
/// reach the right runtime.)
pub(super) fn runtime_exports(lib: &Lib, events: &[&Func]) -> TokenStream {
    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let stats = format_ident!("{n}_stats");
    let cancel = format_ident!("{n}_cancel");
    let last_id = format_ident!("{n}_last_request_id");
    let last_error = format_ident!("{n}_last_error");
    let free = format_ident!("{n}_free");
    let mut out = quote! {
        #[doc = "Writes the context's counters into `*out` (see `ffid_context_stats`).\n\n# Safety\n`out` is null or points to writable memory of `out->struct_size` bytes."]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #stats(
            ctx: *mut ::ffi_dispatch::rt::ffid_ctx,
            out: *mut ::ffi_dispatch::rt::abi::ffid_context_stats,
        ) -> ::core::ffi::c_int {
            // SAFETY: forwarded export contract.
            unsafe { ::ffi_dispatch::rt::stats_into(ctx, out) }
        }

        #[doc = "Cancels a queued request by id; see `ffi_dispatch::cancel`."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #cancel(ctx: *mut ::ffi_dispatch::rt::ffid_ctx, id: u64) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::cancel::<#self_ty>(ctx, id)
        }

        #[doc = "Why this thread's last create returned null or its last blocking call failed (`\"\"`: neither); see `ffid_last_error`."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #last_error() -> *const ::core::ffi::c_char {
            ::ffi_dispatch::rt::last_error()
        }

        #[doc = "Frees an answer a blocking call of this library handed out; see `ffid_free`.\n\n# Safety\n`answer` is null or an answer pointer a `_sync` export wrote, not freed before."]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #free(answer: *const ::core::ffi::c_void) {
            // SAFETY: forwarded.
            unsafe { ::ffi_dispatch::rt::free_answer(answer) }
        }

        #[doc = "The id of the last call this thread had accepted (0: none)."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #last_id() -> u64 {
            ::ffi_dispatch::rt::last_request_id()
        }
    };
    if events.is_empty() {
        return out;
    }
    for (id, e) in events.iter().enumerate() {
        let id = id as u16;
        let ename = e.ident.to_string();
        let native = c_ident(CName::listener(n, &ename, ""));
        let cbor = c_ident(CName::listener(n, &ename, "_cbor"));
        let doc_native = format!(
            "Adds a listener of `{}` (its C struct); returns its id, 0 if refused.",
            e.ident
        );
        let doc_cbor = format!(
            "Adds a listener of `{}` (CBOR payload); returns its id, 0 if refused.",
            e.ident
        );
        let typed = c_ident(CName::typed_listener(n, &ename));
        let payload = crate::types::with_lifetimes(&e.params[0].ty_expr, "'static");
        let doc_typed = format!(
            "Adds a typed listener of `{}` (the payload's C values, owned by the host); returns its id, 0 if refused.",
            e.ident
        );
        out.extend(quote! {
            #[doc = #doc_typed]
            #[unsafe(no_mangle)]
            pub extern "C" fn #typed(
                ctx: *mut ::ffi_dispatch::rt::ffid_ctx,
                listener: ::core::option::Option<<<#payload as ::ffi_dispatch::rt::SyncOut>::Out as ::ffi_dispatch::rt::OutSlots>::Listener>,
                user_data: *mut ::core::ffi::c_void,
            ) -> u64 {
                ::ffi_dispatch::rt::add_typed_listener::<#self_ty, #payload>(ctx, #id, listener, user_data)
            }

            #[doc = #doc_native]
            #[unsafe(no_mangle)]
            pub extern "C" fn #native(
                ctx: *mut ::ffi_dispatch::rt::ffid_ctx,
                cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
                user_data: *mut ::core::ffi::c_void,
            ) -> u64 {
                ::ffi_dispatch::rt::add_listener::<#self_ty>(ctx, ::core::option::Option::Some(#id), ::ffi_dispatch::rt::ListenerView::Native, cb, user_data)
            }

            #[doc = #doc_cbor]
            #[unsafe(no_mangle)]
            pub extern "C" fn #cbor(
                ctx: *mut ::ffi_dispatch::rt::ffid_ctx,
                cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
                user_data: *mut ::core::ffi::c_void,
            ) -> u64 {
                ::ffi_dispatch::rt::add_listener::<#self_ty>(ctx, ::core::option::Option::Some(#id), ::ffi_dispatch::rt::ListenerView::Cbor, cb, user_data)
            }
        });
    }
    let any = format_ident!("{n}_add_event_listener");
    let remove = format_ident!("{n}_remove_listener");
    out.extend(quote! {
        #[doc = "Adds a listener of every event, as the CBOR map `{\"event\": name, \"payload\": ...}`; returns its id, 0 if refused."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #any(
            ctx: *mut ::ffi_dispatch::rt::ffid_ctx,
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
        ) -> u64 {
            ::ffi_dispatch::rt::add_listener::<#self_ty>(ctx, ::core::option::Option::None, ::ffi_dispatch::rt::ListenerView::Envelope, cb, user_data)
        }

        #[doc = "Removes a listener; once this returns it is never called again."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #remove(ctx: *mut ::ffi_dispatch::rt::ffid_ctx, id: u64) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::remove_listener::<#self_ty>(ctx, id)
        }
    });
    out
}

/// Completion-mode exports: drain on the host's thread, and the fd to poll.
pub(super) fn completion_exports(lib: &Lib) -> TokenStream {
    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let drain = format_ident!("{n}_drain");
    let fd = format_ident!("{n}_completion_fd");
    let poll = format_ident!("{n}_poll");
    let poll_fd = format_ident!("{n}_poll_fd");
    quote! {
        #[doc = "Completion mode: runs up to `max` queued callbacks on this thread; returns how many, or -1."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #drain(ctx: *mut ::ffi_dispatch::rt::ffid_ctx, max: u32) -> ::core::ffi::c_int {
            match ::ffi_dispatch::rt::drain::<#self_ty>(ctx, max as usize) {
                ::core::option::Option::Some(n) => n.min(::core::ffi::c_int::MAX as usize) as ::core::ffi::c_int,
                ::core::option::Option::None => -1,
            }
        }

        #[doc = "Completion mode: the eventfd readable while completions wait, or -1."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #fd(ctx: *mut ::ffi_dispatch::rt::ffid_ctx) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::completion_fd::<#self_ty>(ctx).unwrap_or(-1)
        }

        #[doc = "Completion mode: answers and pings as entries; how many, or a negative status.\n\n# Safety\n`entries` holds `max` writable entries of `entries->struct_size` bytes (see `ffi_dispatch.h`)."]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #poll(
            ctx: *mut ::ffi_dispatch::rt::ffid_ctx,
            entries: *mut ::ffi_dispatch::rt::abi::ffid_entry,
            max: u32,
            timeout_ms: i32,
        ) -> ::core::ffi::c_int {
            // SAFETY: forwarded (the header's contract).
            unsafe { ::ffi_dispatch::rt::poll::<#self_ty>(ctx, entries, max, timeout_ms) }
        }

        #[doc = "Completion mode: a fresh duplicate of the eventfd, the caller's to close; or a negative status."]
        #[unsafe(no_mangle)]
        pub extern "C" fn #poll_fd(ctx: *mut ::ffi_dispatch::rt::ffid_ctx) -> ::core::ffi::c_int {
            ::ffi_dispatch::rt::poll_fd::<#self_ty>(ctx)
        }
    }
}
