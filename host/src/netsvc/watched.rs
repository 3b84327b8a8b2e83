//! [`WatchedFile`]: the `--logfile` sink, reopened when the file at its path is no longer
//! the one it writes to (moved or removed by logrotate, as Python's `WatchedFileHandler`)
//! and on request ([`request_reopen`], at SIGUSR1).
//!
//! The check is one `stat(2)` of the path before each write (a write is a batch of lines,
//! see `output`): a file moved away keeps the lines written before the move, and every
//! line after it goes to a new file at the configured path. None is lost between the two.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`request_reopen`]; taken by the next write.
// global: a signal asks the process's one log output to reopen; logging is process-wide.
static REOPEN: AtomicBool = AtomicBool::new(false);

/// Asks the log file to be reopened before its next write (SIGUSR1).
pub fn request_reopen() {
    REOPEN.store(true, Ordering::Release);
}

/// A log file that follows its path.
pub struct WatchedFile {
    path: PathBuf,
    file: File,
    /// Device and inode of `file`.
    id: (u64, u64),
}

/// Opens `path` to append (created, mode 0644 less the umask).
fn open(path: &Path) -> std::io::Result<(File, (u64, u64))> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    Ok((file, (meta.dev(), meta.ino())))
}

impl WatchedFile {
    /// Opens `path` to append.
    pub fn open(path: &Path) -> std::io::Result<WatchedFile> {
        let (file, id) = open(path)?;
        Ok(WatchedFile {
            path: path.to_owned(),
            file,
            id,
        })
    }

    /// Reopens the file when asked to or when the path no longer names it. On failure the
    /// old file is kept (lines still go somewhere).
    fn follow(&mut self) {
        let asked = REOPEN.swap(false, Ordering::AcqRel);
        let moved = match std::fs::metadata(&self.path) {
            Ok(meta) => (meta.dev(), meta.ino()) != self.id,
            Err(_) => true,
        };
        if asked || moved {
            if let Ok((file, id)) = open(&self.path) {
                let _ = self.file.flush();
                self.file = file;
                self.id = id;
            }
        }
    }
}

impl Write for WatchedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.follow();
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.follow();
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_moved_or_removed_file() {
        let dir = std::env::temp_dir().join(format!("inphms-watched-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let mut f = WatchedFile::open(&path).unwrap();
        f.write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        f.write_all(b"two\n").unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a.log.1")).unwrap(),
            "one\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
