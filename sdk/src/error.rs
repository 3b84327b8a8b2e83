//! [`Error`]: what a handler, command or hook returns when it fails, classified the way Odoo
//! classifies its exceptions so that each dispatcher can answer it in its own shape.

use crate::abi::{ErrorInfo, ErrorKind};
use serde_json::Value;
use std::fmt;

/// The names of Odoo's exceptions as its clients read them (a JSON-RPC error's
/// `data.name`): the one place that names them, for addons and the host alike.
///
/// ```
/// use inphms_sdk::{exceptions, Error};
/// let e = Error::access("Access Denied").with_name(exceptions::ACCESS_DENIED);
/// assert_eq!(e.name(), "odoo.exceptions.AccessDenied");
/// assert_eq!(Error::user("No.").name(), exceptions::USER_ERROR);
/// ```
pub mod exceptions {
    /// `odoo.exceptions.AccessDenied`: wrong credentials (login, master password, key).
    pub const ACCESS_DENIED: &str = "odoo.exceptions.AccessDenied";
    /// `odoo.exceptions.AccessError`: access refused ([`Error::access`](crate::Error::access)).
    pub const ACCESS_ERROR: &str = "odoo.exceptions.AccessError";
    /// `odoo.exceptions.UserError` ([`Error::user`](crate::Error::user)).
    pub const USER_ERROR: &str = "odoo.exceptions.UserError";
    /// `odoo.http.SessionExpiredException`: not logged in, or logged out
    /// ([`Error::session_expired`](crate::Error::session_expired); JSON-RPC code 100).
    pub const SESSION_EXPIRED: &str = "odoo.http.SessionExpiredException";
    /// `builtins.Exception`: an unexpected failure ([`Error::internal`](crate::Error::internal);
    /// JSON-RPC code 200, "Odoo Server Error"). Also the name of a request stopped by a time
    /// limit: Odoo's workers raise a plain `Exception('CPU time limit exceeded.')` at
    /// `limit_time_cpu` (at `limit_time_real` the worker is killed and nothing is answered),
    /// so the host's `limit_time_real` answer of a json route carries this name.
    pub const INTERNAL_ERROR: &str = "builtins.Exception";
}

/// The result type of handlers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error raised by addon code.
///
/// ```
/// use inphms_sdk::Error;
/// let e = Error::user("The order is already confirmed");
/// assert_eq!(e.message(), "The order is already confirmed");
/// assert_eq!(e.name(), "odoo.exceptions.UserError");
/// ```
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    name: String,
    message: String,
    arguments: Vec<Value>,
    debug: String,
}

impl Error {
    fn new(kind: ErrorKind, name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Error {
            kind,
            name: name.to_owned(),
            arguments: vec![Value::String(message.clone())],
            message,
            debug: String::new(),
        }
    }

    /// An error the user can act on (Odoo's `UserError`): 400 for http routes.
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, exceptions::USER_ERROR, message)
    }

    /// Access refused (Odoo's `AccessError`): 403 for http routes.
    pub fn access(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Access, exceptions::ACCESS_ERROR, message)
    }

    /// Nothing at that address: 404, or JSON-RPC code 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "werkzeug.exceptions.NotFound", message)
    }

    /// The session is not logged in: a redirect to `/web/login`, or JSON-RPC code 100.
    pub fn session_expired(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::SessionExpired,
            exceptions::SESSION_EXPIRED,
            message,
        )
    }

    /// The request is malformed: 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::BadRequest,
            "werkzeug.exceptions.BadRequest",
            message,
        )
    }

    /// Anything else: 500 with the details hidden, or JSON-RPC code 200.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, exceptions::INTERNAL_ERROR, message)
    }

    /// Sets the error's name (the `data.name` of a JSON-RPC error).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the error's arguments (the `data.arguments` of a JSON-RPC error).
    pub fn with_arguments(mut self, arguments: Vec<Value>) -> Self {
        self.arguments = arguments;
        self
    }

    /// Adds details for developers, shown only when the server runs with `--dev`.
    pub fn with_debug(mut self, debug: impl Into<String>) -> Self {
        self.debug = debug.into();
        self
    }

    /// The error's class.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The error's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error's arguments.
    pub fn arguments(&self) -> &[Value] {
        &self.arguments
    }

    pub(crate) fn panic(message: String) -> Self {
        Self::new(
            ErrorKind::Panic,
            "builtins.Exception",
            "Internal Server Error",
        )
        .with_debug(format!("panicked: {message}"))
    }

    pub(crate) fn into_info(self) -> ErrorInfo {
        ErrorInfo {
            kind: self.kind,
            name: self.name.into(),
            message: self.message.into(),
            arguments: Value::Array(self.arguments).to_string().into(),
            debug: self.debug.into(),
        }
    }

    /// Rebuilds an error that crossed the boundary (a dispatcher reading an endpoint's error).
    pub fn from_info(info: &ErrorInfo) -> Self {
        Error {
            kind: info.kind,
            name: info.name.to_string(),
            message: info.message.to_string(),
            arguments: serde_json::from_str(&info.arguments).unwrap_or_default(),
            debug: info.debug.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A JSON error: a document that does not parse (it has a line and a column: the
/// request's fault) is a 400; a value that cannot be serialized, or converted from a
/// `Value` the handler holds (no position: the handler's fault), is a 500.
///
/// ```
/// use inphms_sdk::{Error, abi::ErrorKind};
/// let parse: Error = serde_json::from_str::<i64>("{").unwrap_err().into();
/// assert_eq!(parse.kind(), ErrorKind::BadRequest);
/// let mut map = std::collections::HashMap::new();
/// map.insert(vec![1u8], 1);
/// let serialize: Error = serde_json::to_string(&map).unwrap_err().into();
/// assert_eq!(serialize.kind(), ErrorKind::Internal);
/// ```
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        if e.line() == 0 || e.is_io() {
            Error::internal(format!("JSON: {e}"))
        } else {
            Error::bad_request(format!("invalid JSON: {e}"))
        }
    }
}

/// An I/O failure in a handler: a 500 (`?` on `std::fs`, `std::io` calls).
///
/// ```
/// use inphms_sdk::{Error, Result, abi::ErrorKind};
/// fn read() -> Result<String> {
///     Ok(std::fs::read_to_string("/nonexistent/inphms")?)
/// }
/// assert_eq!(read().unwrap_err().kind(), ErrorKind::Internal);
/// ```
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(e.to_string()).with_debug(format!("{e:?}"))
    }
}

/// Any other error, boxed (`Box<dyn Error + Send + Sync>`, what `?` makes of most error
/// types): a 500.
///
/// ```
/// use inphms_sdk::{Error, Result, abi::ErrorKind};
/// fn parse(text: &str) -> Result<u8> {
///     let n: u8 = text.parse().map_err(Box::<dyn std::error::Error + Send + Sync>::from)?;
///     Ok(n)
/// }
/// assert_eq!(parse("x").unwrap_err().kind(), ErrorKind::Internal);
/// ```
impl From<Box<dyn std::error::Error + Send + Sync>> for Error {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Error::internal(e.to_string()).with_debug(format!("{e:?}"))
    }
}

/// A boxed error that is not `Send`: a 500.
impl From<Box<dyn std::error::Error>> for Error {
    fn from(e: Box<dyn std::error::Error>) -> Self {
        Error::internal(e.to_string()).with_debug(format!("{e:?}"))
    }
}

/// A formatting failure (`?` on `write!` to a `String`): a 500.
impl From<std::fmt::Error> for Error {
    fn from(e: std::fmt::Error) -> Self {
        Error::internal(e.to_string())
    }
}
