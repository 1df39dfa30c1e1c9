//! What the macros know about types by their spelling: whether a type is supported at
//! all (so an unsupported one is an error that names it and its slot), and how many C
//! fields it takes. The runtime's traits (`ffi_dispatch::marshal`) decide the rest; the
//! generated code asserts that both agree.

use proc_macro2::Span;
use syn::visit_mut::VisitMut;
use syn::{GenericArgument, Lifetime, PathArguments, Type, TypePath};

/// How a slot is laid out in a C struct: the table at `ffi_dispatch_schema::CShape`,
/// shared with the header renderer. Here it is read from a type's spelling.
pub use ffi_dispatch_schema::CShape as Shape;

/// Where a type is used: decides what is allowed and how errors read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A method parameter (borrowed `&str` / `&[u8]` allowed).
    Param,
    /// A record field (owned types only).
    Field,
    /// A result (borrowed slices and `()` allowed).
    Result,
}

const SCALARS: &[&str] = &[
    "bool", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64",
];

const SUPPORTED: &str = "supported: bool, u8..u64, i8..i64, f32, f64, &str, String, &[u8], \
     Vec<u8>, Option<T>, Vec<T>, and types deriving ffi_dispatch::Record or ffi_dispatch::Enum";

fn last_ident(p: &TypePath) -> Option<(String, &PathArguments)> {
    let seg = p.path.segments.last()?;
    Some((seg.ident.to_string(), &seg.arguments))
}

