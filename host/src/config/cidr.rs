//! [`Cidr`]: a network (an address and a prefix length), the item of the `proxy_trusted`
//! option; `http::proxy` trusts forwarded headers only from a peer inside one.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A trusted network: an address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A trusted-proxy entry that is not a CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError {
    entry: String,
    reason: &'static str,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid trusted proxy {:?}: {} (expected an address or a network such as \
             127.0.0.1, 10.0.0.0/8 or ::1/128)",
            self.entry, self.reason
        )
    }
}

impl std::error::Error for CidrError {}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `addr` (a single host) or `addr/prefix`; host bits set under the prefix are an
    /// error (`10.0.0.1/8`), since that is usually a typo.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| CidrError {
            entry: s.to_owned(),
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| err("prefix length out of range"))?,
            Some(_) => return Err(err("prefix length is not a number")),
        };
        let cidr = Cidr { addr, prefix };
        if bits(addr) & !mask(prefix, max) != 0 {
            return Err(err("address has bits set beyond the prefix length"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The network mask of `prefix` bits within an address of `max` bits.
fn mask(prefix: u8, max: u8) -> u128 {
    let all = if max == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    all & !all.checked_shr(u32::from(prefix)).unwrap_or(0)
}

impl Cidr {
    /// True when `ip` (IPv4-mapped IPv6 taken as IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let max = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) => 32,
            (IpAddr::V6(_), IpAddr::V6(_)) => 128,
            _ => return false,
        };
        let m = mask(self.prefix, max);
        bits(ip) & m == bits(self.addr) & m
    }
}

/// Parses a list of trusted proxies separated by commas and/or whitespace
/// (`"10.0.0.0/8, 127.0.0.1 ::1/128"`); an empty string is an empty list (trust any peer).
pub fn parse_cidrs(list: &str) -> Result<Vec<Cidr>, CidrError> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert_eq!(
            "127.0.0.1".parse::<Cidr>().unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!("::1/128".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().to_string(), "fd00::/8");
        for (bad, reason) in [
            ("10.0.0/8", "not an IP address"),
            ("proxy.local", "not an IP address"),
            ("10.0.0.0/33", "prefix length out of range"),
            ("::/129", "prefix length out of range"),
            ("10.0.0.0/", "prefix length is not a number"),
            ("10.0.0.0/-1", "prefix length is not a number"),
            ("10.0.0.0/a", "prefix length is not a number"),
            (
                "10.0.0.1/8",
                "address has bits set beyond the prefix length",
            ),
        ] {
            let e = bad.parse::<Cidr>().unwrap_err();
            assert_eq!(e.reason, reason, "{bad}");
            let msg = e.to_string();
            assert!(msg.contains(bad) && msg.contains("10.0.0.0/8"), "{msg}");
        }
    }

    #[test]
    fn cidr_lists() {
        assert!(parse_cidrs("").unwrap().is_empty());
        assert!(parse_cidrs(" , ").unwrap().is_empty());
        let list = parse_cidrs("10.0.0.0/8, 127.0.0.1 ::1/128,192.168.1.0/24").unwrap();
        assert_eq!(list.len(), 4);
        let e = parse_cidrs("10.0.0.0/8, nope").unwrap_err();
        assert!(e.to_string().contains("\"nope\""));
    }

    #[test]
    fn cidr_contains() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.9.9.9".parse().unwrap()),
            "mapped IPv4"
        );
        assert!(!c.contains("::1".parse().unwrap()));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let host: Cidr = "192.168.1.10".parse().unwrap();
        assert!(host.contains("192.168.1.10".parse().unwrap()));
        assert!(!host.contains("192.168.1.11".parse().unwrap()));
    }
}
