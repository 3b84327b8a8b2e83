//! [`OwnedRequest`]: the request handed to an addon, kept whole for a handler that runs on
//! the blocking pool.
//!
//! An addon reads its request through [`HttpRequest`], borrowed views of the host's data
//! valid for the call. A handler run inline on the event loop gets views of the request
//! path's own values; one run on the blocking pool outlives them, so the fields are copied
//! once into an `OwnedRequest`, moved to the pool, and viewed from there (a database
//! transaction that retries the handler views the same copy again). The body is not
//! copied: the received [`RequestBody`] moves in (with its charge to the memory budget),
//! and a json route's `params`, when they are the body's own text, are viewed there.

use super::body::RequestBody;
use abi_stable::std_types::{RSlice, RStr, Tuple2};
use inphms_sdk::abi::{HeaderRef, HttpRequest};

/// The fields of an [`HttpRequest`], owned: the text fields in one buffer (one allocation
/// and one copy per request, whatever the number of headers), viewed by their ranges.
#[derive(Debug)]
pub(crate) struct OwnedRequest {
    /// The text fields but the session, one after the other.
    text: String,
    method: Span,
    path: Span,
    query_string: Span,
    /// Each header's name and value.
    headers: Vec<(Span, Span)>,
    body: RequestBody,
    remote_addr: Span,
    scheme: Span,
    host: Span,
    db: Option<Span>,
    session_id: Span,
    /// The session's content, apart: a websocket's callbacks replace it.
    session: String,
    params: Span,
    /// Where `params` lie in the body, when they are its text (`params` is then empty).
    params_in_body: Option<std::ops::Range<usize>>,
    dev_mode: bool,
    websocket: Option<u64>,
    /// The session's `uid` and token as loaded (`None`: read from `session` when needed).
    session_user: Option<super::request_session::SessionUser>,
}

/// Where a field lies in [`OwnedRequest::text`].
type Span = std::ops::Range<usize>;

/// Appends `field` to `text`, returning where it lies.
fn push(text: &mut String, field: &str) -> Span {
    let start = text.len();
    text.push_str(field);
    start..text.len()
}

impl OwnedRequest {
    /// Copies every field of `req` but its body (see [`OwnedRequest::with_body`]), and its
    /// `params` unless they are the body's bytes `params_in_body`.
    pub(crate) fn capture(
        req: &HttpRequest<'_>,
        params_in_body: Option<std::ops::Range<usize>>,
    ) -> OwnedRequest {
        let params = match params_in_body {
            Some(_) => "",
            None => req.params.as_str(),
        };
        let db = req.db.into_option().map(|d| d.as_str());
        let len = [
            req.method.len(),
            req.path.len(),
            req.query_string.len(),
            req.remote_addr.len(),
            req.scheme.len(),
            req.host.len(),
            db.map_or(0, str::len),
            req.session_id.len(),
            params.len(),
        ]
        .iter()
        .sum::<usize>()
            + req
                .headers
                .iter()
                .map(|h| h.0.len() + h.1.len())
                .sum::<usize>();
        let mut text = String::with_capacity(len);
        let t = &mut text;
        OwnedRequest {
            method: push(t, req.method.as_str()),
            path: push(t, req.path.as_str()),
            query_string: push(t, req.query_string.as_str()),
            headers: req
                .headers
                .iter()
                .map(|h| (push(t, h.0.as_str()), push(t, h.1.as_str())))
                .collect(),
            body: RequestBody::empty(),
            remote_addr: push(t, req.remote_addr.as_str()),
            scheme: push(t, req.scheme.as_str()),
            host: push(t, req.host.as_str()),
            db: db.map(|d| push(t, d)),
            session_id: push(t, req.session_id.as_str()),
            session: req.session.as_str().to_owned(),
            params: push(t, params),
            params_in_body,
            dev_mode: req.dev_mode,
            websocket: req.websocket.into_option(),
            text,
            session_user: None,
        }
    }

    /// With the session's `uid` and token as loaded (what `session` says).
    pub(crate) fn with_session_user(mut self, user: super::request_session::SessionUser) -> Self {
        self.session_user = Some(user);
        self
    }

    /// The session's `uid` and token: as loaded, else read from `session` (`None`: it is
    /// not a JSON object).
    pub(crate) fn session_user(&self) -> Option<super::request_session::SessionUser> {
        match &self.session_user {
            Some(user) => Some(user.clone()),
            None => super::request_session::SessionUser::of_json(&self.session),
        }
    }