/// The single type argument of `Option<X>` / `Vec<X>`.
pub fn generic_arg(args: &PathArguments) -> Option<&Type> {
    match args {
        PathArguments::AngleBracketed(a) if a.args.len() == 1 => match &a.args[0] {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// `Option<X>` -> `Some(X)`.
pub fn option_inner(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) if p.qself.is_none() => match last_ident(p)? {
            (n, args) if n == "Option" => generic_arg(args),
            _ => None,
        },
        _ => None,
    }
}

/// `Result<T, E>` -> `Some(T)`.
pub fn result_ok(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) if p.qself.is_none() => match last_ident(p)? {
            (n, PathArguments::AngleBracketed(a)) if n == "Result" && a.args.len() == 2 => {
                match &a.args[0] {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    }
}

fn spelled(ty: &Type) -> String {
    quote::quote!(#ty)
        .to_string()
        .replace(" < ", "<")
        .replace(" >", ">")
        .replace("& ", "&")
}

fn err<T>(ty: &Type, what: &str, why: &str) -> syn::Result<T> {
    Err(syn::Error::new_spanned(
        ty,
        format!("{what}: type `{}` {why}", spelled(ty)),
    ))
}

/// `T` of a `Deferred<T>` (any path ending in `Deferred`): a reply-token parameter.
pub fn deferred_of(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) if p.qself.is_none() => match last_ident(p)? {
            (n, PathArguments::AngleBracketed(a)) if n == "Deferred" && a.args.len() == 1 => {
                match &a.args[0] {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    }
}

pub fn is_scalar(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.get_ident().is_some_and(|i| SCALARS.contains(&i.to_string().as_str())))
}

fn is_u8(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.is_ident("u8"))
}

/// Checks that `ty` may be used in `slot` (`what` names it in errors, e.g. "parameter
/// `text`") and returns its C shape.
pub fn classify(ty: &Type, slot: Slot, what: &str) -> syn::Result<Shape> {
    match ty {
        Type::Paren(p) => classify(&p.elem, slot, what),
        Type::Group(g) => classify(&g.elem, slot, what),
        Type::Tuple(t) if t.elems.is_empty() && slot == Slot::Result => Ok(Shape::Single),
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return err(
                    ty,
                    what,
                    "is a mutable borrow; the host's memory is read-only to the library",
                );
            }
            if slot == Slot::Field {
                return err(
                    ty,
                    what,
                    "borrows; record fields must own their data (String, Vec<u8>)",
                );
            }
            match &*r.elem {
                Type::Path(p) if p.path.is_ident("str") => Ok(Shape::Single),
                Type::Slice(s) if is_u8(&s.elem) => Ok(Shape::Pair),
                Type::Slice(s) if slot == Slot::Result => {
                    element(&s.elem, slot, what)?;
                    Ok(Shape::Pair)
                }
                Type::Slice(_) => err(ty, what, "is not supported as a parameter; take a Vec<T>"),
                _ if slot == Slot::Result => classify(&r.elem, slot, what),
                Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
                    let inner = &r.elem;
                    err(
                        ty,
                        what,
                        &format!("is a borrow; take it by value (`{}`): the handler gets its own copy of the host's argument", spelled(inner)),
                    )
                }
                _ => err(
                    ty,
                    what,
                    &format!("is not supported across the FFI; {SUPPORTED}"),
                ),
            }
        }
        Type::Path(p) if p.qself.is_none() => {
            let Some((name, args)) = last_ident(p) else {
                return err(ty, what, "is not supported");
            };
            match name.as_str() {
                n if SCALARS.contains(&n) && args.is_empty() => Ok(Shape::Single),
                "usize" | "isize" => err(
                    ty,
                    what,
                    "has a platform-dependent size; use u32/u64 or i32/i64",
                ),
                "u128" | "i128" => err(ty, what, "has no portable C type; use two u64 fields"),
                "char" => err(ty, what, "is not a C type; use &str or u32"),
                "String" if args.is_empty() => Ok(Shape::Single),
                "Vec" => {
                    let Some(inner) = generic_arg(args) else {
                        return err(ty, what, "needs one type argument");
                    };
                    if !is_u8(inner) {
                        element(inner, slot, what)?;
                    }
                    Ok(Shape::Pair)
                }
                "Option" => {
                    let Some(inner) = generic_arg(args) else {
                        return err(ty, what, "needs one type argument");
                    };
                    if option_inner(inner).is_some() {
                        return err(ty, what, "nests options; use one Option");
                    }
                    if matches!(inner, Type::Tuple(t) if t.elems.is_empty()) {
                        return err(ty, what, "is an option of nothing; answer a bool");
                    }
                    Ok(match classify(inner, slot, what)? {
                        _ if is_scalar(inner) => Shape::Flag,
                        Shape::Pair => Shape::Pair,
                        _ => Shape::Single,
                    })
                }
                _ if !args.is_empty() => err(
                    ty,
                    what,
                    &format!("is not supported across the FFI; {SUPPORTED}"),
                ),
                // Anything else is the author's own type: the runtime's traits decide
                // (an error there says to derive Record or Enum).
                _ => Ok(Shape::Single),
            }
        }
        Type::Tuple(_) if slot != Slot::Result => err(
            ty,
            what,
            "is not supported; use a record (#[derive(ffi_dispatch::Record)])",
        ),
        _ => err(
            ty,
            what,
            &format!("is not supported across the FFI; {SUPPORTED}"),
        ),
    }
}

/// Checks a `Vec<T>` / `[T]` element: one C field each.
fn element(ty: &Type, slot: Slot, what: &str) -> syn::Result<()> {
    let nested = matches!(ty, Type::Reference(r) if !matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")))
        || option_inner(ty).is_some()
        || matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Vec"));
    if nested {
        return err(
            ty,
            what,
            "cannot be an array element; use a record holding it",
        );
    }
    let element_slot = if slot == Slot::Field {
        Slot::Field
    } else {
        Slot::Param
    };
    classify(ty, element_slot, what).map(drop)
}

/// Rewrites every lifetime, named or elided, to `'static` (for struct fields and
/// descriptors) or to `'_` (for expressions).
pub fn with_lifetimes(ty: &Type, name: &str) -> Type {
    struct Rewrite(Lifetime);
    impl VisitMut for Rewrite {
        fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
            *l = self.0.clone();
        }
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            r.lifetime = Some(self.0.clone());
            self.visit_type_mut(&mut r.elem);
        }
    }
    let mut ty = ty.clone();
    Rewrite(Lifetime::new(name, Span::call_site())).visit_type_mut(&mut ty);
    ty
}
