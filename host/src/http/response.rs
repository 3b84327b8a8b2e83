//! Building the host's own responses: the [`Body`] of every response (in memory, a file,
//! or an addon's stream), werkzeug's HTML
//! error pages, JSON bodies, and the conversion of an addon's [`HttpResponse`] into a hyper
//! response (with `Date`/`Server` de-duplicated, as Odoo's request handler does).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use inphms_sdk::abi::{BodyStream, HttpResponse};
use std::sync::Arc;

use super::file_body::FileBody;
use super::stream_body::{body_of, StreamBody, Streams};
use crate::modules::LoadedAddon;

/// The body of every host response: in memory (every answer but a large static file's),
/// or streamed from a file in bounded chunks.
///
/// An enum rather than a boxed `dyn Body`: the in-memory case (`/web/health`, every routed
/// answer) costs what a plain `Full<Bytes>` costs, with no allocation; the file variant is
/// boxed so that the enum stays the size of `Full<Bytes>` plus its tag.
#[derive(Debug)]
pub enum Body {
    /// The whole body, in memory.
    Full(Full<Bytes>),
    /// A file's bytes, read as hyper sends them ([`FileBody`]).
    File(Box<FileBody>),
    /// An addon's streamed body ([`StreamBody`]: pulled or pushed).
    Stream(Box<StreamBody>),
}

impl Body {
    /// An in-memory body.
    #[inline]
    pub fn full(data: impl Into<Bytes>) -> Body {
        Body::Full(Full::new(data.into()))
    }

    /// An empty body.
    #[inline]
    pub fn empty() -> Body {
        Body::Full(Full::new(Bytes::new()))
    }
}

impl From<Bytes> for Body {
    #[inline]
    fn from(data: Bytes) -> Body {
        Body::Full(Full::new(data))
    }
}

impl From<FileBody> for Body {
    fn from(file: FileBody) -> Body {
        Body::File(Box::new(file))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Full(full) => Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Body::File(file) => Pin::new(file.as_mut()).poll_frame(cx),
            Body::Stream(stream) => stream.poll_frame(cx),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(full) => full.is_end_stream(),
            Body::File(file) => file.is_end_stream(),
            Body::Stream(stream) => stream.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(full) => full.size_hint(),
            Body::File(file) => file.size_hint(),
            Body::Stream(stream) => stream.size_hint(),
        }
    }
}

/// A complete response.
pub type HttpResult = Response<Body>;

/// werkzeug's default description of an error status.
fn description(status: u16) -> &'static str {
    match status {
        400 => "The browser (or proxy) sent a request that this server could not understand.",
        403 => "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.",
        404 => "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
        405 => "The method is not allowed for the requested URL.",
        408 => "The server closed the network connection because the browser didn't finish the request within the specified time.",
        413 => "The data value transmitted exceeds the capacity limit.",
        500 => "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.",
        503 => "The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.",
        504 => "The connection to an upstream server timed out.",
        _ => "",
    }
}

