//! The placeholders of a route's path (`/shop/<int:id>/<string:name>`), read at compile
//! time with the host router's rules (host/src/http/routing.rs), so that a path the host
//! would refuse at load is a compile error pointing at the path.

use syn::LitStr;

/// The converters the host's router knows (`default` is `string`).
pub(crate) const CONVERTERS: &[&str] = &["string", "default", "int", "float", "path"];

/// A converter of a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Converter {
    Str,
    Int,
    Float,
    Path,
}

impl Converter {
    /// The converter as written in a path.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Converter::Str => "string",
            Converter::Int => "int",
            Converter::Float => "float",
            Converter::Path => "path",
        }
    }
}

/// One `<converter:name>` of a path.
#[derive(Debug, Clone)]
pub(crate) struct Placeholder {
    pub(crate) name: String,
    pub(crate) converter: Converter,
}

/// The placeholders of the path `lit`, in order, or an error on `lit` saying what the host
/// would refuse: no leading `/`, an unclosed `<`, an unknown converter, converter arguments,
/// an empty, invalid or repeated name.
pub(crate) fn placeholders(lit: &LitStr) -> syn::Result<Vec<Placeholder>> {
    let path = lit.value();
    let error = |message: String| syn::Error::new_spanned(lit, message);
    if !path.starts_with('/') {
        return Err(error(format!("a route path starts with `/`: {path:?}")));
    }
    let mut found: Vec<Placeholder> = Vec::new();
    let mut rest = path.as_str();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            return Err(error(format!("unclosed `<` in the route path {path:?}")));
        };
        let inner = &after[..close];
        let (converter, name) = match inner.split_once(':') {
            Some((c, n)) => (c.trim(), n.trim()),
            None => ("string", inner.trim()),
        };
        if converter.contains('(') {
            return Err(error(format!(
                "route converter arguments are not supported: `<{inner}>`"
            )));
        }
        let converter = match converter {
            "string" | "default" => Converter::Str,
            "int" => Converter::Int,
            "float" => Converter::Float,
            "path" => Converter::Path,
            other => {
                return Err(error(format!(
                    "unknown route converter `{other}` in `<{inner}>` (known: {})",
                    CONVERTERS.join(", ")
                )))
            }
        };
        if name.is_empty() {
            return Err(error(format!("`<{inner}>` has no name")));
        }
        if !is_identifier(name) {
            return Err(error(format!(
                "`{name}` in `<{inner}>` is not an identifier"
            )));
        }
        if found.iter().any(|p| p.name == name) {
            return Err(error(format!("`{name}` appears twice in the route path")));
        }
        found.push(Placeholder {
            name: name.to_owned(),
            converter,
        });
        rest = &after[close + 1..];
    }
    Ok(found)
}

/// Python's identifier rule, as the host's router applies it (ASCII).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
