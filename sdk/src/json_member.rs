//! One member of a JSON object read from its text without parsing the rest into values:
//! the other members are skipped, so a handler that reads one key of its session or one
//! parameter allocates nothing but the value it asked for.
//!
//! [`member`] answers as a parse into a `serde_json::Map` then `Map::get` would (the last
//! of duplicate keys wins), and `None` where that parse would fail (not JSON, not an
//! object), so that callers fall back to the full parse and its error.
//!
//! The texts it reads are the host's (a session as the host serialized it, parameters it
//! parsed and wrote again): well-formed JSON. They are first scanned byte by byte
//! ([`scan`]: strings skipped to their closing quote, containers by depth, the object's
//! own syntax and its scalars checked), and the member found is then parsed whole. Where
//! that scan is unsure (a key with an escape, anything out of place), serde_json reads the
//! text instead, checking every member ([`member_checked`]). So a malformed text can only
//! go unnoticed inside the nested values of members not asked for.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The text of the member `key` of the JSON object `text`: `Some(None)` when the object
/// has no such member, `None` when `text` is not a JSON object.
pub(crate) fn member<'t>(text: &'t str, key: &str) -> Option<Option<&'t RawValue>> {
    match scan(text, key) {
        Scan::At(value) => serde_json::from_str::<&RawValue>(value).ok().map(Some),
        Scan::Missing => Some(None),
        Scan::Unsure => member_checked(text, key),
    }
}

/// [`member`] by serde_json, every member checked.
fn member_checked<'t>(text: &'t str, key: &str) -> Option<Option<&'t RawValue>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = Member(key).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(found)
}

/// What [`scan`] found.
#[derive(Debug, PartialEq)]
enum Scan<'t> {
    /// The text of the (last) member of that key.
    At(&'t str),
    /// An object without that key.
    Missing,
    /// Not sure: read the text with serde_json.
    Unsure,
}

/// The member `key` of the object `text`, scanned without parsing (see the module docs).
fn scan<'t>(text: &'t str, key: &str) -> Scan<'t> {
    let b = text.as_bytes();
    let Some(mut i) = expect(b, ws(b, 0), b'{') else {
        return Scan::Unsure;
    };
    let mut found = None;
    i = ws(b, i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let Some((end, escaped)) = string_end(b, i) else {
                return Scan::Unsure;
            };
            if escaped {
                return Scan::Unsure;
            }
            let is_key = &b[i + 1..end - 1] == key.as_bytes();
            let Some(start) = expect(b, ws(b, end), b':').map(|j| ws(b, j)) else {
                return Scan::Unsure;
            };
            let Some(end) = value_end(b, start) else {
                return Scan::Unsure;
            };
            if is_key {
                found = Some(&text[start..end]);
            }
            i = ws(b, end);
            match b.get(i) {
                Some(b',') => i = ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Scan::Unsure,
            }
        }
    }
    if ws(b, i) != b.len() {
        return Scan::Unsure;
    }
    found.map_or(Scan::Missing, Scan::At)
}

/// The index past JSON whitespace from `i`.
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index past the byte `c` at `i`, if it is there.
fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    (b.get(i) == Some(&c)).then_some(i + 1)
}

/// The index past the string starting at `i` (its closing quote), and whether it has an
/// escape; `None` when no string starts there or it does not end.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut escaped = false;
    let mut j = i + 1;
    loop {
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            c if c < 0x20 => return None,
            _ => j += 1,
        }
    }
}

/// The index past the value starting at `i`: a string, a container (skipped by depth,
/// its strings to their closing quotes), or a literal (`true`, `false`, `null`, a number's
/// characters); `None` when out of place.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i).map(|(end, _)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - i);
            let token = &b[i..i + len];
            let number = matches!(token.first(), Some(b'-' | b'0'..=b'9'))
                && token
                    .iter()
                    .all(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'));
            (number || matches!(token, b"true" | b"false" | b"null")).then_some(i + len)
        }
    }
}

