//! [`Response`] and the conversions a handler's return value goes through:
//! [`IntoResponse`] for http routes, [`IntoJsonResult`] for json routes.

use crate::abi::{BodyStream, HeaderBlock, HttpResponse};
use crate::stream::{Producer, PushStream};
use crate::{Error, Result};
use abi_stable::std_types::RVec;
use serde::Serialize;
use serde_json::Value;

/// An HTTP response built by a handler.
///
/// ```
/// use inphms_sdk::Response;
/// let r = Response::json(&serde_json::json!({"status": "pass"}))
///     .header("Cache-Control", "no-store");
/// assert_eq!(r.status(), 200);
/// assert_eq!(r.header_value("content-type"), Some("application/json"));
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    /// Packed as [`HeaderBlock`] (one buffer for all headers), moved into it to cross.
    headers: Vec<u8>,
    body: RVec<u8>,
    /// A body produced later, when not `body`.
    stream: Streamed,
}

/// How a [`Response`]'s body is produced past its in-memory `body`.
#[derive(Debug, Clone, Default)]
enum Streamed {
    #[default]
    No,
    Pull(Producer, Option<u64>),
    Push(PushStream),
    File(String),
    /// A streamed body that crossed already (an endpoint's, passed on by a dispatcher).
    Crossed(BodyStream),
}

