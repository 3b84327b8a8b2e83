//! The session of one request: loaded once (a valid, known id from the cookie; anything
//! else is a new session that costs nothing until it is needed), changed by the host (the
//! database choice, a logout) and saved after the handler when it changed, with the id
//! rotated at login and logout. As Odoo's `_save_session`, a request that named no valid
//! session id gets the cookie of its new session on first contact even when nothing is
//! saved (no file written), on routes that may save it. The store itself is
//! [`super::session`].

use super::session::{self, SessionData, SessionError, SessionStore, StoredSession};
use inphms_sdk::abi::Outcome;
use serde_json::Value;
use std::sync::Arc;

/// The key under which the host hands a rotated session's new id (drawn where its token
/// was computed, see `application::auth`) to [`LoadedSession::save`], which removes it: it
/// is never stored, and a value that is not a valid id is ignored.
pub(crate) const NEW_SID_KEY: &str = "__inphms_new_sid";

/// The request's session, loaded once per request. A new session costs nothing until it
/// is needed: no default map is built and no id drawn for a request whose route cannot
/// save it (`/web/health` and the like).
pub(crate) struct LoadedSession {
    /// The id: `None` for a new session whose id is not drawn yet.
    pub(crate) sid: Option<String>,
    /// The content: `None` for the default session. Shared with the store's cache until
    /// changed (copied on write).
    pub(crate) data: Option<Arc<SessionData>>,
    /// `data` as JSON, while it is as loaded.
    json: Option<Arc<str>>,
    /// The content as loaded from the store, whatever the host or the handler changed
    /// since: what a save merges against (`session_merge`).
    loaded: Option<Arc<SessionData>>,
    /// No valid, known id came with the request.
    pub(crate) is_new: bool,
    /// The request's cookie named a valid session id, known or not: an unchanged session
    /// then sets no cookie. Odoo adopts such an id (so its `cookie_sid != sess.sid` is
    /// false); the host does not adopt an unknown one (a save draws a new id) but hands out
    /// no new cookie for it either until something is saved.
    sid_from_cookie: bool,
    /// The host logged the session out (its database was rejected): save it under a new id.
    pub(crate) rotate: bool,
    /// The store could not be reached to read the session (why): the request is answered
    /// 503 rather than served as logged out.
    pub(crate) unavailable: Option<String>,
}

/// The default session as JSON, what a handler sees of a new session.
fn default_session_json() -> &'static str {
    // global: a constant, serialised once
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JSON.get_or_init(|| Value::Object(SessionData::default_session().into_map()).to_string())
}

impl LoadedSession {
    /// Loads the session of the `Cookie` header: a valid, known id is loaded; anything else
    /// (no cookie, a malformed id, an unknown id, an unreadable file) is a new session: an
    /// unknown id is never adopted.
    pub(crate) fn load(store: &dyn SessionStore, cookie_header: Option<&str>) -> Self {
        let Some(sid) = cookie_header
            .and_then(|c| session::cookie_value(c, "session_id"))
            .filter(|sid| session::is_valid_sid(sid))
        else {
            return LoadedSession::new();
        };
        match store.get(sid) {
            Ok(Some(StoredSession { data, json })) => LoadedSession {
                sid: Some(sid.to_owned()),
                loaded: Some(Arc::clone(&data)),
                data: Some(data),
                json: Some(json),
                is_new: false,
                sid_from_cookie: true,
                rotate: false,
                unavailable: None,
            },
            Err(SessionError::Unavailable(why)) => LoadedSession {
                unavailable: Some(why),
                ..LoadedSession::new()
            },
            Ok(None) | Err(_) => LoadedSession {
                sid_from_cookie: true,
                ..LoadedSession::new()
            },
        }
    }

