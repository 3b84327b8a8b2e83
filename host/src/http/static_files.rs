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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};

use super::file_body::{read_chunk, FileBody, CHUNK_SIZE};
use super::response::{self, Body};

/// Odoo's `STATIC_CACHE`: `max-age` for static files, 7 days.
pub const STATIC_CACHE: Duration = Duration::from_secs(60 * 60 * 24 * 7);

const LOG_TARGET: &str = "inphms.http";

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
    path: PathBuf,
    /// The file opened at lookup (its body is read from it), or why it could not be.
    file: Result<Arc<fs::File>, Arc<io::Error>>,
    size: u64,
    mtime: SystemTime,
    etag: String,
}

/// A complete response: status, headers, body (empty for HEAD, 304, 405, 416; streamed
/// from the file past [`CHUNK_SIZE`] bytes).
#[derive(Debug)]
pub struct StaticResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
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

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Adler-32, as Python's `zlib.adler32` (unsigned).
fn adler32(data: &[u8]) -> u32 {
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

/// werkzeug's `get_content_type`: a charset for text types.
fn content_type(path: &Path) -> Cow<'static, str> {
    let mime = mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    let with_charset = mime.starts_with("text/")
        || mime.ends_with("+xml")
        || matches!(
            mime,
            "application/ecmascript"
                | "application/javascript"
                | "application/sql"
                | "application/xml"
                | "application/xml-dtd"
                | "application/xml-external-parsed-entity"
        );
    if with_charset {
        Cow::Owned(format!("{mime}; charset=utf-8"))
    } else {
        Cow::Borrowed(mime)
    }
}

enum RangeRequest {
    /// No usable range: serve the whole file.
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; anything else (several ranges, bad syntax) is ignored.
fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value
        .trim()
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| value.trim()[6..].trim())
    else {
        return RangeRequest::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeRequest::Whole,
        (true, false) => match number(last) {
            None => RangeRequest::Whole,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part(size.saturating_sub(n), size - 1),
        },
        (false, _) => {
            let Some(start) = number(first) else {
                return RangeRequest::Whole;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) if end >= start => end,
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(start, end.min(size - 1))
            }
        }
    }
}

