//! JSON as Odoo writes it: Python's `json.dumps` separators (`", "` between items, `": "`
//! after keys), UTF-8 kept as is (`ensure_ascii=False`).
//!
//! A json route's result crosses to the host in this form, so that the host places it in
//! its JSON-RPC answer as it is, without parsing it and writing it again.
//!
//! ```
//! use serde_json::json;
//! assert_eq!(
//!     inphms_sdk::json::dumps(&json!({"a": [1, 2], "b": "é"})),
//!     r#"{"a": [1, 2], "b": "é"}"#
//! );
//! ```

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io::{self, Write};

/// The `serde_json` formatter with Python's separators.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// `value` as Python's `json.dumps(value, ensure_ascii=False)` writes it; `"null"` for a
/// value that cannot be serialized (a map with non-string keys, a failing `Serialize`).
pub fn dumps(value: &impl Serialize) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    if value.serialize(&mut ser).is_err() {
        return "null".to_owned();
    }
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_else(|_| "null".to_owned())
}
