//! One URL rule (werkzeug's `Rule`): a pattern parsed into its literals and converters,
//! compiled to a static key or an anchored regex, and its match of a canonical path.

use std::fmt;

use regex::Regex;

use super::converters::{Converter, ParamValue};
use super::path::{escape_percent, strip_trailing_slash};

/// Why a pattern is not a valid rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The pattern does not start with `/` (this includes the empty pattern).
    NoLeadingSlash(String),
    /// A `<` without its `>`.
    Unclosed(String),
    /// `<>` or `<int:>`.
    EmptyName(String),
    /// A parameter name that is not an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    InvalidName(String),
    /// A converter other than `string`, `int`, `float`, `path`.
    UnknownConverter(String),
    /// `<int(min=1):id>`: converter arguments are not supported.
    ConverterArguments(String),
    /// The same parameter name twice in one pattern.
    DuplicateName(String),
    /// The compiled pattern is too large for the regex engine.
    TooComplex(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::NoLeadingSlash(p) => write!(f, "route {p:?} must start with '/'"),
            RuleError::Unclosed(p) => write!(f, "route {p:?} has a '<' without its '>'"),
            RuleError::EmptyName(p) => write!(f, "route {p:?} has a parameter without a name"),
            RuleError::InvalidName(n) => {
                write!(f, "route parameter name {n:?} is not an identifier")
            }
            RuleError::UnknownConverter(c) => write!(
                f,
                "unknown route converter {c:?} (known: string, int, float, path)"
            ),
            RuleError::ConverterArguments(c) => {
                write!(f, "route converter arguments are not supported: {c:?}")
            }
            RuleError::DuplicateName(n) => write!(f, "route parameter {n:?} appears twice"),
            RuleError::TooComplex(p) => write!(f, "route {p:?} is too complex to compile"),
        }
    }
}

impl std::error::Error for RuleError {}

/// A parsed URL pattern.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: String,
    /// The canonical path (trailing slash stripped, `%` escaped) when there is no parameter.
    pub(super) static_key: Option<String>,
    /// The first segment of a dynamic rule when it is fully static.
    pub(super) first_segment: Option<String>,
    /// Parameter names and converters, in capture order.
    params: Vec<(String, Converter)>,
    regex: Option<LazyRegex>,
    /// The rule as whole path segments, when each converter takes whole segments (most
    /// rules: `/web/image/<int:id>`, `/web/content/<path:p>`): matched segment by segment,
    /// without the regex, which matches the others (`/<int:id>-<string:u>`).
    segments: Option<Vec<Segment>>,
}

/// A piece of a rule matched segment by segment ([`Rule::segments`]).
#[derive(Debug, Clone)]
enum Segment {
    /// A literal segment (canonical, `%` escaped).
    Literal(String),
    /// One whole segment for the parameter at this index.
    Param(usize),
    /// The rest of the path for the `path` parameter at this index (the last piece).
    Rest(usize),
}

/// A rule's anchored regex, compiled by its first match rather than when the route table is
/// built: compiling the regexes of `base` and `web` was ≈ 7% of the start-up's CPU (each
/// compile faults in a fresh table of the regex compiler), for routes that most processes
/// never match before they serve their first request. The pattern is made of escaped
/// literals and the converters' fixed expressions, so it always compiles; a pattern too
/// large for the regex engine is refused when parsed ([`MAX_REGEX_LEN`]).
#[derive(Debug, Clone)]
struct LazyRegex {
    source: String,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match Regex::new(&self.source) {
                Ok(re) => Some(re),
                Err(e) => {
                    // Not expected (see above); the route then matches nothing.
                    tracing::error!(target: "inphms.http", "route regex {:?} does not compile: {e}", self.source);
                    None
                }
            })
            .as_ref()
    }
}

/// The longest regex source a rule may have (its pattern is refused as too complex past
/// it): far beyond any route, and well within the regex engine's compiled size limit.
const MAX_REGEX_LEN: usize = 16 * 1024;

