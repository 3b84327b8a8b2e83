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
//!
//! # Files
//! A file per job, werkzeug's names: `converters` ([`ParamValue`] and the converters),
//! `rule` ([`Rule::parse`]), `map` ([`RouteTable`], werkzeug's `Map` and its `match`), and
//! `path` (the canonical form of a raw path both sides are compared in).

mod converters;
mod map;
mod path;
mod rule;
#[cfg(test)]
mod tests;

pub use converters::ParamValue;
pub use map::{Match, RouteTable};
pub use rule::{Rule, RuleError};
