//! [`Request`]: what a handler reads: method, path, query, headers, cookies, body, form,
//! parameters (URL arguments, query and form fields, or JSON-RPC `params`), the session, the
//! selected database and the client address after proxy handling; for a `websocket` route,
//! the upgraded connection ([`Request::websocket`]).

use crate::abi::HttpRequest;
use crate::multipart::{self, Part};
use crate::{Error, Result, Session, WebSocket};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::cell::OnceCell;

/// The request being served.
///
/// It keeps the request as the host sent it across the boundary (one copy of each field,
/// made by the host) and parses what needs parsing (the parameters, the session) on first
/// use: a handler pays only for what it reads.
#[derive(Debug, Clone, Default)]
pub struct Request {
    raw: HttpRequest,
    /// The parameters, parsed from `raw.params` on first use.
    params: OnceCell<Map<String, Value>>,
    /// The session; changes are saved by the host after the handler (when the route allows).
    pub session: Session,
}

impl Request {
    /// Builds a request from its ABI form (the host's view), without copying it.
    pub fn from_abi(mut req: HttpRequest) -> Self {
        let session = Session::from_parts(
            std::mem::take(&mut req.session_id).into_string(),
            std::mem::take(&mut req.session),
        );
        Request {
            raw: req,
            params: OnceCell::new(),
            session,
        }
    }

    /// Turns the request back into its ABI form (a dispatcher handing it to an endpoint),
    /// with the session and parameters as they are now.
    pub fn to_abi(&self) -> HttpRequest {
        let mut req = self.raw.clone();
        req.session_id = self.session.id().into();
        req.session = self.session.to_json().into();
        if let Some(params) = self.params.get() {
            req.params = serde_json::to_string(params).unwrap_or_default().into();
        }
        req
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        &self.raw.method
    }

    /// The path, percent-decoded.
    pub fn path(&self) -> &str {
        &self.raw.path
    }

    /// The raw query string.
    pub fn query_string(&self) -> &str {
        &self.raw.query_string
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

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.raw.body
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.raw.body)?)
    }

    /// The body's fields when it is `application/x-www-form-urlencoded`, or the text
    /// fields when it is `multipart/form-data` (files: [`files`](Self::files)). Empty for
    /// other bodies, or a malformed multipart body.
    pub fn form(&self) -> Vec<(String, String)> {
        let content_type = self.header("content-type").unwrap_or("");
        if content_type.starts_with("application/x-www-form-urlencoded") {
            parse_urlencoded(&String::from_utf8_lossy(&self.raw.body))
        } else if multipart::is_multipart(content_type) {
            multipart::parse(content_type, &self.raw.body)
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
        multipart::parse(content_type, &self.raw.body)
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
            .get_or_init(|| match serde_json::from_str(&self.raw.params) {
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
        self.raw.db.as_ref().map(|d| d.as_str()).into_option()
    }

    /// The client's address, after proxy handling.
    pub fn remote_addr(&self) -> &str {
        &self.raw.remote_addr
    }

    /// `http` or `https`, after proxy handling.
    pub fn scheme(&self) -> &str {
        &self.raw.scheme
    }

    /// The host the client asked for, after proxy handling.
    pub fn host(&self) -> &str {
        &self.raw.host
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
