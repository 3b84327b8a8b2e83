//! URL rules and the route table: Odoo's werkzeug routing map, rebuilt for speed.
//!
//! This module owns the *matching* of a request path and method against the routes of all
//! loaded addons. It knows nothing of dispatchers or payloads: a [`RouteTable<T>`] stores
//! any payload `T` per route and hands a reference back on a match.
//!
//! # Rules
//! [`Rule::parse`] reads a werkzeug-style pattern such as `/web/content/<int:id>` or
//! `/web/image/<int:id>-<string:unique>/<int:width>x<int:height>`. Converters:
//!
//! | converter | matches | value |
//! |---|---|---|
//! | `string` (and bare `<name>`) | `[^/]+` | [`ParamValue::Str`] |
//! | `int` | `-?\d+` (signed, as Odoo's own `int` converter) | [`ParamValue::Int`] (an `i64` overflow is no match) |
//! | `float` | `\d+\.\d+` (werkzeug's default: unsigned) | [`ParamValue::Float`] |
//! | `path` | `[^/].*?` (may contain `/`) | [`ParamValue::Str`] |
//!
//! Converter arguments (`<int(min=1):id>`) and Odoo's database converters (`model`,
//! `models`) are rejected with a [`RuleError`].
//!
//! # Matching semantics (decisions)
//! * **Raw path in.** [`RouteTable::matches`] takes the path *as received* (the raw,
//!   percent-encoded path of the request target, without the query string). Each `%XX`
//!   escape is decoded before matching **except** an encoded `/` (`%2F`) or `%` (`%25`),
//!   which stay escaped while matching and are decoded in the captured values only. So
//!   `/shop/<string:name>` matches `/shop/a%2Fb` with `name = "a/b"`, while a real `/`
//!   still separates segments; werkzeug, which matches on the fully decoded `PATH_INFO`,
//!   cannot tell the two apart. Bytes that do not decode to UTF-8 become U+FFFD (as
//!   werkzeug's `errors="replace"`). A path without `%` is matched without any copy.
//! * **Trailing slash** (werkzeug `strict_slashes=False`, as Odoo's maps): one trailing `/`
//!   is insignificant on both sides. The rules `/a` and `/a/` are the same rule, and both
//!   match the requests `/a` and `/a/`, without a redirect. The root `/` is kept as is.
//!   A `path` value therefore never ends with the request's trailing `/`.
//! * **No slash merging** (Odoo sets `merge_slashes=False`): `//a` does not match `/a`.
//! * **Priority**: a static rule (no converter) beats any dynamic one; among rules of the
//!   same kind, the one added first wins. A rule whose path matches but whose methods do
//!   not is skipped, and the search goes on; only when no rule accepts the method is the
//!   outcome [`Match::MethodNotAllowed`] (werkzeug's 405), with the union of the methods
//!   of the rules that matched the path.
//! * **Methods**: upper-cased; an empty list means any method. As werkzeug, `HEAD` is added
//!   when `GET` is present. `OPTIONS` is added when the route has CORS (the caller's
//!   `cors` flag), so that a preflight reaches the route. Odoo adds `OPTIONS` to *every*
//!   route that lists methods; here a route without CORS answers `OPTIONS` with 405.
//!
//! # Speed
//! Static rules sit in a `HashMap` keyed by their path: one hash lookup. Dynamic rules
//! are compiled to one anchored regex each and bucketed by their first segment when it is
//! static (`/web/...`); a request scans only its own bucket plus the rules whose first
//! segment is itself dynamic, in insertion order.

use std::borrow::Cow;
use std::fmt;

/// The route maps are looked up for every request with keys the host chose (paths and
/// segments of declared rules): a fast hash (foldhash, randomly seeded) instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use regex::Regex;

/// A value captured by a converter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// From `int`.
    Int(i64),
    /// From `string`, `path` or a bare `<name>`.
    Str(String),
    /// From `float`.
    Float(f64),
}

