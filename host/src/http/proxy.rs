//! Proxy mode: who the client is, and which scheme and host it asked for.
//!
//! Odoo's rule (reference §7.2 step 2, werkzeug `ProxyFix(x_for=1, x_proto=1, x_host=1)`)
//! plus what its users ask for. [`resolve`] trusts the forwarded headers only when **all**
//! of these hold:
//! * `proxy_mode` is on;
//! * the request carries a usable `X-Forwarded-Host`;
//! * the peer is in the trusted list ([`parse_cidrs`]); an empty list trusts any peer, as
//!   Odoo does. An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, from a dual-stack listener)
//!   is compared as IPv4.
//!
//! Then: the client address is the **last** `X-Forwarded-For` value (the one the trusted
//! proxy appended; several header lines count as one comma-separated list), the scheme is
//! the last `X-Forwarded-Proto` value (`http` or `https`, anything else is ignored), the
//! host is the last `X-Forwarded-Host` value, and `X-Forwarded-Port` (an integer 1 to
//! 65535) replaces its port, omitted when it is the scheme's default. A forwarded value
//! that is missing or malformed keeps the direct one (peer address, `http`).
//!
//! Otherwise nothing forwarded is used, not even `X-Forwarded-For`: the peer address,
//! `http` (the server speaks plain HTTP), and the `Host` header.
//!
//! A host value is used only when it looks like a host (`[A-Za-z0-9.-_:[]]`, at most 255
//! bytes): a malformed `X-Forwarded-Host` counts as absent, a malformed `Host` as none.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use crate::config::cidr::{parse_cidrs, Cidr, CidrError};

use hyper::header::{HeaderMap, HeaderName, HeaderValue, HOST};

/// The request's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`resolve`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (werkzeug's `REMOTE_ADDR`).
    pub remote_addr: IpAddr,
    /// `wsgi.url_scheme`.
    pub scheme: Scheme,
    /// `HTTP_HOST` (may include a port); `None` without a usable host header (an HTTP/2
    /// request carries its authority in the URI instead).
    pub host: Option<HostName>,
    /// True when the forwarded headers were applied.
    pub forwarded: bool,
}

