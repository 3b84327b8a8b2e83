//! Conditional and partial requests for a static file: `If-None-Match` and
//! `If-Modified-Since` (304), `If-Range`, and one `Range: bytes=` (werkzeug's
//! `is_resource_modified` and `parse_range_header` as `send_file` uses them).

use hyper::header::{self, HeaderMap};

use super::lookup::{unix_secs, StaticFile};

pub(super) enum RangeRequest {
    /// No usable range: serve the whole file.
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range; anything else (several ranges, bad syntax) is ignored.
pub(super) fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value
        .trim()
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| value.trim()[6..].trim())
    else {
        return RangeRequest::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeRequest::Whole,
        (true, false) => match number(last) {
            None => RangeRequest::Whole,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part(size.saturating_sub(n), size - 1),
        },
        (false, _) => {
            let Some(start) = number(first) else {
                return RangeRequest::Whole;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) if end >= start => end,
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part(start, end.min(size - 1))
            }
        }
    }
}

/// Weak comparison of one entity tag against an `If-None-Match` value.
fn etag_listed(list: &str, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    list.split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == ours)
}

impl StaticFile {
    /// `If-None-Match` first; `If-Modified-Since` only without it (RFC 9110 §13.2.2).
    pub(super) fn not_modified(&self, headers: &HeaderMap) -> bool {
        let if_none_match: Vec<&str> = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !if_none_match.is_empty() {
            return if_none_match
                .iter()
                .any(|list| etag_listed(list, &self.etag));
        }
        headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
            .is_some_and(|since| unix_secs(self.mtime) <= unix_secs(since))
    }

    /// `If-Range`: absent, our exact (strong) ETag, or our exact Last-Modified date.
    pub(super) fn if_range_holds(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::IF_RANGE) else {
            return true;
        };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let value = value.trim();
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        httpdate::parse_http_date(value).is_ok_and(|date| unix_secs(date) == unix_secs(self.mtime))
    }
}