/// Finds the member `.0` of an object.
struct Member<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_key) = map.next_key_seed(KeyIs(self.0))? {
            if is_key {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether a key is `.0`, compared without keeping it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// What a full parse and `Map::get` give, as text.
    fn by_map(text: &str, key: &str) -> Option<Option<String>> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Some(m.get(key).map(Value::to_string)),
            _ => None,
        }
    }

    #[test]
    fn answers_as_the_full_parse() {
        let cases = [
            r#"{"a": 1, "b": {"x": [1, 2, "}"]}, "c": "é\"q"}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"k\u0065y": true, "a": null}"#,
            r#"{}"#,
            r#"[1, 2]"#,
            r#"{"a": 1} trailing"#,
            r#"{"a": }"#,
            "",
            "  {\"a\" : [ ] }  ",
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            r#"{"a": tru, "b": 2}"#,
            r#"{"a": "x"} {"#,
            r#"{"a": [1, {"b": "]"}], "b": -1.5e+3}"#,
            r#"{"a": "unterminated}"#,
            r#"{"a": [1, 2}"#,
            "{\"a\": \"new\nline\"}",
            r#"{"a\"b": 1, "a": 2}"#,
            r#"{"é": "ü", "a": {"c": {"d": [[], {}]}}}"#,
        ];
        for text in cases {
            for key in ["a", "b", "c", "key", "missing"] {
                let lazy = member(text, key).map(|m| {
                    m.map(|raw| {
                        serde_json::from_str::<Value>(raw.get())
                            .expect("a member's text is JSON")
                            .to_string()
                    })
                });
                assert_eq!(lazy, by_map(text, key), "{text:?} [{key:?}]");
            }
        }
    }

    /// A small deterministic generator (xorshift), for the random objects below.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn text(&mut self) -> String {
            const PIECES: [&str; 9] = ["a", "b", "key", "é", "\"", "\\", "\n", "}", " "];
            (0..self.next(4))
                .map(|_| PIECES[self.next(PIECES.len() as u64) as usize])
                .collect()
        }

        fn value(&mut self, depth: u32) -> Value {
            match self.next(if depth > 2 { 5 } else { 7 }) {
                0 => Value::Null,
                1 => Value::Bool(self.next(2) == 0),
                2 => serde_json::json!(self.next(1000) as i64 - 500),
                3 => serde_json::json!(self.next(1000) as f64 / 7.0),
                4 => Value::String(self.text()),
                5 => Value::Array((0..self.next(4)).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Object(
                    (0..self.next(4))
                        .map(|_| (self.text(), self.value(depth + 1)))
                        .collect(),
                ),
            }
        }
    }

    /// Random objects, written compact and spaced, with repeated keys: the same answers as
    /// the full parse for every key; and the texts the host writes (compact, keys without
    /// escapes) are answered by the scan, not by serde_json.
    #[test]
    fn random_objects_answer_as_the_full_parse() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let members: Vec<(String, Value)> =
                (0..g.next(8)).map(|_| (g.text(), g.value(0))).collect();
            let compact = format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let spaced = format!(
                " {{ {} }}\n",
                members
                    .iter()
                    .map(|(k, v)| format!("{} :\t{v:#}", Value::String(k.clone())))
                    .collect::<Vec<_>>()
                    .join(" ,\r\n ")
            );
            for text in [&compact, &spaced] {
                let mut keys: Vec<String> = members.iter().map(|(k, _)| k.clone()).collect();
                keys.push("missing".into());
                for key in &keys {
                    let lazy = member(text, key)
                        .map(|m| m.map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap()));
                    let full = match serde_json::from_str::<Value>(text) {
                        Ok(Value::Object(m)) => Some(m.get(key).cloned()),
                        _ => None,
                    };
                    assert_eq!(lazy, full, "{text:?} [{key:?}]");
                    let plain_keys = members
                        .iter()
                        .all(|(k, _)| !Value::String(k.clone()).to_string().contains('\\'));
                    if plain_keys {
                        assert_ne!(scan(text, key), Scan::Unsure, "{text:?} [{key:?}]");
                    }
                }
            }
        }
    }
}
