//! The layering of `host/src` (ARCHITECTURE.md, "Architecture Invariant: layers"): each
//! top-level module may use only the modules of the layers below it, so the modules form no
//! circle. This test reads every file of `host/src`, finds the paths it names through
//! `crate::` (a `use crate::x::...` line, a multi-line `use crate::{x::..., y}` group, an
//! inline `crate::x::f()` path) and through `super::` chains that climb out of their
//! top-level module, and fails on each upward edge, naming the file and the line.
//!
//! Comments (doc links included) and string literals are skipped: they create no
//! dependency. The checker's own unit tests (`reports_upward_edges`...) show that an upward
//! `use` added to a file is reported, with its file and line, and a downward one is not.

mod tidy;

use std::path::Path;

/// The layers, bottom to top: a module may use the modules listed before it, never one
/// after it. `lib.rs` and `main.rs` (the roots) are not checked.
const LAYERS: &[&str] = &[
    "release", "config", "error", "netsvc", "metrics", "sql_db", "modules", "http", "host_api",
    "service", "cli",
];

/// An edge from a module to one of a higher layer.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host/src/{}:{}: `{}` uses `crate::{}`, a higher layer (layers, bottom to top: {})",
            self.file,
            self.line,
            self.from,
            self.to,
            LAYERS.join(" -> ")
        )
    }
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == module)
}