    /// A text field.
    fn field(&self, span: &Span) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }

    /// The request with its body, moved in.
    /// Replaces the session's content (a websocket's next callback sees what the one
    /// before saved).
    pub(crate) fn set_session(&mut self, json: String) {
        self.session = json;
        self.session_user = None;
    }

    /// The session's content as the next call sees it (JSON).
    pub(crate) fn session(&self) -> &str {
        &self.session
    }

    pub(crate) fn with_body(mut self, body: RequestBody) -> OwnedRequest {
        self.body = body;
        self
    }

    /// Calls `f` with a view of the request.
    pub(crate) fn with_view<R>(&self, f: impl FnOnce(HttpRequest<'_>) -> R) -> R {
        let headers = self.header_views();
        f(self.view(&headers))
    }

    /// Views of the headers, for [`OwnedRequest::view`].
    pub(crate) fn header_views(&self) -> Vec<HeaderRef<'_>> {
        self.headers
            .iter()
            .map(|(k, v)| Tuple2(RStr::from(self.field(k)), RStr::from(self.field(v))))
            .collect()
    }

    /// A view of the request, with `headers` from [`OwnedRequest::header_views`]: valid
    /// while both are (an async route's future is dropped before them).
    pub(crate) fn view<'s>(&'s self, headers: &'s [HeaderRef<'s>]) -> HttpRequest<'s> {
        let params = match &self.params_in_body {
            // Cut from a `&str` of the body: text (checked again, quickly, all the same).
            Some(range) => self
                .body
                .get(range.clone())
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("{}"),
            None => self.field(&self.params),
        };
        HttpRequest {
            method: self.field(&self.method).into(),
            path: self.field(&self.path).into(),
            query_string: self.field(&self.query_string).into(),
            headers: RSlice::from_slice(headers),
            body: RSlice::from_slice(&self.body),
            remote_addr: self.field(&self.remote_addr).into(),
            scheme: self.field(&self.scheme).into(),
            host: self.field(&self.host).into(),
            db: self.db.as_ref().map(|d| RStr::from(self.field(d))).into(),
            session_id: self.field(&self.session_id).into(),
            session: self.session.as_str().into(),
            params: params.into(),
            dev_mode: self.dev_mode,
            websocket: self.websocket.into(),
            body_file: self.body.spool_fd().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::ROption;

    #[test]
    fn a_captured_request_views_as_the_original() {
        let headers = [
            Tuple2(RStr::from("host"), RStr::from("example.com")),
            Tuple2(RStr::from("cookie"), RStr::from("a=1")),
        ];
        let original = HttpRequest {
            method: "POST".into(),
            path: "/x y".into(),
            query_string: "a=1".into(),
            headers: RSlice::from_slice(&headers),
            body: RSlice::from_slice(b"body"),
            remote_addr: "10.0.0.1".into(),
            scheme: "https".into(),
            host: "example.com".into(),
            db: ROption::RSome("db1".into()),
            session_id: "sid".into(),
            session: "{}".into(),
            params: "{\"a\":\"1\"}".into(),
            dev_mode: true,
            websocket: ROption::RSome(7),
            body_file: ROption::RNone,
        };
        let expected = format!("{original:?}");
        let owned = OwnedRequest::capture(&original, None)
            .with_body(RequestBody::from_bytes(bytes::Bytes::from_static(b"body")));
        owned.with_view(|view| assert_eq!(format!("{view:?}"), expected));
    }

    #[test]
    fn params_in_the_body_are_viewed_there() {
        let body = br#"{"id":1,"params":{"a":"1"}}"#;
        let original = HttpRequest {
            method: "POST".into(),
            path: "/".into(),
            query_string: "".into(),
            headers: RSlice::from_slice(&[]),
            body: RSlice::from_slice(body),
            remote_addr: "".into(),
            scheme: "http".into(),
            host: "".into(),
            db: ROption::RNone,
            session_id: "".into(),
            session: "{}".into(),
            params: r#"{"a":"1"}"#.into(),
            dev_mode: false,
            websocket: ROption::RNone,
            body_file: ROption::RNone,
        };
        let owned = OwnedRequest::capture(&original, Some(17..26))
            .with_body(RequestBody::from_bytes(bytes::Bytes::from_static(body)));
        assert!(owned.params.is_empty());
        assert_eq!(owned.text, "POST/http");
        owned.with_view(|view| assert_eq!(view.params.as_str(), r#"{"a":"1"}"#));
    }
}
