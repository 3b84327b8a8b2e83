//! `multipart/form-data` bodies (RFC 7578), fully buffered: what an HTML form with
//! `enctype="multipart/form-data"` posts. The host uses [`parse`] to put the text fields
//! and a description of each file in an http route's parameters; a handler reads the
//! files themselves with [`Request::files`](crate::Request::files) and
//! [`Request::file`](crate::Request::file).
//!
//! ```
//! use inphms_sdk::multipart;
//! let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n\
//!              --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\
//!              Content-Type: text/plain\r\n\r\nfile body\r\n--XyZ--\r\n";
//! let parts = multipart::parse("multipart/form-data; boundary=XyZ", body).unwrap();
//! assert_eq!(parts[0].name, "title");
//! assert_eq!(parts[0].text(), "Hello");
//! assert_eq!(parts[1].filename.as_deref(), Some("a.txt"));
//! assert_eq!(parts[1].data, b"file body");
//! ```
//!
//! Parts without a `form-data` disposition or without a name are skipped. A body that is
//! not well-formed (no boundary, an unterminated part, a header block over
//! [`MAX_HEADER_BYTES`], more than [`MAX_PARTS`] parts) is a [`MultipartError`].

use percent_encoding::percent_decode_str;
use std::borrow::Cow;
use std::fmt;

/// Most parts accepted in one body.
pub const MAX_PARTS: usize = 10_000;
/// Largest header block of one part.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// One field of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The field name (`name` of `Content-Disposition`).
    pub name: String,
    /// The file name, for a file field (`filename*` preferred over `filename`).
    pub filename: Option<String>,
    /// The part's `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The content.
    pub data: Vec<u8>,
}

impl Part {
    /// Whether the part is a file (it has a file name, possibly empty).
    pub fn is_file(&self) -> bool {
        self.filename.is_some()
    }

    /// The content as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// A body that is not well-formed `multipart/form-data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartError(String);

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid multipart/form-data body: {}", self.0)
    }
}

impl std::error::Error for MultipartError {}

fn err(message: &str) -> MultipartError {
    MultipartError(message.to_owned())
}

/// Whether a `Content-Type` value is `multipart/form-data`.
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The `boundary` parameter of a `multipart/form-data` content type (1 to 70 characters).
pub fn boundary(content_type: &str) -> Option<String> {
    if !is_multipart(content_type) {
        return None;
    }
    let (_, params) = content_type.split_once(';')?;
    header_params(params)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| (1..=70).contains(&b.len()) && !b.contains(['\r', '\n']))
}

/// One field of a multipart body, its content borrowed from the body (see [`parse_ref`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef<'a> {
    /// The field name (`name` of `Content-Disposition`).
    pub name: String,
    /// The file name, for a file field (`filename*` preferred over `filename`).
    pub filename: Option<String>,
    /// The part's `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The content, in the body.
    pub data: &'a [u8],
}

impl PartRef<'_> {
    /// Whether the part is a file (it has a file name, possibly empty).
    pub fn is_file(&self) -> bool {
        self.filename.is_some()
    }

    /// The part with its content copied.
    pub fn to_part(&self) -> Part {
        Part {
            name: self.name.clone(),
            filename: self.filename.clone(),
            content_type: self.content_type.clone(),
            data: self.data.to_vec(),
        }
    }
}

/// Parses a `multipart/form-data` body whose `Content-Type` is `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
    Ok(parse_ref(content_type, body)?
        .iter()
        .map(PartRef::to_part)
        .collect())
}

