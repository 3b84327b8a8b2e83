//! Static files: `GET /<addon>/static/<path>` from each loaded addon's `static/` folder.
//!
//! This module owns the safe mapping of a URL to a file and the response for it
//! (reference §10). [`StaticRoots`] holds the canonicalized `static/` folder of each addon;
//! [`StaticRoots::lookup`] maps a request path to a [`StaticFile`], whose
//! [`respond`](StaticFile::respond) builds the whole response.
//!
//! * **Raw path in.** `lookup` takes the request target's path *still percent-encoded*
//!   (no query string) and decodes each segment itself, once. A segment that is empty,
//!   `.` or `..` after decoding, or that decodes to something holding `/`, `\` or NUL, or
//!   to invalid UTF-8, is refused: so `%2e%2e`, `%2f`, `//` and absolute paths never
//!   reach the file system as such. The joined path is then canonicalized and must stay
//!   inside the canonicalized `static/` folder: a symlink leading out is refused, a
//!   symlink staying inside is followed.
//! * **Fall-through as Odoo.** Anything refused, a missing file, a directory, an unknown
//!   addon, or a path not of the `/<addon>/static/<path>` shape gives
//!   [`StaticLookup::NotStatic`]: the caller goes on with routing (404 there).
//! * **Response** (werkzeug `send_file` as Odoo calls it): `Content-Type` by extension
//!   (`; charset=utf-8` on text types, as werkzeug), `ETag` `"<mtime>-<size>-<adler32(path)>"`
//!   (Odoo's shape; the path is the canonical one), `Last-Modified`, `Expires`,
//!   `Cache-Control: public, max-age=604800` (Odoo's `STATIC_CACHE`; with no session
//!   read for static files, Odoo's `debug=assets` exception cannot apply),
//!   `X-Content-Type-Options: nosniff`, `Content-Security-Policy: default-src 'none'` on
//!   images (Odoo's `set_csp`), `Accept-Ranges: bytes`. `If-None-Match` (weak comparison,
//!   `*`) and, without it, `If-Modified-Since` give 304. One `Range: bytes=a-b` (also
//!   `a-` and `-n`) gives 206 with `Content-Range`, or 416 when unsatisfiable; several
//!   ranges or a malformed header are ignored (full 200), as is a `Range` with a
//!   non-matching `If-Range`. `HEAD` gives the headers without reading the file. Other
//!   methods get 405 with `Allow: GET, HEAD` (Odoo would serve the file).
//! * **One file, headers and body.** `lookup` opens the file and reads its size and
//!   modification time from the open descriptor (`fstat`), and `respond` reads the body from
//!   that same descriptor: a deploy that renames a new file over it in between changes
//!   neither, so the body always has the `Content-Length` and the `ETag` it is sent with
//!   (a stat, then a later open of the path, could send a longer new file cut to the old
//!   length under the old ETag, kept 7 days by caches). The open is non-blocking (a FIFO
//!   does not hang it) and takes no controlling terminal. A file that exists but cannot be
//!   opened is found, and answered 403 (permission) or 500, logged.
//! * **Streamed, never whole in memory.** A body of at most
//!   [`CHUNK_SIZE`] bytes is read at once; a larger one (whole file or range) is a
//!   [`FileBody`]: read in chunks of [`CHUNK_SIZE`] as hyper sends them, so a response
//!   holds about half a MiB whatever the file's size and the client's pace. There is no
//!   size cap.
//!
//! Lookup and `respond` do blocking file I/O (open, fstat, the first read of a small
//! file); call them from `spawn_blocking` or accept the short block. A [`FileBody`]
//! reads on the blocking pool itself. No session is involved.
//!
//! The jobs, one module each: `lookup` maps a URL to an opened file ([`StaticRoots`],
//! [`StaticFile`]), `conditional` reads the request's validators and `Range`, and
//! `stream` builds the response (Odoo's `Stream.get_response`).
//!
//! [`CHUNK_SIZE`]: super::file_body::CHUNK_SIZE
//! [`FileBody`]: super::file_body::FileBody

use std::time::Duration;

mod conditional;
mod lookup;
mod stream;
#[cfg(test)]
mod tests;

pub use lookup::{StaticFile, StaticLookup, StaticRoots};
pub use stream::StaticResponse;

/// Odoo's `STATIC_CACHE`: `max-age` for static files, 7 days.
pub const STATIC_CACHE: Duration = Duration::from_secs(60 * 60 * 24 * 7);

const LOG_TARGET: &str = "inphms.http";