impl ParamValue {
    /// The value as JSON, for a dispatcher's params: a number or a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(i) => serde_json::Value::from(*i),
            ParamValue::Str(s) => serde_json::Value::String(s.clone()),
            ParamValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Str(s) => f.write_str(s),
            ParamValue::Float(x) => write!(f, "{x}"),
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Converter {
    Str,
    Int,
    Float,
    Path,
}

impl Converter {
    fn regex(self) -> &'static str {
        match self {
            Converter::Str => "([^/]+)",
            Converter::Int => r"(-?[0-9]+)",
            Converter::Float => r"([0-9]+\.[0-9]+)",
            Converter::Path => "([^/].*?)",
        }
    }

    /// Converts a captured (still canonical) text; `None` means "this rule does not match".
    fn convert(self, captured: &str) -> Option<ParamValue> {
        match self {
            Converter::Int => captured.parse().ok().map(ParamValue::Int),
            Converter::Float => captured
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(ParamValue::Float),
            Converter::Str | Converter::Path => {
                Some(ParamValue::Str(unescape_canonical(captured).into_owned()))
            }
        }
    }
}

/// A parsed URL pattern.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: String,
    /// The canonical path (trailing slash stripped, `%` escaped) when there is no parameter.
    static_key: Option<String>,
    /// The first segment of a dynamic rule when it is fully static.
    first_segment: Option<String>,
    /// Parameter names and converters, in capture order.
    params: Vec<(String, Converter)>,
    regex: Option<Regex>,
}

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
        let regex = Regex::new(&re).map_err(|_| RuleError::TooComplex(pattern.to_owned()))?;

        // The first segment is static when the first literal holds a second '/'.
        let first = &literals[0][1..];
        let first_segment = first.find('/').map(|end| first[..end].to_owned());

        Ok(Rule {
            pattern: pattern.to_owned(),
            static_key: None,
            first_segment,
            params,
            regex: Some(regex),
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
    fn captures(&self, canonical: &str) -> Option<Vec<(String, ParamValue)>> {
        match (&self.static_key, &self.regex) {
            (Some(key), _) => (key == canonical).then(Vec::new),
            (None, Some(re)) => {
                let caps = re.captures(canonical)?;
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

/// The outcome of [`RouteTable::matches`].
#[derive(Debug)]
pub enum Match<'a, T> {
    /// A rule matched the path and accepts the method.
    Found {
        /// The route's payload.
        payload: &'a T,
        /// Converted parameters, in pattern order.
        args: Vec<(String, ParamValue)>,
    },
    /// Some rules matched the path, none accepts the method (HTTP 405, `Allow` header).
    MethodNotAllowed {
        /// Sorted, without duplicates.
        allowed: Vec<String>,
    },
    /// No rule matched the path (HTTP 404).
    NotFound,
}

#[derive(Debug)]
struct Route<T> {
    rule: Rule,
    methods: Vec<String>,
    payload: T,
}

impl<T> Route<T> {
    fn allows(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

/// All routes of the loaded addons, indexed for matching.
#[derive(Debug)]
pub struct RouteTable<T> {
    routes: Vec<Route<T>>,
    /// Canonical path → indexes of the static rules with that path.
    statics: HashMap<String, Vec<usize>>,
    /// First static segment → indexes of the dynamic rules starting with it.
    buckets: HashMap<String, Vec<usize>>,
    /// Dynamic rules whose first segment is dynamic.
    wild: Vec<usize>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            routes: Vec::new(),
            statics: HashMap::default(),
            buckets: HashMap::default(),
            wild: Vec::new(),
        }
    }
}

impl<T> RouteTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route. `methods` empty means any method; otherwise they are upper-cased,
    /// `HEAD` is added with `GET`, and `OPTIONS` when `cors` is set. Added later means
    /// lower priority among rules of the same kind.
    pub fn add(&mut self, rule: Rule, methods: Vec<String>, cors: bool, payload: T) {
        let mut methods: Vec<String> = methods
            .into_iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        if !methods.is_empty() {
            if methods.iter().any(|m| m == "GET") {
                methods.push("HEAD".to_owned());
            }
            if cors {
                methods.push("OPTIONS".to_owned());
            }
            methods.sort();
            methods.dedup();
        }
        let idx = self.routes.len();
        if let Some(key) = &rule.static_key {
            self.statics.entry(key.clone()).or_default().push(idx);
        } else if let Some(first) = &rule.first_segment {
            self.buckets.entry(first.clone()).or_default().push(idx);
        } else {
            self.wild.push(idx);
        }
        self.routes.push(Route {
            rule,
            methods,
            payload,
        });
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when there is no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every route as (rule, methods after normalization, payload), in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Rule, &[String], &T)> {
        self.routes
            .iter()
            .map(|r| (&r.rule, r.methods.as_slice(), &r.payload))
    }

    /// Matches a request. `method` as sent (methods are case-sensitive); `raw_path` is the
    /// request target's path, still percent-encoded, without the query string.
    pub fn matches(&self, method: &str, raw_path: &str) -> Match<'_, T> {
        let canonical = canonical_path(raw_path);
        let path = strip_trailing_slash(&canonical);
        let mut allowed: Vec<&str> = Vec::new();

        if let Some(indexes) = self.statics.get(path) {
            for &i in indexes {
                let route = &self.routes[i];
                if route.allows(method) {
                    return Match::Found {
                        payload: &route.payload,
                        args: Vec::new(),
                    };
                }
                allowed.extend(route.methods.iter().map(String::as_str));
            }
        }

        let first = path
            .get(1..)
            .map(|p| p.split('/').next().unwrap_or(""))
            .unwrap_or("");
        let bucket: &[usize] = self.buckets.get(first).map_or(&[], Vec::as_slice);
        // Merge the bucket and the wild list by insertion order.
        let (mut b, mut w) = (0, 0);
        loop {
            let i = match (bucket.get(b), self.wild.get(w)) {
                (Some(&x), Some(&y)) if x < y => {
                    b += 1;
                    x
                }
                (Some(_), Some(&y)) | (None, Some(&y)) => {
                    w += 1;
                    y
                }
                (Some(&x), None) => {
                    b += 1;
                    x
                }
                (None, None) => break,
            };
            let route = &self.routes[i];
            let Some(args) = route.rule.captures(path) else {
                continue;
            };
            if route.allows(method) {
                return Match::Found {
                    payload: &route.payload,
                    args,
                };
            }
            allowed.extend(route.methods.iter().map(String::as_str));
        }

        if allowed.is_empty() {
            return Match::NotFound;
        }
        allowed.sort_unstable();
        allowed.dedup();
        Match::MethodNotAllowed {
            allowed: allowed.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// Removes one trailing `/`, except from the root.
fn strip_trailing_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A rule's literal text in canonical form: `%` is written `%25`.
fn escape_percent(literal: &str) -> String {
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
fn canonical_path(raw: &str) -> Cow<'_, str> {
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
fn unescape_canonical(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("%2F", "/").replace("%25", "%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, &[&str], bool)]) -> RouteTable<usize> {
        let mut t = RouteTable::new();
        for (i, (pattern, methods, cors)) in routes.iter().enumerate() {
            let methods = methods.iter().map(|m| m.to_string()).collect();
            t.add(Rule::parse(pattern).unwrap(), methods, *cors, i);
        }
        t
    }

    fn found(m: Match<'_, usize>) -> (usize, Vec<(String, ParamValue)>) {
        match m {
            Match::Found { payload, args, .. } => (*payload, args),
            other => panic!("expected a match, got {other:?}"),
        }
    }

    fn arg<'a>(args: &'a [(String, ParamValue)], name: &str) -> &'a ParamValue {
        &args.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Rule::parse("").unwrap_err(),
            RuleError::NoLeadingSlash("".into())
        );
        assert!(matches!(
            Rule::parse("web/x"),
            Err(RuleError::NoLeadingSlash(_))
        ));
        assert!(matches!(
            Rule::parse("/a/<int:id"),
            Err(RuleError::Unclosed(_))
        ));
        assert!(matches!(Rule::parse("/a/<>"), Err(RuleError::EmptyName(_))));
        assert!(matches!(
            Rule::parse("/a/<int:>"),
            Err(RuleError::EmptyName(_))
        ));
        assert!(matches!(
            Rule::parse("/a/<int:1x>"),
            Err(RuleError::InvalidName(_))
        ));
        assert!(matches!(
            Rule::parse("/a/<model('res.partner'):p>"),
            Err(RuleError::ConverterArguments(_))
        ));
        assert!(matches!(
            Rule::parse("/a/<model:p>"),
            Err(RuleError::UnknownConverter(c)) if c == "model"
        ));
        assert!(matches!(
            Rule::parse("/a/<x>/<int:x>"),
            Err(RuleError::DuplicateName(_))
        ));
        let msg = RuleError::UnknownConverter("uuid".into()).to_string();
        assert!(msg.contains("uuid") && msg.contains("string, int, float, path"));
    }

    #[test]
    fn parse_shapes() {
        let r = Rule::parse("/web/content/<int:id>").unwrap();
        assert!(!r.is_static());
        assert_eq!(r.pattern(), "/web/content/<int:id>");
        assert_eq!(r.param_names().collect::<Vec<_>>(), ["id"]);
        let r = Rule::parse("/web/login").unwrap();
        assert!(r.is_static());
        let r = Rule::parse("/a/<name>/<string:b>/<path:rest>").unwrap();
        assert_eq!(r.param_names().collect::<Vec<_>>(), ["name", "b", "rest"]);
    }

    #[test]
    fn converters() {
        let t = table(&[
            ("/i/<int:id>", &[], false),
            ("/f/<float:x>", &[], false),
            ("/s/<string:name>", &[], false),
            ("/b/<name>", &[], false),
            ("/p/<path:rest>", &[], false),
        ]);
        let (_, a) = found(t.matches("GET", "/i/42"));
        assert_eq!(arg(&a, "id"), &ParamValue::Int(42));
        let (_, a) = found(t.matches("GET", "/i/-7"));
        assert_eq!(arg(&a, "id"), &ParamValue::Int(-7));
        assert!(matches!(t.matches("GET", "/i/4x"), Match::NotFound));
        assert!(matches!(t.matches("GET", "/i/"), Match::NotFound));
        assert!(matches!(
            t.matches("GET", "/i/99999999999999999999999"),
            Match::NotFound
        ));
        let (_, a) = found(t.matches("GET", "/f/1.5"));
        assert_eq!(arg(&a, "x"), &ParamValue::Float(1.5));
        assert!(matches!(t.matches("GET", "/f/1"), Match::NotFound));
        assert!(matches!(t.matches("GET", "/f/-1.5"), Match::NotFound));
        let (_, a) = found(t.matches("GET", "/s/hello"));
        assert_eq!(arg(&a, "name"), &ParamValue::Str("hello".into()));
        assert!(matches!(t.matches("GET", "/s/a/b"), Match::NotFound));
        let (_, a) = found(t.matches("GET", "/b/x"));
        assert_eq!(arg(&a, "name"), &ParamValue::Str("x".into()));
        let (_, a) = found(t.matches("GET", "/p/a/b/c.js"));
        assert_eq!(arg(&a, "rest"), &ParamValue::Str("a/b/c.js".into()));
        assert!(matches!(t.matches("GET", "/p/"), Match::NotFound));
        assert!(matches!(t.matches("GET", "/p//x"), Match::NotFound));
    }

    #[test]
    fn mixed_segments_like_odoo_image_routes() {
        let t = table(&[(
            "/web/image/<int:id>-<string:unique>/<int:width>x<int:height>/<string:filename>",
            &[],
            false,
        )]);
        let (_, a) = found(t.matches("GET", "/web/image/12-abc-def/64x32/logo.png"));
        assert_eq!(arg(&a, "id"), &ParamValue::Int(12));
        assert_eq!(arg(&a, "unique"), &ParamValue::Str("abc-def".into()));
        assert_eq!(arg(&a, "width"), &ParamValue::Int(64));
        assert_eq!(arg(&a, "height"), &ParamValue::Int(32));
        assert_eq!(arg(&a, "filename"), &ParamValue::Str("logo.png".into()));
        let names: Vec<_> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "unique", "width", "height", "filename"]);
    }

    #[test]
    fn static_beats_dynamic_and_first_added_wins() {
        let t = table(&[
            ("/web/<string:x>", &[], false),
            ("/web/login", &[], false),
            ("/web/<string:y>", &[], false),
            ("/web/login", &[], false),
        ]);
        assert_eq!(found(t.matches("GET", "/web/login")).0, 1);
        let (p, a) = found(t.matches("GET", "/web/other"));
        assert_eq!(p, 0);
        assert_eq!(a[0].0, "x");
    }

    #[test]
    fn bucket_and_wild_rules_keep_insertion_order() {
        let t = table(&[
            ("/<string:a>/x", &[], false),
            ("/web/<string:b>", &[], false),
            ("/<path:all>", &[], false),
        ]);
        // Both the wild rule 0 and the bucket rule 1 match: 0 was added first.
        assert_eq!(found(t.matches("GET", "/web/x")).0, 0);
        assert_eq!(found(t.matches("GET", "/web/y")).0, 1);
        assert_eq!(found(t.matches("GET", "/other/y/z")).0, 2);
        assert_eq!(found(t.matches("GET", "/web")).0, 2);
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let t = table(&[
            ("/a", &["POST"], false),
            ("/a", &["put"], false),
            ("/b/<int:id>", &["GET"], false),
            ("/c", &[], false),
        ]);
        assert!(matches!(t.matches("GET", "/nowhere"), Match::NotFound));
        match t.matches("GET", "/a") {
            Match::MethodNotAllowed { allowed } => assert_eq!(allowed, ["POST", "PUT"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(found(t.matches("PUT", "/a")).0, 1);
        match t.matches("DELETE", "/b/3") {
            Match::MethodNotAllowed { allowed } => assert_eq!(allowed, ["GET", "HEAD"]),
            other => panic!("{other:?}"),
        }
        // HEAD comes with GET; an empty method list accepts anything.
        assert_eq!(found(t.matches("HEAD", "/b/3")).0, 2);
        assert_eq!(found(t.matches("PATCH", "/c")).0, 3);
        // Methods are case-sensitive on the wire.
        assert!(matches!(
            t.matches("post", "/a"),
            Match::MethodNotAllowed { .. }
        ));
    }

    #[test]
    fn method_mismatch_falls_through_to_a_later_rule() {
        let t = table(&[
            ("/x/static", &["POST"], false),
            ("/x/<string:n>", &["GET"], false),
        ]);
        let (p, a) = found(t.matches("GET", "/x/static"));
        assert_eq!((p, a[0].1.clone()), (1, ParamValue::Str("static".into())));
        assert_eq!(found(t.matches("POST", "/x/static")).0, 0);
    }

    #[test]
    fn options_added_only_with_cors() {
        let t = table(&[("/cors", &["POST"], true), ("/plain", &["POST"], false)]);
        assert_eq!(found(t.matches("OPTIONS", "/cors")).0, 0);
        assert!(matches!(
            t.matches("OPTIONS", "/plain"),
            Match::MethodNotAllowed { .. }
        ));
        let (_, methods, _) = t.iter().next().unwrap();
        assert_eq!(methods, ["OPTIONS", "POST"]);
        // Any-method routes stay "any".
        let t = table(&[("/any", &[], true)]);
        assert!(t.iter().next().unwrap().1.is_empty());
    }

    #[test]
    fn trailing_slash_is_insignificant_on_both_sides() {
        let t = table(&[
            ("/a", &[], false),
            ("/b/", &[], false),
            ("/c/<int:id>", &[], false),
            ("/", &[], false),
        ]);
        assert_eq!(found(t.matches("GET", "/a")).0, 0);
        assert_eq!(found(t.matches("GET", "/a/")).0, 0);
        assert_eq!(found(t.matches("GET", "/b")).0, 1);
        assert_eq!(found(t.matches("GET", "/b/")).0, 1);
        assert_eq!(found(t.matches("GET", "/c/5/")).0, 2);
        assert_eq!(found(t.matches("GET", "/")).0, 3);
        // Only one slash is insignificant, and slashes are never merged.
        assert!(matches!(t.matches("GET", "/a//"), Match::NotFound));
        assert!(matches!(t.matches("GET", "//a"), Match::NotFound));
        assert!(matches!(t.matches("GET", ""), Match::NotFound));
    }

    #[test]
    fn percent_decoding() {
        let t = table(&[
            ("/web/login", &[], false),
            ("/shop/<string:name>", &[], false),
            ("/files/<path:rest>", &[], false),
            ("/100%", &[], false),
        ]);
        // Encoded ordinary characters match static text.
        assert_eq!(found(t.matches("GET", "/web/%6Cogin")).0, 0);
        // `/web%2flogin` is one segment, not `/web/login`.
        assert!(matches!(t.matches("GET", "/web%2flogin"), Match::NotFound));
        // An encoded slash stays inside a string value.
        let (_, a) = found(t.matches("GET", "/shop/a%2Fb"));
        assert_eq!(arg(&a, "name"), &ParamValue::Str("a/b".into()));
        let (_, a) = found(t.matches("GET", "/shop/caf%C3%A9%20au%25lait"));
        assert_eq!(arg(&a, "name"), &ParamValue::Str("café au%lait".into()));
        let (_, a) = found(t.matches("GET", "/files/x%2Fy/z"));
        assert_eq!(arg(&a, "rest"), &ParamValue::Str("x/y/z".into()));
        // A literal '%' in a rule, sent encoded or bare.
        assert_eq!(found(t.matches("GET", "/100%25")).0, 3);
        assert_eq!(found(t.matches("GET", "/100%")).0, 3);
        // Invalid UTF-8 is replaced, not rejected.
        let (_, a) = found(t.matches("GET", "/shop/%FF"));
        assert_eq!(arg(&a, "name"), &ParamValue::Str("\u{FFFD}".into()));
    }

    #[test]
    fn canonical_form() {
        assert!(matches!(canonical_path("/a/b"), Cow::Borrowed("/a/b")));
        assert_eq!(canonical_path("/a%2fb%2Fc"), "/a%2Fb%2Fc");
        assert_eq!(canonical_path("/%41%zz%"), "/A%25zz%25");
        assert_eq!(unescape_canonical("a%2Fb%25"), "a/b%");
    }

    #[test]
    fn to_json_and_display() {
        assert_eq!(ParamValue::Int(-3).to_json(), serde_json::json!(-3));
        assert_eq!(
            ParamValue::Str("x".into()).to_json(),
            serde_json::json!("x")
        );
        assert_eq!(ParamValue::Float(2.5).to_json(), serde_json::json!(2.5));
        assert_eq!(
            ParamValue::Float(f64::NAN).to_json(),
            serde_json::Value::Null
        );
        assert_eq!(ParamValue::Int(7).to_string(), "7");
        assert_eq!(ParamValue::Str("s".into()).to_string(), "s");
    }

    #[test]
    fn many_routes() {
        let mut t = RouteTable::new();
        for i in 0..500 {
            t.add(
                Rule::parse(&format!("/m{i}/static")).unwrap(),
                vec![],
                false,
                i,
            );
            t.add(
                Rule::parse(&format!("/m{i}/<int:id>")).unwrap(),
                vec!["GET".into()],
                false,
                1000 + i,
            );
        }
        assert_eq!(t.len(), 1000);
        assert!(!t.is_empty());
        assert_eq!(found(t.matches("GET", "/m250/static")).0, 250);
        let (p, a) = found(t.matches("GET", "/m499/12"));
        assert_eq!((p, &a[0].1), (1499, &ParamValue::Int(12)));
        assert!(matches!(t.matches("GET", "/m500/1"), Match::NotFound));
    }
}
