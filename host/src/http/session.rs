//! HTTP sessions: ids, the store trait, the filesystem store, its sweep, and the cookie.
//!
//! Odoo 18's `FilesystemSessionStore` (reference §9), made safer:
//! * a session id ([`generate_sid`]) is 63 random bytes in URL-safe base64: 84 characters
//!   of `[A-Za-z0-9_-]`. [`is_valid_sid`] checks that shape byte by byte, and every store
//!   operation checks it **before any file access**: an invalid id (`../../etc/passwd`, 83
//!   or 85 characters, non-base64) never reaches a system call;
//! * [`FilesystemSessionStore`] keeps one JSON object per session at
//!   `<dir>/<sid[0:2]>/<sid>`; it writes a temporary file in that same folder and renames
//!   it over the target, so a reader never sees a torn file. Folders it creates are 0700,
//!   files 0600. It does not fsync (as Odoo): a rename is atomic, not durable across a
//!   power loss, which for sessions only means a logout;
//! * a corrupt or unreadable session file counts as no session: it is logged under the
//!   target `inphms.http` and [`SessionStore::get`] answers `Ok(None)`, never an error;
//! * expired files are removed by [`sweep`] (7 days, by file mtime, as Odoo's `vacuum`),
//!   meant for a background task run at most every [`SWEEP_INTERVAL`]; the caller
//!   schedules it, never on the start-up path. Temporary files left by a write that was cut
//!   short (a SIGKILL between create and rename) are removed once older than
//!   [`TMP_MAX_AGE`], by the sweep and by
//!   [`FilesystemSessionStore::remove_stale_temporaries`] (at start, off the start-up path).
//!
//! * the store keeps the sessions it read in an LRU cache ([`CACHE_CAPACITY`] entries),
//!   each with the identity of the file it came from (inode, size, mtime): a read costs
//!   one `stat` and no parse when the file did not change. A file replaced by another
//!   process (another host sharing the folder) has a new inode, so the cache never serves
//!   a session older than its file.
//!
//! The store methods do blocking file I/O on small files; call them from
//! `spawn_blocking` (or accept the short block). What the application decides (when to
//! save, rotation on login and logout, not adopting an unknown id) lives with the caller;
//! this module gives it the pieces: [`SessionData::default_session`],
//! [`SessionData::fill_defaults`], [`SessionStore::rotate`], [`session_cookie`] and
//! [`cookie_value`].

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde_json::{Map, Value};

/// Odoo's `SESSION_LIFETIME`: 7 days, the cookie's `Max-Age` and the sweep's age limit.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60 * 24 * 7);
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "session_id";
/// Length of a session id.
pub const SID_LEN: usize = 84;
/// The sweep runs at most this often.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);

const LOG_TARGET: &str = "inphms.http";
const TMP_SUFFIX: &str = ".tmp";
/// A temporary session file older than this was left by a write cut short (a write takes
/// milliseconds): the sweep removes it.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(60);