/// Weak comparison of one entity tag against an `If-None-Match` value.
fn etag_listed(list: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == ours)
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

    /// The `Content-Type` value.
    pub fn content_type(&self) -> Cow<'static, str> {
        content_type(&self.path)
    }

    /// The response to `method` with the request's `headers` (see the module doc), its
    /// headers and body from the file opened at lookup. A file that could not be opened
    /// gives 403 or 500; one cut shorter than its size, an empty 404 (or, mid-stream, a
    /// body ended short).
    pub fn respond(&self, method: &Method, headers: &HeaderMap) -> StaticResponse {
        let mut out = HeaderMap::new();
        if method != Method::GET && method != Method::HEAD {
            out.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response(StatusCode::METHOD_NOT_ALLOWED, out, Body::empty());
        }
        let file = match &self.file {
            Ok(file) => file,
            Err(e) => return self.unreadable(e),
        };

        let last_modified = httpdate::fmt_http_date(self.mtime);
        let expires = httpdate::fmt_http_date(SystemTime::now() + STATIC_CACHE);
        for (name, value) in [
            (header::ETAG, self.etag.as_str()),
            (header::LAST_MODIFIED, last_modified.as_str()),
            (header::EXPIRES, expires.as_str()),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                out.insert(name, value);
            }
        }
        out.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=604800"),
        );
        out.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );

        if self.not_modified(headers) {
            return response(StatusCode::NOT_MODIFIED, out, Body::empty());
        }

        let content_type = self.content_type();
        if content_type.starts_with("image/") {
            out.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            );
        }
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            out.insert(header::CONTENT_TYPE, value);
        }
        out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

        if method == Method::HEAD {
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(self.size));
            return response(StatusCode::OK, out, Body::empty());
        }

        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(value) if self.if_range_holds(headers) => parse_range(value, self.size),
            _ => RangeRequest::Whole,
        };
        match range {
            RangeRequest::Unsatisfiable => {
                out.remove(header::CONTENT_TYPE);
                out.remove(header::CONTENT_SECURITY_POLICY);
                let value = format!("bytes */{}", self.size);
                out.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&value).expect("ASCII"),
                );
                out.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
                response(StatusCode::RANGE_NOT_SATISFIABLE, out, Body::empty())
            }
            RangeRequest::Whole => match self.body(file, 0, self.size) {
                Ok(body) => {
                    out.insert(header::CONTENT_LENGTH, HeaderValue::from(self.size));
                    response(StatusCode::OK, out, body)
                }
                Err(e) => self.unreadable(&e),
            },
            RangeRequest::Part(start, end) => match self.body(file, start, end - start + 1) {
                Ok(body) => {
                    let value = format!("bytes {start}-{end}/{}", self.size);
                    out.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&value).expect("ASCII"),
                    );
                    out.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                    response(StatusCode::PARTIAL_CONTENT, out, body)
                }
                Err(e) => self.unreadable(&e),
            },
        }
    }

    /// `If-None-Match` first; `If-Modified-Since` only without it (RFC 9110 §13.2.2).
    fn not_modified(&self, headers: &HeaderMap) -> bool {
        let if_none_match: Vec<&str> = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !if_none_match.is_empty() {
            return if_none_match
                .iter()
                .any(|list| etag_listed(list, &self.etag));
        }
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
            .is_some_and(|since| unix_secs(self.mtime) <= unix_secs(since))
    }

    /// `If-Range`: absent, our exact (strong) ETag, or our exact Last-Modified date.
    fn if_range_holds(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::IF_RANGE) else {
            return true;
        };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        httpdate::parse_http_date(value).is_ok_and(|date| unix_secs(date) == unix_secs(self.mtime))
    }

    /// The `len` bytes of `file` from `offset`: read now when they fit in one chunk (so
    /// that a failure is this response's status), else streamed.
    fn body(&self, file: &Arc<fs::File>, offset: u64, len: u64) -> io::Result<Body> {
        match usize::try_from(len) {
            Ok(small) if small <= CHUNK_SIZE => Ok(Body::from(read_chunk(file, offset, small)?)),
            _ => Ok(Body::from(FileBody::new(
                Arc::clone(file),
                self.path.clone(),
                offset,
                len,
            ))),
        }
    }

    /// The answer when the file cannot be opened or read: 404 when it is gone (or shorter
    /// than its size at lookup), 403 when it may not be read, 500 otherwise.
    fn unreadable(&self, e: &io::Error) -> StaticResponse {
        tracing::warn!(target: LOG_TARGET, path = %self.path.display(), error = %e,
            "static file unreadable");
        let status = match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof => {
                return response(StatusCode::NOT_FOUND, HeaderMap::new(), Body::empty());
            }
            io::ErrorKind::PermissionDenied => 403,
            _ => 500,
        };
        let (parts, body) = response::html_error(status, None).into_parts();
        response(parts.status, parts.headers, body)
    }
}

