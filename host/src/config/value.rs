//! Typed option values: how each Rust type of a [`Config`](super::Config) field is read from
//! a TOML value, from the text of a flag or an environment variable, and written back to TOML.

use super::paths;
use std::fmt;
use std::path::PathBuf;

/// Where a raw value comes from, before it is typed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input<'a> {
    /// A value of the config file.
    Toml(&'a toml::Value),
    /// The text of an environment variable.
    Text(&'a str),
    /// The values of every occurrence of a flag, in order.
    Texts(&'a [String]),
}

impl fmt::Display for Input<'_> {
    /// The value as the user wrote it: TOML syntax for the file, quoted text otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Toml(v) => write!(f, "{v}"),
            Input::Text(s) => write!(f, "{s:?}"),
            Input::Texts(items) => write!(f, "{:?}", items.join(",")),
        }
    }
}

/// Why a value was refused: what was expected and, when it is not the whole value, the part
/// at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    /// What was expected, e.g. `a port number from 1 to 65535`.
    pub expected: String,
    /// The offending part (quoted), when it is not the whole value.
    pub value: Option<String>,
}

impl Reject {
    /// A refusal of the whole value.
    pub fn expected(expected: impl Into<String>) -> Reject {
        Reject {
            expected: expected.into(),
            value: None,
        }
    }

    /// A refusal of the part `value` of the value.
    pub fn part(value: &str, expected: impl Into<String>) -> Reject {
        Reject {
            expected: expected.into(),
            value: Some(format!("{value:?}")),
        }
    }
}

/// What kind of command-line flag a type takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One value; the last occurrence wins.
    Scalar,
    /// `--flag` alone means true; `--flag=false` is accepted.
    Bool,
    /// Comma-separated values; occurrences add up.
    List,
}

/// A type a configuration option can have.
pub(crate) trait OptValue: Sized {
    /// The flag kind.
    const KIND: Kind;
    /// Reads a value of the config file.
    fn from_toml(v: &toml::Value) -> Result<Self, Reject>;
    /// Reads the text of a flag or of an environment variable.
    fn from_text(s: &str) -> Result<Self, Reject>;
    /// Reads every occurrence of a flag (the last one, unless the type is a list).
    fn from_texts(items: &[String]) -> Result<Self, Reject> {
        Self::from_text(items.last().map(String::as_str).unwrap_or(""))
    }
    /// The value as written by `--save`, or `None` to leave the key out.
    fn to_toml(&self) -> Option<toml::Value>;

    /// Reads `input`.
    fn parse(input: Input<'_>) -> Result<Self, Reject> {
        match input {
            Input::Toml(v) => Self::from_toml(v),
            Input::Text(s) => Self::from_text(s),
            Input::Texts(items) => Self::from_texts(items),
        }
    }
}

impl OptValue for String {
    const KIND: Kind = Kind::Scalar;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| Reject::expected("a string"))
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        Ok(s.to_owned())
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.clone()))
    }
}

/// `false` or an empty string in the file means "not set", as Odoo's `False`.
fn is_unset(v: &toml::Value) -> bool {
    matches!(v, toml::Value::Boolean(false)) || v.as_str().is_some_and(|s| s.trim().is_empty())
}

impl OptValue for Option<String> {
    const KIND: Kind = Kind::Scalar;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        if is_unset(v) {
            return Ok(None);
        }
        v.as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or_else(|| Reject::expected("a string (or false for none)"))
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().map(|s| toml::Value::String(s.clone()))
    }
}

impl OptValue for bool {
    const KIND: Kind = Kind::Bool;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        v.as_bool()
            .ok_or_else(|| Reject::expected("a boolean (true or false)"))
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "all" => Ok(true),
            "false" | "0" | "no" | "off" | "none" => Ok(false),
            _ => Err(Reject::expected("a boolean (true or false)")),
        }
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*self))
    }
}

/// Integers: TOML integers in the file, decimal text elsewhere; always within the type's
/// range (and within TOML's, so that `--save` can write them).
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl OptValue for $t {
            const KIND: Kind = Kind::Scalar;
            fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
                v.as_integer()
                    .and_then(|i| <$t>::try_from(i).ok())
                    .ok_or_else(|| Reject::expected(int_expected::<$t>()))
            }
            fn from_text(s: &str) -> Result<Self, Reject> {
                s.trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|i| <$t>::try_from(i).ok())
                    .ok_or_else(|| Reject::expected(int_expected::<$t>()))
            }
            fn to_toml(&self) -> Option<toml::Value> {
                i64::try_from(*self).ok().map(toml::Value::Integer)
            }
        }
    )*};
}

int_value!(u16, u32, u64, usize, i64);

/// Non-negative decimal numbers (seconds, as Odoo's float options): a TOML float or
/// integer in the file, decimal text elsewhere.
impl OptValue for f64 {
    const KIND: Kind = Kind::Scalar;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        v.as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| Reject::expected("a non-negative number"))
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| Reject::expected("a non-negative number"))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Float(*self))
    }
}

