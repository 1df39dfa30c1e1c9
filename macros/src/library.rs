//! `#[ffi_dispatch::library]`: one annotated `impl` block in, the method table, both
//! exports of every function, the args structs and the descriptor out.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::types::{classify, deferred_of, result_ok, with_lifetimes, Slot};
use crate::{doc_of, CSlot};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Ctor,
    Method,
    Static,
    Dtor,
    Event,
}

struct Param {
    slot: CSlot,
    /// A plain scalar (its payload size is known at compile time).
    scalar: bool,
    /// The type as an expression path sees it (lifetimes `'_`).
    ty_expr: Type,
}

struct Func {
    role: Role,
    ident: syn::Ident,
    doc: String,
    params: Vec<Param>,
    /// The success type (`T` of `Result<T, E>`), `()` when there is no return type.
    ok_ty: Type,
    fallible: bool,
    /// A `Deferred<T>` parameter (always last): its name; `ok_ty` is then `T`.
    deferred: Option<syn::Ident>,
    /// `async fn`: polled on the worker as a task.
    is_async: bool,
    /// Takes `&mut self`.
    mut_self: bool,
}

const RESERVED: &[&str] = &[
    "create",
    "create_cbor",
    "create_with_options",
    "destroy",
    "stats",
    "cancel",
    "last_request_id",
    "add_event_listener",
    "remove_listener",
    "drain",
    "completion_fd",
];

/// Reads `#[ffi]`, `#[ffi(ctor)]`, ... and removes it from the function.
fn take_role(f: &mut ImplItemFn) -> syn::Result<Option<Role>> {
    let Some(i) = f.attrs.iter().position(|a| a.path().is_ident("ffi")) else {
        return Ok(None);
    };
    let attr = f.attrs.remove(i);
    if let Some(dup) = f.attrs.iter().find(|a| a.path().is_ident("ffi")) {
        return Err(syn::Error::new_spanned(
            dup,
            "one #[ffi] attribute per function",
        ));
    }
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return Ok(Some(Role::Method));
    }
    let kind: syn::Ident = attr.parse_args_with(<syn::Ident as syn::ext::IdentExt>::parse_any)?;
    Ok(Some(match kind.to_string().as_str() {
        "ctor" => Role::Ctor,
        "static" => Role::Static,
        "dtor" => Role::Dtor,
        "event" => Role::Event,
        _ => {
            return Err(syn::Error::new_spanned(
                kind,
                "expected #[ffi], #[ffi(ctor)], #[ffi(static)], #[ffi(dtor)] or #[ffi(event)]",
            ))
        }
    }))
}