/// A token of the source, comments and literals removed: an identifier, `::`, or one
/// punctuation character, with its line.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += c[from..to.min(c.len())]
            .iter()
            .filter(|&&ch| ch == '\n')
            .count();
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            let (start, mut depth) = (i, 0usize);
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if ch == '"' || (matches!(ch, 'r' | 'b') && raw_or_byte_string(&c, i).is_some()) {
            let start = i;
            i = match raw_or_byte_string(&c, i) {
                Some(end) => end,
                None => plain_string_end(&c, i),
            };
            count_lines(start, i, &mut line);
        } else if ch == '\'' {
            // A char literal ('a', '\n', '"'), or a lifetime ('a), which is skipped too.
            if c.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The end (one past the closing quote) of the string literal starting at `i` with `"`.
fn plain_string_end(c: &[char], mut i: usize) -> usize {
    i += 1;
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The end of a `b"..."`, `r"..."`, `r#"..."#` or `br#"..."#` literal starting at `i`, or
/// `None` when `i` starts no such literal (an identifier such as `r` or `bytes`).
fn raw_or_byte_string(c: &[char], i: usize) -> Option<usize> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    let raw = c.get(j) == Some(&'r');
    if raw {
        j += 1;
    }
    if !raw {
        return (j > i && c.get(j) == Some(&'"')).then(|| plain_string_end(c, j));
    }
    let hashes = c[j..].iter().take_while(|&&ch| ch == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"'
            && c[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(j)
}

/// The module path of a file under `src/`: `sql_db/cursor.rs` is `[sql_db, cursor]`,
/// `sql_db/mod.rs` is `[sql_db]`, `release.rs` is `[release]`.
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The upward edges of one file (`file`: its path under `src/`).
fn check_file(file: &str, src: &str) -> Vec<Violation> {
    let base = module_path(file);
    let Some(from) = base.first().cloned() else {
        return Vec::new();
    };
    let Some(from_rank) = rank(&from) else {
        return Vec::new();
    };
    let toks = tokenize(src);
    let mut out = Vec::new();
    let mut report = |to: &str, line: usize| {
        if to == from {
            return;
        }
        if rank(to).is_some_and(|r| r > from_rank) {
            out.push(Violation {
                file: file.to_owned(),
                line,
                from: from.clone(),
                to: to.to_owned(),
            });
        }
    };
    // The inline modules (`mod tests {`) open at each brace depth, for `super::`.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let ident = |k: usize| match toks.get(k) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |k: usize, t: &Tok| toks.get(k).map(|(x, _)| x) == Some(t);
    let mut k = 0;
    while k < toks.len() {
        let (tok, line) = &toks[k];
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(s)
                if s == "mod" && ident(k + 1).is_some() && is(k + 2, &Tok::Punct('{')) =>
            {
                inline.push(depth + 1);
            }
            Tok::Ident(s) if s == "crate" && is(k + 1, &Tok::PathSep) => {
                if k > 0 && is(k - 1, &Tok::Punct('$')) {
                    k += 1;
                    continue;
                }
                if let Some(to) = ident(k + 2) {
                    report(to, *line);
                } else if is(k + 2, &Tok::Punct('{')) {
                    // A group: the first name of each item at its top level.
                    let mut level = 0usize;
                    let mut first = true;
                    let mut j = k + 2;
                    while j < toks.len() {
                        match &toks[j].0 {
                            Tok::Punct('{') => level += 1,
                            Tok::Punct('}') => {
                                level -= 1;
                                if level == 0 {
                                    break;
                                }
                            }
                            Tok::Punct(',') if level == 1 => first = true,
                            Tok::Ident(name) if level == 1 && first => {
                                first = false;
                                if name != "self" {
                                    report(name, toks[j].1);
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                }
            }
            Tok::Ident(s)
                if s == "super"
                    && !(k > 0 && is(k - 1, &Tok::PathSep))
                    && is(k + 1, &Tok::PathSep) =>
            {
                // `super::super::x`: climbs out of the top-level module when the chain is
                // as long as the module path (the file's, and its inline modules').
                let mut supers = 0;
                let mut j = k;
                while ident(j) == Some("super") && is(j + 1, &Tok::PathSep) {
                    supers += 1;
                    j += 2;
                }
                if supers == base.len() + inline.len() {
                    if let Some(to) = ident(j) {
                        report(to, *line);
                    }
                }
                k = j;
                continue;
            }
            _ => {}
        }
        k += 1;
    }
    out
}

#[test]
fn host_modules_only_use_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    tidy::rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for path in &files {
        let rel = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let top = module_path(&rel)[0].clone();
        assert!(
            rank(&top).is_some(),
            "host/src/{rel}: the top-level module `{top}` has no layer: add it to LAYERS \
             (host/tests/layers.rs) and to ARCHITECTURE.md's layering invariant"
        );
        let text = std::fs::read_to_string(path).expect("a source file");
        violations.extend(check_file(&rel, &text));
        checked += 1;
    }
    assert!(
        checked > 50,
        "only {checked} files found under {}",
        src.display()
    );
    let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(lines.is_empty(), "upward edges:\n{}", lines.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    let mut sorted_layers: Vec<&str> = LAYERS.to_vec();
    sorted_layers.sort();
    let mut sorted: Vec<&str> = declared.clone();
    sorted.sort();
    assert_eq!(sorted, sorted_layers, "lib.rs declares {declared:?}");
}

#[test]
fn reports_upward_edges() {
    // `sql_db` (layer 3) adding uses of `http` and `service`: a plain `use`, a multi-line
    // group and an inline path, each reported with its own line.
    let src = "use crate::config::Config;\n\
               use crate::{\n    netsvc,\n    http::proxy::Cidr,\n};\n\
               fn f() {\n    crate::service::cron::notify();\n}\n";
    let found = check_file("sql_db/cursor.rs", src);
    let got: Vec<(usize, &str)> = found.iter().map(|v| (v.line, v.to.as_str())).collect();
    assert_eq!(got, [(4, "http"), (7, "service")]);
    let text = found[0].to_string();
    assert!(
        text.starts_with("host/src/sql_db/cursor.rs:4: `sql_db` uses `crate::http`"),
        "{text}"
    );
}

#[test]
fn downward_edges_comments_and_strings_pass() {
    // `http` (layer 5) using lower layers, and naming higher ones only in a comment, a doc
    // link and strings.
    let src = "//! See [`crate::service::server`].\n\
               use crate::{config::{self, Config}, modules::registry, sql_db};\n\
               /* crate::cli */\n\
               fn f() -> &'static str {\n    let _c = '\"';\n    let _ = crate::netsvc::flush;\n    \
               \"crate::service\"\n}\n\
               const R: &str = r#\"crate::host_api\"#;\n";
    assert_eq!(check_file("http/application.rs", src), []);
}

#[test]
fn super_chains_that_leave_the_module_count() {
    // In `sql_db/cursor.rs`'s `mod tests`, `super::super` is `sql_db`: not an edge.
    let inside = "mod tests {\n    use super::super::Pools;\n}\n";
    assert_eq!(check_file("sql_db/cursor.rs", inside), []);
    // From `sql_db/mod.rs`, `super::` is the crate root: `super::http` is upward.
    let found = check_file("sql_db/mod.rs", "use super::http::x;\n");
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].line, found[0].to.as_str()), (1, "http"));
    // A top-level file (`release.rs`) climbing to `config` is upward as well.
    assert_eq!(check_file("release.rs", "use super::config;\n").len(), 1);
}
