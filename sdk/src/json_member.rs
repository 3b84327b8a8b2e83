//! One member of a JSON object read from its text without parsing the rest into values:
//! the other members are skipped (checked, not built), so a handler that reads one key of
//! its session or one parameter allocates nothing but the value it asked for.
//!
//! [`member`] answers as a parse into a `serde_json::Map` then `Map::get` would (the last
//! of duplicate keys wins), and `None` where that parse would fail (not JSON, not an
//! object), so that callers fall back to the full parse and its error.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The text of the member `key` of the JSON object `text`: `Some(None)` when the object
/// has no such member, `None` when `text` is not a JSON object.
pub(crate) fn member<'t>(text: &'t str, key: &str) -> Option<Option<&'t RawValue>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let found = Member(key).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(found)
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
}
