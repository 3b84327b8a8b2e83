//! The session cookie: the `Set-Cookie` value (werkzeug's `dump_cookie` order) and a
//! cookie's value read from a `Cookie` header.

use super::{SESSION_COOKIE, SESSION_LIFETIME};

/// The `Set-Cookie` value for a session, lasting [`SESSION_LIFETIME`].
pub fn session_cookie(sid: &str, secure: bool) -> String {
    session_cookie_with_max_age(sid, SESSION_LIFETIME.as_secs(), secure)
}

/// The `Set-Cookie` value for a session with another `Max-Age` (Odoo's ICP
/// `sessions.max_inactivity_seconds`). Attributes in werkzeug's `dump_cookie` order:
/// `session_id=<sid>; Max-Age=<n>; [Secure; ]HttpOnly; Path=/; SameSite=Lax`. Unlike
/// Odoo, no `Expires` one year ahead: `Max-Age` alone bounds the cookie.
pub fn session_cookie_with_max_age(sid: &str, max_age: u64, secure: bool) -> String {
    // Concatenated, not formatted: a new session's cookie is set on every first contact.
    let mut digits = itoa::Buffer::new();
    let parts = [
        SESSION_COOKIE,
        "=",
        sid,
        "; Max-Age=",
        digits.format(max_age),
        "; ",
        if secure { "Secure; " } else { "" },
        "HttpOnly; Path=/; SameSite=Lax",
    ];
    let mut cookie = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        cookie.push_str(part);
    }
    cookie
}

/// The value of cookie `name` in a `Cookie` request header value (`a=1; b=2`), first one
/// wins as in werkzeug; surrounding double quotes are removed. Call once per `Cookie`
/// header line.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim();
        Some(
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value),
        )
    })
}