fn analyse(f: &ImplItemFn, role: Role) -> syn::Result<Func> {
    let sig = &f.sig;
    if let (Some(a), true) = (&sig.asyncness, role != Role::Method) {
        return Err(syn::Error::new_spanned(
            a,
            "only #[ffi] methods can be async (constructors, statics, dtors and events run to completion)",
        ));
    }
    if !sig
        .generics
        .params
        .iter()
        .all(|p| matches!(p, syn::GenericParam::Lifetime(_)))
    {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "exported functions cannot be generic: C needs one concrete signature",
        ));
    }
    let name = sig.ident.to_string();
    if role != Role::Ctor
        && role != Role::Dtor
        && (RESERVED.contains(&name.as_str()) || name.ends_with("_cbor"))
    {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            format!("`{name}` would clash with a generated export; rename it"),
        ));
    }
    let receiver = sig.receiver();
    match (role, receiver) {
        (Role::Method, None) => {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "an #[ffi] method takes `&self` or `&mut self`; mark functions without a receiver #[ffi(static)]",
            ))
        }
        (Role::Method | Role::Dtor, Some(r)) if r.reference.is_none() => {
            return Err(syn::Error::new_spanned(
                r,
                "the context's value cannot be taken by value: use `&self` or `&mut self`",
            ))
        }
        (Role::Dtor, Some(r)) if r.mutability.is_none() => {
            return Err(syn::Error::new_spanned(r, "an #[ffi(dtor)] takes `&mut self`"))
        }
        (Role::Dtor, None) => {
            return Err(syn::Error::new_spanned(&sig.ident, "an #[ffi(dtor)] takes `&mut self`"))
        }
        (Role::Ctor | Role::Static | Role::Event, Some(r)) => {
            return Err(syn::Error::new_spanned(
                r,
                "constructors, #[ffi(static)] and #[ffi(event)] functions take no receiver",
            ))
        }
        _ => {}
    }

    let mut params = Vec::new();
    let mut deferred = None;
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => Some(pt),
            FnArg::Receiver(_) => None,
        })
        .collect();
    for (i, pt) in typed.iter().enumerate() {
        let Pat::Ident(pi) = &*pt.pat else {
            return Err(syn::Error::new_spanned(
                &pt.pat,
                "parameters must be plain names: they become C fields and CBOR keys",
            ));
        };
        if let Some(answer) = deferred_of(&pt.ty) {
            if sig.asyncness.is_some() {
                return Err(syn::Error::new_spanned(
                    &pt.ty,
                    "an async method answers with its return value, not a `Deferred<T>`",
                ));
            }
            if !matches!(role, Role::Method | Role::Static) {
                return Err(syn::Error::new_spanned(
                    &pt.ty,
                    "only #[ffi] and #[ffi(static)] functions can take a reply token",
                ));
            }
            if i + 1 != typed.len() {
                return Err(syn::Error::new_spanned(
                    &pt.ty,
                    "the `Deferred<T>` reply token is the last parameter",
                ));
            }
            if !matches!(sig.output, ReturnType::Default) {
                return Err(syn::Error::new_spanned(
                    &sig.output,
                    "a function that takes a `Deferred<T>` answers through it and returns nothing",
                ));
            }
            classify(answer, Slot::Result, &format!("answer of `{name}`"))?;
            deferred = Some((pi.ident.clone(), answer.clone()));
            continue;
        }
        let what = format!("parameter `{}` of `{name}`", pi.ident);
        if sig.asyncness.is_some() && matches!(&*pt.ty, Type::Reference(_)) {
            return Err(syn::Error::new_spanned(
                &pt.ty,
                format!("{what}: an async method takes owned arguments (String, Vec<u8>, ...): the request's buffer is gone after the first poll"),
            ));
        }
        let shape = classify(&pt.ty, Slot::Param, &what)?;
        let ident = syn::Ident::new(
            pi.ident.to_string().trim_start_matches("r#"),
            pi.ident.span(),
        );
        params.push(Param {
            scalar: crate::types::is_scalar(&pt.ty),
            slot: CSlot::new(ident, &pt.ty, shape),
            ty_expr: with_lifetimes(&pt.ty, "'_"),
        });
    }
    if role == Role::Dtor && !params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            "an #[ffi(dtor)] takes no parameters",
        ));
    }
    if role == Role::Event {
        if params.len() != 1 {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "an #[ffi(event)] declares one parameter: the event's payload",
            ));
        }
        if !matches!(sig.output, ReturnType::Default) {
            return Err(syn::Error::new_spanned(
                &sig.output,
                "an #[ffi(event)] is declared without a return type (it returns `Result<(), EmitError>`)",
            ));
        }
        if !f.block.stmts.is_empty() {
            return Err(syn::Error::new_spanned(
                &f.block,
                "an #[ffi(event)] has no body (`fn on_x(evt: T);`): the macro writes it",
            ));
        }
    }

    let unit: Type = syn::parse_quote!(());
    let (ok_ty, fallible) = match &sig.output {
        ReturnType::Default if deferred.is_some() => (
            deferred.as_ref().map(|(_, t)| t.clone()).unwrap_or(unit),
            false,
        ),
        ReturnType::Default => (unit, false),
        ReturnType::Type(_, ty) => match result_ok(ty) {
            Some(ok) => (ok.clone(), true),
            None => ((**ty).clone(), false),
        },
    };
    if role == Role::Ctor {
        if matches!(sig.output, ReturnType::Default) {
            return Err(syn::Error::new_spanned(
                &sig.ident,
                "a constructor returns the library's value (`Self` or `Result<Self, E>`)",
            ));
        }
    } else if role == Role::Event {
        // The payload was classified as a parameter above.
    } else if role == Role::Dtor {
        if !matches!(sig.output, ReturnType::Default) {
            return Err(syn::Error::new_spanned(
                &sig.output,
                "an #[ffi(dtor)] returns nothing",
            ));
        }
    } else {
        classify(&ok_ty, Slot::Result, &format!("result of `{name}`"))?;
    }
    Ok(Func {
        role,
        ident: sig.ident.clone(),
        doc: doc_of(&f.attrs),
        params,
        ok_ty: if role == Role::Ctor {
            syn::parse_quote!(())
        } else {
            ok_ty
        },
        fallible,
        deferred: deferred.map(|(n, _)| n),
        is_async: sig.asyncness.is_some(),
        mut_self: receiver.is_some_and(|r| r.mutability.is_some()),
    })
}

