//! [`Request`]: what a handler reads: method, path, query, headers, cookies, body, form,
//! parameters (URL arguments, query and form fields, or JSON-RPC `params`), the session, the
//! selected database and the client address after proxy handling; for a `websocket` route,
//! the upgraded connection ([`Request::websocket`]).

use crate::abi::HttpRequest;
use crate::multipart::{self, Part};
use crate::{Error, Result, Session, WebSocket};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::OnceCell;

/// The request being served.
///
/// It reads the request where the host keeps it: every accessor is a view of the host's
/// data, valid for the call (nothing is copied across the boundary); what needs parsing
/// (the parameters, the session) is parsed on first use. A handler pays only for what it
/// reads.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    raw: HttpRequest<'a>,
    /// The parameters, parsed from `raw.params` on first use.
    params: OnceCell<Map<String, Value>>,
    /// The session; changes are saved by the host after the handler (when the route allows).
    pub session: Session<'a>,
}

impl<'a> Request<'a> {
    /// Builds a request on its ABI form (the host's view), without copying it.
    pub fn from_abi(req: HttpRequest<'a>) -> Self {
        Request {
            raw: req,
            params: OnceCell::new(),
            session: Session::from_parts(
                Cow::Borrowed(req.session_id.as_str()),
                Cow::Borrowed(req.session.as_str()),
            ),
        }
    }

    /// Calls `f` with the request in its ABI form (a dispatcher handing it to an endpoint),
    /// with the session and parameters as they are now.
    pub fn with_abi<R>(&self, f: impl FnOnce(HttpRequest<'_>) -> R) -> R {
        let session = self.session.to_json();
        let params = self
            .params
            .get()
            .map(|p| serde_json::to_string(p).unwrap_or_default());
        let mut req: HttpRequest<'_> = self.raw;
        req.session_id = self.session.id().into();
        req.session = session.as_ref().into();
        if let Some(params) = &params {
            req.params = params.as_str().into();
        }
        f(req)
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        self.raw.method.as_str()
    }

    /// The path, percent-decoded.
    pub fn path(&self) -> &str {
        self.raw.path.as_str()
    }

    /// The raw query string.
    pub fn query_string(&self) -> &str {
        self.raw.query_string.as_str()
    }

    /// The first value of a query-string field.
    pub fn query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.raw.query_string.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All headers as `(name, value)`, names lower-cased, in arrival order.
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// let req = Request::default();
    /// assert_eq!(req.headers().count(), 0);
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.raw
            .headers
            .iter()
            .map(|p| (p.0.as_str(), p.1.as_str()))
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers()
            .filter(|(k, _)| *k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The raw body, whole and exactly as received (at most the route's
    /// `max_content_length`, else the server's).
    ///
    /// A body up to the server's `http_body_spool` (1 MiB by default) is in the host's
    /// memory. A larger one was received into a temporary file (unnamed, under the data
    /// dir's `tmp/`) and this slice is a read-only mapping of that file: reading it pages it
    /// in from the page cache, so read it once, in order, where you can (stream it to where
    /// it goes) rather than copying it into a `Vec`. The slice is valid for the handler's
    /// call; the file and its mapping go away when the request ends. The host counts the
    /// mapping against its memory budget for bodies (`limit_memory_bodies`) while the
    /// handler runs, and answers 503 when it does not fit, before the handler is called.
    pub fn body(&self) -> &[u8] {
        self.raw.body.as_slice()
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(self.body())?)
    }

    /// The body's fields when it is `application/x-www-form-urlencoded`, or the text
    /// fields when it is `multipart/form-data` (files: [`files`](Self::files)). Empty for
    /// other bodies, or a malformed multipart body.
    pub fn form(&self) -> Vec<(String, String)> {
        let content_type = self.header("content-type").unwrap_or("");
        if content_type.starts_with("application/x-www-form-urlencoded") {
            parse_urlencoded(&String::from_utf8_lossy(self.body()))
        } else if multipart::is_multipart(content_type) {
            multipart::parse(content_type, self.body())
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !p.is_file())
                .map(|p| (p.name.clone(), p.text().into_owned()))
                .collect()
        } else {
            Vec::new()
        }
    }

    /// The files of a `multipart/form-data` body, in order (empty for other bodies). In
    /// [`params`](Self::params), a file field holds `{"filename", "content_type", "size"}`.
    pub fn files(&self) -> Vec<Part> {
        let content_type = self.header("content-type").unwrap_or("");
        if !multipart::is_multipart(content_type) {
            return Vec::new();
        }
        multipart::parse(content_type, self.body())
            .unwrap_or_default()
            .into_iter()
            .filter(Part::is_file)
            .collect()
    }

    /// The first file of field `name`, if any.
    pub fn file(&self, name: &str) -> Option<Part> {
        self.files().into_iter().find(|p| p.name == name)
    }

    /// The websocket of a route declared `websocket = true`, upgraded by the host before
    /// the handler runs. An [`Error::bad_request`] on any other route.
    pub fn websocket(&self) -> Result<WebSocket> {
        self.raw
            .websocket
            .into_option()
            .map(WebSocket::new)
            .ok_or_else(|| Error::bad_request("not a websocket request"))
    }

    /// The handler's parameters: URL arguments, query and form fields (http routes) or the
    /// JSON-RPC `params` (json routes).
    pub fn params(&self) -> &Map<String, Value> {
        self.params
            .get_or_init(|| match serde_json::from_str(self.raw.params.as_str()) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            })
    }

    /// One parameter, converted to `T`. A missing or unconvertible parameter is a
    /// [`Error::bad_request`].
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// let req = Request::default();
    /// assert!(req.param::<i64>("id").is_err());
    /// ```
    pub fn param<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let value = self
            .params()
            .get(name)
            .ok_or_else(|| Error::bad_request(format!("missing parameter '{name}'")))?;
        serde_json::from_value(value.clone()).or_else(|_| match value {
            // http parameters arrive as text: try the text itself as JSON (numbers, booleans).
            Value::String(s) => serde_json::from_str(s)
                .map_err(|_| Error::bad_request(format!("invalid value for parameter '{name}'"))),
            _ => Err(Error::bad_request(format!(
                "invalid value for parameter '{name}'"
            ))),
        })
    }

    /// The database selected for this request, if any.
    pub fn db(&self) -> Option<&str> {
        self.raw.db.map(|d| d.as_str()).into_option()
    }

    /// The client's address, after proxy handling.
    pub fn remote_addr(&self) -> &str {
        self.raw.remote_addr.as_str()
    }

    /// `http` or `https`, after proxy handling.
    pub fn scheme(&self) -> &str {
        self.raw.scheme.as_str()
    }

    /// The host the client asked for, after proxy handling.
    pub fn host(&self) -> &str {
        self.raw.host.as_str()
    }

    /// A CSRF token for this session (Odoo's `request.csrf_token()`), to put in a form's
    /// `csrf_token` field; valid for a year. Empty outside a host.
    pub fn csrf_token(&self) -> String {
        crate::host::csrf_token(self.session.id(), 0).unwrap_or_default()
    }

    /// Whether the server runs in developer mode.
    pub fn dev_mode(&self) -> bool {
        self.raw.dev_mode
    }
}

/// Parses `a=1&b=x%20y` into pairs (`+` is a space).
pub(crate) fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}
