//! The worker side of each method: its native and CBOR handlers, the constructor.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Type;

use super::parse::*;

/// Turns the call expression into the reply: `Result` through `out.result`, a value
/// through `out.value`.
pub(super) fn reply(f: &Func, call: TokenStream) -> TokenStream {
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
pub(super) fn readers(f: &Func) -> (TokenStream, TokenStream, TokenStream) {
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
            (
                quote!(let #t = ::ffi_dispatch::rt::Deferred::<#ok>::take(__out);),
                quote!(#t),
            )
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

pub(super) fn method_entry(f: &Func, self_ty: &Type, on_self: bool) -> TokenStream {
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
            unsafe { ::ffi_dispatch::rt::spawn_handler(__out, __lib, move |__lib| async move { #result }) };
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

pub(super) fn construct_body(ctor: &Func, self_ty: &Type) -> TokenStream {
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
