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
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.data()
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
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
        self.data().get("login").and_then(Value::as_str)
    }

    /// The logged-in user's id, if any.
    pub fn uid(&self) -> Option<i64> {
        self.data().get("uid").and_then(Value::as_i64)
    }

    /// The session's database, if any.
    pub fn db(&self) -> Option<&str> {
        self.data().get("db").and_then(Value::as_str)
    }

    /// Marks the session logged in as `login` (`uid`), and asks for a new session id, as
    /// Odoo's `Session.finalize` does: no session fixation.
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
