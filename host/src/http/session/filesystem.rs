//! Odoo's `FilesystemSessionStore`: one JSON file per session, written atomically,
//! with the sessions read recently kept parsed in an LRU checked against each file.

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

type Cache = lru::LruCache<String, (FileStamp, StoredSession)>;

/// Sessions as JSON files under one directory (normally `<data_dir>/sessions`), with the
/// sessions read recently cached in memory (see the module documentation).
#[derive(Clone)]
pub struct FilesystemSessionStore {
    pub(super) dir: PathBuf,
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

/// `mkdir -p` with mode 0700 for what it creates.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
