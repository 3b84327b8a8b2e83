//! A route handler's signature read at compile time: how each argument is extracted from
//! the request (by name, by type, with a default), the checks of the path's placeholders
//! against the arguments, and how the return value becomes a reply.

use crate::path::{placeholders, Converter, Placeholder};
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemFn, LitStr, Pat, PathArguments, ReturnType, Type,
};

/// What the wrapper does for one argument of the handler.
#[allow(clippy::large_enum_variant)] // A few per handler, at compile time.
enum Source {
    /// The request itself (`&mut Request` or `&Request`), in any position.
    Request { mutable: bool },
    /// The request's session (`&mut Session` or `&Session`).
    Session { mutable: bool },
    /// Extracted by its type ([`inphms_sdk::FromRequest`]) or, for any other type, read as
    /// the parameter of its name.
    Named {
        key: String,
        default: Option<Expr>,
        ty: Box<Type>,
    },
}

/// The statements extracting the arguments of `f` (before the call) and the call's
/// arguments, after checking them against the placeholders of `paths`. Removes the
/// `#[param(...)]` attributes from `f` (they are the macro's, not the compiler's).
pub(crate) fn arguments(
    f: &mut ItemFn,
    paths: &[LitStr],
) -> syn::Result<(Vec<TokenStream2>, Vec<TokenStream2>)> {
    let mut sources = Vec::new();
    for input in f.sig.inputs.iter_mut() {
        let FnArg::Typed(pt) = input else {
            return Err(syn::Error::new_spanned(input, "a route is a free function"));
        };
        let default = take_param_attribute(&mut pt.attrs)?;
        if let Type::Reference(r) = &*pt.ty {
            let mutable = r.mutability.is_some();
            let source = if last_segment(&r.elem).is_some_and(|s| s == "Session") {
                Source::Session { mutable }
            } else {
                Source::Request { mutable }
            };
            if default.is_some() {
                return Err(syn::Error::new_spanned(
                    &pt.ty,
                    "#[param(default = ...)] goes on a parameter read by name, not a reference",
                ));
            }
            sources.push((source, (*pt.ty).clone()));
            continue;
        }
        // A destructuring pattern (`Form(form): Form<T>`) names no parameter: its type
        // reads the request as a whole.
        let key = match &*pt.pat {
            Pat::Ident(pi) => pi.ident.unraw().to_string(),
            _ => String::new(),
        };
        sources.push((
            Source::Named {
                key,
                default,
                ty: pt.ty.clone(),
            },
            (*pt.ty).clone(),
        ));
    }
    check_borrows(&sources, f)?;
    for path in paths {
        check_placeholders(path, &placeholders(path)?, &sources)?;
    }
    let mut extract = Vec::new();
    let mut call = Vec::new();
    // The generated code is at the call site (clippy would lint it as the author's code
    // otherwise), but for the probe of a type, whose errors point at that type.
    for (i, (source, ty)) in sources.iter().enumerate() {
        let span = &ty.span();
        match source {
            Source::Request { mutable: true } => call.push(quote!(&mut *req)),
            Source::Request { mutable: false } => call.push(quote!(&*req)),
            Source::Session { mutable: true } => call.push(quote!(&mut req.session)),
            Source::Session { mutable: false } => call.push(quote!(&req.session)),
            Source::Named { key, default, ty } => {
                let var = format_ident!("__inphms_arg_{}", i);
                let value = match default {
                    Some(default) => quote! {
                        match ::inphms_sdk::Request::param_opt::<#ty>(&*req, #key)? {
                            ::core::option::Option::Some(value) => value,
                            ::core::option::Option::None => #default,
                        }
                    },
                    None => quote_spanned! {*span=>
                        {
                            #[allow(unused_imports)]
                            use ::inphms_sdk::__private::{ByName as _, ByType as _};
                            (&::inphms_sdk::__private::Extract::<#ty>::new()).extract(&*req, #key)?
                        }
                    },
                };
                extract.push(quote!(let #var: #ty = #value;));
                call.push(quote!(#var));
            }
        }
    }
    Ok((extract, call))
}

/// Takes the `#[param(default = EXPR)]` attribute out of `attrs`: its default, if any.
fn take_param_attribute(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Option<Expr>> {
    let mut default = None;
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("param") {
            return true;
        }
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                default = Some(meta.value()?.parse::<Expr>()?);
                Ok(())
            } else {
                Err(meta.error("unknown key of #[param]: expected `default = ...`"))
            }
        });
        if let Err(e) = parsed {
            error = Some(e);
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(default),
    }
}

/// At most one request and one session argument, and not a mutable one of each (the
/// session lives in the request: take it as `req.session`).
fn check_borrows(sources: &[(Source, Type)], f: &ItemFn) -> syn::Result<()> {
    let requests: Vec<_> = sources
        .iter()
        .filter(|(s, _)| matches!(s, Source::Request { .. }))
        .collect();
    let sessions: Vec<_> = sources
        .iter()
        .filter(|(s, _)| matches!(s, Source::Session { .. }))
        .collect();
    if let Some((_, ty)) = requests.get(1) {
        return Err(syn::Error::new_spanned(ty, "the request can be taken once"));
    }
    if let Some((_, ty)) = sessions.get(1) {
        return Err(syn::Error::new_spanned(ty, "the session can be taken once"));
    }
    let mutable = |s: &Source| {
        matches!(
            s,
            Source::Request { mutable: true } | Source::Session { mutable: true }
        )
    };
    if let (Some((r, _)), Some((s, ty))) = (requests.first(), sessions.first()) {
        if mutable(r) || mutable(s) {
            return Err(syn::Error::new_spanned(
                ty,
                format!(
                    "`{}` takes the request and its session: read the session as `req.session`",
                    f.sig.ident
                ),
            ));
        }
    }
    Ok(())
}

/// Each placeholder of `path` has an argument of its name (unless a `Params<T>` takes
/// them all), and an `int` or `float` placeholder goes to a number of that kind.
fn check_placeholders(
    path: &LitStr,
    found: &[Placeholder],
    sources: &[(Source, Type)],
) -> syn::Result<()> {
    let whole = sources.iter().any(|(s, _)| match s {
        Source::Named { ty, .. } => last_segment(ty).is_some_and(|s| s == "Params"),
        _ => false,
    });
    for p in found {
        let argument = sources.iter().find_map(|(s, _)| match s {
            Source::Named { key, ty, .. } if *key == p.name => Some(ty),
            _ => None,
        });
        let Some(ty) = argument else {
            if whole {
                continue;
            }
            return Err(syn::Error::new_spanned(
                path,
                format!(
                    "the path's `<{}:{}>` has no argument `{}` in the handler",
                    p.converter.name(),
                    p.name,
                    p.name
                ),
            ));
        };
        let inner = option_inner(ty).unwrap_or(ty);
        let (fits, expected) = match p.converter {
            Converter::Int => (
                last_segment(inner).is_some_and(|s| INTEGERS.contains(&s.as_str())),
                "an integer type (i64, i32, u32, ...)",
            ),
            Converter::Float => (
                last_segment(inner).is_some_and(|s| s == "f64" || s == "f32"),
                "f64 or f32",
            ),
            Converter::Str | Converter::Path => (true, ""),
        };
        if !fits {
            return Err(syn::Error::new_spanned(
                ty,
                format!(
                    "`<{}:{}>` goes to {expected}, not `{}`",
                    p.converter.name(),
                    p.name,
                    quote!(#ty).to_string().replace(' ', "")
                ),
            ));
        }
    }
    Ok(())
}

const INTEGERS: &[&str] = &[
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
];

/// The last segment's name of a path type (`inphms_sdk::Session` is `Session`).
fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

/// `T` of `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

/// The expression turning the handler's return value `value` into the wrapper's
/// `Result<Reply>`: a `Result` (any type named so) is opened first, its error converted
/// into the SDK's; the value then goes through `IntoResponse` (http) or `IntoJsonResult`,
/// else `Serialize` (json).
pub(crate) fn reply(f: &ItemFn, http: bool, value: TokenStream2) -> TokenStream2 {
    let is_result = match &f.sig.output {
        ReturnType::Type(_, ty) => last_segment(ty).is_some_and(|s| s == "Result"),
        ReturnType::Default => false,
    };
    // Generated at the call site: with the author's spans, clippy would lint the
    // generated code as theirs (`f(())`, needless borrows, `match` for `?`).
    let span = proc_macro2::Span::call_site();
    let opened = if is_result {
        quote_spanned! {span=>
            ::core::result::Result::map_err(
                #value,
                ::core::convert::Into::<::inphms_sdk::Error>::into,
            )?
        }
    } else {
        value
    };
    let kind: Ident = if http {
        format_ident!("http")
    } else {
        format_ident!("json")
    };
    quote_spanned! {span=>
        {
            #[allow(unused_imports)]
            use ::inphms_sdk::__private::{ReplyHttp as _, ReplyJson as _, ReplySerialize as _};
            (&::inphms_sdk::__private::Returned::new(#opened)).#kind()
        }
    }
}