fn response(status: StatusCode, headers: HeaderMap, body: Body) -> StaticResponse {
    StaticResponse {
        status,
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _tmp: tempfile::TempDir,
        roots: StaticRoots,
        outside: PathBuf,
    }

    /// addons/web/static/{src/app.js, img/logo.png, a b.txt, data.bin, empty.txt},
    /// a secret next to the addons, symlinks in and out.
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let web = tmp.path().join("addons/web/static");
        fs::create_dir_all(web.join("src")).unwrap();
        fs::create_dir_all(web.join("img")).unwrap();
        fs::write(web.join("src/app.js"), b"console.log(1);").unwrap();
        fs::write(web.join("img/logo.png"), b"\x89PNG....").unwrap();
        fs::write(web.join("a b.txt"), b"spaced").unwrap();
        fs::write(web.join("data.bin"), b"0123456789").unwrap();
        fs::write(web.join("empty.txt"), b"").unwrap();
        fs::write(web.join("noext"), b"?").unwrap();
        let outside = tmp.path().join("secret.txt");
        fs::write(&outside, b"secret").unwrap();
        fs::write(tmp.path().join("addons/web/__manifest__.toml"), b"x").unwrap();
        symlink(&outside, web.join("out.txt")).unwrap();
        symlink(tmp.path(), web.join("outdir")).unwrap();
        symlink(web.join("src/app.js"), web.join("inside.js")).unwrap();
        let base = tmp.path().join("addons/base/static");
        fs::create_dir_all(&base).unwrap();
        fs::write(base.join("b.css"), b"body{}").unwrap();
        let roots = StaticRoots::new([
            ("web", web.clone()),
            ("base", base),
            ("ghost", tmp.path().join("addons/ghost/static")),
        ]);
        Fixture {
            _tmp: tmp,
            roots,
            outside,
        }
    }

    fn found(roots: &StaticRoots, path: &str) -> StaticFile {
        match roots.lookup(path) {
            StaticLookup::Found(f) => f,
            StaticLookup::NotStatic => panic!("{path} not found"),
        }
    }

    fn not_static(roots: &StaticRoots, path: &str) -> bool {
        matches!(roots.lookup(path), StaticLookup::NotStatic)
    }

    /// A response with its body read whole.
    struct Got {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
        /// Whether the body was streamed from the file.
        streamed: bool,
    }

    fn collect(r: StaticResponse) -> Got {
        use http_body_util::BodyExt;
        let streamed = matches!(r.body, Body::File(_));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = rt.block_on(r.body.collect()).unwrap().to_bytes().to_vec();
        Got {
            status: r.status,
            headers: r.headers,
            body,
            streamed,
        }
    }

    fn get(file: &StaticFile, headers: &[(&'static str, &str)]) -> Got {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        collect(file.respond(&Method::GET, &map))
    }

    fn h<'a>(r: &'a Got, name: &str) -> &'a str {
        r.headers.get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn roots_skip_missing_folders() {
        let f = fixture();
        assert_eq!(f.roots.len(), 2);
        assert!(!f.roots.is_empty());
        assert!(f.roots.root("ghost").is_none());
        assert!(f.roots.root("web").unwrap().is_absolute());
    }

    #[test]
    fn finds_files() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/src/app.js");
        assert_eq!(file.size(), 15);
        assert!(file.path().ends_with("web/static/src/app.js"));
        assert_eq!(
            found(&f.roots, "/web/static/a%20b.txt").size(),
            6,
            "segments are percent-decoded"
        );
        found(&f.roots, "/w%65b/st%61tic/src/app%2Ejs");
        found(&f.roots, "/base/static/b.css");
        // A symlink that stays inside is followed; so is a detour that resolves inside.
        found(&f.roots, "/web/static/outdir/addons/web/static/src/app.js");
        assert_eq!(
            found(&f.roots, "/web/static/inside.js").path(),
            found(&f.roots, "/web/static/src/app.js").path()
        );
    }

    #[test]
    fn not_static_shapes_fall_through() {
        let f = fixture();
        for path in [
            "",
            "web/static/src/app.js",
            "/",
            "/web",
            "/web/static",
            "/web/static/",
            "/web/src/app.js",
            "/web/statics/src/app.js",
            "/unknown/static/x.js",
            "/ghost/static/x.js",
            "/web/static/missing.js",
            "/web/static/src",
            "/web/static/src/",
        ] {
            assert!(not_static(&f.roots, path), "{path}");
        }
    }

    #[test]
    fn traversal_attempts_are_refused() {
        let f = fixture();
        for path in [
            "/web/static/../__manifest__.toml",
            "/web/static/src/../../__manifest__.toml",
            "/web/static/%2e%2e/__manifest__.toml",
            "/web/static/%2E%2E/__manifest__.toml",
            "/web/static/src/%2e%2e/app.js",
            "/web/static/./src/app.js",
            "/web/static/%2e/src/app.js",
            "/web/static/src%2fapp.js",
            "/web/static/src%2Fapp.js",
            "/web/static/..%2f__manifest__.toml",
            "/web/static/src%5capp.js",
            "/web/static/src\\app.js",
            "/web/static/app.js%00",
            "/web/static//etc/passwd",
            "/web/static/%2fetc%2fpasswd",
            "/web/static/src//app.js",
            "/web/static/%ff.js",
            "/web%2fstatic/src/app.js",
            "/web/static/out.txt",
            "/web/static/outdir/secret.txt",
        ] {
            assert!(not_static(&f.roots, path), "{path}");
        }
        assert!(f.outside.exists());
    }

    #[test]
    fn full_response_headers() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/src/app.js");
        let r = get(&file, &[]);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], b"console.log(1);");
        let ct = h(&r, "content-type");
        assert!(
            ct.contains("javascript") && ct.ends_with("; charset=utf-8"),
            "{ct}"
        );
        assert_eq!(h(&r, "content-length"), "15");
        assert_eq!(h(&r, "cache-control"), "public, max-age=604800");
        assert_eq!(h(&r, "x-content-type-options"), "nosniff");
        assert_eq!(h(&r, "accept-ranges"), "bytes");
        assert!(r.headers.get("content-security-policy").is_none());
        httpdate::parse_http_date(h(&r, "expires")).unwrap();

        let meta = fs::metadata(file.path()).unwrap();
        let mtime = meta.modified().unwrap();
        assert_eq!(h(&r, "last-modified"), httpdate::fmt_http_date(mtime));
        let expected = format!(
            "\"{}-15-{}\"",
            unix_secs(mtime),
            adler32(file.path().as_os_str().as_encoded_bytes())
        );
        assert_eq!(h(&r, "etag"), expected);
        assert_eq!(file.etag(), expected);
    }

    #[test]
    fn content_types() {
        let f = fixture();
        let png = get(&found(&f.roots, "/web/static/img/logo.png"), &[]);
        assert_eq!(h(&png, "content-type"), "image/png");
        assert_eq!(h(&png, "content-security-policy"), "default-src 'none'");
        let css = found(&f.roots, "/base/static/b.css");
        assert_eq!(css.content_type(), "text/css; charset=utf-8");
        let txt = found(&f.roots, "/web/static/a%20b.txt");
        assert_eq!(txt.content_type(), "text/plain; charset=utf-8");
        let other = found(&f.roots, "/web/static/noext");
        assert_eq!(other.content_type(), "application/octet-stream");
    }

    #[test]
    fn conditional_requests() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/src/app.js");
        let etag = file.etag().to_owned();
        let lm = httpdate::fmt_http_date(fs::metadata(file.path()).unwrap().modified().unwrap());

        let r = get(&file, &[("if-none-match", &etag)]);
        assert_eq!(r.status, StatusCode::NOT_MODIFIED);
        assert!(r.body.is_empty());
        assert_eq!(h(&r, "etag"), etag);
        assert_eq!(h(&r, "x-content-type-options"), "nosniff");
        assert!(r.headers.get("content-length").is_none());

        let list = format!("\"nope\", W/{etag}");
        assert_eq!(
            get(&file, &[("if-none-match", &list)]).status,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&file, &[("if-none-match", "*")]).status,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get(&file, &[("if-none-match", "\"other\"")]).status,
            StatusCode::OK
        );

        assert_eq!(
            get(&file, &[("if-modified-since", &lm)]).status,
            StatusCode::NOT_MODIFIED
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        assert_eq!(
            get(&file, &[("if-modified-since", &later)]).status,
            StatusCode::NOT_MODIFIED
        );
        let earlier = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(
            get(&file, &[("if-modified-since", &earlier)]).status,
            StatusCode::OK
        );
        assert_eq!(
            get(&file, &[("if-modified-since", "garbage")]).status,
            StatusCode::OK
        );
        // If-None-Match wins over If-Modified-Since.
        let r = get(
            &file,
            &[("if-none-match", "\"other\""), ("if-modified-since", &lm)],
        );
        assert_eq!(r.status, StatusCode::OK);
        // HEAD revalidates too.
        let mut map = HeaderMap::new();
        map.insert("if-none-match", HeaderValue::from_str(&etag).unwrap());
        assert_eq!(
            file.respond(&Method::HEAD, &map).status,
            StatusCode::NOT_MODIFIED
        );
    }

    #[test]
    fn ranges() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/data.bin");
        let r = get(&file, &[("range", "bytes=2-5")]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&r.body[..], b"2345");
        assert_eq!(h(&r, "content-range"), "bytes 2-5/10");
        assert_eq!(h(&r, "content-length"), "4");

        let r = get(&file, &[("range", "bytes=7-")]);
        assert_eq!(
            (&r.body[..], h(&r, "content-range")),
            (&b"789"[..], "bytes 7-9/10")
        );
        let r = get(&file, &[("range", "bytes=-3")]);
        assert_eq!(
            (&r.body[..], h(&r, "content-range")),
            (&b"789"[..], "bytes 7-9/10")
        );
        let r = get(&file, &[("range", "bytes=-50")]);
        assert_eq!(
            (&r.body[..], h(&r, "content-range")),
            (&b"0123456789"[..], "bytes 0-9/10")
        );
        let r = get(&file, &[("range", "bytes=8-100")]);
        assert_eq!(
            (&r.body[..], h(&r, "content-range")),
            (&b"89"[..], "bytes 8-9/10")
        );

        for unsatisfiable in ["bytes=10-", "bytes=10-20", "bytes=-0"] {
            let r = get(&file, &[("range", unsatisfiable)]);
            assert_eq!(
                r.status,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "{unsatisfiable}"
            );
            assert_eq!(h(&r, "content-range"), "bytes */10");
            assert!(r.body.is_empty());
        }
        for ignored in [
            "bytes=0-1,4-5",
            "bytes=5-2",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes",
        ] {
            let r = get(&file, &[("range", ignored)]);
            assert_eq!(r.status, StatusCode::OK, "{ignored}");
            assert_eq!(r.body.len(), 10);
        }
        // An empty file has no satisfiable range.
        let empty = found(&f.roots, "/web/static/empty.txt");
        assert_eq!(
            get(&empty, &[("range", "bytes=0-")]).status,
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert_eq!(get(&empty, &[]).status, StatusCode::OK);

        // If-Range: the current validator honours the range, a stale one does not.
        let etag = file.etag().to_owned();
        let r = get(&file, &[("range", "bytes=0-0"), ("if-range", &etag)]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let r = get(&file, &[("range", "bytes=0-0"), ("if-range", "\"stale\"")]);
        assert_eq!(r.status, StatusCode::OK);
        let lm = h(&r, "last-modified").to_owned();
        let r = get(&file, &[("range", "bytes=0-0"), ("if-range", &lm)]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let old = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
        assert_eq!(
            get(&file, &[("range", "bytes=0-0"), ("if-range", &old)]).status,
            StatusCode::OK
        );
    }

    #[test]
    fn head_and_other_methods() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/data.bin");
        let mut ranged = HeaderMap::new();
        ranged.insert("range", HeaderValue::from_static("bytes=0-1"));
        let r = collect(file.respond(&Method::HEAD, &ranged));
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty());
        assert_eq!(h(&r, "content-length"), "10");
        assert!(r.headers.get("etag").is_some());

        let r = collect(file.respond(&Method::POST, &HeaderMap::new()));
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(h(&r, "allow"), "GET, HEAD");
    }

    #[test]
    fn a_file_removed_after_lookup_is_sent_as_it_was_and_one_cut_short_is_a_404() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/data.bin");
        fs::remove_file(file.path()).unwrap();
        assert!(not_static(&f.roots, "/web/static/data.bin"));
        // Opened at lookup: the removal changes nothing for this response.
        let r = get(&file, &[]);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], b"0123456789");

        let file = found(&f.roots, "/web/static/src/app.js");
        fs::OpenOptions::new()
            .write(true)
            .open(file.path())
            .and_then(|f| f.set_len(3))
            .unwrap();
        let r = get(&file, &[]);
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body.is_empty() && r.headers.get("etag").is_none());
    }

    /// The `ETag`'s size field (`"<mtime>-<size>-<adler32>"`).
    fn etag_size(r: &Got) -> u64 {
        h(r, "etag").split('-').nth(1).unwrap().parse().unwrap()
    }

    /// A deploy renames a new, longer file over a static file between its lookup and its
    /// response: the response is the file looked up, whole, with its own length and ETag
    /// (before the fix: the new file cut to the old length, under the old ETag).
    #[test]
    fn a_file_renamed_over_after_lookup_sends_the_bytes_its_headers_describe() {
        let tmp = tempfile::tempdir().unwrap();
        let old_small = b"old body".to_vec();
        let new_small = b"the new, longer body".to_vec();
        let old_big: Vec<u8> = (0..CHUNK_SIZE + 10).map(|i| (i % 251) as u8).collect();
        let new_big: Vec<u8> = (0..CHUNK_SIZE * 2).map(|i| (i % 241) as u8).collect();
        fs::write(tmp.path().join("small.js"), &old_small).unwrap();
        fs::write(tmp.path().join("big.bin"), &old_big).unwrap();
        let roots = StaticRoots::new([("x", tmp.path())]);
        for (name, old, new) in [
            ("small.js", &old_small, &new_small),
            ("big.bin", &old_big, &new_big),
        ] {
            let file = found(&roots, &format!("/x/static/{name}"));
            let aside = tmp.path().join(format!(".{name}.new"));
            fs::write(&aside, new).unwrap();
            fs::rename(&aside, tmp.path().join(name)).unwrap();
            let r = get(&file, &[]);
            assert_eq!(r.status, StatusCode::OK, "{name}");
            assert!(&r.body == old, "{name}: the body is the file looked up");
            assert_eq!(h(&r, "content-length"), r.body.len().to_string(), "{name}");
            assert_eq!(etag_size(&r), r.body.len() as u64, "{name}");
            let r = get(&file, &[("range", "bytes=2-")]);
            assert!(r.body == old[2..], "{name}: a range of the file looked up");
            // The next lookup finds the new file, its headers and body agreeing too.
            let r = get(&found(&roots, &format!("/x/static/{name}")), &[]);
            assert!(&r.body == new, "{name}");
            assert_eq!(etag_size(&r), new.len() as u64, "{name}");
            assert_eq!(h(&r, "content-length"), new.len().to_string(), "{name}");
        }
    }

    #[test]
    fn a_fifo_is_not_static_and_does_not_block() {
        let f = fixture();
        let fifo = f.roots.root("web").unwrap().join("pipe.js");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(not_static(&f.roots, "/web/static/pipe.js"));
    }

    #[test]
    fn large_files_and_ranges_are_streamed() {
        let tmp = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..CHUNK_SIZE * 2 + 3).map(|i| (i % 253) as u8).collect();
        fs::write(tmp.path().join("big.bin"), &data).unwrap();
        let exact = vec![1u8; CHUNK_SIZE];
        fs::write(tmp.path().join("exact.bin"), &exact).unwrap();
        // Past the former 64 MiB cap (sparse: no disk used): found, streamed.
        let huge = fs::File::create(tmp.path().join("huge.bin")).unwrap();
        huge.set_len(65 * 1024 * 1024).unwrap();
        let roots = StaticRoots::new([("x", tmp.path())]);

        let file = found(&roots, "/x/static/big.bin");
        let r = get(&file, &[]);
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.streamed);
        assert_eq!(h(&r, "content-length"), data.len().to_string());
        assert_eq!(r.body, data);

        let r = get(&file, &[("range", "bytes=10-")]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert!(r.streamed);
        assert_eq!(h(&r, "content-length"), (data.len() - 10).to_string());
        assert_eq!(r.body, &data[10..]);
        // A range that fits one chunk is read at once.
        let r = get(&file, &[("range", "bytes=100-199")]);
        assert!(!r.streamed);
        assert_eq!(r.body, &data[100..200]);

        let r = get(&found(&roots, "/x/static/exact.bin"), &[]);
        assert!(!r.streamed, "a file of one chunk is read at once");
        assert_eq!(r.body, exact);

        let huge = found(&roots, "/x/static/huge.bin");
        let r = huge.respond(&Method::GET, &HeaderMap::new());
        assert!(matches!(r.body, Body::File(_)));
        assert_eq!(
            hyper::body::Body::size_hint(&r.body).exact(),
            Some(65 * 1024 * 1024)
        );
    }

    #[test]
    fn open_errors_are_their_status() {
        let f = fixture();
        let file = found(&f.roots, "/web/static/data.bin");
        for (kind, status) in [
            (io::ErrorKind::NotFound, StatusCode::NOT_FOUND),
            (io::ErrorKind::UnexpectedEof, StatusCode::NOT_FOUND),
            (io::ErrorKind::PermissionDenied, StatusCode::FORBIDDEN),
            (
                io::ErrorKind::OutOfMemory,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (io::ErrorKind::Other, StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            let r = collect(file.unreadable(&io::Error::from(kind)));
            assert_eq!(r.status, status, "{kind:?}");
            assert!(r.headers.get("etag").is_none());
        }
    }

    #[test]
    fn adler32_matches_zlib() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        // Long input crosses the 5552-byte chunking (zlib.adler32(b"a" * 100000)).
        assert_eq!(adler32(&[b'a'; 100_000]), 0x7966_0B4D);
        assert_eq!(adler32(&[b'a'; 100_000]), adler32_naive(&[b'a'; 100_000]));
    }

    fn adler32_naive(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u64, 0u64);
        for &x in data {
            a = (a + u64::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        ((b << 16) | a) as u32
    }
}
