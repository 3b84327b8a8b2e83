//! The sweep: session files past their lifetime and temporary files of writes cut short
//! removed (Odoo's `vacuum`), by the hourly background task and at start.

use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use super::sid::SID_BYTES;
use super::{is_valid_sid, FilesystemSessionStore, SessionError, SessionStore};
use super::{LOG_TARGET, TMP_MAX_AGE, TMP_SUFFIX};

impl FilesystemSessionStore {
    /// Removes the temporary files older than [`TMP_MAX_AGE`] that writes cut short left
    /// behind (sessions are left alone); how many. Blocking: call it off the start-up path.
    pub fn remove_stale_temporaries(&self) -> Result<usize, SessionError> {
        self.remove_old(None)
    }

    /// Removes session files older than `max_age` (none when `None`) and temporary files
    /// older than [`TMP_MAX_AGE`] (or `max_age`, if shorter).
    pub(super) fn remove_old(&self, max_age: Option<Duration>) -> Result<usize, SessionError> {
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

/// One sweep for the background task: vacuums records older than `max_age` (normally
/// [`SESSION_LIFETIME`](super::SESSION_LIFETIME)), logs the outcome, and returns how many
/// were removed (0 on error).
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
