//! Proc-macros of `ffi-dispatch`; use them through its re-exports:
//! `#[ffi_dispatch::library]`, `#[derive(ffi_dispatch::Record)]`,
//! `#[derive(ffi_dispatch::Enum)]`. The crate docs of `ffi-dispatch` describe what they
//! generate.

use ffi_dispatch_schema::names::C_KEYWORDS;
use proc_macro::TokenStream;

mod derive;
mod library;
mod types;

/// Exposes the annotated `impl` block's `#[ffi]` functions as a C library.
///
/// `#[ffi_dispatch::library(name = "echo")]` on `impl Echo { ... }`, with inside it one
/// `#[ffi(ctor)]` constructor, any number of `#[ffi]` methods (`&self` or `&mut self`)
/// and `#[ffi(static)]` functions, and at most one `#[ffi(dtor)]`.
#[proc_macro_attribute]
pub fn library(attr: TokenStream, item: TokenStream) -> TokenStream {
    library::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a struct with named fields a record of both views.
#[proc_macro_derive(Record)]
pub fn derive_record(item: TokenStream) -> TokenStream {
    derive::record(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a fieldless enum a type of both views.
#[proc_macro_derive(Enum)]
pub fn derive_enum(item: TokenStream) -> TokenStream {
    derive::enumeration(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Joins `#[doc]` attributes into one text, one leading space per line removed.
fn doc_of(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

/// One slot (parameter or record field): its declaration in a `#[repr(C)]` struct, the
/// expression that gathers its C fields from a struct value `v`, and how to split a
/// value of its fields back into named struct fields.
struct CSlot {
    name: syn::Ident,
    /// The type with `'static` lifetimes (struct fields, descriptors).
    ty_static: syn::Type,
    shape: types::Shape,
}

impl CSlot {
    fn new(name: syn::Ident, ty: &syn::Type, shape: types::Shape) -> Self {
        CSlot {
            name,
            ty_static: types::with_lifetimes(ty, "'static"),
            shape,
        }
    }

    fn second(&self, suffix: &str, prefix: &str) -> syn::Ident {
        quote::format_ident!("{}{}{}", prefix, self.name, suffix)
    }

    /// The struct fields: `pub x: ...` (and `x_len` / `has_x`).
    fn decl(&self) -> proc_macro2::TokenStream {
        use types::Shape::*;
        let (name, ty) = (&self.name, &self.ty_static);
        let fields = quote::quote!(<#ty as ::ffi_dispatch::rt::marshal::Native>::Fields);
        let a = quote::quote!(<#fields as ::ffi_dispatch::rt::marshal::Pair>::A);
        let b = quote::quote!(<#fields as ::ffi_dispatch::rt::marshal::Pair>::B);
        match self.shape {
            Single => quote::quote!(pub #name: #fields,),
            Pair => {
                let len = self.second("_len", "");
                quote::quote!(pub #name: #a, pub #len: #b,)
            }
            Flag => {
                let has = self.second("", "has_");
                quote::quote!(pub #has: #a, pub #name: #b,)
            }
        }
    }

    /// A compile-time check that a one-field slot really is one C field.
    fn check(&self) -> proc_macro2::TokenStream {
        let ty = &self.ty_static;
        match self.shape {
            types::Shape::Single => quote::quote!(
                ::ffi_dispatch::rt::marshal::assert_single_field::<<#ty as ::ffi_dispatch::rt::marshal::Native>::Fields>();
            ),
            _ => quote::quote!(),
        }
    }

    /// The slot's fields read from the struct value `v`.
    fn gather(&self, v: &proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        let name = &self.name;
        match self.shape {
            types::Shape::Single => quote::quote!(#v.#name),
            types::Shape::Pair => {
                let len = self.second("_len", "");
                quote::quote!((#v.#name, #v.#len))
            }
            types::Shape::Flag => {
                let has = self.second("", "has_");
                quote::quote!((#v.#has, #v.#name))
            }
        }
    }

    /// Struct-literal fields from a value `c` of the slot's fields.
    fn scatter(&self, c: &proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        let name = &self.name;
        match self.shape {
            types::Shape::Single => quote::quote!(#name: #c,),
            types::Shape::Pair => {
                let len = self.second("_len", "");
                quote::quote!(#name: #c.0, #len: #c.1,)
            }
            types::Shape::Flag => {
                let has = self.second("", "has_");
                quote::quote!(#has: #c.0, #name: #c.1,)
            }
        }
    }

    /// Host side: `Native::write` of this slot from the struct value `v` into `__w`.
    fn write(&self, v: &proc_macro2::TokenStream) -> proc_macro2::TokenStream {
        let ty = &self.ty_static;
        let fields = self.gather(v);
        let name = self.name.to_string();
        quote::quote!(
            // SAFETY: the export's contract: the host's struct and what it points to are
            // valid for the duration of the call.
            unsafe { <#ty as ::ffi_dispatch::rt::marshal::Native>::write(#fields, __w) }
                .map_err(|__r| __r.in_field(#name))?;
        )
    }

    /// The schema entry.
    fn describe(&self, doc: &str) -> proc_macro2::TokenStream {
        let ty = &self.ty_static;
        let name = self.name.to_string();
        quote::quote!(::ffi_dispatch::schema::FieldDesc {
            name: #name,
            doc: #doc,
            ty: &<#ty as ::ffi_dispatch::schema::Describe>::TY,
        })
    }

    /// The C field names of this slot (`x`, and `x_len` or `has_x`).
    fn c_names(&self) -> Vec<String> {
        let name = self.name.to_string();
        match self.shape {
            types::Shape::Single => vec![name],
            types::Shape::Pair => vec![format!("{name}_len"), name],
            types::Shape::Flag => vec![format!("has_{name}"), name],
        }
    }
}

/// Checks the C fields a list of slots makes (the parameters of one function, the
/// fields of one record): no C or C++ keyword, no name twice (`data` beside
/// `data_len`, say). `owner` names the struct in errors.
fn check_c_fields(slots: &[&CSlot], owner: &str) -> syn::Result<()> {
    let mut seen: Vec<(String, &syn::Ident)> = Vec::new();
    for s in slots {
        let name = s.name.to_string();
        if C_KEYWORDS.contains(&name.as_str()) {
            return Err(syn::Error::new_spanned(
                &s.name,
                format!(
                    "`{name}` is a C or C++ keyword and would be a field of {owner}; rename it"
                ),
            ));
        }
        for c in s.c_names() {
            if let Some((_, other)) = seen.iter().find(|(n, _)| *n == c) {
                return Err(syn::Error::new_spanned(
                    &s.name,
                    format!("`{name}` makes the C field `{c}` of {owner}, which `{other}` makes too; rename one of them"),
                ));
            }
            seen.push((c, &s.name));
        }
    }
    Ok(())
}
