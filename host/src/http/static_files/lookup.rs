//! URL to file: the `static/` folder of each addon ([`StaticRoots`]) and the safe mapping
//! of a raw request path to an opened file inside one ([`StaticFile`]), its `ETag` read
//! from the open descriptor.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::LOG_TARGET;

/// The `static/` folders of the loaded addons, canonicalized once.
#[derive(Debug, Clone, Default)]
pub struct StaticRoots {
    /// Looked up for every `/<addon>/static/` candidate (foldhash).
    roots: HashMap<String, PathBuf, foldhash::fast::RandomState>,
}

/// The outcome of [`StaticRoots::lookup`].
#[derive(Debug)]
pub enum StaticLookup {
    /// Not a static file: go on with routing.
    NotStatic,
    /// A regular file inside an addon's `static/` folder.
    Found(StaticFile),
}

/// A file found by [`StaticRoots::lookup`]: opened, with what its headers need read from
/// the open file.
#[derive(Debug, Clone)]
pub struct StaticFile {
    pub(super) path: PathBuf,
    /// The file opened at lookup (its body is read from it), or why it could not be.
    pub(super) file: Result<Arc<fs::File>, Arc<io::Error>>,
    pub(super) size: u64,
    pub(super) mtime: SystemTime,
    pub(super) etag: String,
}

impl StaticRoots {
    /// From `(addon name, path of its static folder)` pairs. A folder that cannot be
    /// canonicalized (missing) is skipped; a later pair replaces an earlier one of the same
    /// name (as Odoo's later addons path wins).
    pub fn new<I, S, P>(dirs: I) -> Self
    where
        I: IntoIterator<Item = (S, P)>,
        S: Into<String>,
        P: AsRef<Path>,
    {
        let mut roots = HashMap::default();
        for (name, dir) in dirs {
            let (name, dir) = (name.into(), dir.as_ref());
            match fs::canonicalize(dir) {
                Ok(canonical) if canonical.is_dir() => {
                    roots.insert(name, canonical);
                }
                _ => {
                    tracing::debug!(target: LOG_TARGET, addon = %name, dir = %dir.display(),
                        "no static folder");
                }
            }
        }
        StaticRoots { roots }
    }

    /// Number of addons with a static folder.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// True when no addon has a static folder.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The canonical static folder of `addon`.
    pub fn root(&self, addon: &str) -> Option<&Path> {
        self.roots.get(addon).map(PathBuf::as_path)
    }

    /// Maps a raw (percent-encoded, query-less) request path to a file, or says it is not
    /// a static file (see the module documentation).
    pub fn lookup(&self, raw_path: &str) -> StaticLookup {
        match self.find(raw_path) {
            Some(file) => StaticLookup::Found(file),
            None => StaticLookup::NotStatic,
        }
    }

    fn find(&self, raw_path: &str) -> Option<StaticFile> {
        let mut parts = raw_path.strip_prefix('/')?.splitn(3, '/');
        let addon = decode_segment(parts.next()?)?;
        if decode_segment(parts.next()?)? != "static" {
            return None;
        }
        let resource = parts.next()?;
        let root = self.roots.get(addon.as_ref())?;
        if resource.is_empty() {
            return None;
        }
        let mut path = root.clone();
        for segment in resource.split('/') {
            match decode_segment(segment) {
                Some(s) if !s.is_empty() && s != "." && s != ".." => path.push(s.as_ref()),
                _ => {
                    tracing::debug!(target: LOG_TARGET, path = raw_path, "refused static path");
                    return None;
                }
            }
        }
        let canonical = fs::canonicalize(&path).ok()?;
        if !canonical.starts_with(root) {
            tracing::debug!(target: LOG_TARGET, path = raw_path, "static path leads out of its folder");
            return None;
        }
        let (file, meta) = match open(&canonical) {
            Ok(file) => {
                let meta = file.metadata().ok()?;
                (Ok(Arc::new(file)), meta)
            }
            // Gone since it was canonicalized: not a file (any more).
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            // A file that may not be read is found, and answered 403 (500 for other errors).
            Err(e) => (Err(Arc::new(e)), fs::metadata(&canonical).ok()?),
        };
        if !meta.is_file() {
            return None;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let etag = format!(
            "\"{}-{}-{}\"",
            unix_secs(mtime),
            meta.len(),
            adler32(canonical.as_os_str().as_encoded_bytes())
        );
        Some(StaticFile {
            path: canonical,
            file,
            size: meta.len(),
            mtime,
            etag,
        })
    }
}

/// Opens `path` for reading without blocking on a FIFO (`O_NONBLOCK`: it has no effect on
/// the reads of a regular file) and without taking a terminal as controlling one.
fn open(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Decodes one path segment; `None` when it is not valid UTF-8 or holds `/`, `\` or NUL.
fn decode_segment(raw: &str) -> Option<Cow<'_, str>> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    if decoded.contains(['/', '\\', '\0']) {
        return None;
    }
    Some(decoded)
}

pub(super) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Adler-32, as Python's `zlib.adler32` (unsigned).
pub(super) fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that cannot overflow `b` before the modulo.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

impl StaticFile {
    /// The canonical path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes of the file opened at lookup.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The `ETag` value, quotes included.
    pub fn etag(&self) -> &str {
        &self.etag
    }
}
