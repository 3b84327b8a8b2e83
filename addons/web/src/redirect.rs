//! Local redirects (Odoo's `Request.redirect(location, local=True)`): whatever a client
//! passes as `redirect`, the target stays on this site.
//!
//! Odoo drops the scheme and host and keeps one leading `/`; werkzeug then quotes the
//! `Location`. Browsers also read `\` as `/` and drop tabs and newlines inside a URL, so
//! `/\evil.example` or `/\t/evil.example` would leave the site if passed on: here those are
//! normalized first, then the scheme and authority dropped, then the path quoted.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// What is quoted in the path, query and fragment of a local target (werkzeug's IRI
/// quoting keeps `/?=&#%:@!$'()*+,;~-._`; everything else is encoded).
const UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'[')
    .add(b']');

/// The local path `location` redirects to: always `/` followed by something that is not
/// `/` or `\` (`https://evil.example/x` gives `/x`, `//evil.example` gives `/`).
pub fn local(location: &str) -> String {
    // Browsers drop ASCII tabs and newlines anywhere, and trim C0 controls and spaces.
    let cleaned: String = location
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .trim_matches(|c: char| c <= ' ')
        .replace('\\', "/");
    let mut rest = cleaned.as_str();
    // A scheme: letters, digits, `+-.` after a letter, then `:`.
    if let Some(colon) = rest.find(':') {
        let scheme = &rest[..colon];
        let is_scheme = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if is_scheme {
            rest = &rest[colon + 1..];
        }
    }
    // An authority: after `//`, up to the path, query or fragment.
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        rest = &after[end..];
    }
    let path = rest.trim_start_matches('/');
    format!("/{}", utf8_percent_encode(path, UNSAFE))
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn never_leaves_the_site() {
        for (given, expected) in [
            ("//evil.example", "/"),
            ("https://evil.example", "/"),
            ("https://evil.example/path?q=1", "/path?q=1"),
            ("/\\evil.example", "/"),
            ("\\\\evil.example/x", "/x"),
            ("/\t/evil.example", "/"),
            (" //evil.example", "/"),
            ("javascript:alert(1)", "/alert(1)"),
            ("///evil.example", "/evil.example"),
            ("http:evil.example", "/evil.example"),
            ("", "/"),
            ("/web", "/web"),
            ("/web/login?redirect=/x#frag", "/web/login?redirect=/x#frag"),
            ("/a b<c>", "/a%20b%3Cc%3E"),
        ] {
            let got = local(given);
            assert_eq!(got, expected, "{given:?}");
            assert!(!got.starts_with("//"), "{given:?} -> {got}");
        }
    }
}