    /// Saves the session when the handler changed it (or the host logged it out),
    /// rotating the id when asked; returns the `Set-Cookie` value then, and also for an
    /// unchanged session whose id the request's cookie did not name (Odoo's
    /// `_save_session`: `if sess.is_dirty or cookie_sid != sess.sid`), the cookie set on
    /// first contact without storing anything, unless `stateless` (an `auth = "bearer"`
    /// route: Odoo's `session.can_save = False`). `Err` (why) when the store could not be
    /// reached: the answer must not claim a saved session.
    pub(crate) fn save(
        &self,
        store: &dyn SessionStore,
        locks: &super::session_merge::SaveLocks,
        outcome: &Outcome,
        secure: bool,
        stateless: bool,
    ) -> Result<Option<String>, String> {
        let mut chosen: Option<String> = None;
        let data = match outcome.session.as_ref().into_option() {
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(mut map)) => {
                    chosen = match map.remove(NEW_SID_KEY) {
                        Some(Value::String(sid)) if session::is_valid_sid(&sid) => Some(sid),
                        _ => None,
                    };
                    SessionData::from_map(map)
                }
                _ => {
                    tracing::warn!(target: "inphms.http", "handler returned a session that is not a JSON object; not saved");
                    return Ok(None);
                }
            },
            // Unchanged by the handler: saved only when the host logged it out.
            None if self.rotate => self.data.as_deref().cloned().unwrap_or_default(),
            None => {
                return Ok(match (&self.sid, self.sid_from_cookie || stateless) {
                    (Some(sid), false) => Some(session::session_cookie(sid, secure)),
                    _ => None,
                })
            }
        };
        let rotates = outcome.rotate_session || self.rotate;
        let sid = if rotates {
            if let (false, Some(old)) = (self.is_new, &self.sid) {
                if let Err(SessionError::Unavailable(why)) = store.delete(old) {
                    return Err(why);
                }
            }
            chosen.unwrap_or_else(|| store.new_sid())
        } else {
            match &self.sid {
                Some(sid) => sid.clone(),
                None => store.new_sid(),
            }
        };
        // Saved under the same id: merged into what another request or socket callback may
        // have saved meanwhile (`session_merge`).
        let _locked = locks.lock(&sid);
        let same_id = !rotates && !self.is_new && self.sid.is_some();
        let data = match (same_id, &self.loaded) {
            (true, Some(before)) => match store.get(&sid) {
                Ok(Some(current)) => SessionData::from_map(super::session_merge::merge(
                    &before.0,
                    &data.0,
                    current.data.0.clone(),
                )),
                // Logged out (or vacuumed) by another request meanwhile: not brought back.
                Ok(None) => {
                    tracing::debug!(target: "inphms.http", "session gone from the store during the request (logged out elsewhere): not saved");
                    return Ok(None);
                }
                Err(_) => data,
            },
            _ => data,
        };
        // Under the same id, written only while the store still has it (a logout on
        // another host between the read above and this write); a new or rotated id is
        // created.
        let saved = if same_id {
            store.update(&sid, &data)
        } else {
            store.save(&sid, &data).map(|()| true)
        };
        match saved {
            Ok(true) => Ok(Some(session::session_cookie(&sid, secure))),
            Ok(false) => {
                tracing::debug!(target: "inphms.http", "session gone from the store during the request (logged out elsewhere): not saved");
                Ok(None)
            }
            Err(SessionError::Unavailable(why)) => Err(why),
            Err(e) => {
                tracing::error!(target: "inphms.http", "session not saved: {e}");
                Ok(None)
            }
        }
    }

    /// A new, default session.
    pub(crate) fn new() -> Self {
        LoadedSession {
            sid: None,
            data: None,
            json: None,
            loaded: None,
            is_new: true,
            sid_from_cookie: false,
            rotate: false,
            unavailable: None,
        }
    }

    /// A value of the session.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.data.as_ref()?.value(key)
    }

    /// What the database checks read of the session ([`SessionUser`]), from its parsed
    /// content: no JSON is read again.
    pub(crate) fn user(&self) -> SessionUser {
        self.data
            .as_deref()
            .map(SessionUser::of_data)
            .unwrap_or_default()
    }

    /// Replaces a new session's default content with `data` and its JSON `json`, shared
    /// (copied on write, as a loaded session): the application's default session with its
    /// database recorded ([`DefaultSessions`]).
    pub(crate) fn share(&mut self, data: Arc<SessionData>, json: Arc<str>) {
        self.data = Some(data);
        self.json = Some(json);
    }

    /// The content, made concrete for a change.
    pub(crate) fn data_mut(&mut self) -> &mut SessionData {
        self.json = None;
        Arc::make_mut(
            self.data
                .get_or_insert_with(|| Arc::new(SessionData::default_session())),
        )
    }

    /// The id, drawn now for a new session.
    pub(crate) fn sid(&mut self, store: &dyn SessionStore) -> &str {
        self.sid.get_or_insert_with(|| store.new_sid())
    }

    /// The content as JSON, for the handler.
    pub(crate) fn json(&self) -> std::borrow::Cow<'_, str> {
        match (&self.json, &self.data) {
            (Some(json), _) => std::borrow::Cow::Borrowed(json),
            (None, Some(data)) => serde_json::to_string(&data.0).unwrap_or_default().into(),
            (None, None) => std::borrow::Cow::Borrowed(default_session_json()),
        }
    }

    /// Odoo's `Session.logout(keep_db=False)`: the defaults back, `debug` kept, a new id.
    pub(crate) fn logout(&mut self) {
        let debug = self.get("debug").cloned();
        let data = self.data_mut();
        *data = SessionData::default_session();
        if let Some(debug) = debug {
            data.insert("debug".to_owned(), debug);
        }
        self.rotate = true;
    }
}

