//! [`Session`]: the request's session as the handler sees it, a JSON object with Odoo's keys
//! (`db`, `login`, `uid`, `context`...). The host loads and saves it; the handler reads and
//! changes it, and asks for rotation at login and logout.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::OnceCell;

/// The session of the current request.
///
/// ```
/// # use inphms_sdk::Session;
/// let mut session = Session::default();
/// assert_eq!(session.login(), None);
/// session.set("login", "admin");
/// assert!(session.is_dirty());
/// assert_eq!(session.login(), Some("admin"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Session<'a> {
    id: Cow<'a, str>,
    /// The content as the host sent it; parsed on first use (most handlers never look).
    raw: Cow<'a, str>,
    parsed: OnceCell<Map<String, Value>>,
    dirty: bool,
    rotate: bool,
}

impl<'a> Session<'a> {
    pub(crate) fn from_parts(id: Cow<'a, str>, json: Cow<'a, str>) -> Self {
        Session {
            id,
            raw: json,
            parsed: OnceCell::new(),
            dirty: false,
            rotate: false,
        }
    }

    /// The content, parsed from the host's JSON on first use.
    fn data(&self) -> &Map<String, Value> {
        self.parsed
            .get_or_init(|| match serde_json::from_str(&self.raw) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            })
    }

    fn data_mut(&mut self) -> &mut Map<String, Value> {
        self.data();
        self.parsed.get_mut().expect("parsed just above")
    }

    /// The session id (the `session_id` cookie).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A value, deserialized; `None` when missing or of another shape.
    ///
    /// Before anything parsed the whole session, only this value is: the other keys are
    /// skipped over in the host's text.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        if self.parsed.get().is_none() {
            if let Some(found) = crate::json_member::member(&self.raw, key) {
                return found.and_then(|raw| serde_json::from_str(raw.get()).ok());
            }
        }
        self.data().get(key).and_then(|v| T::deserialize(v).ok())
    }

    /// A raw value.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.data().get(key)
    }

    /// Sets a value; the session becomes dirty (and is saved) only if the value changed.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        if self.data().get(key) != Some(&value) {
            self.data_mut().insert(key.to_owned(), value);
            self.dirty = true;
        }
    }

    /// Removes a value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let old = self.data_mut().remove(key);
        if old.is_some() {
            self.dirty = true;
        }
        old
    }

    /// The logged-in user's login, if any.
    pub fn login(&self) -> Option<&str> {
        self.get_str("login")
    }

    /// The logged-in user's id, if any.
    pub fn uid(&self) -> Option<i64> {
        self.get("uid")
    }

    /// The session's database, if any.
    pub fn db(&self) -> Option<&str> {
        self.get_str("db")
    }

    /// A text value, borrowed: read alone from the host's text (as [`Session::get`]) when
    /// nothing parsed the session yet and the text has no escape.
    fn get_str(&self, key: &str) -> Option<&str> {
        if self.parsed.get().is_none() {
            if let Some(found) = crate::json_member::member(&self.raw, key) {
                let raw = found?.get();
                if let Ok(text) = serde_json::from_str::<&str>(raw) {
                    return Some(text);
                }
                if !raw.starts_with('"') {
                    // Not a string.
                    return None;
                }
                // A string with escapes: unescaped by the full parse below.
            }
        }
        self.data().get(key).and_then(Value::as_str)
    }

    /// Marks the session logged in as `login` (`uid`), and asks for a new session id, as
    /// Odoo's `Session.finalize` does: no session fixation. On a database, the host draws
    /// the new id and stores the session token for it (see [`session_token`]), which every
    /// later `auth = "user"` request must match.
    pub fn finalize_login(&mut self, login: &str, uid: i64) {
        self.set("login", login);
        self.set("uid", uid);
        self.rotate = true;
    }

    /// Logs out: clears everything but `debug` (and `db` with `keep_db`), asks for a new id.
    pub fn logout(&mut self, keep_db: bool) {
        let debug = self.data().get("debug").cloned();
        let db = self.data().get("db").cloned();
        let data = self.data_mut();
        data.clear();
        for (k, v) in [
            ("context", Value::Object(Map::new())),
            ("db", Value::Null),
            ("debug", Value::String(String::new())),
            ("login", Value::Null),
            ("uid", Value::Null),
            ("session_token", Value::Null),
        ] {
            data.insert(k.to_owned(), v);
        }
        if let Some(debug) = debug {
            data.insert("debug".into(), debug);
        }
        if keep_db {
            if let Some(db) = db {
                data.insert("db".into(), db);
            }
        }
        self.dirty = true;
        self.rotate = true;
    }

    /// Forces a save even though no value changed.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether a value changed.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether the id will be rotated.
    pub fn should_rotate(&self) -> bool {
        self.rotate
    }

    /// The whole content.
    pub fn as_map(&self) -> &Map<String, Value> {
        self.data()
    }

    pub(crate) fn to_json(&self) -> Cow<'_, str> {
        match self.parsed.get() {
            Some(data) => Cow::Owned(serde_json::to_string(data).unwrap_or_default()),
            None => Cow::Borrowed(&self.raw),
        }
    }
}

