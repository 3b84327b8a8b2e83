//! The psql meta-commands of a restored `dump.sql`: a zip backup's plain SQL runs in
//! `psql`, which would obey any backslash command in it (`\!` runs a shell command, `\o`
//! and `\w` write files). Only what `pg_dump` itself writes is let through: `\connect`
//! (`\c`), `\restrict` and `\unrestrict`, and the `\.` ending a `COPY ... FROM stdin` block.
//!
//! The text is read as psql's lexer would, roughly: backslashes inside string literals
//! (`'...'`, `E'...'`, `$tag$...$tag$`), quoted identifiers, comments and `COPY` data are
//! not commands.

use std::io::BufRead;

/// The meta-commands `pg_dump` writes.
const ALLOWED: [&str; 4] = ["connect", "c", "restrict", "unrestrict"];

/// Where the scan is, between lines.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Normal,
    Single { escapes: bool },
    Double,
    Dollar(String),
    Block(u32),
    Copy,
}

/// The first meta-command of `input` that `pg_dump` does not write (with its line number),
/// or `None`; an error reading the input is returned as is.
pub fn forbidden(input: impl BufRead) -> std::io::Result<Option<(usize, String)>> {
    let mut state = State::Normal;
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if state == State::Copy {
            if line == "\\." {
                state = State::Normal;
            }
            continue;
        }
        let starts_copy = state == State::Normal && {
            let t = line.trim();
            t.len() > 5
                && t[..5].eq_ignore_ascii_case("COPY ")
                && t.to_ascii_lowercase().ends_with("from stdin;")
        };
        if let Some(cmd) = scan_line(line, &mut state) {
            if !ALLOWED.contains(&cmd.as_str()) {
                return Ok(Some((n + 1, format!("\\{cmd}"))));
            }
            // An allowed command takes the rest of its line as arguments.
        }
        if starts_copy && state == State::Normal {
            state = State::Copy;
        }
    }
    Ok(None)
}

/// Scans one line from `state`: the name of the first meta-command met outside quotes and
/// comments (the scan of the line stops there, as psql's arguments follow).
fn scan_line(line: &str, state: &mut State) -> Option<String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match state {
            State::Normal => match b[i] {
                b'\\' => {
                    let rest = &line[i + 1..];
                    let name: String = match rest.chars().next() {
                        Some(c) if c.is_ascii_alphabetic() => rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect(),
                        Some(c) => c.to_string(),
                        None => String::new(),
                    };
                    return Some(name);
                }
                b'\'' => {
                    let escapes = i > 0
                        && matches!(b[i - 1], b'E' | b'e')
                        && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                    *state = State::Single { escapes };
                }
                b'"' => *state = State::Double,
                b'-' if b.get(i + 1) == Some(&b'-') => return None,
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    *state = State::Block(1);
                    i += 1;
                }
                b'$' => {
                    let prev_ident =
                        i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                    if !prev_ident {
                        if let Some(len) = line[i + 1..].find('$') {
                            let tag = &line[i + 1..i + 1 + len];
                            if tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                && !tag.starts_with(|c: char| c.is_ascii_digit())
                            {
                                *state = State::Dollar(tag.to_owned());
                                i += len + 1;
                            }
                        }
                    }
                }
                _ => {}
            },
            State::Single { escapes } => match b[i] {
                b'\\' if *escapes => i += 1,
                b'\'' if b.get(i + 1) == Some(&b'\'') => i += 1,
                b'\'' => *state = State::Normal,
                _ => {}
            },
            State::Double => {
                if b[i] == b'"' {
                    *state = State::Normal;
                }
            }
            State::Dollar(tag) => {
                let close = format!("${tag}$");
                if line[i..].starts_with(&close) {
                    i += close.len() - 1;
                    *state = State::Normal;
                }
            }
            State::Block(depth) => {
                if line[i..].starts_with("*/") {
                    *depth -= 1;
                    i += 1;
                    if *depth == 0 {
                        *state = State::Normal;
                    }
                } else if line[i..].starts_with("/*") {
                    *depth += 1;
                    i += 1;
                }
            }
            State::Copy => return None,
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::forbidden;

    fn check(sql: &str) -> Option<String> {
        forbidden(sql.as_bytes()).unwrap().map(|(_, c)| c)
    }

    #[test]
    fn what_pg_dump_writes_passes() {
        let sql = "\\restrict abc123\nSET standard_conforming_strings = on;\n\
            CREATE FUNCTION f() RETURNS text AS $_$ SELECT '\\d' $_$ LANGUAGE sql;\n\
            CREATE FUNCTION g() RETURNS text AS $$\nSELECT E'\\\\! no'\n$$ LANGUAGE sql;\n\
            COMMENT ON TABLE t IS 'C:\\path';\n/* \\! in a comment */ -- \\! too\n\
            COPY public.t (a, b) FROM stdin;\n\\N\t\\\\x\n1\t\\!\n\\.\n\
            \\connect other\n\\unrestrict abc123\n";
        assert_eq!(check(sql), None);
    }

    #[test]
    fn shell_and_file_commands_are_refused() {
        assert_eq!(check("SELECT 1;\n\\! id\n").as_deref(), Some("\\!"));
        assert_eq!(check("SELECT 1; \\o /tmp/x\n").as_deref(), Some("\\o"));
        assert_eq!(
            check("SELECT 'a''b'; \\setenv X 1\n").as_deref(),
            Some("\\setenv")
        );
        // Out of the COPY data again.
        assert_eq!(
            check("COPY t (a) FROM stdin;\n1\n\\.\n\\copy t to '/tmp/x'\n").as_deref(),
            Some("\\copy")
        );
        // A quote that ends lets a command through to the check.
        assert_eq!(check("SELECT 'x\n'; \\w /tmp/y\n").as_deref(), Some("\\w"));
    }
}
