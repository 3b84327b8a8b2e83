//! How a route handler's return value becomes its reply, as the `#[route]` macro
//! generates it: a `Result` is opened first (its error converted into [`Error`]); the value
//! then goes through [`IntoResponse`] (http routes) or [`IntoJsonResult`] (json routes),
//! and a json route may also return any [`Serialize`] value, whose serialization failure is
//! a 500 (the handler's fault, not the request's).

use crate::registry::Reply;
use crate::{Error, IntoJsonResult, IntoResponse, Result};
use serde::Serialize;
use std::cell::Cell;

/// The handler's value, probed by the macro (autoref: the first applicable method wins).
#[doc(hidden)]
pub struct Returned<T>(Cell<Option<T>>);

impl<T> Returned<T> {
    #[doc(hidden)]
    pub fn new(value: T) -> Self {
        Returned(Cell::new(Some(value)))
    }

    fn take(&self) -> Result<T> {
        self.0
            .take()
            .ok_or_else(|| Error::internal("a handler's value was converted twice"))
    }
}

/// A http route's value: anything [`IntoResponse`].
#[doc(hidden)]
pub trait ReplyHttp {
    fn http(&self) -> Result<Reply>;
}

impl<T: IntoResponse> ReplyHttp for Returned<T> {
    fn http(&self) -> Result<Reply> {
        self.take()?.into_response().map(Reply::Response)
    }
}

/// A json route's value that is [`IntoJsonResult`] (`()` omits `result`).
#[doc(hidden)]
pub trait ReplyJson {
    fn json(&self) -> Result<Reply>;
}

impl<T: IntoJsonResult> ReplyJson for Returned<T> {
    fn json(&self) -> Result<Reply> {
        self.take()?.into_json_result().map(Reply::Value)
    }
}

/// Any other json route's value: serialized (a failure is a 500).
#[doc(hidden)]
pub trait ReplySerialize {
    fn json(&self) -> Result<Reply>;
}

impl<T: Serialize> ReplySerialize for &Returned<T> {
    fn json(&self) -> Result<Reply> {
        let value = serde_json::to_value(self.take()?)
            .map_err(|e| Error::internal(format!("the result is not serializable: {e}")))?;
        Ok(Reply::Value(Some(value)))
    }
}

/// `(status, body)`: the body's response with another status.
///
/// ```
/// use inphms_sdk::{status, IntoResponse};
/// let r = (status::CREATED, "made").into_response().unwrap();
/// assert_eq!((r.status(), r.body_bytes()), (201, &b"made"[..]));
/// ```
impl<T: IntoResponse> IntoResponse for (u16, T) {
    fn into_response(self) -> Result<crate::Response> {
        Ok(self.1.into_response()?.with_status(self.0))
    }
}

/// Bytes: an `application/octet-stream` response.
///
/// ```
/// use inphms_sdk::IntoResponse;
/// let r = vec![0u8, 1, 2].into_response().unwrap();
/// assert_eq!(r.header_value("content-type"), Some("application/octet-stream"));
/// ```
impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Result<crate::Response> {
        Ok(crate::Response::new(200)
            .header("Content-Type", "application/octet-stream")
            .body(self))
    }
}

/// Static bytes: an `application/octet-stream` response.
impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Result<crate::Response> {
        self.to_vec().into_response()
    }
}

/// Text, borrowed or owned: a `text/html` response, as [`String`].
impl IntoResponse for std::borrow::Cow<'static, str> {
    fn into_response(self) -> Result<crate::Response> {
        self.into_owned().into_response()
    }
}

/// `text` escaped for an HTML text node or a quoted attribute value (`&`, `<`, `>`, `"`
/// and `'`), for pages an addon renders itself.
///
/// ```
/// assert_eq!(
///     inphms_sdk::escape_html(r#"<a href="x">'&"#),
///     "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
/// );
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` with its control characters percent-encoded, fit for a header.
pub(crate) fn header_safe(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::CONTROLS).to_string()
}
