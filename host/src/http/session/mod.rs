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
//! * expired files are removed by [`sweep()`] (7 days, by file mtime, as Odoo's `vacuum`),
//!   meant for a background task run at most every [`SWEEP_INTERVAL`]; the caller
//!   schedules it, never on the start-up path. Temporary files left by a write that was cut
//!   short (a SIGKILL between create and rename) are removed once older than
//!   [`TMP_MAX_AGE`], by the sweep and by
//!   [`FilesystemSessionStore::remove_stale_temporaries`] (at start, off the start-up path).
//!
//! * the store keeps the sessions it read in an LRU cache ([`CACHE_CAPACITY`] entries),
//!   each with the identity of the file it came from (inode, size, mtime). On a local
//!   filesystem the folders are watched through inotify (`watch`): a cached session is
//!   served with no system call but one non-blocking read of the queued changes, and any
//!   change to its file, by this host or another process on this machine (another host
//!   sharing the folder), drops it before the next read. Elsewhere (a network filesystem,
//!   where another machine's changes make no event, or without inotify), a read costs one
//!   `stat`: a file replaced has a new inode, so the cache never serves a session older
//!   than its file.
//!
//! The store methods do blocking file I/O on small files; call them from
//! `spawn_blocking` (or accept the short block). What the application decides (when to
//! save, rotation on login and logout, not adopting an unknown id) lives with the caller;
//! this module gives it the pieces: [`SessionData::default_session`],
//! [`SessionData::fill_defaults`], [`SessionStore::rotate`], [`session_cookie`] and
//! [`cookie_value`].
//!
//! A file per job: `sid` (ids and their check), `store` (the [`SessionStore`] trait and
//! its types), `filesystem` (the [`FilesystemSessionStore`]), `watch` (its folders'
//! changes, through inotify), `sweep` (expired sessions and cut writes removed), `cookie`
//! (the `Set-Cookie` value and the `Cookie` parse).

use std::time::Duration;

mod cookie;
mod filesystem;
mod sid;
mod store;
mod sweep;
#[cfg(test)]
mod tests;
mod watch;

pub use cookie::{cookie_value, session_cookie, session_cookie_with_max_age};
pub use filesystem::{FilesystemSessionStore, CACHE_CAPACITY};
pub use sid::{generate_sid, is_valid_sid, SID_LEN};
pub use store::{SessionData, SessionError, SessionStore, StoredSession};
pub use sweep::sweep;

/// Odoo's `SESSION_LIFETIME`: 7 days, the cookie's `Max-Age` and the sweep's age limit.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60 * 24 * 7);
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "session_id";
/// The sweep runs at most this often.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);

const LOG_TARGET: &str = "inphms.http";
const TMP_SUFFIX: &str = ".tmp";
/// A temporary session file older than this was left by a write cut short (a write takes
/// milliseconds): the sweep removes it.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(60);