/// Odoo's session token (`res.users._compute_session_token(sid)`): HMAC-SHA256, keyed by
/// Python's `str()` of the tuple of `values`, over the session id `sid`, in lowercase hex.
///
/// `values` is the row of the addon's session-token query (`base` declares it in its
/// manifest: the database secret, then the user's `active`, `id`, `login` and `password`, as
/// Odoo 18 orders them), so that changing any of them ends every session of the user. The
/// host checks it on each `auth = "user"` request; `base` computes it at login.
///
/// ```
/// use inphms_sdk::{session::session_token, SqlValue};
/// let row = [
///     SqlValue::Text("secret".into()),
///     SqlValue::Bool(true),
///     SqlValue::Int(2),
///     SqlValue::Text("admin".into()),
///     SqlValue::Null,
/// ];
/// // Python: hmac.new(b"('secret', True, 2, 'admin', None)", b"sid", hashlib.sha256).hexdigest()
/// assert_eq!(
///     session_token(&row, "sid"),
///     "61cffd44e47d254417f68fd4c4dec1295c7ea735573552396295ce3800808010"
/// );
/// ```
pub fn session_token(values: &[crate::SqlValue], sid: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let key = py_tuple_repr(values);
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length: unreachable, and no token matches an empty one.
        Err(_) => return String::new(),
    };
    mac.update(sid.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        use std::fmt::Write;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Python's `str()` of a tuple of SQL values: `('a', True, 2, None)` (one value: `('a',)`).
pub fn py_tuple_repr(values: &[crate::SqlValue]) -> String {
    use crate::SqlValue;
    let mut out = String::from("(");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match v {
            SqlValue::Null => out.push_str("None"),
            SqlValue::Bool(true) => out.push_str("True"),
            SqlValue::Bool(false) => out.push_str("False"),
            SqlValue::Int(n) => out.push_str(&n.to_string()),
            SqlValue::Text(s) | SqlValue::Numeric(s) => py_str_repr(&mut out, s),
            other => py_str_repr(&mut out, &other.to_string()),
        }
    }
    if values.len() == 1 {
        out.push(',');
    }
    out.push(')');
    out
}

/// Python's `repr()` of a `str`: single quotes unless the text holds `'` and no `"`.
fn py_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::SqlValue;

    #[test]
    fn tuple_repr_matches_python() {
        // python3 -c "print(str(('8c4f', True, 2, 'ad\\'min', None, \"x\\\\y\")))"
        let row = [
            SqlValue::Text("8c4f".into()),
            SqlValue::Bool(true),
            SqlValue::Int(2),
            SqlValue::Text("ad'min".into()),
            SqlValue::Null,
            SqlValue::Text("x\\y\n".into()),
        ];
        assert_eq!(
            py_tuple_repr(&row),
            r#"('8c4f', True, 2, "ad'min", None, 'x\\y\n')"#
        );
        assert_eq!(py_tuple_repr(&[SqlValue::Int(1)]), "(1,)");
    }

    #[test]
    fn token_matches_python_hmac() {
        // python3 -c "import hmac,hashlib; print(hmac.new(b\"('s', True, 2, 'admin', '\$h')\",
        //   b'sid', hashlib.sha256).hexdigest())"
        let row = [
            SqlValue::Text("s".into()),
            SqlValue::Bool(true),
            SqlValue::Int(2),
            SqlValue::Text("admin".into()),
            SqlValue::Text("$h".into()),
        ];
        assert_eq!(session_token(&row, "sid"), PYTHON_TOKEN);
    }

    const PYTHON_TOKEN: &str = "3acbe890a43d9d6e197ff355e8e2c950cbb0fb4b4438ae066d9097cb2a0a2db3";
}

#[cfg(test)]
mod lazy_tests {
    use super::*;

    fn session(json: &str) -> Session<'_> {
        Session::from_parts(Cow::Borrowed("sid"), Cow::Borrowed(json))
    }

    /// Values read alone from the text are what the parsed map gives.
    #[test]
    fn values_read_alone_match_the_parsed_map() {
        let texts = [
            r#"{"login": "admin", "db": "d1", "uid": 2, "x": "1"}"#,
            r#"{"login": "ad\"min", "db": "d\u00e9", "uid": 2.5}"#,
            r#"{"login": 7, "db": null, "uid": "2"}"#,
            r#"{"login": "a", "login": "b"}"#,
            r#"{}"#,
            r#"not json"#,
            r#"[1]"#,
        ];
        for text in texts {
            let lazy = session(text);
            let full = session(text);
            let map = full.as_map();
            assert_eq!(
                lazy.login(),
                map.get("login").and_then(Value::as_str),
                "{text}"
            );
            assert_eq!(lazy.db(), map.get("db").and_then(Value::as_str), "{text}");
            assert_eq!(lazy.uid(), map.get("uid").and_then(Value::as_i64), "{text}");
            assert_eq!(
                lazy.get::<String>("x"),
                map.get("x").and_then(|v| v.as_str().map(str::to_owned)),
                "{text}"
            );
        }
        // After a change, the changed map answers.
        let mut s = session(r#"{"login": "admin"}"#);
        s.set("login", "other");
        assert_eq!(s.login(), Some("other"));
    }
}
