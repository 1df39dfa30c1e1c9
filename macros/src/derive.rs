//! `#[derive(Record)]` and `#[derive(Enum)]`: the runtime's marshalling traits for the
//! author's own types, a `#[repr(C)]` mirror for records, and their descriptions.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields};

use crate::types::{classify, with_lifetimes, Slot};
use crate::{doc_of, CSlot};

fn plain(input: &DeriveInput, what: &str) -> syn::Result<()> {
    if input.generics.params.is_empty() {
        Ok(())
    } else {
        Err(syn::Error::new_spanned(
            &input.generics,
            format!("{what} cannot be generic: C needs one concrete layout"),
        ))
    }
}

pub fn record(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    plain(&input, "a record")?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(&input.ident, "#[derive(Record)] is for structs with named fields; use #[derive(Enum)] for fieldless enums"));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Record)] needs named fields: they are the C fields and the CBOR keys",
        ));
    };
    let ident = &input.ident;
    let vis = &input.vis;
    let name = ident.to_string();
    let mirror = format_ident!("{}C", ident);
    let mut slots = Vec::new();
    let mut docs = Vec::new();
    for f in &named.named {
        let fname = f.ident.clone().expect("named field");
        let what = format!("field `{fname}` of `{name}`");
        let shape = classify(&f.ty, Slot::Field, &what)?;
        let clean = syn::Ident::new(fname.to_string().trim_start_matches("r#"), fname.span());
        slots.push((
            CSlot::new(clean, &f.ty, shape),
            fname,
            with_lifetimes(&f.ty, "'static"),
        ));
        docs.push(doc_of(&f.attrs));
    }
    let c_slots: Vec<&CSlot> = slots.iter().map(|(s, _, _)| s).collect();
    crate::check_c_fields(&c_slots, &format!("the C mirror of record `{name}`"))?;
    let n = slots.len();
    let decls = slots.iter().map(|(s, _, _)| s.decl());
    let checks = slots.iter().map(|(s, _, _)| s.check());
    let f_val = quote!(f);
    let writes = slots.iter().map(|(s, _, _)| s.write(&f_val));
    let extras = slots
        .iter()
        .map(|(_, f, _)| quote!(+ ::ffi_dispatch::rt::marshal::Native::c_extra(&self.#f)));
    let to_c = slots.iter().map(|(s, f, _)| {
        let c = quote!(::ffi_dispatch::rt::marshal::Native::to_c(&self.#f, arena));
        let v = format_ident!("__{}", s.name);
        let scatter = s.scatter(&quote!(#v));
        (quote!(let #v = #c;), scatter)
    });
    let (to_c_lets, to_c_fields): (Vec<_>, Vec<_>) = to_c.unzip();
    let reads = slots.iter().map(
        |(_, f, ty)| quote!(#f: <#ty as ::ffi_dispatch::rt::marshal::ReadNative<'a>>::read(r)?,),
    );
    let keys: Vec<String> = slots.iter().map(|(s, _, _)| s.name.to_string()).collect();
    let decodes = slots
        .iter()
        .enumerate()
        .map(|(i, (_, f, ty))| quote!(#f: __m.field::<#ty>(#i)?,));
    let encodes = slots.iter().map(|(s, f, _)| {
        let key = s.name.to_string();
        quote!(e.str(#key)?; ::ffi_dispatch::rt::Answer::cbor(&self.#f, e)?;)
    });
    let descs = slots.iter().zip(&docs).map(|((s, _, _), d)| s.describe(d));
    let doc = doc_of(&input.attrs);
    let mirror_doc =
        format!("The C mirror of [`{name}`] (its C name carries the library's type prefix).");
    let expected = format!("a map ({name})");
    let nullable = nullable_as_pointer(ident, &quote!(#mirror));
    Ok(quote! {
        #[doc = #mirror_doc]
        #[repr(C)]
        #[derive(Clone, Copy)]
        #vis struct #mirror { #(#decls)* }

        const _: () = { #(#checks)* };

        impl ::ffi_dispatch::rt::marshal::SingleField for #mirror {}

        impl ::ffi_dispatch::rt::marshal::Native for #ident {
            type Fields = #mirror;
            unsafe fn write(f: #mirror, __w: &mut ::ffi_dispatch::rt::FieldWriter<'_>) -> ::core::result::Result<(), ::ffi_dispatch::rt::Refusal> {
                #(#writes)*
                ::core::result::Result::Ok(())
            }
            fn c_extra(&self) -> usize {
                0 #(#extras)*
            }
            fn to_c(&self, arena: &mut ::ffi_dispatch::rt::marshal::Arena) -> #mirror {
                #(#to_c_lets)*
                #mirror { #(#to_c_fields)* }
            }
        }

        impl<'a> ::ffi_dispatch::rt::marshal::ReadNative<'a> for #ident {
            fn read(r: &mut ::ffi_dispatch::rt::FieldReader<'a>) -> ::core::result::Result<Self, ::ffi_dispatch::rt::CallError> {
                ::core::result::Result::Ok(#ident { #(#reads)* })
            }
        }

        impl ::ffi_dispatch::rt::marshal::Element for #ident {}
        impl ::ffi_dispatch::schema::ArrayElement for #ident {}

        #nullable

        /// A blocking call's answer: the owned C mirror.
        impl ::ffi_dispatch::rt::SyncOut for #ident {
            type Out = *mut *const #mirror;
            type OptOut = *mut *const #mirror;
            unsafe fn store(answer: ::ffi_dispatch::rt::Owned, out: Self::Out) {
                // SAFETY: forwarded (`out` is null or writable).
                unsafe { ::ffi_dispatch::rt::store_mirror(answer, out) }
            }
            unsafe fn store_opt(answer: ::core::option::Option<::ffi_dispatch::rt::Owned>, out: Self::OptOut) {
                // SAFETY: forwarded.
                unsafe { ::ffi_dispatch::rt::store_opt_mirror(answer, out) }
            }
        }

        impl<'b> ::ffi_dispatch::rt::cbor::FromCbor<'b> for #ident {
            const EXPECTED: &'static str = #expected;
            fn decode(d: &mut ::ffi_dispatch::rt::minicbor::Decoder<'b>) -> ::core::result::Result<Self, ::ffi_dispatch::rt::minicbor::decode::Error> {
                let __m = ::ffi_dispatch::rt::cbor::ArgMap::parse_nested(d, [#(#keys),*])?;
                ::core::result::Result::Ok(#ident { #(#decodes)* })
            }
        }

        impl ::ffi_dispatch::rt::Answer for #ident {
            fn native(&self, out: &mut ::ffi_dispatch::rt::NativeOut) {
                out.mirror(self)
            }
            fn cbor(
                &self,
                e: &mut ::ffi_dispatch::rt::minicbor::Encoder<&mut ::std::vec::Vec<u8>>,
            ) -> ::core::result::Result<(), ::ffi_dispatch::rt::minicbor::encode::Error<::core::convert::Infallible>> {
                e.map(#n as u64)?;
                #(#encodes)*
                ::core::result::Result::Ok(())
            }
        }

        impl ::ffi_dispatch::schema::Describe for #ident {
            const TY: ::ffi_dispatch::schema::Ty =
                ::ffi_dispatch::schema::Ty::Record(&::ffi_dispatch::schema::RecordDesc {
                    name: #name,
                    doc: #doc,
                    fields: &[#(#descs),*],
                });
        }
    })
}

pub fn enumeration(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    plain(&input, "an enum")?;
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Enum)] is for fieldless enums; use #[derive(Record)] for structs",
        ));
    };
    let ident = &input.ident;
    let name = ident.to_string();
    if data.variants.is_empty() {
        return Err(syn::Error::new_spanned(
            ident,
            "#[derive(Enum)] needs at least one variant: C has no empty enum",
        ));
    }
    let mut next: i64 = 0;
    let mut variants = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(syn::Error::new_spanned(
                v,
                "#[derive(Enum)] variants carry no data (a C enum is an integer)",
            ));
        }
        if let Some((_, expr)) = &v.discriminant {
            next = int_literal(expr)?;
        }
        let value = i32::try_from(next)
            .map_err(|_| syn::Error::new_spanned(v, "a C enum value must fit in int32_t"))?;
        variants.push((v.ident.clone(), value, doc_of(&v.attrs)));
        next += 1;
    }
    let values: Vec<i32> = variants.iter().map(|v| v.1).collect();
    let to_value = variants.iter().map(|(v, x, _)| quote!(#ident::#v => #x,));
    let from_value = variants
        .iter()
        .map(|(v, x, _)| quote!(#x => ::core::result::Result::Ok(#ident::#v),));
    let to_text = variants.iter().map(|(v, _, _)| {
        let s = v.to_string();
        quote!(#ident::#v => #s,)
    });
    let from_text = variants.iter().map(|(v, _, _)| {
        let s = v.to_string();
        quote!(#s => ::core::result::Result::Ok(#ident::#v),)
    });
    let descs = variants.iter().map(|(v, x, d)| {
        let s = v.to_string();
        quote!((#s, #x, #d))
    });
    let doc = doc_of(&input.attrs);
    let names: Vec<String> = variants.iter().map(|v| v.0.to_string()).collect();
    let expected = format!(
        "one of {}",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let unknown_value = format!("unknown {name} value {{}}");
    let nullable = nullable_as_pointer(ident, &quote!(i32));
    Ok(quote! {
        impl #ident {
            fn __ffi_value(&self) -> i32 {
                match self { #(#to_value)* }
            }
            fn __ffi_name(&self) -> &'static str {
                match self { #(#to_text)* }
            }
        }

        impl ::ffi_dispatch::rt::marshal::Native for #ident {
            type Fields = i32;
            unsafe fn write(f: i32, w: &mut ::ffi_dispatch::rt::FieldWriter<'_>) -> ::core::result::Result<(), ::ffi_dispatch::rt::Refusal> {
                w.scalar(::ffi_dispatch::rt::marshal::enum_value(f, &[#(#values),*])?);
                ::core::result::Result::Ok(())
            }
            fn c_extra(&self) -> usize {
                0
            }
            fn to_c(&self, _: &mut ::ffi_dispatch::rt::marshal::Arena) -> i32 {
                self.__ffi_value()
            }
        }

        impl<'a> ::ffi_dispatch::rt::marshal::ReadNative<'a> for #ident {
            fn read(r: &mut ::ffi_dispatch::rt::FieldReader<'a>) -> ::core::result::Result<Self, ::ffi_dispatch::rt::CallError> {
                match r.scalar::<i32>()? {
                    #(#from_value)*
                    v => ::core::result::Result::Err(::ffi_dispatch::rt::CallError::new(format!(#unknown_value, v))),
                }
            }
        }

        impl ::ffi_dispatch::rt::marshal::Element for #ident {}
        impl ::ffi_dispatch::schema::ArrayElement for #ident {}

        #nullable

        /// A blocking call's answer: the `int32_t` value (an `Option`'s: an owned one,
        /// or NULL).
        impl ::ffi_dispatch::rt::SyncOut for #ident {
            type Out = *mut i32;
            type OptOut = *mut *const i32;
            unsafe fn store(answer: ::ffi_dispatch::rt::Owned, out: Self::Out) {
                // SAFETY: forwarded (`out` is null or writable).
                unsafe { <i32 as ::ffi_dispatch::rt::SyncOut>::store(answer, out) }
            }
            unsafe fn store_opt(answer: ::core::option::Option<::ffi_dispatch::rt::Owned>, out: Self::OptOut) {
                // SAFETY: forwarded.
                unsafe { ::ffi_dispatch::rt::store_opt_mirror(answer, out) }
            }
        }

        impl<'b> ::ffi_dispatch::rt::cbor::FromCbor<'b> for #ident {
            const EXPECTED: &'static str = #expected;
            fn decode(d: &mut ::ffi_dispatch::rt::minicbor::Decoder<'b>) -> ::core::result::Result<Self, ::ffi_dispatch::rt::minicbor::decode::Error> {
                match d.str()? {
                    #(#from_text)*
                    other => ::core::result::Result::Err(::ffi_dispatch::rt::minicbor::decode::Error::message(
                        format!("expected {}, got \"{}\"", #expected, other),
                    )),
                }
            }
        }

        impl ::ffi_dispatch::rt::Answer for #ident {
            fn native(&self, out: &mut ::ffi_dispatch::rt::NativeOut) {
                out.bytes(&self.__ffi_value().to_ne_bytes())
            }
            fn cbor(
                &self,
                e: &mut ::ffi_dispatch::rt::minicbor::Encoder<&mut ::std::vec::Vec<u8>>,
            ) -> ::core::result::Result<(), ::ffi_dispatch::rt::minicbor::encode::Error<::core::convert::Infallible>> {
                e.str(self.__ffi_name()).map(drop)
            }
        }

        impl ::ffi_dispatch::schema::Describe for #ident {
            const TY: ::ffi_dispatch::schema::Ty =
                ::ffi_dispatch::schema::Ty::Enum(&::ffi_dispatch::schema::EnumDesc {
                    name: #name,
                    doc: #doc,
                    variants: &[#(#descs),*],
                });
        }
    })
}

/// `Option<T>` of a record or enum: a nullable pointer to its C form.
fn nullable_as_pointer(ident: &syn::Ident, fields: &TokenStream) -> TokenStream {
    quote! {
        impl ::ffi_dispatch::rt::marshal::Nullable for #ident {
            type OptFields = *const #fields;
            unsafe fn write_opt(p: *const #fields, w: &mut ::ffi_dispatch::rt::FieldWriter<'_>) -> ::core::result::Result<(), ::ffi_dispatch::rt::Refusal> {
                // SAFETY: forwarded contract (`p` is null or points to a valid C form).
                unsafe { ::ffi_dispatch::rt::marshal::write_opt_ptr::<Self>(p, w) }
            }
            fn opt_extra(v: ::core::option::Option<&Self>) -> usize {
                ::ffi_dispatch::rt::marshal::opt_ptr_extra(v)
            }
            fn opt_to_c(v: ::core::option::Option<&Self>, arena: &mut ::ffi_dispatch::rt::marshal::Arena) -> *const #fields {
                ::ffi_dispatch::rt::marshal::opt_ptr_to_c(v, arena)
            }
        }
    }
}

fn int_literal(expr: &syn::Expr) -> syn::Result<i64> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse(),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => int_literal(expr).map(|v| -v),
        _ => Err(syn::Error::new_spanned(
            expr,
            "an enum value must be an integer literal",
        )),
    }
}