/// A new session id: 63 random bytes (thread-local CSPRNG), URL-safe base64, 84 characters.
pub fn generate_sid() -> String {
    let mut bytes = [0u8; 63];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Odoo's `^[A-Za-z0-9_-]{84}$`, checked byte by byte.
pub fn is_valid_sid(sid: &str) -> bool {
    sid.len() == SID_LEN && sid.bytes().all(|b| SID_BYTES[usize::from(b)])
}

/// The bytes of URL-safe base64, as a table (checked per byte, twice per request).
static SID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    table
};

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
        if !is_valid_sid(sid) {
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

/// How many sessions [`FilesystemSessionStore`] keeps parsed in memory.
pub const CACHE_CAPACITY: usize = 2048;

/// What identifies one version of a session file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

type Cache = lru::LruCache<String, (FileStamp, StoredSession)>;

/// Sessions as JSON files under one directory (normally `<data_dir>/sessions`), with the
/// sessions read recently cached in memory (see the module documentation).
#[derive(Clone)]
pub struct FilesystemSessionStore {
    dir: PathBuf,
    cache: Arc<Mutex<Cache>>,
}

impl fmt::Debug for FilesystemSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilesystemSessionStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FilesystemSessionStore {
    /// A store rooted at `dir`, which is created (with its missing parents) with mode
    /// 0700 when missing, so that an unusable directory fails at start rather than on the
    /// first login. An existing directory keeps its mode.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let capacity = std::num::NonZeroUsize::new(CACHE_CAPACITY).expect("not zero");
        Ok(FilesystemSessionStore {
            dir,
            cache: Arc::new(Mutex::new(lru::LruCache::new(capacity))),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<sid[0:2]>/<sid>`; only call with a valid id.
    fn path_of(&self, sid: &str) -> PathBuf {
        debug_assert!(is_valid_sid(sid));
        // One allocation (each `Path::join` parses and allocates): this runs per request.
        let mut path =
            std::ffi::OsString::with_capacity(self.dir.as_os_str().len() + 2 + SID_LEN + 2);
        path.push(self.dir.as_os_str());
        path.push("/");
        path.push(&sid[..2]);
        path.push("/");
        path.push(sid);
        PathBuf::from(path)
    }
}

impl SessionStore for FilesystemSessionStore {
    fn store_type(&self) -> &'static str {
        "filesystem"
    }

    fn get(&self, sid: &str) -> Result<Option<StoredSession>, SessionError> {
        if !is_valid_sid(sid) {
            return Ok(None);
        }
        let path = self.path_of(sid);
        let unreadable = |e: &dyn fmt::Display| {
            tracing::warn!(target: LOG_TARGET, path = %path.display(), error = %e,
                "unreadable session file, treated as no session");
        };
        // The file's identity first: an unchanged file is served from the cache.
        let stamp = match fs::metadata(&path) {
            Ok(meta) => FileStamp::of(&meta),
            Err(e) => {
                self.cache().pop(sid);
                if e.kind() != io::ErrorKind::NotFound {
                    unreadable(&e);
                }
                return Ok(None);
            }
        };
        if let Some((cached, session)) = self.cache().get(sid) {
            if *cached == stamp {
                return Ok(Some(session.clone()));
            }
        }
        let mut file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                unreadable(&e);
                return Ok(None);
            }
        };
        // The stamp of what is read (the file may have been replaced since the stat).
        let mut text = String::new();
        let read = file.metadata().and_then(|meta| {
            io::Read::read_to_string(&mut file, &mut text).map(|_| FileStamp::of(&meta))
        });
        let stamp = match read {
            Ok(stamp) => stamp,
            Err(e) => {
                unreadable(&e);
                return Ok(None);
            }
        };
        match serde_json::from_str::<Map<String, Value>>(&text) {
            Ok(map) => {
                let session = StoredSession {
                    data: Arc::new(SessionData(map)),
                    json: text.into(),
                };
                self.cache().put(sid.to_owned(), (stamp, session.clone()));
                Ok(Some(session))
            }
            Err(e) => {
                tracing::warn!(target: LOG_TARGET, path = %path.display(), error = %e,
                    "corrupt session file, treated as no session");
                Ok(None)
            }
        }
    }

    fn save(&self, sid: &str, data: &SessionData) -> Result<(), SessionError> {
        if !is_valid_sid(sid) {
            return Err(SessionError::InvalidSid);
        }
        let json = serde_json::to_vec(&data.0).map_err(SessionError::Json)?;
        let path = self.path_of(sid);
        let folder = path.parent().expect("a session path has a parent");
        create_private_dir(folder)?;

        let mut suffix = [0u8; 6];
        rand::rng().fill_bytes(&mut suffix);
        let tmp = folder.join(format!(
            ".{sid}.{}{TMP_SUFFIX}",
            URL_SAFE_NO_PAD.encode(suffix)
        ));
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| file.write_all(&json))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        // The next read sees a new inode and reloads; drop the old version now.
        self.cache().pop(sid);
        Ok(())
    }

    fn delete(&self, sid: &str) -> Result<(), SessionError> {
        if !is_valid_sid(sid) {
            return Ok(());
        }
        self.cache().pop(sid);
        match fs::remove_file(self.path_of(sid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn vacuum(&self, max_age: Duration) -> Result<usize, SessionError> {
        self.remove_old(Some(max_age))
    }
}

impl FilesystemSessionStore {
    /// Removes the temporary files older than [`TMP_MAX_AGE`] that writes cut short left
    /// behind (sessions are left alone); how many. Blocking: call it off the start-up path.
    pub fn remove_stale_temporaries(&self) -> Result<usize, SessionError> {
        self.remove_old(None)
    }

    /// Removes session files older than `max_age` (none when `None`) and temporary files
    /// older than [`TMP_MAX_AGE`] (or `max_age`, if shorter).
    fn remove_old(&self, max_age: Option<Duration>) -> Result<usize, SessionError> {
        let now = SystemTime::now();
        let before = |age: Duration| now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        let cutoff = max_age.map(before);
        let tmp_cutoff = before(max_age.map_or(TMP_MAX_AGE, |a| a.min(TMP_MAX_AGE)));
        let top = match fs::read_dir(&self.dir) {
            Ok(top) => top,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut removed = 0;
        for shard in top.flatten() {
            // Only our own two-character shard folders (not followed through symlinks).
            let name = shard.file_name();
            let is_shard = name.len() == 2
                && name
                    .as_encoded_bytes()
                    .iter()
                    .all(|&b| SID_BYTES[usize::from(b)]);
            if !is_shard || !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let files = match fs::read_dir(shard.path()) {
                Ok(files) => files,
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, path = %shard.path().display(), error = %e,
                        "cannot list session folder");
                    continue;
                }
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                let cutoff = if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
                    tmp_cutoff
                } else if is_valid_sid(&name) {
                    match cutoff {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    continue;
                };
                if !file.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let old = file
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|mtime| mtime < cutoff);
                if !old {
                    continue;
                }
                match fs::remove_file(file.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(target: LOG_TARGET, path = %file.path().display(), error = %e,
                            "cannot remove expired session file");
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// `mkdir -p` with mode 0700 for what it creates.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// One sweep for the background task: vacuums records older than `max_age` (normally
/// [`SESSION_LIFETIME`]), logs the outcome, and returns how many were removed (0 on error).
pub fn sweep(store: &dyn SessionStore, max_age: Duration) -> usize {
    match store.vacuum(max_age) {
        Ok(n) => {
            tracing::debug!(target: LOG_TARGET, removed = n, "session sweep done");
            n
        }
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, error = %e, "session sweep failed");
            0
        }
    }
}

/// The `Set-Cookie` value for a session, lasting [`SESSION_LIFETIME`].
pub fn session_cookie(sid: &str, secure: bool) -> String {
    session_cookie_with_max_age(sid, SESSION_LIFETIME.as_secs(), secure)
}

/// The `Set-Cookie` value for a session with another `Max-Age` (Odoo's ICP
/// `sessions.max_inactivity_seconds`). Attributes in werkzeug's `dump_cookie` order:
/// `session_id=<sid>; Max-Age=<n>; [Secure; ]HttpOnly; Path=/; SameSite=Lax`. Unlike
/// Odoo, no `Expires` one year ahead: `Max-Age` alone bounds the cookie.
pub fn session_cookie_with_max_age(sid: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "Secure; " } else { "" };
    format!("{SESSION_COOKIE}={sid}; Max-Age={max_age}; {secure}HttpOnly; Path=/; SameSite=Lax")
}

/// The value of cookie `name` in a `Cookie` request header value (`a=1; b=2`), first one
/// wins as in werkzeug; surrounding double quotes are removed. Call once per `Cookie`
/// header line.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        Some(
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn store() -> (tempfile::TempDir, FilesystemSessionStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = FilesystemSessionStore::new(tmp.path().join("data/sessions")).unwrap();
        (tmp, store)
    }

    /// A store whose root was replaced by a regular file: any file access under it fails.
    fn store_over_a_file() -> (tempfile::TempDir, FilesystemSessionStore) {
        let (tmp, store) = store();
        fs::remove_dir(store.dir()).unwrap();
        fs::write(store.dir(), b"x").unwrap();
        (tmp, store)
    }

    #[test]
    fn new_creates_the_folder_0700_or_fails() {
        let (tmp, store) = store();
        assert!(store.dir().is_dir());
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&tmp.path().join("data")), 0o700);
        FilesystemSessionStore::new(store.dir()).unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(FilesystemSessionStore::new(file.join("sessions")).is_err());
    }

    fn set_mtime(path: &Path, age: Duration) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn ids_are_84_url_safe_characters_and_unique() {
        let a = generate_sid();
        let b = generate_sid();
        assert_eq!(a.len(), SID_LEN);
        assert!(is_valid_sid(&a) && is_valid_sid(&b));
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 63);
    }

    #[test]
    fn validation_rejects_bad_shapes() {
        let good = "A".repeat(84);
        assert!(is_valid_sid(&good));
        assert!(is_valid_sid(&format!("{}-_", "a".repeat(82))));
        assert!(!is_valid_sid(&"A".repeat(83)));
        assert!(!is_valid_sid(&"A".repeat(85)));
        assert!(!is_valid_sid(""));
        assert!(!is_valid_sid("../../etc/passwd"));
        assert!(!is_valid_sid(&format!("../{}", "A".repeat(81))));
        assert!(!is_valid_sid(&format!("{}+/", "A".repeat(82))));
        assert!(!is_valid_sid(&format!("{}=", "A".repeat(83))));
        assert!(!is_valid_sid(&format!("{}\0", "A".repeat(83))));
        // 84 bytes but multi-byte characters.
        assert!(!is_valid_sid(&format!("{}é", "A".repeat(82))));
    }

    #[test]
    fn default_session_has_odoo_keys() {
        let d = SessionData::default_session();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"context": {}, "db": null, "debug": "", "login": null,
                "uid": null, "session_token": null, "_trace": []})
        );
        let mut partial = SessionData::default();
        partial.insert("uid".into(), serde_json::json!(2));
        partial.fill_defaults();
        assert_eq!(partial["uid"], serde_json::json!(2));
        assert_eq!(partial.len(), 7);
    }

    #[test]
    fn save_get_layout_and_modes() {
        let (_tmp, store) = store();
        let sid = store.new_sid();
        assert!(store.get(&sid).unwrap().is_none());
        assert!(
            fs::read_dir(store.dir()).unwrap().next().is_none(),
            "reading must not create anything"
        );

        let mut data = SessionData::default_session();
        data.insert("login".into(), serde_json::json!("admin"));
        store.save(&sid, &data).unwrap();

        let file = store.dir().join(&sid[..2]).join(&sid);
        assert!(file.is_file());
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&store.dir().join(&sid[..2])), 0o700);
        let on_disk: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk["login"], "admin");
        assert_eq!(
            store.get(&sid).unwrap().map(|s| (*s.data).clone()),
            Some(data.clone())
        );

        // Overwrite: no temporary file left behind, content replaced.
        data.insert("uid".into(), serde_json::json!(2));
        store.save(&sid, &data).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 2);
        let names: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(&sid)]);
    }

    #[test]
    fn invalid_ids_never_touch_the_filesystem() {
        // The store root is a *file*: any file access under it would fail with an error,
        // and a save would fail creating the folder. Invalid ids must not get that far.
        let (tmp, store) = store_over_a_file();
        let passwd_like = tmp.path().join("data/etc_passwd");
        fs::write(&passwd_like, b"{}").unwrap();
        let bad = [
            "../../etc/passwd".to_owned(),
            "../etc_passwd".to_owned(),
            format!("../{}", "A".repeat(81)),
            "A".repeat(83),
            "A".repeat(85),
            format!("{}+", "A".repeat(83)),
            format!("{}.", "A".repeat(83)),
            String::new(),
        ];
        for sid in &bad {
            assert!(store.get(sid).unwrap().is_none(), "{sid}");
            assert!(matches!(
                store.save(sid, &SessionData::default()),
                Err(SessionError::InvalidSid)
            ));
            store.delete(sid).unwrap();
            assert!(is_valid_sid(&store.rotate(sid).unwrap()));
        }
        assert_eq!(fs::read(store.dir()).unwrap(), b"x");
        assert_eq!(fs::read(&passwd_like).unwrap(), b"{}");
        // A valid id does reach the filesystem (and fails there), proving the setup.
        assert!(matches!(
            store.save(&generate_sid(), &SessionData::default()),
            Err(SessionError::Io(_))
        ));
        assert!(store.delete(&generate_sid()).is_err());
    }

    #[test]
    fn corrupt_or_unreadable_files_count_as_no_session() {
        let (_tmp, store) = store();
        let sid = generate_sid();
        store.save(&sid, &SessionData::default_session()).unwrap();
        let file = store.dir().join(&sid[..2]).join(&sid);

        fs::write(&file, b"{\"db\": tru").unwrap();
        assert!(store.get(&sid).unwrap().is_none());
        fs::write(&file, b"[1, 2]").unwrap();
        assert!(store.get(&sid).unwrap().is_none());
        fs::write(&file, b"").unwrap();
        assert!(store.get(&sid).unwrap().is_none());

        // A directory where the file should be: unreadable, still no error.
        fs::remove_file(&file).unwrap();
        fs::create_dir(&file).unwrap();
        assert!(store.get(&sid).unwrap().is_none());
        fs::remove_dir(&file).unwrap();

        // The corrupt record can be replaced by a good one.
        store.save(&sid, &SessionData::default_session()).unwrap();
        assert!(store.get(&sid).unwrap().is_some());
    }

    #[test]
    fn cached_reads_follow_the_file() {
        let (_tmp, store) = store();
        let sid = generate_sid();
        let mut data = SessionData::default_session();
        data.insert("uid".into(), 1.into());
        store.save(&sid, &data).unwrap();
        let first = store.get(&sid).unwrap().unwrap();
        // Unchanged file: the cached value itself.
        let again = store.get(&sid).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first.data, &again.data));
        assert_eq!(&*again.json, serde_json::to_string(&data.0).unwrap());
        // Another host sharing the folder replaces the file.
        let other = FilesystemSessionStore::new(store.dir()).unwrap();
        data.insert("uid".into(), 2.into());
        other.save(&sid, &data).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 2);
        // Rewritten in place, same size.
        std::thread::sleep(Duration::from_millis(5));
        let path = store.dir().join(&sid[..2]).join(&sid);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("\"uid\":2", "\"uid\":3");
        fs::write(&path, text).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 3);
        // Removed by another host: gone here too.
        other.delete(&sid).unwrap();
        assert!(store.get(&sid).unwrap().is_none());
    }

    #[test]
    fn delete_and_rotate() {
        let (_tmp, store) = store();
        let old = generate_sid();
        store.save(&old, &SessionData::default_session()).unwrap();
        let new = store.rotate(&old).unwrap();
        assert!(is_valid_sid(&new));
        assert_ne!(new, old);
        assert!(store.get(&old).unwrap().is_none());
        assert!(!store.dir().join(&old[..2]).join(&old).exists());
        assert!(store.get(&new).unwrap().is_none(), "rotate saves nothing");
        // Unknown and invalid ids are fine.
        store.delete(&old).unwrap();
        assert!(is_valid_sid(&store.rotate("garbage").unwrap()));
    }

    #[test]
    fn vacuum_removes_only_old_session_files() {
        let (_tmp, store) = store();
        let (old, fresh) = (generate_sid(), generate_sid());
        store.save(&old, &SessionData::default_session()).unwrap();
        store.save(&fresh, &SessionData::default_session()).unwrap();
        let old_path = store.dir().join(&old[..2]).join(&old);
        set_mtime(&old_path, SESSION_LIFETIME + Duration::from_secs(60));

        // Old files that are not sessions are left alone, in a shard and at the top.
        let shard = old_path.parent().unwrap();
        let stranger = shard.join("notes.txt");
        fs::write(&stranger, b"keep").unwrap();
        set_mtime(&stranger, SESSION_LIFETIME * 2);
        let top_level = store.dir().join(&old);
        fs::write(&top_level, b"{}").unwrap();
        set_mtime(&top_level, SESSION_LIFETIME * 2);
        // A stale temporary file is collected.
        let stale_tmp = shard.join(format!(".{old}.abcdefgh.tmp"));
        fs::write(&stale_tmp, b"{").unwrap();
        set_mtime(&stale_tmp, SESSION_LIFETIME * 2);

        assert_eq!(sweep(&store, SESSION_LIFETIME), 2);
        assert!(!old_path.exists() && !stale_tmp.exists());
        assert!(store.get(&fresh).unwrap().is_some());
        assert!(stranger.exists() && top_level.exists());
        assert_eq!(store.vacuum(SESSION_LIFETIME).unwrap(), 0);

        // A store whose folder has gone has nothing to sweep.
        let (_tmp2, gone) = self::store();
        fs::remove_dir(gone.dir()).unwrap();
        assert_eq!(gone.vacuum(SESSION_LIFETIME).unwrap(), 0);
    }

    #[test]
    fn temporaries_left_by_a_cut_write_go_after_a_minute() {
        let (_tmp, store) = store();
        let sid = generate_sid();
        store.save(&sid, &SessionData::default_session()).unwrap();
        let path = store.dir().join(&sid[..2]).join(&sid);
        set_mtime(&path, TMP_MAX_AGE * 3);
        let shard = path.parent().unwrap();
        let stale = shard.join(format!(".{sid}.abcdefgh.tmp"));
        fs::write(&stale, b"").unwrap();
        set_mtime(&stale, TMP_MAX_AGE * 2);
        let fresh = shard.join(format!(".{sid}.ijklmnop.tmp"));
        fs::write(&fresh, b"").unwrap();

        assert_eq!(store.remove_stale_temporaries().unwrap(), 1);
        assert!(!stale.exists(), "the stale temporary goes");
        assert!(fresh.exists(), "a write in progress stays");
        assert!(store.get(&sid).unwrap().is_some(), "sessions stay");

        // The sweep takes them too, at their own age, not the sessions'.
        set_mtime(&fresh, TMP_MAX_AGE * 2);
        assert_eq!(sweep(&store, SESSION_LIFETIME), 1);
        assert!(!fresh.exists() && path.exists());
    }

    #[test]
    fn sweep_reports_zero_on_error() {
        let (_tmp, store) = store_over_a_file();
        assert!(store.vacuum(SESSION_LIFETIME).is_err());
        assert_eq!(sweep(&store, SESSION_LIFETIME), 0);
    }

    #[test]
    fn cookies() {
        let sid = "A".repeat(84);
        assert_eq!(
            session_cookie(&sid, false),
            format!("session_id={sid}; Max-Age=604800; HttpOnly; Path=/; SameSite=Lax")
        );
        assert_eq!(
            session_cookie(&sid, true),
            format!("session_id={sid}; Max-Age=604800; Secure; HttpOnly; Path=/; SameSite=Lax")
        );
        assert_eq!(
            session_cookie_with_max_age("x", 60, false),
            "session_id=x; Max-Age=60; HttpOnly; Path=/; SameSite=Lax"
        );
    }

    #[test]
    fn cookie_parsing() {
        assert_eq!(cookie_value("session_id=abc", "session_id"), Some("abc"));
        assert_eq!(
            cookie_value("frontend_lang=en_US; session_id=abc; tz=UTC", "session_id"),
            Some("abc")
        );
        assert_eq!(
            cookie_value("a=1;session_id = \"q\" ", "session_id"),
            Some("q")
        );
        assert_eq!(
            cookie_value("session_id=1; session_id=2", "session_id"),
            Some("1")
        );
        assert_eq!(
            cookie_value("xsession_id=1; session_idx=2", "session_id"),
            None
        );
        assert_eq!(cookie_value("session_id", "session_id"), None);
        assert_eq!(cookie_value("", "session_id"), None);
        assert_eq!(cookie_value("session_id=", "session_id"), Some(""));
        assert_eq!(cookie_value("k=a=b", "k"), Some("a=b"));
    }
}
