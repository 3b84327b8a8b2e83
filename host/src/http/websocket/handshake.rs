//! The websocket handshake (Odoo's bus rules, reference §6): [`check_handshake`] and the
//! 101 answer ([`switching_protocols`]).

use super::super::response::{self, HttpResult};
use super::VERSION;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use hyper::{Method, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Whether a request asks for a websocket upgrade (`Upgrade: websocket`).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Checks an upgrade request; the `Sec-WebSocket-Accept` value, or the error response.
/// With `require_origin` (a route declared `require_origin = true`, Odoo's bus), the
/// `Origin` header is required too, as Odoo's `_REQUIRED_HANDSHAKE_HEADERS`.
pub fn check_handshake(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    require_origin: bool,
) -> Result<String, Box<HttpResult>> {
    let required = [
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "upgrade",
    ];
    let origin = require_origin.then_some("origin");
    let missing: Vec<&str> = required
        .into_iter()
        .chain(origin)
        .filter(|h| header(headers, h).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(bad_request(&format!(
            "Empty or missing header(s): {}",
            missing.join(", ")
        )));
    }
    if method != Method::GET || version != Version::HTTP_11 {
        return Err(bad_request(
            "A websocket upgrade is a GET request over HTTP/1.1",
        ));
    }
    if !is_upgrade_request(headers) {
        return Err(bad_request("Invalid upgrade header"));
    }
    let connection_upgrade = header(headers, "connection").is_some_and(|c| {
        c.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_upgrade {
        return Err(bad_request("Invalid connection header"));
    }
    if header(headers, "sec-websocket-version") != Some(VERSION) {
        let mut r = response::html_error(
            426,
            Some("Wrong websocket version was given during the handshake"),
        );
        r.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static(VERSION));
        return Err(Box::new(r));
    }
    let key = header(headers, "sec-websocket-key").unwrap_or_default();
    match STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => Ok(derive_accept_key(key.as_bytes())),
        Ok(_) => Err(bad_request(
            "Sec-WebSocket-Key should be of length 16 once decoded",
        )),
        Err(_) => Err(bad_request("Sec-WebSocket-Key should be b64 encoded")),
    }
}

fn bad_request(message: &str) -> Box<HttpResult> {
    let mut r = response::html_error(400, Some(message));
    r.extensions_mut().insert(Refusal(message.to_owned()));
    Box::new(r)
}

/// Why a handshake was refused, kept on the answer for the log line.
#[derive(Clone)]
struct Refusal(String);

/// The reason of a refusal [`check_handshake`] answered (its status alone when it has none).
pub fn refusal_reason(refused: &HttpResult) -> String {
    refused
        .extensions()
        .get::<Refusal>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| refused.status().to_string())
}

/// The 101 answer to an accepted handshake.
pub fn switching_protocols(accept: &str) -> HttpResult {
    let mut r = hyper::Response::new(response::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert("sec-websocket-accept", v);
    }
    r
}
#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    #[test]
    fn handshake_accepts_rfc_example() {
        let accept =
            check_handshake(&Method::GET, Version::HTTP_11, &headers(&GOOD), false).unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn handshake_refusals() {
        let status = |pairs: &[(&'static str, &'static str)], m: Method| {
            check_handshake(&m, Version::HTTP_11, &headers(pairs), false)
                .unwrap_err()
                .status()
                .as_u16()
        };
        assert_eq!(status(&GOOD[..2], Method::GET), 400);
        assert_eq!(status(&GOOD, Method::POST), 400);
        let mut v = GOOD;
        v[2].1 = "8";
        let r = check_handshake(&Method::GET, Version::HTTP_11, &headers(&v), false).unwrap_err();
        assert_eq!(r.status(), 426);
        assert_eq!(r.headers()["sec-websocket-version"], "13");
        let mut k = GOOD;
        k[3].1 = "c2hvcnQ=";
        assert_eq!(status(&k, Method::GET), 400);
        k[3].1 = "!!!";
        assert_eq!(status(&k, Method::GET), 400);
        let mut c = GOOD;
        c[0].1 = "keep-alive";
        assert_eq!(status(&c, Method::GET), 400);
        let mut u = GOOD;
        u[1].1 = "h2c";
        assert_eq!(status(&u, Method::GET), 400);
        assert!(check_handshake(&Method::GET, Version::HTTP_2, &headers(&GOOD), false).is_err());
    }

    #[test]
    fn a_route_requiring_origin_refuses_a_handshake_without_one() {
        let r = check_handshake(&Method::GET, Version::HTTP_11, &headers(&GOOD), true).unwrap_err();
        assert_eq!(r.status(), 400);
        assert_eq!(refusal_reason(&r), "Empty or missing header(s): origin");
        let mut empty = headers(&GOOD);
        empty.insert("origin", HeaderValue::from_static(""));
        let r = check_handshake(&Method::GET, Version::HTTP_11, &empty, true).unwrap_err();
        assert_eq!(refusal_reason(&r), "Empty or missing header(s): origin");
        // Named with the other missing ones, in one line.
        let r = check_handshake(&Method::GET, Version::HTTP_11, &headers(&GOOD[..3]), true)
            .unwrap_err();
        assert_eq!(
            refusal_reason(&r),
            "Empty or missing header(s): sec-websocket-key, origin"
        );
        // Any origin will do: Odoo refuses none for being foreign (the bus may serve it as
        // anonymous).
        let mut foreign = headers(&GOOD);
        foreign.insert(
            "origin",
            HeaderValue::from_static("https://elsewhere.example"),
        );
        assert!(check_handshake(&Method::GET, Version::HTTP_11, &foreign, true).is_ok());
    }
}
