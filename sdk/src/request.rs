//! [`Request`]: what a handler reads: method, path, query, headers, cookies, body, form,
//! parameters (URL arguments, query and form fields, or JSON-RPC `params`), the session, the
//! selected database and the client address after proxy handling; for a `websocket` route,
//! the upgraded connection ([`Request::websocket`]).

use crate::abi::HttpRequest;
use crate::multipart::{self, Part};
use crate::{Error, Result, Session, WebSocket};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The request being served.
#[derive(Debug, Clone, Default)]
pub struct Request {
    method: String,
    path: String,
    query_string: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    remote_addr: String,
    scheme: String,
    host: String,
    db: Option<String>,
    params: Map<String, Value>,
    dev_mode: bool,
    websocket: Option<u64>,
    /// The session; changes are saved by the host after the handler (when the route allows).
    pub session: Session,
}

impl Request {
    /// Builds a request from its ABI form (the host's view).
    pub fn from_abi(req: HttpRequest) -> Self {
        let params = match serde_json::from_str(&req.params) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        Request {
            session: Session::from_parts(req.session_id.into_string(), req.session.into_string()),
            method: req.method.into_string(),
            path: req.path.into_string(),
            query_string: req.query_string.into_string(),
            headers: req
                .headers
                .into_iter()
                .map(|p| (p.0.into_string(), p.1.into_string()))
                .collect(),
            body: req.body.into_vec(),
            remote_addr: req.remote_addr.into_string(),
            scheme: req.scheme.into_string(),
            host: req.host.into_string(),
            db: req.db.into_option().map(|s| s.into_string()),
            params,
            dev_mode: req.dev_mode,
            websocket: req.websocket.into_option(),
        }
    }

    /// Turns the request back into its ABI form (a dispatcher handing it to an endpoint).
    pub fn to_abi(&self) -> HttpRequest {
        HttpRequest {
            method: self.method.as_str().into(),
            path: self.path.as_str().into(),
            query_string: self.query_string.as_str().into(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()).into())
                .collect(),
            body: self.body.clone().into(),
            remote_addr: self.remote_addr.as_str().into(),
            scheme: self.scheme.as_str().into(),
            host: self.host.as_str().into(),
            db: self.db.as_deref().map(Into::into).into(),
            session_id: self.session.id().into(),
            session: self.session.to_json().into(),
            params: Value::Object(self.params.clone()).to_string().into(),
            dev_mode: self.dev_mode,
            websocket: self.websocket.into(),
        }
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, percent-decoded.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string.
    pub fn query_string(&self) -> &str {
        &self.query_string
    }

    /// The first value of a query-string field.
    pub fn query(&self, name: &str) -> Option<String> {
        parse_urlencoded(&self.query_string)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All headers, names lower-cased, in arrival order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }

    /// The body's fields when it is `application/x-www-form-urlencoded`, or the text
    /// fields when it is `multipart/form-data` (files: [`files`](Self::files)). Empty for
    /// other bodies, or a malformed multipart body.
    pub fn form(&self) -> Vec<(String, String)> {
        let content_type = self.header("content-type").unwrap_or("");
        if content_type.starts_with("application/x-www-form-urlencoded") {
            parse_urlencoded(&String::from_utf8_lossy(&self.body))
        } else if multipart::is_multipart(content_type) {
            multipart::parse(content_type, &self.body)
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
        multipart::parse(content_type, &self.body)
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
        self.websocket
            .map(WebSocket::new)
            .ok_or_else(|| Error::bad_request("not a websocket request"))
    }

    /// The handler's parameters: URL arguments, query and form fields (http routes) or the
    /// JSON-RPC `params` (json routes).
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
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
            .params
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
        self.db.as_deref()
    }

    /// The client's address, after proxy handling.
    pub fn remote_addr(&self) -> &str {
        &self.remote_addr
    }

    /// `http` or `https`, after proxy handling.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host the client asked for, after proxy handling.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A CSRF token for this session (Odoo's `request.csrf_token()`), to put in a form's
    /// `csrf_token` field; valid for a year. Empty outside a host.
    pub fn csrf_token(&self) -> String {
        crate::host::csrf_token(self.session.id(), 0).unwrap_or_default()
    }

    /// Whether the server runs in developer mode.
    pub fn dev_mode(&self) -> bool {
        self.dev_mode
    }
}

/// Parses `a=1&b=x%20y` into pairs (`+` is a space).
pub(crate) fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}
