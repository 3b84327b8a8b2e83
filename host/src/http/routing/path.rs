//! The canonical form of a path, in which rules and requests are compared: escapes
//! decoded except `%2F` and `%25`, one trailing slash dropped.

use std::borrow::Cow;

/// Removes one trailing `/`, except from the root.
pub(super) fn strip_trailing_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// A rule's literal text in canonical form: `%` is written `%25`.
pub(super) fn escape_percent(literal: &str) -> String {
    literal.replace('%', "%25")
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical form of a raw path: every `%XX` decoded except `%2F` and `%25` (written
/// in upper case), a stray `%` written `%25`, and invalid UTF-8 replaced by U+FFFD.
pub(super) fn canonical_path(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let decoded = bytes
                .get(i + 1)
                .and_then(|&h| hex_value(h))
                .zip(bytes.get(i + 2).and_then(|&l| hex_value(l)))
                .map(|(h, l)| h * 16 + l);
            match decoded {
                Some(b'/') => {
                    out.extend_from_slice(b"%2F");
                    i += 3;
                }
                Some(b'%') => {
                    out.extend_from_slice(b"%25");
                    i += 3;
                }
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.extend_from_slice(b"%25");
                    i += 1;
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Decodes the two escapes the canonical form keeps (`%2F`, `%25`).
pub(super) fn unescape_canonical(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("%2F", "/").replace("%25", "%"))
}
