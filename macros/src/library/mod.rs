//! `#[ffi_dispatch::library]`: one annotated `impl` block in, the method table, both
//! exports of every function, the args structs and the descriptor out.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{ImplItem, ImplItemFn, ItemImpl};

use crate::doc_of;
use crate::types::with_lifetimes;

mod emit_exports;
mod emit_handlers;
mod parse;

use emit_exports::*;
use emit_handlers::*;
use parse::*;

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
    let mut constants = Vec::new();
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
        if let ImplItem::Const(c) = item {
            match take_constant(c) {
                Ok(Some(k)) => constants.push(k),
                Ok(None) => {}
                Err(e) => push_err(e),
            }
            continue;
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
    let inlines: Vec<&Func> = funcs.iter().filter(|f| f.role == Role::Inline).collect();
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
    for f in methods.iter().chain(&statics).chain(&inlines) {
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
    // The tables of the functions without a context: stateless `Library` types.
    let stateless = |ty: &syn::Ident, fs: &[&Func], name: String, doc: &str| {
        let table = table(fs, false);
        quote! {
            #[doc = #doc]
            #[doc(hidden)]
            #[derive(Default)]
            pub struct #ty;
            impl ::ffi_dispatch::rt::Library for #ty {
                const NAME: &'static str = #name;
                type Config = ::ffi_dispatch::rt::Request;
                const METHODS: &'static [::ffi_dispatch::rt::Method<Self>] = #table;
                fn construct(_: ::ffi_dispatch::rt::Request) -> ::core::result::Result<Self, ::ffi_dispatch::rt::CallError> {
                    ::core::result::Result::Ok(#ty)
                }
            }
        }
    };
    if !statics.is_empty() {
        let doc = "The library behind the static methods' process-wide context.";
        out.extend(stateless(&statics_ty, &statics, format!("{n}-static"), doc));
        let cell = static_cell(&lib);
        out.extend(quote! {
            static #cell: ::ffi_dispatch::rt::StaticContext = ::ffi_dispatch::rt::StaticContext::new();
        });
    }
    let inline_ty = format_ident!("__{}Inline", lib.prefix);
    if !inlines.is_empty() {
        let doc = "The table of the inline exports, run on the calling thread.";
        out.extend(stateless(&inline_ty, &inlines, format!("{n}-inline"), doc));
    }

    // Exports.
    out.extend(ctor_exports(&lib, ctor, &cfg_struct));
    for (id, f) in methods.iter().enumerate() {
        out.extend(call_exports(
            &lib,
            f,
            id as u16,
            &args_struct(f),
            Server::Context,
        ));
    }
    for (id, f) in statics.iter().enumerate() {
        let server = Server::Static(&statics_ty);
        out.extend(call_exports(&lib, f, id as u16, &args_struct(f), server));
    }
    for (id, f) in inlines.iter().enumerate() {
        let server = Server::Inline(&inline_ty);
        out.extend(call_exports(&lib, f, id as u16, &args_struct(f), server));
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
            ret: &<#ok as ::ffi_dispatch::schema::Describe>::TY,
            fallible: #fallible,
            deferred: #deferred,
            asynchronous: #asynchronous,
            args_struct: #args_struct,
        })
    };
    let (ctor_desc, method_descs, static_descs, inline_descs) = (
        describe(ctor),
        methods.iter().map(|f| describe(f)),
        statics.iter().map(|f| describe(f)),
        inlines.iter().map(|f| describe(f)),
    );
    let const_descs = constants.iter().map(|k| k.describe(self_ty));
    let event_descs = events.iter().map(|e| {
        let name = e.ident.to_string();
        let doc = &e.doc;
        let ty = with_lifetimes(&e.params[0].ty_expr, "'static");
        quote!(::ffi_dispatch::schema::EventSchema {
            name: #name,
            doc: #doc,
            ty: &<#ty as ::ffi_dispatch::schema::Describe>::TY,
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
                inlines: &[#(#inline_descs),*],
                events: &[#(#event_descs),*],
                constants: &[#(#const_descs),*],
            };
        }

        // Two items with one C name are a compile error here, naming both.
        const _: () = ::ffi_dispatch::schema::names::check(
            <#self_ty as ::ffi_dispatch::schema::Exports>::SCHEMA,
        );
    });
    Ok(out)
}
