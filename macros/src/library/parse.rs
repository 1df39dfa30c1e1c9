//! Reading the annotated `impl` block: each function's role, parameters and answer.

use proc_macro2::TokenStream;
use syn::{FnArg, ImplItemFn, Pat, ReturnType, Type};

use crate::types::{classify, deferred_of, result_ok, with_lifetimes, Slot};
use crate::{doc_of, CSlot};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Ctor,
    Method,
    Static,
    Inline,
    Dtor,
    Event,
}

pub(super) struct Param {
    pub(super) slot: CSlot,
    /// A plain scalar (its payload size is known at compile time).
    pub(super) scalar: bool,
    /// The type as an expression path sees it (lifetimes `'_`).
    pub(super) ty_expr: Type,
}

pub(super) struct Func {
    pub(super) role: Role,
    pub(super) ident: syn::Ident,
    pub(super) doc: String,
    pub(super) params: Vec<Param>,
    /// The success type (`T` of `Result<T, E>`), `()` when there is no return type.
    pub(super) ok_ty: Type,
    pub(super) fallible: bool,
    /// A `Deferred<T>` parameter (always last): its name; `ok_ty` is then `T`.
    pub(super) deferred: Option<syn::Ident>,
    /// `async fn`: polled on the worker as a task.
    pub(super) is_async: bool,
    /// Takes `&mut self`.
    pub(super) mut_self: bool,
    /// How the answer's C fields are laid out: its blocking form's out parameters.
    pub(super) ok_shape: crate::types::Shape,
}

/// Reads `#[ffi]`, `#[ffi(ctor)]`, ... and removes it from the function.
pub(super) fn take_role(f: &mut ImplItemFn) -> syn::Result<Option<Role>> {
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
        "inline" => Role::Inline,
        "dtor" => Role::Dtor,
        "event" => Role::Event,
        _ => {
            return Err(syn::Error::new_spanned(
                kind,
                "expected #[ffi], #[ffi(ctor)], #[ffi(static)], #[ffi(inline)], #[ffi(dtor)] or #[ffi(event)]",
            ))
        }
    }))
}