/// What the checks before a handler on a database read of its session (the token's,
/// `auth = "bearer"`'s, the public user's): its `uid` and `session_token`. Taken from the
/// session as loaded ([`LoadedSession::user`]), so a request's JSON is not parsed again
/// for them; [`SessionUser::of_json`] when only the JSON is at hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SessionUser {
    /// `None`: nobody (`uid` absent or null); `Some(None)`: a `uid` that is not an integer.
    pub(crate) uid: Option<Option<i64>>,
    /// The session's `session_token`, when a string.
    pub(crate) token: Option<String>,
}

impl SessionUser {
    /// From a session's content.
    pub(crate) fn of_data(data: &SessionData) -> SessionUser {
        let uid = match data.value("uid") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64()),
        };
        SessionUser {
            token: match uid {
                Some(_) => data
                    .value("session_token")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                None => None,
            },
            uid,
        }
    }

    /// From a session's JSON; `None` when it is not a JSON object.
    pub(crate) fn of_json(json: &str) -> Option<SessionUser> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Some(SessionUser::of_data(&SessionData::from_map(map))),
            _ => None,
        }
    }

    /// The logged-in user's id, when an integer.
    pub(crate) fn logged_in(&self) -> Option<i64> {
        self.uid.flatten()
    }
}

/// The default session with a database recorded, by database, as the request path records
/// it in a new session (Odoo's `session.db`): built and serialised once per generation
/// (whose application owns it), then shared by every new session of that database. At
/// most [`DefaultSessions::MAX`] databases are kept (the names come from the list of
/// databases, so a few).
#[derive(Debug, Default)]
pub(crate) struct DefaultSessions(
    std::sync::Mutex<std::collections::HashMap<String, Shared, foldhash::fast::RandomState>>,
);

/// A session's content and its JSON, shared.
type Shared = (Arc<SessionData>, Arc<str>);

impl DefaultSessions {
    const MAX: usize = 64;

    /// The default session with `db` recorded, and its JSON.
    pub(crate) fn get(&self, db: &str) -> (Arc<SessionData>, Arc<str>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((data, json)) = map.get(db) {
            return (Arc::clone(data), Arc::clone(json));
        }
        let mut data = SessionData::default_session();
        data.insert("db".to_owned(), Value::String(db.to_owned()));
        let json: Arc<str> = serde_json::to_string(&data.0).unwrap_or_default().into();
        let data = Arc::new(data);
        if map.len() < Self::MAX {
            map.insert(db.to_owned(), (Arc::clone(&data), Arc::clone(&json)));
        }
        (data, json)
    }
}