/// Applies proxy mode to one request (see the module documentation). `trusted` is the
/// parsed trusted-proxy list ([`parse_cidrs`]); empty trusts any peer.
pub fn resolve(
    proxy_mode: bool,
    trusted: &[Cidr],
    peer: SocketAddr,
    headers: &HeaderMap,
) -> ClientInfo {
    let direct = ClientInfo {
        remote_addr: peer.ip().to_canonical(),
        scheme: Scheme::Http,
        host: headers.get(HOST).and_then(HostName::from_header),
        forwarded: false,
    };
    if !proxy_mode {
        return direct;
    }
    let Some(forwarded_host) = last_value(headers, "x-forwarded-host").filter(|h| is_host(h))
    else {
        return direct;
    };
    if !trusted.is_empty() && !trusted.iter().any(|c| c.contains(peer.ip())) {
        tracing::debug!(target: "inphms.http", peer = %peer,
            "forwarded headers from an untrusted peer ignored");
        return direct;
    }

    let remote_addr = last_value(headers, "x-forwarded-for")
        .and_then(parse_client_addr)
        .unwrap_or(direct.remote_addr);
    let scheme = match last_value(headers, "x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let port = last_value(headers, "x-forwarded-port")
        .filter(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p != 0);
    let host = match port {
        None => forwarded_host.to_owned(),
        Some(port) => {
            let name = strip_port(forwarded_host);
            if port == scheme.default_port() {
                name.to_owned()
            } else {
                format!("{name}:{port}")
            }
        }
    };
    ClientInfo {
        remote_addr,
        scheme,
        host: HostName::from_text(host),
        forwarded: true,
    }
}

/// The last comma-separated value over every line of header `name`, trimmed.
fn last_value<'h>(headers: &'h HeaderMap, name: &'static str) -> Option<&'h str> {
    let name = HeaderName::from_static(name);
    let line = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let value = line.rsplit(',').next()?.trim();
    (!value.is_empty()).then_some(value)
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678`, `[2001:db8::1]:443`.
fn parse_client_addr(value: &str) -> Option<IpAddr> {
    value
        .parse::<IpAddr>()
        .or_else(|_| value.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

fn is_host(value: &str) -> bool {
    is_host_bytes(value.as_bytes())
}

/// [`is_host`] on bytes: only ASCII passes, so bytes that pass are text.
fn is_host_bytes(value: &[u8]) -> bool {
    const ALLOWED: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] =
                c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'[' | b']');
            b += 1;
        }
        table
    };
    !value.is_empty() && value.len() <= 255 && value.iter().all(|&b| ALLOWED[b as usize])
}

/// A host as the request names it, checked by [`is_host`] (so plain ASCII). The `Host`
/// header's value is kept as hyper parsed it (shared bytes, no copy: this is read for every
/// request); it dereferences to the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(HeaderValue);

impl HostName {
    /// The host of a `Host` header, if it looks like one (surrounding spaces ignored).
    fn from_header(value: &HeaderValue) -> Option<HostName> {
        // The common case, checked on the bytes: a host as it is (no spaces around it).
        if is_host_bytes(value.as_bytes()) {
            return Some(HostName(value.clone()));
        }
        let text = value.to_str().ok()?;
        let trimmed = text.trim();
        if !is_host(trimmed) {
            return None;
        }
        if trimmed.len() == text.len() {
            Some(HostName(value.clone()))
        } else {
            HostName::from_text(trimmed.to_owned())
        }
    }

    fn from_text(text: String) -> Option<HostName> {
        HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
            .ok()
            .map(HostName)
    }
}

impl std::ops::Deref for HostName {
    type Target = str;

    fn deref(&self) -> &str {
        // SAFETY: a `HostName` is only made from text that passed `is_host`, which accepts
        // ASCII bytes only: valid UTF-8. (Checking again costs more than the rest of the
        // host's handling, and it is read several times per request.)
        unsafe { std::str::from_utf8_unchecked(self.0.as_bytes()) }
    }
}

/// `example.com:8080` → `example.com`; `[::1]:8080` → `[::1]`; `[::1]` stays.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.split_once(':') {
        Some((name, _)) => name,
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn resolve_with(
        proxy_mode: bool,
        trusted: &str,
        peer_addr: &str,
        headers: &HeaderMap,
    ) -> ClientInfo {
        resolve(
            proxy_mode,
            &parse_cidrs(trusted).unwrap(),
            peer(peer_addr),
            headers,
        )
    }

    const FORWARDED: &[(&str, &str)] = &[
        ("host", "127.0.0.1:8069"),
        ("x-forwarded-for", "198.51.100.1, 203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "erp.example.com"),
    ];

    #[test]
    fn proxy_mode_off_ignores_everything() {
        let info = resolve_with(false, "", "10.0.0.2:5000", &headers(FORWARDED));
        assert_eq!(
            info,
            ClientInfo {
                remote_addr: "10.0.0.2".parse().unwrap(),
                scheme: Scheme::Http,
                host: HostName::from_text("127.0.0.1:8069".to_owned()),
                forwarded: false,
            }
        );
    }

    #[test]
    fn without_forwarded_host_nothing_is_rewritten() {
        let h = headers(&[
            ("host", "localhost:8069"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let info = resolve_with(true, "", "10.0.0.2:5000", &h);
        assert_eq!(info.remote_addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, Scheme::Http);
        assert_eq!(info.host.as_deref(), Some("localhost:8069"));
        assert!(!info.forwarded);
    }

    #[test]
    fn trusted_peer_applies_forwarded_headers() {
        for trusted in ["", "10.0.0.0/8", "192.168.0.0/16, 10.0.0.2"] {
            let info = resolve_with(true, trusted, "10.0.0.2:5000", &headers(FORWARDED));
            assert_eq!(
                info,
                ClientInfo {
                    remote_addr: "203.0.113.7".parse().unwrap(),
                    scheme: Scheme::Https,
                    host: HostName::from_text("erp.example.com".to_owned()),
                    forwarded: true,
                },
                "{trusted}"
            );
        }
        // The last X-Forwarded-For value is the client, across header lines too.
        let h = headers(&[
            ("x-forwarded-host", "erp.example.com"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.4, 203.0.113.9"),
        ]);
        let info = resolve_with(true, "", "10.0.0.2:5000", &h);
        assert_eq!(info.remote_addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, Scheme::Http, "no X-Forwarded-Proto");
    }

    #[test]
    fn untrusted_peer_is_ignored() {
        let info = resolve_with(true, "10.0.0.0/8", "192.0.2.1:5000", &headers(FORWARDED));
        assert_eq!(info.remote_addr, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, Scheme::Http);
        assert_eq!(info.host.as_deref(), Some("127.0.0.1:8069"));
        assert!(!info.forwarded);
    }

    #[test]
    fn ipv6_and_mapped_peers() {
        let info = resolve_with(true, "::1", "[::1]:5000", &headers(FORWARDED));
        assert!(info.forwarded);
        let info = resolve_with(
            true,
            "127.0.0.0/8",
            "[::ffff:127.0.0.1]:5000",
            &headers(FORWARDED),
        );
        assert!(info.forwarded);
        let direct = resolve_with(false, "", "[::ffff:127.0.0.1]:5000", &HeaderMap::new());
        assert_eq!(direct.remote_addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(direct.host, None);
    }

    #[test]
    fn forwarded_port() {
        let cases = [
            ("https", "erp.example.com", "443", "erp.example.com"),
            ("https", "erp.example.com", "8443", "erp.example.com:8443"),
            ("http", "erp.example.com:9000", "80", "erp.example.com"),
            (
                "http",
                "erp.example.com:9000",
                "8080",
                "erp.example.com:8080",
            ),
            ("https", "[2001:db8::1]:1", "4443", "[2001:db8::1]:4443"),
            ("https", "[2001:db8::1]", "443", "[2001:db8::1]"),
            (
                "https",
                "erp.example.com:8443",
                "nope",
                "erp.example.com:8443",
            ),
            ("https", "erp.example.com", "0", "erp.example.com"),
            ("https", "erp.example.com", "70000", "erp.example.com"),
        ];
        for (proto, host, port, expected) in cases {
            let h = headers(&[
                ("x-forwarded-host", host),
                ("x-forwarded-proto", proto),
                ("x-forwarded-port", port),
            ]);
            let info = resolve_with(true, "", "10.0.0.2:5000", &h);
            assert_eq!(
                info.host.as_deref(),
                Some(expected),
                "{proto} {host} {port}"
            );
        }
    }

    #[test]
    fn malformed_forwarded_values() {
        // A malformed X-Forwarded-Host counts as absent.
        let h = headers(&[
            ("host", "localhost"),
            ("x-forwarded-host", "evil.com/path"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        let info = resolve_with(true, "", "10.0.0.2:5000", &h);
        assert!(!info.forwarded);
        assert_eq!(info.host.as_deref(), Some("localhost"));
        // Garbage client address and scheme keep the direct values.
        let h = headers(&[
            ("x-forwarded-host", "a.example.com, erp.example.com"),
            ("x-forwarded-for", "203.0.113.7, unknown"),
            ("x-forwarded-proto", "gopher"),
        ]);
        let info = resolve_with(true, "", "10.0.0.2:5000", &h);
        assert!(info.forwarded);
        assert_eq!(info.remote_addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(info.scheme, Scheme::Http);
        assert_eq!(info.host.as_deref(), Some("erp.example.com"));
        // Address forms with ports.
        assert_eq!(
            parse_client_addr("1.2.3.4:80"),
            Some("1.2.3.4".parse().unwrap())
        );
        assert_eq!(
            parse_client_addr("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_client_addr(""), None);
        // A Host header with spaces inside is not a host.
        let h = headers(&[("host", "a b")]);
        assert_eq!(resolve_with(false, "", "10.0.0.2:1", &h).host, None);
    }

    #[test]
    fn scheme_helpers() {
        assert_eq!(Scheme::Https.as_str(), "https");
        assert_eq!(Scheme::Http.to_string(), "http");
        assert_eq!(Scheme::Https.default_port(), 443);
        assert_eq!(Scheme::Http.default_port(), 80);
    }
}
