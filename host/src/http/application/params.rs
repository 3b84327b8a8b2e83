//! Odoo's http parameters of a request: the query string, an urlencoded or multipart form
//! and its files, merged with their precedence and bounded in size and count.

use super::*;

/// A request's parameters as its handler gets them: the JSON-RPC id (`null` for an http
/// route), and the parameters, raw (a json route's `params` as the body has them, when
/// nothing is merged into them) or parsed.
pub(super) struct Params<'b> {
    pub(super) jsonrpc_id: Value,
    pub(super) raw: Option<&'b str>,
    pub(super) parsed: Map<String, Value>,
}

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

/// A json route's JSON-RPC id and `params`, the route's arguments merged over them (raw, as
/// the body has them, when there is nothing to merge). `dev`: the error shows its details.
#[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
pub(super) fn rpc_params(
    body: &[u8],
    args: Map<String, Value>,
    dev: bool,
) -> Result<Params<'_>, HttpResult> {
    let rpc = disp::parse_jsonrpc_view(body).map_err(|resp| *resp)?;
    let jsonrpc_id = rpc.id;
    let mut raw = None;
    let parsed = match rpc.params {
        Ok(disp::RpcParams::Raw(params)) if args.is_empty() => {
            raw = Some(params.get());
            Map::new()
        }
        Ok(disp::RpcParams::Raw(params)) => {
            // Checked by the view: this parse succeeds, never a silent `{}`.
            let mut p: Map<String, Value> = match serde_json::from_str(params.get()) {
                Ok(p) => p,
                Err(_) => return Err(response::plain(400, "Invalid JSON data")),
            };
            p.extend(args);
            p
        }
        Ok(disp::RpcParams::Parsed(mut p)) => {
            p.extend(args);
            p
        }
        Err(message) => {
            let e = disp_error(inphms_sdk::abi::ErrorKind::Internal, &message);
            return Err(disp::jsonrpc_error(&jsonrpc_id, &e, dev));
        }
    };
    Ok(Params {
        jsonrpc_id,
        raw,
        parsed,
    })
}

/// An http route's parameters ([`http_params`]) with the route's arguments merged over
/// them, and the `csrf_token` taken out of them (for the CSRF check).
#[allow(clippy::result_large_err)] // The error is the answer, moved once: unboxed.
pub(super) fn form_params(
    query: &str,
    content_type: Option<&str>,
    body: &[u8],
    args: Map<String, Value>,
) -> Result<(Map<String, Value>, Option<Value>), HttpResult> {
    let mut p = http_params(query, content_type, body).map_err(|resp| *resp)?;
    let token = if p.is_empty() {
        None
    } else {
        p.remove("csrf_token")
    };
    if p.is_empty() {
        // The path's arguments alone (a `GET /x/<id>`): moved, not inserted one by one.
        return Ok((args, token));
    }
    if !args.is_empty() {
        p.extend(args);
    }
    Ok((p, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    /// The parameters a handler sees, whether they came raw or parsed.
    fn effective(p: &Params<'_>) -> Value {
        match p.raw {
            Some(raw) => serde_json::from_str(raw).expect("raw params are JSON"),
            None => Value::Object(p.parsed.clone()),
        }
    }

    const URLENCODED: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn form_overrides_query_and_the_first_value_of_a_key_wins_within_each() {
        let p = http_params("a=q&b=q&a=q2&b=q2", URLENCODED, b"a=f&c=f1&c=f2").unwrap();
        assert_eq!(Value::Object(p), json!({"a": "f", "b": "q", "c": "f1"}));
    }

    #[test]
    fn query_only_and_decoding() {
        let p = http_params("x=a+b&y=%C3%A9&z", None, b"").unwrap();
        assert_eq!(Value::Object(p), json!({"x": "a b", "y": "é", "z": ""}));
        assert!(http_params("", None, b"").unwrap().is_empty());
    }

    #[test]
    fn a_body_of_another_type_adds_nothing() {
        let p = http_params("a=q", Some("text/plain"), b"a=f&b=f").unwrap();
        assert_eq!(Value::Object(p), json!({"a": "q"}));
    }

    #[test]
    fn multipart_fields_override_query_and_files_override_fields() {
        let body = b"--XX\r\n\
Content-Disposition: form-data; name=\"a\"\r\n\r\nfield-a\r\n\
--XX\r\n\
Content-Disposition: form-data; name=\"a\"\r\n\r\nsecond-a\r\n\
--XX\r\n\
Content-Disposition: form-data; name=\"f\"\r\n\r\nfield-f\r\n\
--XX\r\n\
Content-Disposition: form-data; name=\"f\"; filename=\"up.txt\"\r\n\
Content-Type: text/plain\r\n\r\nhello\r\n\
--XX--\r\n";
        let p = http_params("a=q&b=q", Some("multipart/form-data; boundary=XX"), body).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({
                "a": "field-a",
                "b": "q",
                "f": {"filename": "up.txt", "content_type": "text/plain", "size": 5},
            })
        );
    }

    #[test]
    fn a_malformed_multipart_body_is_400_and_too_many_pairs_413() {
        let err =
            http_params("", Some("multipart/form-data; boundary=XX"), b"garbage").unwrap_err();
        assert_eq!(err.status(), 400);
        let many = "a&".repeat(MAX_FORM_PARTS + 1);
        let err = http_params("", URLENCODED, many.as_bytes()).unwrap_err();
        assert_eq!(err.status(), 413);
        let enough = "a&".repeat(MAX_FORM_PARTS - 1) + "a";
        assert!(http_params("", URLENCODED, enough.as_bytes()).is_ok());
    }

    #[test]
    fn route_args_override_form_and_query_and_the_csrf_token_is_taken_out() {
        let args = map(json!({"id": 7, "a": "route"}));
        let (p, token) =
            form_params("a=q&id=q", URLENCODED, b"a=f&csrf_token=tok&c=f", args).unwrap();
        assert_eq!(Value::Object(p), json!({"a": "route", "id": 7, "c": "f"}));
        assert_eq!(token, Some(json!("tok")));
        let (p, token) = form_params("", None, b"", Map::new()).unwrap();
        assert!(p.is_empty() && token.is_none());
    }

    #[test]
    fn route_args_override_jsonrpc_params() {
        let body = br#"{"jsonrpc": "2.0", "id": 3, "params": {"a": 1, "b": [2]}}"#;
        let p = rpc_params(body, Map::new(), false).unwrap();
        assert_eq!(p.jsonrpc_id, json!(3));
        assert_eq!(effective(&p), json!({"a": 1, "b": [2]}));
        let p = rpc_params(body, map(json!({"a": "route", "c": 4})), false).unwrap();
        assert_eq!(p.raw, None);
        assert_eq!(effective(&p), json!({"a": "route", "b": [2], "c": 4}));
    }

    #[test]
    fn jsonrpc_without_params_gets_the_route_args_and_bad_json_is_refused() {
        let p = rpc_params(br#"{"id": "x"}"#, map(json!({"id": 1})), false).unwrap();
        assert_eq!(p.jsonrpc_id, json!("x"));
        assert_eq!(effective(&p), json!({"id": 1}));
        assert!(rpc_params(b"{not json", Map::new(), false).is_err());
    }
}