impl Default for Response {
    fn default() -> Self {
        Response::new(200)
    }
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: RVec::new(),
            stream: Streamed::No,
        }
    }

    /// A body pulled chunk by chunk from `chunks` as the client takes it (backpressure: the
    /// next chunk is asked for once the one before is written), sent chunked unless
    /// [`length`](Self::length) announces its size. Each chunk is produced by a brief call
    /// on the host's blocking pool; no thread waits between chunks. See [`crate::stream`].
    ///
    /// ```
    /// # use inphms_sdk::Response;
    /// let r = Response::stream((0..3).map(|i| format!("line {i}\n").into_bytes()));
    /// assert_eq!(r.status(), 200);
    /// ```
    pub fn stream<I>(chunks: I) -> Self
    where
        I: IntoIterator<Item = Vec<u8>>,
        I::IntoIter: Send + 'static,
    {
        let mut r = Response::new(200);
        r.stream = Streamed::Pull(Producer::new(Box::new(chunks.into_iter())), None);
        r
    }

    /// Announces the length of a [`stream`](Self::stream) body (`Content-Length`): the
    /// chunks must add up to it (a shorter stream is cut, a longer one truncated).
    pub fn length(mut self, length: u64) -> Self {
        if let Streamed::Pull(_, len) = &mut self.stream {
            *len = Some(length);
        }
        self
    }

    /// A body fed later through `stream` (see [`PushStream`]), sent chunked; it ends when
    /// the stream is closed.
    pub fn push(stream: &PushStream) -> Self {
        let mut r = Response::new(200);
        r.stream = Streamed::Push(stream.clone());
        r
    }

    /// Server-sent events (`text/event-stream`, not cached) fed through `stream` with
    /// [`PushStream::event`]; each event is flushed to the client as it is pushed.
    pub fn event_stream(stream: &PushStream) -> Self {
        Response::push(stream)
            .header("Content-Type", "text/event-stream")
            .header("Cache-Control", "no-cache")
    }

    /// The file at `path`, read from disk by the host as the client takes it (its length
    /// announced; `application/octet-stream` unless a `Content-Type` is set). A file that
    /// cannot be opened is a 404.
    pub fn file(path: impl Into<String>) -> Self {
        let mut r = Response::new(200);
        r.stream = Streamed::File(path.into());
        r
    }

    /// A `text/html; charset=utf-8` response (Odoo's default for http routes).
    pub fn html(body: impl Into<String>) -> Self {
        Response::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(body: impl Into<String>) -> Self {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// An `application/json` response holding `value`.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        Response::new(200)
            .header("Content-Type", "application/json")
            .body(body)
    }

    /// A redirect (`303 See Other` unless you pass another code).
    pub fn redirect(location: &str, status: u16) -> Self {
        Response::new(status)
            .header("Location", location)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(
                format!(
                    "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n\
                     <h1>Redirecting...</h1>\n<p>You should be redirected automatically to the \
                     target URL: <a href=\"{0}\">{0}</a>. If not, click the link.\n",
                    location
                )
                .into_bytes(),
            )
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Appends a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        HeaderBlock::encode(&mut self.headers, name, value);
        self
    }

    /// Sets a cookie (`Path=/`, `HttpOnly`, `SameSite=Lax`; `max_age` in seconds, `None`
    /// for a browser-session cookie).
    pub fn cookie(self, name: &str, value: &str, max_age: Option<u64>) -> Self {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        self.header("Set-Cookie", &c)
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into().into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        HeaderBlock::decode(&self.headers)
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Converts to the ABI form (a move: nothing is copied). A pull stream's producer is
    /// registered here, for the host to poll.
    pub fn into_abi(self) -> HttpResponse {
        let stream = match self.stream {
            Streamed::No => BodyStream::Full,
            Streamed::Pull(producer, length) => BodyStream::Pull {
                handle: producer.register(),
                length: length.into(),
            },
            Streamed::Push(stream) => BodyStream::Push(stream.id()),
            Streamed::File(path) => BodyStream::File(path.into()),
            Streamed::Crossed(stream) => stream,
        };
        HttpResponse {
            status: self.status,
            headers: HeaderBlock(self.headers.into()),
            body: self.body,
            stream,
        }
    }

    /// Converts from the ABI form (a streamed body is kept as it crossed, so a dispatcher
    /// passes an endpoint's stream on).
    pub fn from_abi(r: HttpResponse) -> Self {
        Response {
            status: r.status,
            headers: r.headers.0.into_vec(),
            body: r.body,
            stream: match r.stream {
                BodyStream::Full => Streamed::No,
                other => Streamed::Crossed(other),
            },
        }
    }
}

/// A value a http route may return.
pub trait IntoResponse {
    /// Converts it.
    fn into_response(self) -> Result<Response>;
}

impl IntoResponse for Response {
    fn into_response(self) -> Result<Response> {
        Ok(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Result<Response> {
        Ok(Response::html(self))
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Result<Response> {
        Ok(Response::html(self))
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Result<Response> {
        Ok(Response::html(""))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Result<Response> {
        Ok(Response::json(&self.0))
    }
}

impl<T: IntoResponse, E: Into<Error>> IntoResponse for std::result::Result<T, E> {
    fn into_response(self) -> Result<Response> {
        self.map_err(Into::into)
            .and_then(IntoResponse::into_response)
    }
}

/// Wraps a serializable value: an `application/json` response from a http route.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

/// A value a json route may return: its `result`, or nothing (`result` omitted).
pub trait IntoJsonResult {
    /// Converts it; `None` omits `result` from the JSON-RPC answer.
    fn into_json_result(self) -> Result<Option<Value>>;
}

impl IntoJsonResult for () {
    fn into_json_result(self) -> Result<Option<Value>> {
        Ok(None)
    }
}

impl IntoJsonResult for Value {
    fn into_json_result(self) -> Result<Option<Value>> {
        Ok(Some(self))
    }
}

impl<T: Serialize> IntoJsonResult for Json<T> {
    fn into_json_result(self) -> Result<Option<Value>> {
        Ok(Some(serde_json::to_value(self.0).map_err(|e| {
            Error::internal(format!("result is not serializable: {e}"))
        })?))
    }
}

impl<T: Serialize> IntoJsonResult for Option<T> {
    fn into_json_result(self) -> Result<Option<Value>> {
        match self {
            None => Ok(None),
            Some(v) => Json(v).into_json_result(),
        }
    }
}

impl<T: IntoJsonResult, E: Into<Error>> IntoJsonResult for std::result::Result<T, E> {
    fn into_json_result(self) -> Result<Option<Value>> {
        self.map_err(Into::into)
            .and_then(IntoJsonResult::into_json_result)
    }
}
