//! The route table (werkzeug's `Map` and `MapAdapter.match`): the routes indexed for
//! matching, static rules by path and dynamic ones by first segment, and the [`Match`].

use super::converters::ParamValue;
use super::path::{canonical_path, strip_trailing_slash};
use super::rule::Rule;

/// The route maps are looked up for every request with keys the host chose (paths and
/// segments of declared rules): a fast hash (foldhash, randomly seeded) instead of SipHash.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The outcome of [`RouteTable::matches`].
#[derive(Debug)]
pub enum Match<'a, T> {
    /// A rule matched the path and accepts the method.
    Found {
        /// The route's payload.
        payload: &'a T,
        /// Converted parameters, in pattern order.
        args: Vec<(String, ParamValue)>,
        /// The route's place in the table ([`RouteTable::payload`]).
        index: usize,
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

    /// The payload of the route at `index` (a [`Match::Found`]'s), matched earlier.
    pub fn payload(&self, index: usize) -> Option<&T> {
        self.routes.get(index).map(|r| &r.payload)
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
                        index: i,
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
                    index: i,
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
