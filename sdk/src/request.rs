//! [`Request`]: what a handler reads: method, path, query, headers, cookies, body, form,
//! parameters (URL arguments, query and form fields, or JSON-RPC `params`), the session, the
//! selected database and the client address after proxy handling; for a `websocket` route,
//! the upgraded connection ([`Request::websocket`]).

use crate::abi::{EndpointRef, HttpRequest};
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
    /// The parameters, parsed from `raw.params` on first use, with the reason they could
    /// not be (then the map is empty).
    params: OnceCell<(Map<String, Value>, Option<String>)>,
    /// The session; changes are saved by the host after the handler (when the route allows).
    pub session: Session<'a>,
    /// The route this one overrides, when the host called an override (see
    /// [`Request::call_super`]).
    pub(crate) super_endpoint: Option<EndpointRef>,
    /// Headers for the final answer (see [`Request::add_response_header`]).
    pub(crate) response_headers: Vec<u8>,
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
            super_endpoint: None,
            response_headers: Vec::new(),
        }
    }

    /// Calls the route this handler overrides (Python's `super()` in an overriding
    /// controller method), with this request (its parameters and session as they are now),
    /// and gives what it returned, for this handler to change or return as it is. Session
    /// changes made by the overridden handler are carried back into `self.session`.
    ///
    /// An error when the route overrides nothing (see [`route`](crate::route)'s
    /// `overrides`); the overridden handler's own error as it is.
    ///
    /// ```
    /// use inphms_sdk::{route, EndpointResult, Request, Result};
    /// use serde_json::Value;
    ///
    /// /// `web`'s version info, with one more key.
    /// #[route("/web/webclient/version_info", type = "json", auth = "none", overrides = "web")]
    /// fn version_info(req: &mut Request) -> Result<Value> {
    ///     let mut info = match req.call_super()? {
    ///         EndpointResult::Value(Some(v)) => v,
    ///         _ => Value::Object(Default::default()),
    ///     };
    ///     info["extended_by"] = "my_addon".into();
    ///     Ok(info)
    /// }
    /// # fn main() {}
    /// ```
    pub fn call_super(&mut self) -> Result<crate::EndpointResult> {
        let Some(endpoint) = self.super_endpoint else {
            return Err(Error::internal(format!(
                "{} overrides no route: call_super has nothing to call",
                self.path()
            )));
        };
        crate::Endpoint::new(endpoint).call(self)
    }

    /// Whether the handler is an override that can [`Request::call_super`].
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// assert!(!Request::default().has_super());
    /// ```
    pub fn has_super(&self) -> bool {
        self.super_endpoint.is_some()
    }

    /// Adds a header to the final answer of this request, whatever produces it (the
    /// handler, an overridden handler, a hook, an error page): Odoo's
    /// `request.future_response.headers`.
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// let mut req = Request::default();
    /// req.add_response_header("X-Served-By", "my_addon");
    /// ```
    pub fn add_response_header(&mut self, name: &str, value: &str) {
        crate::abi::HeaderBlock::encode(&mut self.response_headers, name, value);
    }

    /// Calls `f` with the request in its ABI form (a dispatcher handing it to an endpoint),
    /// with the session and parameters as they are now.
    pub fn with_abi<R>(&self, f: impl FnOnce(HttpRequest<'_>) -> R) -> R {
        let session = self.session.to_json();
        // Parameters that could not be parsed cross as they came (the endpoint sees the
        // same error), never as an empty object.
        let params = self
            .params
            .get()
            .filter(|(_, error)| error.is_none())
            .map(|(p, _)| serde_json::to_string(p).unwrap_or_default());
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

    /// The body as a [`std::io::Read`] (and `BufRead`, `Seek`), to consume it in pieces:
    /// over the mapped file of a spooled body, each piece is paged in as it is read and
    /// can be dropped by the kernel once read, so a body larger than memory can be copied
    /// to where it goes (a file, a database large object) with a small buffer.
    ///
    /// ```no_run
    /// # use inphms_sdk::{Error, Request, Result};
    /// # fn f(req: &mut Request) -> Result<u64> {
    /// let io = |e: std::io::Error| Error::internal(e.to_string());
    /// let mut out = std::fs::File::create("/tmp/upload").map_err(io)?;
    /// std::io::copy(&mut req.body_reader(), &mut out).map_err(io)
    /// # }
    /// ```
    pub fn body_reader(&self) -> crate::stream::BodyReader<'a> {
        crate::stream::body_reader(&self.raw)
    }

    /// The file a large body was received into (past the host's `http_body_spool`), opened
    /// again read-only with its own offset at the start: `None` for a body held in memory
    /// (read [`body`](Self::body) then). The file has no name; it lives as long as a
    /// descriptor of it is open, so the handler may keep it past the request (hand it to a
    /// thread, say), though the host no longer counts it against its disk budget then.
    ///
    /// ```no_run
    /// # use inphms_sdk::{Error, Request, Result};
    /// # fn f(req: &mut Request) -> Result<()> {
    /// if let Some(file) = req.body_file() {
    ///     let file = file.map_err(|e| Error::internal(e.to_string()))?;
    ///     std::thread::spawn(move || {
    ///         let _lines = std::io::BufRead::lines(std::io::BufReader::new(file)).count();
    ///     });
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn body_file(&self) -> Option<std::io::Result<std::fs::File>> {
        let fd = self.raw.body_file.into_option()?;
        // A new open file description of the same (unnamed) file, read-only: the handler
        // can neither write nor truncate the file the host maps, nor move its offset.
        Some(std::fs::File::open(format!("/proc/self/fd/{fd}")))
    }

    /// The body parsed as JSON into `T`; an invalid body is a [`Error::bad_request`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(self.body())
            .map_err(|e| Error::bad_request(format!("invalid JSON: {e}")))
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
    ///
    /// The host hands over only parameters it parsed itself; should they still not parse
    /// (a dispatcher passing its own), this is empty, the reason is logged, and
    /// [`try_params`](Self::try_params) and [`param`](Self::param) answer it as an error.
    pub fn params(&self) -> &Map<String, Value> {
        &self.parsed_params().0
    }

    /// The handler's parameters, or a [`Error::bad_request`] saying why they cannot be
    /// parsed (not JSON, not an object, nested too deep, a number out of range).
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// assert!(Request::default().try_params().unwrap().is_empty());
    /// ```
    pub fn try_params(&self) -> Result<&Map<String, Value>> {
        match self.parsed_params() {
            (map, None) => Ok(map),
            (_, Some(reason)) => Err(Error::bad_request(reason.clone())),
        }
    }

    fn parsed_params(&self) -> &(Map<String, Value>, Option<String>) {
        self.params
            .get_or_init(|| match parse_params(self.raw.params.as_str()) {
                Ok(map) => (map, None),
                Err(reason) => {
                    tracing::error!(target: "inphms.http", "{reason}");
                    (Map::new(), Some(reason))
                }
            })
    }

    /// One parameter, converted to `T`. A missing or unconvertible parameter is a
    /// [`Error::bad_request`] naming it and saying what was expected (a number out of the
    /// range of `T`, a string for a number...).
    ///
    /// ```
    /// # use inphms_sdk::Request;
    /// let req = Request::default();
    /// assert!(req.param::<i64>("id").is_err());
    /// ```
    pub fn param<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let missing = || Error::bad_request(format!("missing parameter '{name}'"));
        // Before anything parsed them all, only this one is (the others are skipped over);
        // parameters that are not a JSON object go the full way, to its error.
        if self.params.get().is_none() {
            if let Some(found) = crate::json_member::member(self.raw.params.as_str(), name) {
                let raw = found.ok_or_else(missing)?;
                // Straight to `T` when the value has its shape (`"x"` for a `String`);
                // else through the conversions and errors of `from_param_value`.
                if let Ok(value) = serde_json::from_str(raw.get()) {
                    return Ok(value);
                }
                let value: Value = serde_json::from_str(raw.get())
                    .map_err(|e| Error::bad_request(format!("invalid parameters: {e}")))?;
                return crate::extract::from_param_value(name, &value);
            }
        }
        let value = self.try_params()?.get(name).ok_or_else(missing)?;
        crate::extract::from_param_value(name, value)
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

/// The parameters as the host passes them: a JSON object (empty text is no parameters).
fn parse_params(text: &str) -> std::result::Result<Map<String, Value>, String> {
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("invalid parameters: not a JSON object".to_owned()),
        Err(e) => Err(format!("invalid parameters: {e}")),
    }
}

