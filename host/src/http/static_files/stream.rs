//! The response for a static file (Odoo's `Stream.get_response`, werkzeug's `send_file`):
//! caching and security headers, 304/206/416/405, and the body read from the file opened
//! at lookup, at once or streamed.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};

use super::conditional::{parse_range, RangeRequest};
use super::lookup::StaticFile;
use super::{LOG_TARGET, STATIC_CACHE};
use crate::http::file_body::{read_chunk, FileBody, CHUNK_SIZE};
use crate::http::response::{self, Body};

/// A complete response: status, headers, body (empty for HEAD, 304, 405, 416; streamed
/// from the file past [`CHUNK_SIZE`] bytes).
#[derive(Debug)]
pub struct StaticResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Body,
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

impl StaticFile {
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
    pub(super) fn unreadable(&self, e: &io::Error) -> StaticResponse {
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
