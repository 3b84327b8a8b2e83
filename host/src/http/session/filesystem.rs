//! Odoo's `FilesystemSessionStore`: one JSON file per session, written atomically,
//! with the sessions read recently kept parsed in an LRU, each served while its file is
//! unchanged: known from the folder's inotify events where the folder is watched
//! ([`super::watch`]), else checked with a `stat`.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde_json::{Map, Value};

use super::watch::{Change, Watch};
use super::{is_valid_sid, SessionData, SessionError, SessionStore, StoredSession, SID_LEN};
use super::{LOG_TARGET, TMP_SUFFIX};

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

/// A session as read: the file's identity, the session, and whether a change to its file
/// would be seen as an event of [`Watch`] (else it is checked with a `stat`).
struct Cached {
    stamp: FileStamp,
    session: StoredSession,
    watched: bool,
}

type Cache = lru::LruCache<String, Cached>;

/// What the store's lock guards: the cache and the watch of its folders.
struct State {
    cache: Cache,
    watch: Option<Watch>,
}

impl State {
    /// Drops from the cache what the changes read since the last call may have changed.
    fn drain(&mut self) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        let cache = &mut self.cache;
        watch.drain(|change| match change {
            Change::Session(sid) => {
                cache.pop(&sid);
            }
            Change::Folder(prefix) => {
                let gone: Vec<String> = cache
                    .iter()
                    .filter(|(sid, _)| sid.as_bytes()[..2] == prefix)
                    .map(|(sid, _)| sid.clone())
                    .collect();
                for sid in gone {
                    cache.pop(&sid);
                }
            }
            Change::All => cache.clear(),
        });
    }

    /// Whether the folder of `sid` is watched.
    fn watches(&self, sid: &str) -> bool {
        self.watch
            .as_ref()
            .is_some_and(|w| w.watches(prefix_of(sid)))
    }
}

/// The two-character prefix (the folder) of a valid session id.
fn prefix_of(sid: &str) -> [u8; 2] {
    let b = sid.as_bytes();
    [b[0], b[1]]
}

/// Sessions as JSON files under one directory (normally `<data_dir>/sessions`), with the
/// sessions read recently cached in memory (see the module documentation).
#[derive(Clone)]
pub struct FilesystemSessionStore {
    pub(super) dir: PathBuf,
    state: Arc<Mutex<State>>,
    /// Whether the folder's changes are watched (fixed at creation).
    watched: bool,
    /// The `stat`s of session files made so far (tests count them).
    #[cfg(test)]
    stats: Arc<std::sync::atomic::AtomicUsize>,
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
        let watch = Watch::new(&dir);
        Ok(Self::with_watch(dir, watch))
    }

    /// A store that checks each cached session with a `stat` (as on a network
    /// filesystem), whatever its folder's filesystem.
    pub fn unwatched(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        Ok(Self::with_watch(dir, None))
    }

    fn with_watch(dir: PathBuf, watch: Option<Watch>) -> Self {
        let capacity = std::num::NonZeroUsize::new(CACHE_CAPACITY).expect("not zero");
        FilesystemSessionStore {
            dir,
            #[cfg(test)]
            stats: Arc::default(),
            watched: watch.is_some(),
            state: Arc::new(Mutex::new(State {
                cache: lru::LruCache::new(capacity),
                watch,
            })),
        }
    }

    /// Whether the folder's changes are watched through inotify: cached sessions are then
    /// served without a `stat` (see [`super::watch`]).
    pub fn is_watched(&self) -> bool {
        self.watched
    }

    /// The `stat` of a session file.
    fn stat(&self, path: &Path) -> io::Result<fs::Metadata> {
        #[cfg(test)]
        self.stats
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        fs::metadata(path)
    }

    /// The `stat`s of session files made so far.
    #[cfg(test)]
    pub(super) fn stats(&self) -> usize {
        self.stats.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache(&self) -> CacheGuard<'_> {
        CacheGuard(self.state())
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

impl FilesystemSessionStore {
    /// [`SessionStore::get`] in a watched folder: the changes queued are read first, then
    /// a session cached as watched is served as it is; one that is not (read while a
    /// change was being read) is checked once with a `stat` made under the lock, right
    /// after the changes were read, so that any later change leaves an event.
    fn get_watched(&self, sid: &str) -> Result<Option<StoredSession>, SessionError> {
        let (path, epoch) = {
            let mut state = self.state();
            state.drain();
            let watches = state.watches(sid);
            let path = match state.cache.get_mut(sid) {
                Some(cached) if cached.watched => return Ok(Some(cached.session.clone())),
                Some(cached) => {
                    let path = self.path_of(sid);
                    match self.stat(&path) {
                        Ok(meta) if FileStamp::of(&meta) == cached.stamp => {
                            cached.watched = watches;
                            return Ok(Some(cached.session.clone()));
                        }
                        Ok(_) => path,
                        Err(e) => {
                            state.cache.pop(sid);
                            if e.kind() != io::ErrorKind::NotFound {
                                unreadable(&path, &e);
                            }
                            return Ok(None);
                        }
                    }
                }
                None => self.path_of(sid),
            };
            // Watched before the file is read: a change after the read leaves an event.
            if let Some(watch) = state.watch.as_mut() {
                let folder = path.parent().expect("a session path has a parent");
                watch.watch(folder, prefix_of(sid));
            }
            (path, state.watch.as_ref().map_or(0, Watch::epoch))
        };
        let Some((stamp, session)) = read(&path) else {
            self.cache().pop(sid);
            return Ok(None);
        };
        let mut state = self.state();
        state.drain();
        // A change read meanwhile (here or by another request) may have been this file's:
        // then the session is checked with a `stat` on its next read.
        let watched = state.watches(sid) && state.watch.as_ref().map_or(0, Watch::epoch) == epoch;
        state.cache.put(
            sid.to_owned(),
            Cached {
                stamp,
                session: session.clone(),
                watched,
            },
        );
        Ok(Some(session))
    }
}

/// The cache, under the store's lock.
struct CacheGuard<'a>(std::sync::MutexGuard<'a, State>);