struct Lib {
    name: String,
    prefix: String,
    self_ty: Type,
}

fn lib_name(attr: TokenStream, self_ty: &Type) -> syn::Result<String> {
    let mut name = None;
    if !attr.is_empty() {
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("name") {
                let s: syn::LitStr = meta.value()?.parse()?;
                let v = s.value();
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    || v.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(syn::Error::new_spanned(s, "the library name is a C identifier prefix: lower-case letters, digits and `_`"));
                }
                name = Some(v);
                Ok(())
            } else {
                Err(meta.error("expected `name = \"...\"`"))
            }
        });
        syn::parse::Parser::parse2(parser, attr)?;
    }
    match name {
        Some(n) => Ok(n),
        None => match self_ty {
            Type::Path(p) if p.path.get_ident().is_some() => {
                let ident = p
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                let mut snake = String::new();
                for (i, c) in ident.chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        snake.push('_');
                    }
                    snake.push(c.to_ascii_lowercase());
                }
                Ok(snake)
            }
            _ => Err(syn::Error::new_spanned(
                self_ty,
                "put #[library] on `impl YourType`",
            )),
        },
    }
}

fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut imp: ItemImpl = syn::parse2(item)?;
    if imp.trait_.is_some() || !imp.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &imp.self_ty,
            "put #[library] on a plain `impl YourType` block",
        ));
    }
    let name = lib_name(attr, &imp.self_ty)?;
    let lib = Lib {
        prefix: camel(&name),
        name,
        self_ty: (*imp.self_ty).clone(),
    };
    let mut funcs = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut push_err = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let mut event_count: u16 = 0;
    for item in &mut imp.items {
        // `fn on_x(evt: T);` (no body) is not an impl item to syn: read it as one.
        if let ImplItem::Verbatim(tokens) = item {
            if let Ok(decl) = syn::parse2::<syn::ForeignItemFn>(tokens.clone()) {
                *item = ImplItem::Fn(ImplItemFn {
                    attrs: decl.attrs,
                    vis: decl.vis,
                    defaultness: None,
                    sig: decl.sig,
                    block: syn::parse_quote!({}),
                });
            }
        }
        let ImplItem::Fn(f) = item else { continue };
        match take_role(f) {
            Ok(Some(role)) => match analyse(f, role) {
                Ok(func) => {
                    if role == Role::Event {
                        // The declaration becomes the emitting function.
                        let id = event_count;
                        event_count += 1;
                        let arg = &func.params[0].slot.name;
                        f.sig.output = syn::parse_quote!(
                            -> ::core::result::Result<(), ::ffi_dispatch::rt::EmitError>
                        );
                        f.block = syn::parse_quote!({
                            ::ffi_dispatch::rt::events::emit::<Self, _>(#id, &#arg)
                        });
                        f.attrs
                            .push(syn::parse_quote!(#[allow(clippy::needless_pass_by_value)]));
                    }
                    funcs.push(func)
                }
                Err(e) => push_err(e),
            },
            Ok(None) => {}
            Err(e) => push_err(e),
        }
    }
    let ctors: Vec<&Func> = funcs.iter().filter(|f| f.role == Role::Ctor).collect();
    if ctors.len() > 1 {
        push_err(syn::Error::new_spanned(
            &ctors[1].ident,
            "a library has exactly one #[ffi(ctor)]; this is the second",
        ));
    }
    let dtors: Vec<&Func> = funcs.iter().filter(|f| f.role == Role::Dtor).collect();
    if dtors.len() > 1 {
        push_err(syn::Error::new_spanned(
            &dtors[1].ident,
            "a library has at most one #[ffi(dtor)]; this is the second",
        ));
    }
    if ctors.is_empty() {
        push_err(syn::Error::new(
            imp.self_ty.span(),
            "a library needs one #[ffi(ctor)] function that builds its value",
        ));
    }
    if funcs.iter().any(|f| f.is_async) {
        for f in funcs
            .iter()
            .filter(|f| f.role == Role::Method && f.mut_self)
        {
            push_err(syn::Error::new_spanned(
                &f.ident,
                "a library with async methods serves every method through `&self` (its tasks hold `&self` across .await while other requests run): use interior mutability (Cell, RefCell) instead of `&mut self`",
            ));
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let ctor = ctors[0];
    let methods: Vec<&Func> = funcs.iter().filter(|f| f.role == Role::Method).collect();
    let statics: Vec<&Func> = funcs.iter().filter(|f| f.role == Role::Static).collect();
    let events: Vec<&Func> = funcs.iter().filter(|f| f.role == Role::Event).collect();
    let dtor = dtors.first().copied();

    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let mut out = quote!(#imp);

    // Args structs, and the single-field checks.
    let mut checks = TokenStream::new();
    let mut struct_for = |f: &Func, struct_name: &syn::Ident, what: String| -> TokenStream {
        if f.params.is_empty() {
            return quote!();
        }
        let decls = f.params.iter().map(|p| p.slot.decl());
        checks.extend(f.params.iter().map(|p| p.slot.check()));
        let doc = format!("Native arguments of `{what}` (the C struct `{struct_name}`).");
        quote! {
            #[doc = #doc]
            #[repr(C)]
            pub struct #struct_name { #(#decls)* }
        }
    };
    let cfg_struct = format_ident!("{}Config", lib.prefix);
    out.extend(struct_for(ctor, &cfg_struct, format!("{n}_create")));
    let args_struct = |f: &Func| format_ident!("{}{}Args", lib.prefix, camel(&f.ident.to_string()));
    for f in methods.iter().chain(&statics) {
        out.extend(struct_for(f, &args_struct(f), format!("{n}_{}", f.ident)));
    }
    out.extend(quote!(const _: () = { #checks };));

    // The Library impls: the context's, and the static context's.
    let statics_ty = format_ident!("__{}Statics", lib.prefix);
    let table = |fs: &[&Func], on_self: bool| -> TokenStream {
        let entries = fs.iter().map(|f| method_entry(f, self_ty, on_self));
        quote!(&[#(#entries),*])
    };
    let methods_table = table(&methods, true);
    let construct = construct_body(ctor, self_ty);
    let teardown = dtor.map(|d| {
        let ident = &d.ident;
        quote!(fn teardown(&mut self) { self.#ident() })
    });
    let event_entries = events.iter().map(|e| {
        let name = e.ident.to_string();
        let ty = &e.params[0].ty_expr;
        quote!(::ffi_dispatch::rt::EventDesc {
            name: #name,
            native: |__cbor, __out| {
                let __v = <#ty as ::ffi_dispatch::rt::cbor::FromCbor<'_>>::decode(
                    &mut ::ffi_dispatch::rt::minicbor::Decoder::new(__cbor),
                )
                .map_err(::ffi_dispatch::rt::CallError::from_display)?;
                __out.value(&__v)
            },
        })
    });
    out.extend(quote! {
        impl ::ffi_dispatch::rt::Library for #self_ty {
            const NAME: &'static str = #n;
            type Config = ::ffi_dispatch::rt::Request;
            const METHODS: &'static [::ffi_dispatch::rt::Method<Self>] = #methods_table;
            const EVENTS: &'static [::ffi_dispatch::rt::EventDesc] = &[#(#event_entries),*];
            fn construct(__config: ::ffi_dispatch::rt::Request) -> ::core::result::Result<Self, ::ffi_dispatch::rt::CallError> {
                #construct
            }
            fn config_is_cbor(__config: &::ffi_dispatch::rt::Request) -> bool {
                __config.is_cbor()
            }
            #teardown
        }
    });
    if !statics.is_empty() {
        let statics_table = table(&statics, false);
        let static_name = format!("{n}-static");
        let cell = static_cell(&lib);
        out.extend(quote! {
            /// The library behind the static methods' process-wide context.
            #[doc(hidden)]
            pub struct #statics_ty;
            static #cell: ::ffi_dispatch::rt::StaticContext = ::ffi_dispatch::rt::StaticContext::new();
            impl ::ffi_dispatch::rt::Library for #statics_ty {
                const NAME: &'static str = #static_name;
                type Config = ::ffi_dispatch::rt::Request;
                const METHODS: &'static [::ffi_dispatch::rt::Method<Self>] = #statics_table;
                fn construct(_: ::ffi_dispatch::rt::Request) -> ::core::result::Result<Self, ::ffi_dispatch::rt::CallError> {
                    ::core::result::Result::Ok(#statics_ty)
                }
            }
        });
    }

    // Exports.
    out.extend(ctor_exports(&lib, ctor, &cfg_struct));
    for (id, f) in methods.iter().enumerate() {
        out.extend(call_exports(&lib, f, id as u16, &args_struct(f), None));
    }
    for (id, f) in statics.iter().enumerate() {
        out.extend(call_exports(
            &lib,
            f,
            id as u16,
            &args_struct(f),
            Some(&statics_ty),
        ));
    }

    out.extend(runtime_exports(&lib, &events));
    out.extend(completion_exports(&lib));

    // Descriptor.
    let describe = |f: &Func| {
        let name = f.ident.to_string();
        let args_struct = if f.role == Role::Ctor {
            cfg_struct.to_string()
        } else {
            args_struct(f).to_string()
        };
        let doc = &f.doc;
        let params = f.params.iter().map(|p| p.slot.describe(""));
        let ok = with_lifetimes(&f.ok_ty, "'static");
        let fallible = f.fallible;
        let deferred = f.deferred.is_some();
        let asynchronous = f.is_async;
        quote!(::ffi_dispatch::schema::FnDesc {
            name: #name,
            doc: #doc,
            params: &[#(#params),*],
            ret: <#ok as ::ffi_dispatch::schema::Describe>::ty,
            fallible: #fallible,
            deferred: #deferred,
            asynchronous: #asynchronous,
            args_struct: #args_struct,
        })
    };
    let (ctor_desc, method_descs, static_descs) = (
        describe(ctor),
        methods.iter().map(|f| describe(f)),
        statics.iter().map(|f| describe(f)),
    );
    let event_descs = events.iter().map(|e| {
        let name = e.ident.to_string();
        let doc = &e.doc;
        let ty = with_lifetimes(&e.params[0].ty_expr, "'static");
        quote!(::ffi_dispatch::schema::EventSchema {
            name: #name,
            doc: #doc,
            ty: <#ty as ::ffi_dispatch::schema::Describe>::ty,
        })
    });
    let prefix = &lib.prefix;
    let lib_doc = doc_of(&imp.attrs);
    out.extend(quote! {
        impl ::ffi_dispatch::schema::Exports for #self_ty {
            const SCHEMA: &'static ::ffi_dispatch::schema::LibraryDesc = &::ffi_dispatch::schema::LibraryDesc {
                name: #n,
                type_prefix: #prefix,
                doc: #lib_doc,
                ctor: #ctor_desc,
                methods: &[#(#method_descs),*],
                statics: &[#(#static_descs),*],
                events: &[#(#event_descs),*],
            };
        }
    });
    Ok(out)
}

/// Turns the call expression into the reply: `Result` through `out.result`, a value
/// through `out.value`.
fn reply(f: &Func, call: TokenStream) -> TokenStream {
    if f.deferred.is_some() {
        // The token answers; the worker sees that it was taken.
        quote!({
            #call;
            ::core::result::Result::Ok(())
        })
    } else if f.fallible {
        quote!(__out.result(#call))
    } else {
        quote!({
            let __v = #call;
            __out.value(&__v)
        })
    }
}

/// The bindings that read every parameter in both views, and the argument list.
fn readers(f: &Func) -> (TokenStream, TokenStream, TokenStream) {
    let names: Vec<&syn::Ident> = f.params.iter().map(|p| &p.slot.name).collect();
    let native = f.params.iter().map(|p| {
        let (name, ty) = (&p.slot.name, &p.ty_expr);
        quote!(let #name = <#ty as ::ffi_dispatch::rt::marshal::ReadNative<'_>>::read(__r)?;)
    });
    let keys = names.iter().map(|n| n.to_string());
    let cbor = f.params.iter().enumerate().map(|(i, p)| {
        let (name, ty) = (&p.slot.name, &p.ty_expr);
        quote!(let #name = __m.arg::<#ty>(#i)?;)
    });
    // The reply token is taken last, once every argument decoded: a decoding error is
    // answered by the worker as usual.
    let (take, token) = match &f.deferred {
        Some(t) => {
            let ok = &f.ok_ty;
            (quote!(let #t = __out.defer::<#ok>();), quote!(#t))
        }
        None => (quote!(), quote!()),
    };
    let comma = (f.deferred.is_some() && !names.is_empty()).then(|| quote!(,));
    (
        quote!(#(#native)* #take),
        quote!(let __m = ::ffi_dispatch::rt::cbor::ArgMap::parse(__req, [#(#keys),*])?; #(#cbor)* #take),
        quote!(#(#names),* #comma #token),
    )
}

fn method_entry(f: &Func, self_ty: &Type, on_self: bool) -> TokenStream {
    let ident = &f.ident;
    let name = ident.to_string();
    let (native_reads, cbor_reads, args) = readers(f);
    let call = if on_self {
        quote!(__lib.#ident(#args))
    } else {
        quote!(<#self_ty>::#ident(#args))
    };
    let reply = if f.is_async {
        let result = if f.fallible {
            quote!(#call.await)
        } else {
            quote!(::core::result::Result::<_, ::core::convert::Infallible>::Ok(#call.await))
        };
        quote!({
            // SAFETY: every method of this library takes `&self` (the macro checked), so
            // its handlers only ever `get` the value: nothing borrows it mutably while
            // the task lives.
            unsafe { __out.spawn(__lib, move |__lib| async move { #result }) };
            ::core::result::Result::Ok(())
        })
    } else {
        reply(f, call)
    };
    let r = if f.params.is_empty() {
        quote!(_)
    } else {
        quote!(__r)
    };
    // The value, lent as the method's receiver asks: `&mut` only for `&mut self`.
    // (An async method hands the `LibRef` itself to its task.)
    let (lib, borrow) = match (on_self, f.mut_self) {
        (false, _) => (quote!(_), quote!()),
        (true, _) if f.is_async => (quote!(__lib), quote!()),
        (true, true) => (quote!(mut __lib), quote!(let __lib = __lib.get_mut();)),
        (true, false) => (quote!(__lib), quote!(let __lib = __lib.get();)),
    };
    quote!(::ffi_dispatch::rt::Method {
        name: #name,
        native: |#lib, #r, __out| { #borrow #native_reads #reply },
        cbor: |#lib, __req, __out| { #borrow #cbor_reads #reply },
    })
}

fn construct_body(ctor: &Func, self_ty: &Type) -> TokenStream {
    let ident = &ctor.ident;
    let (native_reads, cbor_reads, args) = readers(ctor);
    let call = quote!(<#self_ty>::#ident(#args));
    let wrap = if ctor.fallible {
        quote!(#call.map_err(::ffi_dispatch::rt::CallError::from_display))
    } else {
        quote!(::core::result::Result::Ok(#call))
    };
    quote! {
        match __config.view() {
            ::ffi_dispatch::rt::ArgsView::Native(mut __reader) => {
                let __r = &mut __reader;
                let _ = &__r;
                #native_reads
                #wrap
            }
            ::ffi_dispatch::rt::ArgsView::Cbor(__req) => {
                #cbor_reads
                #wrap
            }
        }
    }
}

/// The native request builder: reads the host's struct `args` into a `Request`.
fn native_request(f: &Func, args: &syn::Ident) -> TokenStream {
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

const SAFETY_DOC: &str = "# Safety\nThe contract of the library's header: `ctx` may be any value (it is never dereferenced); \
a non-null argument pointer points to a valid struct whose pointers obey the field docs for the duration of the call; \
a CBOR buffer holds `len` readable bytes.";

fn ctor_exports(lib: &Lib, ctor: &Func, cfg: &syn::Ident) -> TokenStream {
    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let create = format_ident!("{n}_create");
    let with_options = format_ident!("{n}_create_with_options");
    let create_cbor = format_ident!("{n}_create_cbor");
    let destroy = format_ident!("{n}_destroy");
    let cfg_ident = format_ident!("cfg");
    let (cfg_param, native) = if ctor.params.is_empty() {
        (quote!(), native_request(ctor, &cfg_ident))
    } else {
        (quote!(cfg: *const #cfg,), native_request(ctor, &cfg_ident))
    };
    let keys = ctor.params.iter().map(|p| p.slot.name.to_string());
    let checks = ctor.params.iter().enumerate().map(|(i, p)| {
        let ty = &p.ty_expr;
        quote!(__m.arg::<#ty>(#i).map_err(|_| ::ffi_dispatch::rt::Refusal::Err)?;)
    });
    let doc_create =
        format!("`ffid_ctx* {n}_create(...)`: creates a context; see `{n}.h`.\n\n{SAFETY_DOC}");
    let doc_opts = format!(
        "`{n}_create` with runtime options (`opts` may be null for the defaults).\n\n{SAFETY_DOC}"
    );
    let doc_cbor = format!("`{n}_create` with CBOR arguments.\n\n{SAFETY_DOC}");
    let doc_destroy = format!(
        "`int {n}_destroy(ffid_ctx* ctx)`: answers every accepted call, then frees the context."
    );
    quote! {
        #[doc = #doc_create]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #create(
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            #cfg_param
        ) -> *mut ::ffi_dispatch::rt::ffid_ctx {
            ::ffi_dispatch::rt::create::<#self_ty>(cb, user_data, ::core::option::Option::Some(::ffi_dispatch::rt::Options::default()), || #native)
        }

        #[doc = #doc_opts]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #with_options(
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            #cfg_param
            opts: *const ::ffi_dispatch::rt::abi::ffid_options,
        ) -> *mut ::ffi_dispatch::rt::ffid_ctx {
            // SAFETY: `opts` is null or a valid `ffid_options` (the header's contract).
            let __options = unsafe { ::ffi_dispatch::rt::Options::from_c_ptr(opts) };
            ::ffi_dispatch::rt::create::<#self_ty>(cb, user_data, __options, || #native)
        }

        #[doc = #doc_cbor]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn #create_cbor(
            cb: ::core::option::Option<::ffi_dispatch::rt::Callback>,
            user_data: *mut ::core::ffi::c_void,
            req: *const u8,
            len: usize,
        ) -> *mut ::ffi_dispatch::rt::ffid_ctx {
            ::ffi_dispatch::rt::create::<#self_ty>(cb, user_data, ::core::option::Option::Some(::ffi_dispatch::rt::Options::default()), || {
                // SAFETY: `req` holds `len` bytes for the call (the header's contract).
                let __req = unsafe { ::ffi_dispatch::rt::abi::bytes_field(req, len) }?;
                // Decoded here as well as on the worker, so that malformed arguments
                // refuse the create (NULL, no callback) instead of failing it later.
                let __m = ::ffi_dispatch::rt::cbor::ArgMap::parse(__req, [#(#keys),*]).map_err(|_| ::ffi_dispatch::rt::Refusal::Err)?;
                let _ = &__m;
                #(#checks)*
                ::core::result::Result::Ok(::ffi_dispatch::rt::Request::cbor(__req))
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
fn static_cell(lib: &Lib) -> syn::Ident {
    format_ident!("__{}_STATIC_CONTEXT", lib.name.to_ascii_uppercase())
}

fn call_exports(
    lib: &Lib,
    f: &Func,
    id: u16,
    args_struct: &syn::Ident,
    statics: Option<&syn::Ident>,
) -> TokenStream {
    let n = &lib.name;
    let native_name = format_ident!("{n}_{}", f.ident);
    let cbor_name = format_ident!("{n}_{}_cbor", f.ident);
    let (target, ctx_param, ctx_expr) = match statics {
        None => (
            lib.self_ty.clone(),
            quote!(ctx: *mut ::ffi_dispatch::rt::ffid_ctx,),
            quote!(ctx),
        ),
        Some(s) => {
            let cell = static_cell(lib);
            (
                syn::parse_quote!(#s),
                quote!(),
                quote!(::ffi_dispatch::rt::static_context::<#s>(&#cell)),
            )
        }
    };
    let args_ident = format_ident!("args");
    let (args_param, unsafety) = if f.params.is_empty() {
        (quote!(), quote!())
    } else {
        (quote!(args: *const #args_struct,), quote!(unsafe))
    };
    let native = native_request(f, &args_ident);
    let doc_native = format!(
        "Native export of `{}`; see `{n}.h`.\n\n{SAFETY_DOC}",
        f.ident
    );
    let doc_cbor = format!("CBOR export of `{}`; see `{n}.h`.\n\n{SAFETY_DOC}", f.ident);
    quote! {
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

/// The per-library runtime exports: stats, cancellation, request ids and, when the
/// library declares events, the listener functions. (The `ffid_*` equivalents exist
/// once per shared object; with two libraries in one process the prefixed ones always
/// reach the right runtime.)
fn runtime_exports(lib: &Lib, events: &[&Func]) -> TokenStream {
    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let stats = format_ident!("{n}_stats");
    let cancel = format_ident!("{n}_cancel");
    let last_id = format_ident!("{n}_last_request_id");
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
        let native = format_ident!("{n}_add_{}_listener", e.ident);
        let cbor = format_ident!("{n}_add_{}_listener_cbor", e.ident);
        let doc_native = format!(
            "Adds a listener of `{}` (its C struct); returns its id, 0 if refused.",
            e.ident
        );
        let doc_cbor = format!(
            "Adds a listener of `{}` (CBOR payload); returns its id, 0 if refused.",
            e.ident
        );
        out.extend(quote! {
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
fn completion_exports(lib: &Lib) -> TokenStream {
    let self_ty = &lib.self_ty;
    let n = &lib.name;
    let drain = format_ident!("{n}_drain");
    let fd = format_ident!("{n}_completion_fd");
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
    }
}
