//! Odoo's http parameters of a request: the query string, an urlencoded or multipart form
//! and its files, merged with their precedence and bounded in size and count.

use super::*;

/// Odoo's `max_form_memory_size` (18.0): the form fields of a body (an urlencoded body, or
/// the names and text of a multipart one's fields and the names and file names of its
/// files, in all) copied into the parameters; more is a 413. Files' bytes are not copied
/// (they stay in the body), whatever their size.
pub(super) const MAX_FORM_MEMORY_SIZE: usize = 10 * 1024 * 1024;

/// Werkzeug's `max_form_parts` (its default): the pairs of an urlencoded body, or the parts
/// of a multipart one, counted before they are parsed into anything; more is a 413. Without
/// it, 10 MiB of `a&a&a...` would make five million pairs.
pub(super) const MAX_FORM_PARTS: usize = 1000;

/// Odoo's http params: query string, then form fields, then files (first value of each key
/// wins within a source; form overrides query, files override form). A file is described as
/// `{"filename", "content_type", "size"}`; its bytes stay in the body (`Request::files`).
/// A malformed multipart body is an error (400); form fields past
/// [`MAX_FORM_MEMORY_SIZE`] or [`MAX_FORM_PARTS`], 413.
pub(super) fn http_params(
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, Box<HttpResult>> {
    let mut params = Map::new();
    if query.is_empty() && body.is_empty() {
        return Ok(params);
    }
    let mut add = |pairs: Vec<(String, Value)>| {
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if seen.insert(k.clone()) {
                params.insert(k, v);
            }
        }
    };
    let text = |pairs: Vec<(String, String)>| {
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()
    };
    add(text(
        parse_urlencoded(query.as_bytes(), usize::MAX).unwrap_or_default(),
    ));
    let content_type = content_type.unwrap_or("");
    let too_large = || Box::new(response::html_error(413, None));
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if body.len() > MAX_FORM_MEMORY_SIZE {
            return Err(too_large());
        }
        add(text(
            parse_urlencoded(body, MAX_FORM_PARTS).ok_or_else(too_large)?,
        ));
    } else if inphms_sdk::multipart::is_multipart(content_type) {
        if multipart_parts_past(content_type, body, MAX_FORM_PARTS) {
            return Err(too_large());
        }
        // Borrowed: a file part's bytes (a large upload) are never copied here.
        let parts = inphms_sdk::multipart::parse_ref(content_type, body)
            .map_err(|e| Box::new(response::html_error(400, Some(&e.to_string()))))?;
        let (files, fields): (Vec<_>, Vec<_>) = parts.into_iter().partition(|p| p.is_file());
        let copied = fields
            .iter()
            .map(|p| p.name.len() + p.data.len())
            .chain(
                files
                    .iter()
                    .map(|p| p.name.len() + p.filename.as_ref().map_or(0, String::len)),
            )
            .sum::<usize>();
        if copied > MAX_FORM_MEMORY_SIZE {
            return Err(too_large());
        }
        add(fields
            .into_iter()
            .map(|p| {
                let text = String::from_utf8_lossy(p.data).into_owned();
                (p.name, Value::String(text))
            })
            .collect());
        add(files
            .into_iter()
            .map(|p| {
                let described = serde_json::json!({
                    "filename": p.filename,
                    "content_type": p.content_type,
                    "size": p.data.len(),
                });
                (p.name, described)
            })
            .collect());
    }
    Ok(params)
}

/// `a=1&b=x%20y` as pairs (`+` is a space); `None` past `most` pairs (nothing more is made).
pub(super) fn parse_urlencoded(s: &[u8], most: usize) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for (k, v) in form_urlencoded::parse(s) {
        if pairs.len() == most {
            return None;
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Some(pairs)
}

/// Whether the multipart `body` has more than `most` parts, by counting its delimiter
/// lines (without parsing anything): a part ends at each delimiter but the first. A body
/// without a valid boundary is left to the parser (a 400).
pub(super) fn multipart_parts_past(content_type: &str, body: &[u8], most: usize) -> bool {
    let Some(boundary) = inphms_sdk::multipart::boundary(content_type) else {
        return false;
    };
    let delimiter = format!("\r\n--{boundary}");
    let delimiter = delimiter.as_bytes();
    let opening = usize::from(body.starts_with(&delimiter[2..]));
    let delimiters = opening
        + memchr::memmem::find_iter(body, delimiter)
            .take(most.saturating_add(2))
            .count();
    delimiters.saturating_sub(1) > most
}