/// `an integer from MIN to MAX`, clamped to TOML's integer range.
fn int_expected<T: Bounded>() -> String {
    let min: i64 = T::MIN_I64;
    let max: i64 = T::MAX_I64;
    if max == i64::MAX && min == 0 {
        "a non-negative integer".to_owned()
    } else if max == i64::MAX {
        "an integer".to_owned()
    } else {
        format!("an integer from {min} to {max}")
    }
}

/// The bounds of an integer type, as `i64` (saturated).
trait Bounded {
    const MIN_I64: i64;
    const MAX_I64: i64;
}

macro_rules! bounded {
    ($($t:ty),*) => {$(
        impl Bounded for $t {
            const MIN_I64: i64 = if (<$t>::MIN as i128) < (i64::MIN as i128) { i64::MIN } else { <$t>::MIN as i64 };
            const MAX_I64: i64 = if (<$t>::MAX as i128) > (i64::MAX as i128) { i64::MAX } else { <$t>::MAX as i64 };
        }
    )*};
}

bounded!(u16, u32, u64, usize, i64);

impl OptValue for Option<u16> {
    const KIND: Kind = Kind::Scalar;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        if is_unset(v) {
            return Ok(None);
        }
        u16::from_toml(v).map(Some)
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        u16::from_text(s).map(Some)
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.and_then(|p| p.to_toml())
    }
}

/// Splits a comma-separated text into trimmed, non-empty items.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// The items of a list value in the file: an array of strings or one comma-separated string.
fn toml_items(v: &toml::Value, what: &str) -> Result<Vec<String>, Reject> {
    let expected = || {
        Reject::expected(format!(
            "{what} (an array of strings or a comma-separated string)"
        ))
    };
    match v {
        toml::Value::String(s) => Ok(split_list(s).map(str::to_owned).collect()),
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(expected)?;
                out.extend(split_list(s).map(str::to_owned));
            }
            Ok(out)
        }
        _ => Err(expected()),
    }
}

/// The items of every occurrence of a list flag.
fn text_items(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| split_list(s).map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Lists of items that can be read from text: names, paths and networks.
trait ListItem: Sized {
    /// What a list of these is, e.g. `a list of names`.
    const WHAT: &'static str;
    fn from_item(s: &str) -> Result<Self, Reject>;
    fn to_item(&self) -> String;
}

impl ListItem for String {
    const WHAT: &'static str = "a list of names";
    fn from_item(s: &str) -> Result<Self, Reject> {
        Ok(s.to_owned())
    }
    fn to_item(&self) -> String {
        self.clone()
    }
}

impl ListItem for PathBuf {
    const WHAT: &'static str = "a list of paths";
    fn from_item(s: &str) -> Result<Self, Reject> {
        Ok(paths::expand(s))
    }
    fn to_item(&self) -> String {
        self.to_string_lossy().into_owned()
    }
}

use super::cidr::Cidr;

impl ListItem for Cidr {
    const WHAT: &'static str = "a list of networks such as 10.0.0.0/8 or ::1";
    fn from_item(s: &str) -> Result<Self, Reject> {
        s.parse()
            .map_err(|_| Reject::part(s, "a network such as 10.0.0.0/8, 192.168.1.7 or ::1/128"))
    }
    fn to_item(&self) -> String {
        self.to_string()
    }
}

impl<T: ListItem> OptValue for Vec<T> {
    const KIND: Kind = Kind::List;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        toml_items(v, T::WHAT)?
            .iter()
            .map(|s| T::from_item(s))
            .collect()
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        split_list(s).map(T::from_item).collect()
    }
    fn from_texts(items: &[String]) -> Result<Self, Reject> {
        text_items(items).iter().map(|s| T::from_item(s)).collect()
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::Array(
            self.iter()
                .map(|x| toml::Value::String(x.to_item()))
                .collect(),
        ))
    }
}

impl OptValue for PathBuf {
    const KIND: Kind = Kind::Scalar;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        match v.as_str() {
            Some(s) => Self::from_text(s),
            None => Err(Reject::expected("a path")),
        }
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        if s.trim().is_empty() {
            return Err(Reject::expected("a path"));
        }
        Ok(paths::expand(s))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        Some(toml::Value::String(self.to_string_lossy().into_owned()))
    }
}

impl OptValue for Option<PathBuf> {
    const KIND: Kind = Kind::Scalar;
    fn from_toml(v: &toml::Value) -> Result<Self, Reject> {
        if is_unset(v) {
            return Ok(None);
        }
        match v.as_str() {
            Some(s) => Self::from_text(s),
            None => Err(Reject::expected("a path (or false for none)")),
        }
    }
    fn from_text(s: &str) -> Result<Self, Reject> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(paths::expand(s)))
    }
    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref()
            .map(|p| toml::Value::String(p.to_string_lossy().into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_lists() {
        assert_eq!(u16::from_text("8069"), Ok(8069));
        assert_eq!(
            u16::from_text("70000").unwrap_err().expected,
            "an integer from 0 to 65535"
        );
        assert_eq!(
            Vec::<String>::from_texts(&["a, b".into(), "c".into()]).unwrap(),
            ["a", "b", "c"]
        );
    }
}
