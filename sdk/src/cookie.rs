//! [`Cookie`]: a `Set-Cookie` with its attributes (`Path`, `Domain`, `Max-Age`, `Secure`,
//! `HttpOnly`, `SameSite`), set on a response with [`Response::set_cookie`] and removed
//! with [`Response::delete_cookie`].

use crate::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::fmt;

/// The bytes a cookie's name or value cannot hold as they are (RFC 6265's `cookie-octet`
/// excludes controls, space, `"`, `,`, `;` and `\`; `%` so that the encoding is reversible;
/// `=` in names): percent-encoded.
const COOKIE_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');
const COOKIE_NAME: &AsciiSet = &COOKIE_VALUE.add(b'=').add(b'(').add(b')').add(b'/');

/// A cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with requests from the same site.
    Strict,
    /// Also sent with top-level navigations from other sites (browsers' default).
    Lax,
    /// Sent with every request; implies `Secure` (browsers refuse it otherwise).
    None,
}

/// A cookie to set. Defaults: `Path=/`, `HttpOnly`, `SameSite=Lax`, no `Max-Age` (a
/// browser-session cookie), not `Secure`, no `Domain`. A name or value with bytes a cookie
/// cannot hold is percent-encoded.
///
/// ```
/// use inphms_sdk::{Cookie, Response, SameSite};
/// let r = Response::text("ok").set_cookie(
///     Cookie::new("theme", "dark")
///         .max_age(3600)
///         .secure(true)
///         .domain("example.com")
///         .path("/shop")
///         .same_site(SameSite::Strict),
/// );
/// assert_eq!(
///     r.header_value("set-cookie"),
///     Some("theme=dark; Path=/shop; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Strict")
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    value: String,
    path: Option<String>,
    domain: Option<String>,
    max_age: Option<u64>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

impl Cookie {
    /// A cookie `name=value` with the defaults.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Cookie {
            name: name.into(),
            value: value.into(),
            path: Some("/".to_owned()),
            domain: None,
            max_age: None,
            secure: false,
            http_only: true,
            same_site: Some(SameSite::Lax),
        }
    }

    /// `Path` (`/` by default).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// No `Path`: the browser uses the request's directory.
    pub fn no_path(mut self) -> Self {
        self.path = None;
        self
    }

    /// `Domain`: sent to that domain and its subdomains too.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// `Max-Age` in seconds (0 removes the cookie).
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// `Secure`: sent over https only.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// `HttpOnly`: hidden from scripts (on by default).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// `SameSite`; `None` (the Rust value) leaves it out.
    pub fn same_site(mut self, same_site: impl Into<Option<SameSite>>) -> Self {
        self.same_site = same_site.into();
        self
    }
}

/// The `Set-Cookie` header's value. `Domain` and `Path` keep only the bytes an attribute
/// may hold (no `;`, no control).
impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attribute =
            |s: &str| -> String { s.chars().filter(|c| *c != ';' && !c.is_control()).collect() };
        write!(
            f,
            "{}={}",
            utf8_percent_encode(&self.name, COOKIE_NAME),
            utf8_percent_encode(&self.value, COOKIE_VALUE)
        )?;
        if let Some(path) = &self.path {
            write!(f, "; Path={}", attribute(path))?;
        }
        if let Some(domain) = &self.domain {
            write!(f, "; Domain={}", attribute(domain))?;
        }
        if let Some(age) = self.max_age {
            write!(f, "; Max-Age={age}")?;
        }
        if self.secure || self.same_site == Some(SameSite::None) {
            f.write_str("; Secure")?;
        }
        if self.http_only {
            f.write_str("; HttpOnly")?;
        }
        match self.same_site {
            Some(SameSite::Strict) => f.write_str("; SameSite=Strict"),
            Some(SameSite::Lax) => f.write_str("; SameSite=Lax"),
            Some(SameSite::None) => f.write_str("; SameSite=None"),
            None => Ok(()),
        }
    }
}

impl Response {
    /// Adds a `Set-Cookie` header for `cookie`.
    pub fn set_cookie(self, cookie: Cookie) -> Self {
        self.header("Set-Cookie", &cookie.to_string())
    }

    /// Removes the cookie `name` (of the default `Path=/`): an empty value with
    /// `Max-Age=0`.
    ///
    /// ```
    /// use inphms_sdk::Response;
    /// let r = Response::text("bye").delete_cookie("theme");
    /// assert_eq!(r.header_value("set-cookie"), Some("theme=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"));
    /// ```
    pub fn delete_cookie(self, name: &str) -> Self {
        self.set_cookie(Cookie::new(name, "").max_age(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_break_the_header_are_encoded() {
        let c = Cookie::new("a b", "x;y\r\nSet-Cookie: z=1")
            .no_path()
            .same_site(None);
        assert_eq!(
            c.to_string(),
            "a%20b=x%3By%0D%0ASet-Cookie:%20z=1; HttpOnly"
        );
        let c = Cookie::new("n", "v")
            .domain("a.com; Secure\n")
            .same_site(SameSite::None);
        assert_eq!(
            c.to_string(),
            "n=v; Path=/; Domain=a.com Secure; Secure; HttpOnly; SameSite=None"
        );
    }
}
