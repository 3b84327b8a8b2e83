//! What every session store is: the [`SessionStore`] trait, a session's content
//! ([`SessionData`]), a session as read ([`StoredSession`]) and the store's error.

use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::generate_sid;

/// The content of a session: a JSON object, with Odoo's keys by default.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SessionData(pub Map<String, Value>);

impl SessionData {
    /// Odoo's `get_default_session()`: `context` {}, `db` null, `debug` "", `login` null,
    /// `uid` null, `session_token` null, `_trace` [].
    pub fn default_session() -> SessionData {
        let mut data = SessionData(Map::new());
        data.fill_defaults();
        data
    }

    /// The value of `key`. A session has a handful of keys (Odoo's seven and an addon's
    /// few): up to [`SessionData::SCANNED`] of them are compared in order, which costs a
    /// fraction of hashing the key with the map's SipHash; a larger session is looked up.
    pub fn value(&self, key: &str) -> Option<&Value> {
        if self.0.len() <= Self::SCANNED {
            return self
                .0
                .iter()
                .find(|(k, _)| k.as_str() == key)
                .map(|(_, v)| v);
        }
        self.0.get(key)
    }

    /// The size up to which [`SessionData::value`] compares keys in order.
    const SCANNED: usize = 16;

    /// Wraps a JSON object as it is.
    pub fn from_map(map: Map<String, Value>) -> SessionData {
        SessionData(map)
    }

    /// The JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// Adds each missing default key (Odoo does so on every load); present keys stay.
    pub fn fill_defaults(&mut self) {
        let serde_json::Value::Object(defaults) = serde_json::json!({
            "context": {}, "db": null, "debug": "", "login": null, "uid": null,
            "session_token": null, "_trace": [],
        }) else {
            unreachable!("a JSON object literal")
        };
        for (key, value) in defaults {
            self.0.entry(key).or_insert(value);
        }
    }
}

impl Deref for SessionData {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for SessionData {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// A store failure (the client never sees it as such: the caller logs it and goes on).
#[derive(Debug)]
pub enum SessionError {
    /// The id is not 84 URL-safe base64 characters; nothing was touched.
    InvalidSid,
    /// The file system refused.
    Io(io::Error),
    /// The data could not be serialized.
    Json(serde_json::Error),
    /// The store's database cannot be reached now (the PostgreSQL store): the request is
    /// answered 503, never served as logged out.
    Unavailable(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::InvalidSid => f.write_str("invalid session id"),
            SessionError::Io(e) => write!(f, "session store I/O error: {e}"),
            SessionError::Json(e) => write!(f, "session serialization error: {e}"),
            SessionError::Unavailable(e) => write!(f, "session store unavailable: {e}"),
        }
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SessionError::InvalidSid | SessionError::Unavailable(_) => None,
            SessionError::Io(e) => Some(e),
            SessionError::Json(e) => Some(e),
        }
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(e)
    }
}

/// Where sessions live. Every method must reject an invalid id before touching storage.
pub trait SessionStore: Send + Sync {
    /// A fresh id (nothing is stored until [`save`](Self::save)).
    fn new_sid(&self) -> String {
        generate_sid()
    }

    /// The stored session. `Ok(None)` for an invalid id, an unknown id, or an unreadable or
    /// corrupt record (logged).
    fn get(&self, sid: &str) -> Result<Option<StoredSession>, SessionError>;

    /// Stores `data` under `sid`, replacing any earlier record atomically.
    /// [`SessionError::InvalidSid`] for an invalid id.
    fn save(&self, sid: &str, data: &SessionData) -> Result<(), SessionError>;

    /// Removes the record; an unknown or invalid id is not an error.
    fn delete(&self, sid: &str) -> Result<(), SessionError>;

    /// Rotation (login, logout): removes the record of `old` and returns a fresh id. It
    /// saves nothing: the caller updates the data (e.g. the session token, which depends on
    /// the id) and saves it under the new id.
    fn rotate(&self, old: &str) -> Result<String, SessionError> {
        self.delete(old)?;
        Ok(self.new_sid())
    }

    /// Removes the records not written for `max_age`; returns how many.
    fn vacuum(&self, max_age: Duration) -> Result<usize, SessionError>;

    /// The store's type (`session_store`: `filesystem`, ...), the `store` label of the
    /// sessions' metrics.
    fn store_type(&self) -> &'static str;

    /// Stores `data` under `sid` only while the store has that id (a save under the same
    /// id: a session logged out meanwhile is never brought back); `Ok(false)`: it is gone,
    /// nothing written. [`SessionError::InvalidSid`] for an invalid id.
    fn update(&self, sid: &str, data: &SessionData) -> Result<bool, SessionError> {
        if !super::is_valid_sid(sid) {
            return Err(SessionError::InvalidSid);
        }
        match self.get(sid)? {
            Some(_) => self.save(sid, data).map(|()| true),
            None => Ok(false),
        }
    }
}

/// A session as the store gives it: the content, and the same content as JSON text (what
/// a handler receives), shared with the store's cache.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    /// The content.
    pub data: Arc<SessionData>,
    /// `data` as a JSON object.
    pub json: Arc<str>,
}