/// Parses `a=1&b=x%20y` into pairs (`+` is a space).
pub(crate) fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_params(params: &str) -> Request<'_> {
        Request::from_abi(HttpRequest {
            params: params.into(),
            ..HttpRequest::default()
        })
    }

    #[test]
    fn unparsable_params_are_an_error_not_an_empty_map() {
        let deep = format!(r#"{{"a": {}1{}}}"#, "[".repeat(200), "]".repeat(200));
        for text in [
            deep.as_str(),
            r#"{"a": 1e999}"#,
            r#"{"a": "\ud800"}"#,
            "[1]",
            "{",
        ] {
            let req = with_params(text);
            let error = req.try_params().unwrap_err();
            assert!(
                error.message().starts_with("invalid parameters: "),
                "{text}: {error:?}"
            );
            assert!(req.params().is_empty());
            let error = req.param::<i64>("a").unwrap_err();
            assert!(
                error.message().starts_with("invalid parameters: "),
                "{error:?}"
            );
            // A dispatcher handing the request on passes the text as it came, not `{}`.
            req.with_abi(|abi| assert_eq!(abi.params.as_str(), text));
        }
        assert!(with_params("").try_params().unwrap().is_empty());
    }

    #[test]
    fn out_of_range_numbers_name_the_parameter() {
        let req = with_params(r#"{"id": 10000000000, "f": 1.5, "s": "99999999999", "t": "abc"}"#);
        let message = |name: &str| req.param::<i32>(name).unwrap_err().message().to_owned();
        assert_eq!(
            message("id"),
            "invalid value for parameter 'id': invalid value: integer `10000000000`, expected i32"
        );
        assert!(message("f").starts_with(
            "invalid value for parameter 'f': invalid type: floating point `1.5`, expected i32"
        ));
        assert!(message("s").starts_with(
            "invalid value for parameter 's': invalid value: integer `99999999999`, expected i32"
        ));
        assert!(message("t").starts_with(
            "invalid value for parameter 't': invalid type: string \"abc\", expected i32"
        ));
        assert_eq!(req.param::<i64>("id").unwrap(), 10_000_000_000);
        assert_eq!(
            req.param::<u8>("missing").unwrap_err().message(),
            "missing parameter 'missing'"
        );
    }
}