pub(super) fn analyse(f: &ImplItemFn, role: Role) -> syn::Result<Func> {
    let sig = &f.sig;
    if let (Some(a), true) = (&sig.asyncness, role != Role::Method) {
        return Err(syn::Error::new_spanned(
            a,
            "only #[ffi] methods can be async (constructors, statics, inline exports, dtors and events run to completion)",
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
        && (ffi_dispatch_schema::names::RUNTIME_EXPORTS.contains(&name.as_str())
            || name.ends_with("_cbor"))
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
        (Role::Ctor | Role::Static | Role::Inline | Role::Event, Some(r)) => {
            return Err(syn::Error::new_spanned(
                r,
                "constructors, #[ffi(static)], #[ffi(inline)] and #[ffi(event)] functions take no receiver",
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
                let why = if role == Role::Inline {
                    "an #[ffi(inline)] export answers before it returns: it cannot take a reply token (make it #[ffi(static)])"
                } else {
                    "only #[ffi] and #[ffi(static)] functions can take a reply token"
                };
                return Err(syn::Error::new_spanned(&pt.ty, why));
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
    let slots: Vec<&CSlot> = params.iter().map(|p| &p.slot).collect();
    crate::check_c_fields(&slots, &format!("the args struct of `{name}`"))?;
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
    if role == Role::Ctor && matches!(sig.output, ReturnType::Default) {
        return Err(syn::Error::new_spanned(
            &sig.ident,
            "a constructor returns the library's value (`Self` or `Result<Self, E>`)",
        ));
    }
    if role == Role::Dtor && !matches!(sig.output, ReturnType::Default) {
        return Err(syn::Error::new_spanned(
            &sig.output,
            "an #[ffi(dtor)] returns nothing",
        ));
    }
    // The answer's shape: its blocking form's out parameters. (An event's payload was
    // classified as a parameter above.)
    let ok_shape = if matches!(role, Role::Method | Role::Static | Role::Inline) {
        classify(&ok_ty, Slot::Result, &format!("result of `{name}`"))?
    } else {
        crate::types::Shape::Single
    };
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
        ok_shape,
    })
}

pub(super) struct Lib {
    pub(super) name: String,
    pub(super) prefix: String,
    pub(super) self_ty: Type,
}

pub(super) fn lib_name(attr: TokenStream, self_ty: &Type) -> syn::Result<String> {
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
                if v == "ffid" || v == "ffi_dispatch" {
                    return Err(syn::Error::new_spanned(s, "`ffid` and `ffi_dispatch` name the runtime's own C declarations; pick another library name"));
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

pub(super) fn camel(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A constant (`#[ffi] const NAME: T = ...;`): a `#define` in the header.
pub(super) struct Constant {
    ident: syn::Ident,
    doc: String,
    kind: ConstKind,
    ty: Type,
}

#[derive(Clone, Copy)]
enum ConstKind {
    Unsigned,
    Signed,
    Float,
    Bool,
    Str,
}

/// Reads `#[ffi]` off an associated constant (and checks its type); `None` without it.
pub(super) fn take_constant(c: &mut syn::ImplItemConst) -> syn::Result<Option<Constant>> {
    let Some(i) = c.attrs.iter().position(|a| a.path().is_ident("ffi")) else {
        return Ok(None);
    };
    let attr = c.attrs.remove(i);
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        return Err(syn::Error::new_spanned(
            attr,
            "a constant is exported with a plain #[ffi]",
        ));
    }
    let kind = match &c.ty {
        Type::Path(p) if p.qself.is_none() => match p.path.get_ident().map(|i| i.to_string()) {
            Some(t) if ["u8", "u16", "u32", "u64"].contains(&t.as_str()) => ConstKind::Unsigned,
            Some(t) if ["i8", "i16", "i32", "i64"].contains(&t.as_str()) => ConstKind::Signed,
            Some(t) if t == "f32" || t == "f64" => ConstKind::Float,
            Some(t) if t == "bool" => ConstKind::Bool,
            _ => return Err(const_type_error(&c.ty)),
        },
        Type::Reference(r)
            if r.mutability.is_none()
                && matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")) =>
        {
            ConstKind::Str
        }
        _ => return Err(const_type_error(&c.ty)),
    };
    Ok(Some(Constant {
        ident: c.ident.clone(),
        doc: doc_of(&c.attrs),
        kind,
        ty: with_lifetimes(&c.ty, "'static"),
    }))
}

fn const_type_error(ty: &Type) -> syn::Error {
    syn::Error::new_spanned(
        ty,
        "an exported constant is an integer (u8..u64, i8..i64), a float (f32, f64), a bool or a &str",
    )
}

impl Constant {
    /// The schema entry; `self_ty` owns the constant.
    pub(super) fn describe(&self, self_ty: &Type) -> TokenStream {
        let (ident, ty, doc) = (&self.ident, &self.ty, &self.doc);
        let name = ident.to_string();
        let v = quote::quote!(<#self_ty>::#ident);
        let value = match self.kind {
            ConstKind::Unsigned => quote::quote!(Unsigned(#v as u64)),
            ConstKind::Signed => quote::quote!(Signed(#v as i64)),
            ConstKind::Float => quote::quote!(Float(#v as f64)),
            ConstKind::Bool => quote::quote!(Bool(#v)),
            ConstKind::Str => quote::quote!(Str(#v)),
        };
        quote::quote!(::ffi_dispatch::schema::ConstDesc {
            name: #name,
            doc: #doc,
            ty: <#ty as ::ffi_dispatch::schema::Describe>::TY,
            value: ::ffi_dispatch::schema::ConstValue::#value,
        })
    }
}