impl Rule {
    /// Parses a werkzeug-style pattern (see the module documentation).
    pub fn parse(pattern: &str) -> Result<Rule, RuleError> {
        if !pattern.starts_with('/') {
            return Err(RuleError::NoLeadingSlash(pattern.to_owned()));
        }
        let normalized = strip_trailing_slash(pattern);

        // Split into literal text and parameters.
        let mut literals: Vec<String> = Vec::new(); // literal before each param, then the tail
        let mut params: Vec<(String, Converter)> = Vec::new();
        let mut rest = normalized;
        loop {
            match rest.find('<') {
                None => {
                    literals.push(escape_percent(rest));
                    break;
                }
                Some(open) => {
                    literals.push(escape_percent(&rest[..open]));
                    let after = &rest[open + 1..];
                    let close = after
                        .find('>')
                        .ok_or_else(|| RuleError::Unclosed(pattern.to_owned()))?;
                    let inner = &after[..close];
                    let (conv, name) = match inner.split_once(':') {
                        Some((conv, name)) => (conv.trim(), name.trim()),
                        None => ("string", inner.trim()),
                    };
                    if conv.contains('(') {
                        return Err(RuleError::ConverterArguments(inner.to_owned()));
                    }
                    let conv = match conv {
                        "string" | "default" => Converter::Str,
                        "int" => Converter::Int,
                        "float" => Converter::Float,
                        "path" => Converter::Path,
                        other => return Err(RuleError::UnknownConverter(other.to_owned())),
                    };
                    if name.is_empty() {
                        return Err(RuleError::EmptyName(pattern.to_owned()));
                    }
                    if !is_identifier(name) {
                        return Err(RuleError::InvalidName(name.to_owned()));
                    }
                    if params.iter().any(|(n, _)| n == name) {
                        return Err(RuleError::DuplicateName(name.to_owned()));
                    }
                    params.push((name.to_owned(), conv));
                    rest = &after[close + 1..];
                }
            }
        }

        if params.is_empty() {
            return Ok(Rule {
                pattern: pattern.to_owned(),
                static_key: Some(literals.pop().unwrap_or_default()),
                first_segment: None,
                params,
                regex: None,
                segments: None,
            });
        }

        let mut re = String::with_capacity(normalized.len() * 2 + 8);
        re.push('^');
        for (i, lit) in literals.iter().enumerate() {
            re.push_str(&regex::escape(lit));
            if let Some((_, conv)) = params.get(i) {
                re.push_str(conv.regex());
            }
        }
        re.push('$');
        if re.len() > MAX_REGEX_LEN {
            return Err(RuleError::TooComplex(pattern.to_owned()));
        }
        let regex = LazyRegex {
            source: re,
            compiled: std::sync::OnceLock::new(),
        };

        // The first segment is static when the first literal holds a second '/'.
        let first = &literals[0][1..];
        let first_segment = first.find('/').map(|end| first[..end].to_owned());
        let segments = whole_segments(&literals, &params);

        Ok(Rule {
            pattern: pattern.to_owned(),
            static_key: None,
            first_segment,
            params,
            regex: Some(regex),
            segments,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// True when the rule has no converter.
    pub fn is_static(&self) -> bool {
        self.static_key.is_some()
    }

    /// The parameter names, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(n, _)| n.as_str())
    }

    /// Matches a canonical, slash-stripped path; `None` when it does not match.
    pub(super) fn captures(&self, canonical: &str) -> Option<Vec<(String, ParamValue)>> {
        if let Some(segments) = &self.segments {
            if let Some(matched) = self.segment_captures(segments, canonical) {
                return matched;
            }
        }
        self.regex_captures(canonical)
    }

    /// [`Rule::captures`] by the regex.
    fn regex_captures(&self, canonical: &str) -> Option<Vec<(String, ParamValue)>> {
        match (&self.static_key, &self.regex) {
            (Some(key), _) => (key == canonical).then(Vec::new),
            (None, Some(re)) => {
                let caps = re.get()?.captures(canonical)?;
                let mut args = Vec::with_capacity(self.params.len());
                for (i, (name, conv)) in self.params.iter().enumerate() {
                    let text = caps.get(i + 1)?.as_str();
                    args.push((name.clone(), conv.convert(text)?));
                }
                Some(args)
            }
            (None, None) => None,
        }
    }
}

impl Rule {
    /// [`Rule::captures`] segment by segment: what the regex would give, or `None` (the
    /// outer one) for a path it must decide (a `path` parameter's rest holding a line
    /// break, which the regex's `.` does not match).
    #[allow(clippy::option_option)]
    fn segment_captures(
        &self,
        segments: &[Segment],
        canonical: &str,
    ) -> Option<Option<Vec<(String, ParamValue)>>> {
        let Some(mut rest) = canonical.strip_prefix('/') else {
            return Some(None);
        };
        let mut args = Vec::with_capacity(self.params.len());
        let mut first = true;
        for segment in segments {
            if !first {
                match rest.strip_prefix('/') {
                    Some(r) => rest = r,
                    None => return Some(None),
                }
            }
            first = false;
            let (piece, after) = match segment {
                Segment::Rest(_) => (rest, ""),
                _ => rest.split_at(rest.find('/').unwrap_or(rest.len())),
            };
            match segment {
                Segment::Literal(lit) => {
                    if piece != lit {
                        return Some(None);
                    }
                }
                Segment::Param(i) | Segment::Rest(i) => {
                    let (name, conv) = &self.params[*i];
                    let shaped = match conv {
                        Converter::Str => !piece.is_empty(),
                        Converter::Int => {
                            let digits = piece.strip_prefix('-').unwrap_or(piece);
                            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                        }
                        Converter::Float => piece.split_once('.').is_some_and(|(a, b)| {
                            [a, b]
                                .iter()
                                .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                        }),
                        Converter::Path => {
                            if piece.contains('\n') {
                                return None;
                            }
                            !piece.is_empty() && !piece.starts_with('/')
                        }
                    };
                    if !shaped {
                        return Some(None);
                    }
                    match conv.convert(piece) {
                        Some(value) => args.push((name.clone(), value)),
                        None => return Some(None),
                    }
                }
            }
            rest = after;
        }
        Some(rest.is_empty().then_some(args))
    }
}

/// The rule as whole segments ([`Segment`]) when each parameter is a whole segment (a
/// `path` one only last): `literals` are the texts around the parameters (one more).
fn whole_segments(literals: &[String], params: &[(String, Converter)]) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    for (i, literal) in literals.iter().enumerate() {
        let mut text = literal.as_str();
        if i > 0 {
            if text.is_empty() {
                // Only after the last parameter (two parameters in one segment else).
                if i + 1 != literals.len() {
                    return None;
                }
                break;
            }
            if !text.starts_with('/') {
                return None;
            }
        }
        let param = params.get(i);
        if param.is_some() {
            text = text.strip_suffix('/')?;
        }
        if let Some(pieces) = text.strip_prefix('/') {
            segments.extend(pieces.split('/').map(|p| Segment::Literal(p.to_owned())));
        } else if !text.is_empty() {
            return None;
        }
        match param {
            Some((_, Converter::Path)) => {
                if i + 1 != params.len() || !literals[i + 1].is_empty() {
                    return None;
                }
                segments.push(Segment::Rest(i));
            }
            Some(_) => segments.push(Segment::Param(i)),
            None => {}
        }
    }
    Some(segments)
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod segment_tests {
    use super::*;

    /// The segment matcher answers as the regex on rules of whole-segment parameters (and
    /// rules of other shapes have none).
    #[test]
    fn segments_match_as_the_regex() {
        let patterns = [
            "/<x>",
            "/a/<x>",
            "/a/<x>/",
            "/a/<int:id>",
            "/a/<float:f>/b",
            "/a/<int:id>/b/<string:s>",
            "/a//<x>",
            "/a/<path:p>",
            "/<path:p>",
            "/a/<int:id>/<path:rest>",
            "/a/b%20c/<x>",
            "/a/<int:id>-<string:u>",
            "/a<x>",
            "/a/<path:p>/b",
        ];
        let paths = [
            "",
            "/",
            "/a",
            "/a/",
            "/a/x",
            "/a/x/",
            "/a/x/y",
            "/a//x",
            "/a/42",
            "/a/-7",
            "/a/+7",
            "/a/4x",
            "/a/-",
            "/a/1.5",
            "/a/1.",
            "/a/.5",
            "/a/1.5/b",
            "/a/1/b/s",
            "/a/1/b/",
            "/a/99999999999999999999999",
            "/a/x/y/z.js",
            "/a//",
            "/a/b%20c/q",
            "/a/b c/q",
            "/a/1-u",
            "/ax",
            "/a/x\ny",
            "/a/x/\n",
            "/a/1/b/s/t",
            "/a/%2F",
            "/a/é",
            "/x",
        ];
        let mut decided = 0;
        for pattern in patterns {
            let rule = Rule::parse(pattern).expect("a valid pattern");
            let Some(segments) = &rule.segments else {
                continue;
            };
            for path in paths {
                let by_regex = rule.regex_captures(path);
                if let Some(by_segments) = rule.segment_captures(segments, path) {
                    assert_eq!(by_segments, by_regex, "{pattern:?} on {path:?}");
                    decided += 1;
                }
            }
        }
        assert!(decided > 300, "{decided} cases decided by segments");
        for pattern in ["/a/<int:id>-<string:u>", "/a<x>", "/a/<path:p>/b"] {
            assert!(Rule::parse(pattern).expect("valid").segments.is_none());
        }
        // A line break in a `path` rest is left to the regex (its `.` does not match it).
        let rule = Rule::parse("/a/<path:p>").expect("valid");
        let segments = rule.segments.as_ref().expect("whole segments");
        assert!(rule.segment_captures(segments, "/a/x\ny").is_none());
    }
}
