//! Odoo's config file format (Python's `configparser`, as `odoo-bin -s` writes it): read
//! into sections of `key = value` lines, and written back.
//!
//! What is read: `[section]` headers; `key = value` or `key: value` (the key lowercased,
//! both sides trimmed, the value unquoted text); whole-line comments starting with `#` or
//! `;`; indented lines continuing the value above (joined with a newline); blank lines.
//! A key outside any section, a line with no `=` or `:`, and a key given twice in one
//! section are errors naming the line.
//!
//! ```text
//! [options]
//! ; written by odoo-bin -s
//! addons_path = /srv/odoo/addons,/srv/custom
//! db_host = False
//! http_port = 8069
//! ```

use std::fmt::Write as _;

/// One `key = value` line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key, lowercased.
    pub key: String,
    /// The value as written, trimmed (continuation lines joined with `\n`).
    pub value: String,
    /// The line of the key (1-based).
    pub line: usize,
}

/// One `[section]` and its entries, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// The name between the brackets, trimmed.
    pub name: String,
    /// The line of the header (1-based).
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// A syntax error: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IniError {
    pub line: usize,
    pub message: String,
}

/// Parses `text` as an INI file. A section given twice is merged (its later keys must be
/// new, as `configparser`'s strict mode).
pub(crate) fn parse(text: &str) -> Result<Vec<Section>, IniError> {
    let mut sections: Vec<Section> = Vec::new();
    // The section being filled, and whether the last line was a key (for continuations).
    let mut current: Option<usize> = None;
    let mut continuable = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continuable = false;
            continue;
        }
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && continuable {
            if let Some(entry) = current.and_then(|s| sections[s].entries.last_mut()) {
                entry.value.push('\n');
                entry.value.push_str(trimmed);
                continue;
            }
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(IniError {
                    line,
                    message: format!("section header {trimmed:?} has no closing ']'"),
                });
            };
            let name = name.trim();
            current = Some(match sections.iter().position(|s| s.name == name) {
                Some(s) => s,
                None => {
                    sections.push(Section {
                        name: name.to_owned(),
                        line,
                        entries: Vec::new(),
                    });
                    sections.len() - 1
                }
            });
            continuable = false;
            continue;
        }
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(IniError {
                line,
                message: format!("{trimmed:?} is not a 'key = value' line"),
            });
        };
        let key = trimmed[..at].trim().to_lowercase();
        let value = trimmed[at + 1..].trim().to_owned();
        if key.is_empty() {
            return Err(IniError {
                line,
                message: format!("{trimmed:?} has no key before '{}'", &trimmed[at..=at]),
            });
        }
        let Some(s) = current else {
            return Err(IniError {
                line,
                message: format!(
                    "key '{key}' is outside any section; expected it under [options] or another [section]"
                ),
            });
        };
        if let Some(first) = sections[s].entries.iter().find(|e| e.key == key) {
            return Err(IniError {
                line,
                message: format!(
                    "key '{key}' is given twice in [{}] (first on line {})",
                    sections[s].name, first.line
                ),
            });
        }
        sections[s].entries.push(Entry { key, value, line });
        continuable = true;
    }
    Ok(sections)
}

/// Whether `text` looks like Odoo's INI form rather than TOML: in `[options]` (or before any
/// section), a value TOML would refuse (unquoted text, `True`/`False`/`None`, empty), or `key: value`
/// lines, or `;` comments. Decided on the lines, before either parser runs.
pub(crate) fn looks_like_ini(text: &str) -> bool {
    // Keys before any section are looked at too (an error either way, named by the parser
    // of the form they show).
    let mut in_options = true;
    for raw in text.lines() {
        let t = raw.trim();
        if t.starts_with(';') {
            return true;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('[') {
            in_options = t == "[options]";
            continue;
        }
        if !in_options {
            continue;
        }
        let Some(at) = t.find(['=', ':']) else {
            continue;
        };
        if t.as_bytes()[at] == b':' && !t[..at].contains(['"', '\'']) {
            return true;
        }
        let value = t[at + 1..].trim();
        if !toml_like(value) {
            return true;
        }
    }
    false
}

/// Whether `value` starts as a TOML value would: quoted text, an array, an inline table, a
/// number, `true`/`false`, or a date.
fn toml_like(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if matches!(first, '"' | '\'' | '[' | '{') {
        return true;
    }
    let word = value
        .split(|c: char| c.is_whitespace() || c == '#')
        .next()
        .unwrap_or("");
    if word == "true" || word == "false" {
        return true;
    }
    let number = word.trim_start_matches(['+', '-']);
    matches!(number, "inf" | "nan")
        || (number.starts_with(|c: char| c.is_ascii_digit())
            && number.matches('.').count() <= 1
            && number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+')))
}

/// Renders sections as `[name]` then `key = value` lines (values spanning lines are
/// continued, indented), sections separated by a blank line.
pub(crate) fn render(sections: &[(String, Vec<(String, String)>)]) -> String {
    let mut out = String::new();
    for (i, (name, entries)) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "[{name}]");
        for (key, value) in entries {
            let value = value.replace('\n', "\n    ");
            if value.is_empty() {
                let _ = writeln!(out, "{key} =");
            } else {
                let _ = writeln!(out, "{key} = {value}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_odoo_conf() {
        let text = "; comment\n[options]\nAddons_Path = /a, /b\ndb_host = False\n# x\nhttp_port: 8069\nempty =\nmulti = one\n  two\n\n[my_addon]\nkey = v = w\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "options");
        let kv: Vec<(&str, &str, usize)> = s[0]
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            kv,
            [
                ("addons_path", "/a, /b", 3),
                ("db_host", "False", 4),
                ("http_port", "8069", 6),
                ("empty", "", 7),
                ("multi", "one\ntwo", 8)
            ]
        );
        assert_eq!(s[1].entries[0].value, "v = w");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("a = 1\n").unwrap_err().line, 1);
        assert_eq!(parse("[options]\nnothing\n").unwrap_err().line, 2);
        let dup = parse("[options]\na = 1\na = 2\n").unwrap_err();
        assert_eq!(dup.line, 3);
        assert!(dup.message.contains("first on line 2"), "{}", dup.message);
        assert_eq!(parse("[options\n").unwrap_err().line, 1);
    }

    #[test]
    fn detection() {
        assert!(looks_like_ini("[options]\ndb_host = False\n"));
        assert!(looks_like_ini("[options]\naddons_path = /a,/b\n"));
        assert!(looks_like_ini("[options]\nhttp_port = \n"));
        assert!(looks_like_ini("[options]\nhttp_port: 8069\n"));
        assert!(looks_like_ini("; odoo\n[options]\n"));
        assert!(looks_like_ini("[options]\ndb_host = 127.0.0.1\n"));
        assert!(!looks_like_ini(
            "[options]\nhttp_port = 8069\ndb_host = \"x\"\n"
        ));
        assert!(!looks_like_ini(
            "[options]\naddons_path = [\"/a\"]\nproxy_mode = true # yes\n"
        ));
        assert!(!looks_like_ini("[my]\nkey = bare\n"));
        assert!(looks_like_ini("db_host = False\n[options]\n"));
    }

    #[test]
    fn renders() {
        let text = render(&[
            (
                "options".into(),
                vec![("a".into(), "1".into()), ("b".into(), String::new())],
            ),
            ("x".into(), vec![("m".into(), "one\ntwo".into())]),
        ]);
        assert_eq!(text, "[options]\na = 1\nb =\n\n[x]\nm = one\n    two\n");
        assert_eq!(parse(&text).unwrap()[1].entries[0].value, "one\ntwo");
    }
}