/// werkzeug's HTML error page for `status`, with `message` (or the default description).
pub fn html_error(status: u16, message: Option<&str>) -> HttpResult {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = code.canonical_reason().unwrap_or("Error");
    let text = message.unwrap_or_else(|| description(status));
    let body = format!(
        "<!doctype html>\n<html lang=en>\n<title>{status} {reason}</title>\n<h1>{reason}</h1>\n<p>{}</p>\n",
        escape_html(text)
    );
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A plain `text/html; charset=utf-8` body with `status` (the JSON-RPC dispatcher's 400s).
pub fn plain(status: u16, text: &'static str) -> HttpResult {
    let mut r = Response::new(Body::full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// An `application/json; charset=utf-8` response.
pub fn json(status: u16, value: &serde_json::Value) -> HttpResult {
    let mut r = Response::new(Body::full(value.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// A redirect (`303 See Other` by default in Odoo).
pub fn redirect(location: &str, status: u16) -> HttpResult {
    from_addon(inphms_sdk::Response::redirect(location, status).into_abi())
}

/// Converts an addon's response. Invalid header names or values are dropped with a warning;
/// a second `Date` or `Server` header is dropped (hyper adds `Date` itself when missing).
pub fn from_addon(r: HttpResponse) -> HttpResult {
    from_addon_of(r, None, None, None)
}

/// [`from_addon`] for a response of `addon`, whose streamed body (see
/// [`super::stream_body`]) it pulls, or takes from the host's push `streams`. A streamed body that cannot be made is a 404 for a
/// file, else a 500, logged.
pub fn from_addon_of(
    mut r: HttpResponse,
    addon: Option<&Arc<LoadedAddon>>,
    streams: Option<&Arc<Streams>>,
    poll_limit: Option<std::time::Duration>,
) -> HttpResult {
    if r.stream != BodyStream::Full {
        let streamed = body_of(streams, &r.stream, addon, poll_limit);
        let is_file = matches!(r.stream, BodyStream::File(_));
        r.stream = BodyStream::Full;
        let (body, length) = match streamed {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(target: "inphms.http", "addon's streamed answer refused: {e}");
                return html_error(if is_file { 404 } else { 500 }, None);
            }
        };
        let mut out = headers_of(r);
        *out.body_mut() = body;
        let headers = out.headers_mut();
        if let Some(len) = length {
            headers.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        if is_file && !headers.contains_key(CONTENT_TYPE) {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
        }
        return out;
    }
    headers_of(r)
}

/// The response with the addon's status, headers and in-memory body.
fn headers_of(r: HttpResponse) -> HttpResult {
    let status = StatusCode::from_u16(r.status).unwrap_or_else(|_| {
        tracing::warn!(target: "inphms.http", "addon answered invalid status {}; sending 500", r.status);
        StatusCode::INTERNAL_SERVER_ERROR
    });
    // The body stays in the addon's allocation (freed through its vtable; libraries are
    // never unloaded): no copy.
    let mut out = Response::new(Body::from(Bytes::from_owner(r.body)));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (name, value) in r.headers.iter() {
        let value = match common_value(value) {
            Some(v) => Ok(v),
            None => HeaderValue::from_bytes(value),
        };
        let parsed = match common_name(name) {
            Some(n) => Ok(n),
            None => HeaderName::from_bytes(name),
        };
        let (Ok(n), Ok(v)) = (parsed, value) else {
            tracing::warn!(target: "inphms.http", "addon header {:?} dropped: invalid name or value", String::from_utf8_lossy(name));
            continue;
        };
        let single = n == hyper::header::DATE || n == hyper::header::SERVER;
        if single && headers.contains_key(&n) {
            continue;
        }
        headers.append(n, v);
    }
    out
}

/// A header value most responses carry, as a static value: no allocation and copy per
/// header.
fn common_value(value: &[u8]) -> Option<HeaderValue> {
    // Lengths first: most values are told apart by their length alone.
    COMMON_VALUES
        .iter()
        .find(|known| known.len() == value.len() && known.as_bytes() == value)
        .cloned()
}

/// See [`common_value`]. Made at compile time: `HeaderValue::from_static` called at run
/// time would check every byte again.
static COMMON_VALUES: [HeaderValue; 9] = [
    HeaderValue::from_static("application/json"),
    HeaderValue::from_static("application/json; charset=utf-8"),
    HeaderValue::from_static("text/html; charset=utf-8"),
    HeaderValue::from_static("text/plain; charset=utf-8"),
    HeaderValue::from_static("no-store"),
    HeaderValue::from_static("no-cache"),
    HeaderValue::from_static("nosniff"),
    HeaderValue::from_static("close"),
    HeaderValue::from_static("0"),
];

/// A header name as addons commonly spell it, without `HeaderName::from_bytes` (which
/// lower-cases the name into a buffer, then looks it up among all the standard names).
fn common_name(name: &[u8]) -> Option<HeaderName> {
    COMMON_NAMES
        .iter()
        .find(|(spelled, _)| spelled.len() == name.len() && *spelled == name)
        .map(|(_, n)| n.clone())
}

/// See [`common_name`]: the names of the SDK's own responses, in their usual spelling.
static COMMON_NAMES: [(&[u8], HeaderName); 7] = [
    (b"Content-Type", CONTENT_TYPE),
    (b"Cache-Control", hyper::header::CACHE_CONTROL),
    (b"Set-Cookie", hyper::header::SET_COOKIE),
    (b"Location", hyper::header::LOCATION),
    (b"Content-Disposition", hyper::header::CONTENT_DISPOSITION),
    (
        b"X-Content-Type-Options",
        hyper::header::X_CONTENT_TYPE_OPTIONS,
    ),
    (
        b"Content-Security-Policy",
        hyper::header::CONTENT_SECURITY_POLICY,
    ),
];

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use inphms_sdk::abi::HeaderBlock;

    #[test]
    fn common_values_are_static_and_exact() {
        for known in &COMMON_VALUES {
            assert_eq!(common_value(known.as_bytes()).as_ref(), Some(known));
        }
        for (spelled, name) in &COMMON_NAMES {
            assert_eq!(common_name(spelled).as_ref(), Some(name));
            assert_eq!(&HeaderName::from_bytes(spelled).unwrap(), name);
        }
        assert!(common_name(b"content-typ").is_none());
        // Only the exact bytes: another case, a prefix or a longer value is copied.
        for other in [
            &b"Application/json"[..],
            b"application/jso",
            b"no-store, private",
            b"",
        ] {
            assert!(common_value(other).is_none(), "{other:?}");
        }
        let mut headers = HeaderBlock::default();
        headers.push("Content-Type", "application/json");
        headers.push("Cache-Control", "no-store, private");
        let r = from_addon(HttpResponse {
            status: 200,
            headers,
            body: Default::default(),
            stream: Default::default(),
        });
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["cache-control"], "no-store, private");
    }

    #[test]
    fn date_and_server_are_never_doubled() {
        let mut headers = HeaderBlock::default();
        for (name, value) in [
            ("Server", "a"),
            ("server", "b"),
            ("Date", "Thu, 26 Nov 2026 00:00:00 GMT"),
            ("Date", "Thu, 26 Nov 2026 00:00:01 GMT"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Bad\nName", "x"),
            ("X-Injected", "a\r\nSet-Cookie: evil=1"),
        ] {
            headers.push(name, value);
        }
        let r = HttpResponse {
            status: 200,
            headers,
            body: Vec::new().into(),
            stream: Default::default(),
        };
        let out = from_addon(r);
        assert_eq!(out.headers().get_all("server").iter().count(), 1);
        assert_eq!(out.headers().get_all("date").iter().count(), 1);
        assert_eq!(out.headers().get_all("set-cookie").iter().count(), 2);
        // Invalid names and values are dropped, never split into other headers.
        assert_eq!(out.headers().len(), 4);
        assert!(out.headers().get("x-injected").is_none());
    }

    #[test]
    fn body_is_no_larger_than_needed() {
        // The file variant is boxed: a response moves a `Full` and a tag, no more.
        assert!(std::mem::size_of::<Body>() <= std::mem::size_of::<Full<Bytes>>() + 8);
        let body = Body::full("abc");
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(3));
        assert!(hyper::body::Body::is_end_stream(&Body::empty()));
    }

    #[test]
    fn error_page() {
        let r = html_error(400, Some("Session expired (invalid CSRF token)"));
        assert_eq!(r.status(), 400);
    }
}
