//! HTTP status codes as constants, for [`Response::new`](crate::Response::new),
//! [`Response::with_status`](crate::Response::with_status) and the `(status, body)` a http
//! route may return.
//!
//! ```
//! use inphms_sdk::{status, Response};
//! assert_eq!(Response::new(status::NOT_FOUND).status(), 404);
//! ```

macro_rules! codes {
    ($($name:ident = $code:literal, $reason:literal;)*) => {$(
        #[doc = concat!("`", stringify!($code), " ", $reason, "`")]
        pub const $name: u16 = $code;
    )*};
}

codes! {
    CONTINUE = 100, "Continue";
    SWITCHING_PROTOCOLS = 101, "Switching Protocols";
    OK = 200, "OK";
    CREATED = 201, "Created";
    ACCEPTED = 202, "Accepted";
    NO_CONTENT = 204, "No Content";
    PARTIAL_CONTENT = 206, "Partial Content";
    MOVED_PERMANENTLY = 301, "Moved Permanently";
    FOUND = 302, "Found";
    SEE_OTHER = 303, "See Other";
    NOT_MODIFIED = 304, "Not Modified";
    TEMPORARY_REDIRECT = 307, "Temporary Redirect";
    PERMANENT_REDIRECT = 308, "Permanent Redirect";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    NOT_ACCEPTABLE = 406, "Not Acceptable";
    CONFLICT = 409, "Conflict";
    GONE = 410, "Gone";
    PAYLOAD_TOO_LARGE = 413, "Payload Too Large";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    UNPROCESSABLE_ENTITY = 422, "Unprocessable Entity";
    TOO_MANY_REQUESTS = 429, "Too Many Requests";
    INTERNAL_SERVER_ERROR = 500, "Internal Server Error";
    NOT_IMPLEMENTED = 501, "Not Implemented";
    BAD_GATEWAY = 502, "Bad Gateway";
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    GATEWAY_TIMEOUT = 504, "Gateway Timeout";
}
