//! Converters (werkzeug's `routing.converters`): what each `<conv:name>` matches, and the
//! [`ParamValue`] it gives.

use std::fmt;

use super::path::unescape_canonical;

/// A value captured by a converter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// From `int`.
    Int(i64),
    /// From `string`, `path` or a bare `<name>`.
    Str(String),
    /// From `float`.
    Float(f64),
}

impl ParamValue {
    /// The value as JSON, its string moved: [`ParamValue::to_json`] without a copy.
    pub fn into_json(self) -> serde_json::Value {
        match self {
            ParamValue::Str(s) => serde_json::Value::String(s),
            other => other.to_json(),
        }
    }

    /// The value as JSON, for a dispatcher's params: a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(i) => serde_json::Value::from(*i),
            ParamValue::Str(s) => serde_json::Value::String(s.clone()),
            ParamValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Str(s) => f.write_str(s),
            ParamValue::Float(x) => write!(f, "{x}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Converter {
    Str,
    Int,
    Float,
    Path,
}

impl Converter {
    pub(super) fn regex(self) -> &'static str {
        match self {
            Converter::Str => "([^/]+)",
            Converter::Int => r"(-?[0-9]+)",
            Converter::Float => r"([0-9]+\.[0-9]+)",
            Converter::Path => "([^/].*?)",
        }
    }

    /// Converts a captured (still canonical) text; `None` means "this rule does not match".
    pub(super) fn convert(self, captured: &str) -> Option<ParamValue> {
        match self {
            Converter::Int => captured.parse().ok().map(ParamValue::Int),
            Converter::Float => captured
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(ParamValue::Float),
            Converter::Str | Converter::Path => {
                Some(ParamValue::Str(unescape_canonical(captured).into_owned()))
            }
        }
    }
}