/// [`parse`] without copying the contents: each part's `data` is a slice of `body` (a large
/// body, a mapped file, is then read once and not copied).
pub fn parse_ref<'a>(
    content_type: &str,
    body: &'a [u8],
) -> Result<Vec<PartRef<'a>>, MultipartError> {
    let boundary = boundary(content_type).ok_or_else(|| err("missing or invalid boundary"))?;
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    // The first delimiter may open the body without the CRLF before it.
    let mut pos = if body.starts_with(&delimiter[2..]) {
        delimiter.len() - 2
    } else {
        find(body, &delimiter).ok_or_else(|| err("no boundary found"))? + delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the CRLF ending the delimiter line.
        let padding = rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err(err("a boundary line is not followed by CRLF"));
        }
        pos += padding + 2;
        let rest = &body[pos..];
        let (head, data_start) = if rest.starts_with(b"\r\n") {
            (&rest[..0], pos + 2)
        } else {
            let end = find(&rest[..rest.len().min(MAX_HEADER_BYTES + 4)], b"\r\n\r\n")
                .ok_or_else(|| err("a part's headers are unterminated or too long"))?;
            (&rest[..end], pos + end + 4)
        };
        let data_len = find(&body[data_start..], &delimiter)
            .ok_or_else(|| err("a part is not terminated by the boundary"))?;
        let data = &body[data_start..data_start + data_len];
        pos = data_start + data_len + delimiter.len();
        if let Some(part) = make_part(head, data) {
            if parts.len() == MAX_PARTS {
                return Err(err("too many parts"));
            }
            parts.push(part);
        }
    }
}

fn make_part<'a>(head: &[u8], data: &'a [u8]) -> Option<PartRef<'a>> {
    let head = String::from_utf8_lossy(head);
    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    let disposition = disposition?;
    let (kind, params) = disposition.split_once(';').unwrap_or((&disposition, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    let params = header_params(params);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let name = get("name")?;
    let filename = get("filename*")
        .and_then(|v| ext_value(&v))
        .or_else(|| get("filename"));
    Some(PartRef {
        name,
        filename,
        content_type,
        data,
    })
}

/// RFC 8187 `charset'lang'percent-encoded` (only UTF-8 and ASCII are decoded).
fn ext_value(v: &str) -> Option<String> {
    let mut it = v.splitn(3, '\'');
    let charset = it.next()?;
    let _lang = it.next()?;
    let value = it.next()?;
    if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("us-ascii") {
        return None;
    }
    percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// `; a=b; c="d \"e\""` into pairs; values are tokens or quoted strings.
fn header_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ';' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        c => value.push(c),
                    }
                }
                // Anything after the closing quote up to `;` is ignored.
                while chars.peek().is_some_and(|c| *c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_owned();
            }
        }
        let key = key.trim().to_owned();
        if !key.is_empty() {
            out.push((key, value));
        }
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        let p = haystack[i..=haystack.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        let j = i + p;
        if &haystack[j..j + needle.len()] == needle {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=\"b1\"";

    #[test]
    fn fields_files_and_odd_shapes() {
        let body = b"preamble\r\n--b1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
            --b1  \r\ncontent-disposition: form-data; name=\"f\"; filename=\"x \\\"q\\\".bin\"; filename*=UTF-8''%E2%82%AC.bin\r\n\
            Content-Type: application/octet-stream\r\n\r\n\x00\r\n\x01\r\n\
            --b1\r\nContent-Disposition: attachment; name=\"skipped\"\r\n\r\nz\r\n\
            --b1\r\n\r\nno headers\r\n\
            --b1\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n--b1--\r\nepilogue";
        let parts = parse(CT, body).unwrap();
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(
            (parts[0].name.as_str(), parts[0].text().as_ref()),
            ("a", "1")
        );
        assert!(!parts[0].is_file());
        assert_eq!(parts[1].filename.as_deref(), Some("€.bin"));
        assert_eq!(parts[1].data, b"\x00\r\n\x01");
        assert_eq!(
            parts[1].content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!((parts[2].name.as_str(), parts[2].data.len()), ("empty", 0));
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        for (ct, body) in [
            ("multipart/form-data", &b"--b1\r\n"[..]),
            ("multipart/form-data; boundary=", b"--\r\n"),
            (CT, b""),
            (CT, b"--b1"),
            (
                CT,
                b"--b1\r\nContent-Disposition: form-data; name=a\r\n\r\nunterminated",
            ),
            (CT, b"--b1\r\nContent-Disposition: form-data; name=a"),
            (CT, b"--b1xx\r\n"),
        ] {
            assert!(parse(ct, body).is_err(), "{ct} {body:?}");
        }
        assert_eq!(parse(CT, b"--b1--").unwrap(), vec![]);
        assert_eq!(boundary("text/plain; boundary=x"), None);
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=abc").as_deref(),
            Some("abc")
        );
    }
}