impl std::ops::Deref for CacheGuard<'_> {
    type Target = Cache;
    fn deref(&self) -> &Cache {
        &self.0.cache
    }
}

impl std::ops::DerefMut for CacheGuard<'_> {
    fn deref_mut(&mut self) -> &mut Cache {
        &mut self.0.cache
    }
}

fn unreadable(path: &Path, e: &dyn fmt::Display) {
    tracing::warn!(target: LOG_TARGET, path = %path.display(), error = %e,
        "unreadable session file, treated as no session");
}

/// The session in the file `path` and the identity of what was read; `None` when there is
/// none (missing, unreadable or corrupt: logged).
fn read(path: &Path) -> Option<(FileStamp, StoredSession)> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            unreadable(path, &e);
            return None;
        }
    };
    // The stamp of what is read (the file may have been replaced since a stat).
    let mut text = String::new();
    let read = file.metadata().and_then(|meta| {
        io::Read::read_to_string(&mut file, &mut text).map(|_| FileStamp::of(&meta))
    });
    let stamp = match read {
        Ok(stamp) => stamp,
        Err(e) => {
            unreadable(path, &e);
            return None;
        }
    };
    match serde_json::from_str::<Map<String, Value>>(&text) {
        Ok(map) => Some((
            stamp,
            StoredSession {
                data: Arc::new(SessionData(map)),
                json: text.into(),
            },
        )),
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, path = %path.display(), error = %e,
                "corrupt session file, treated as no session");
            None
        }
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
        if self.watched {
            return self.get_watched(sid);
        }
        let path = self.path_of(sid);
        // The file's identity first: an unchanged file is served from the cache.
        let stamp = match self.stat(&path) {
            Ok(meta) => FileStamp::of(&meta),
            Err(e) => {
                self.cache().pop(sid);
                if e.kind() != io::ErrorKind::NotFound {
                    unreadable(&path, &e);
                }
                return Ok(None);
            }
        };
        if let Some(cached) = self.cache().get(sid) {
            if cached.stamp == stamp {
                return Ok(Some(cached.session.clone()));
            }
        }
        let Some((stamp, session)) = read(&path) else {
            return Ok(None);
        };
        self.cache().put(
            sid.to_owned(),
            Cached {
                stamp,
                session: session.clone(),
                watched: false,
            },
        );
        Ok(Some(session))
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

/// `mkdir -p` with mode 0700 for what it creates.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
