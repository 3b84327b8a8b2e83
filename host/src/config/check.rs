//! Per-option checks and normalizations. Each takes the outcome of reading the typed value
//! and returns the value to keep or a refusal saying what was expected, so a check can also
//! reword the refusal of a value that did not even parse (e.g. a port of `70000`).

use super::paths;
use super::value::Reject;
use std::path::PathBuf;

/// The outcome of reading, then checking, a value.
pub(crate) type Checked<T> = Result<T, Reject>;

/// Keeps the value as read.
pub(crate) fn none<T>(r: Checked<T>) -> Checked<T> {
    r
}

const PORT: &str = "a port number from 1 to 65535";

/// A TCP port, 1-65535.
pub(crate) fn port(r: Checked<u16>) -> Checked<u16> {
    match r {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(Reject::expected(PORT)),
    }
}

/// An optional TCP port.
pub(crate) fn opt_port(r: Checked<Option<u16>>) -> Checked<Option<u16>> {
    match r {
        Ok(Some(0)) | Err(_) => Err(Reject::expected(PORT)),
        ok => ok,
    }
}

/// A count of at least one.
pub(crate) fn positive(r: Checked<u32>) -> Checked<u32> {
    match r {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Reject::expected("an integer from 1 to 4294967295")),
    }
}

/// A non-empty string.
pub(crate) fn non_empty(r: Checked<String>) -> Checked<String> {
    match r {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Ok(_) => Err(Reject::expected("a non-empty string")),
        e => e,
    }
}

/// Addons folders: each must exist and hold at least one addon (a subfolder with a
/// `__manifest__.toml`). Stricter than Odoo, which checks only the command line.
pub(crate) fn addons_path(r: Checked<Vec<PathBuf>>) -> Checked<Vec<PathBuf>> {
    let dirs = r?;
    for dir in &dirs {
        let shown = dir.to_string_lossy();
        if !dir.is_dir() {
            return Err(Reject::part(
                &shown,
                "an existing directory (no such directory)",
            ));
        }
        if !paths::holds_addon(dir) {
            return Err(Reject::part(
                &shown,
                format!("an addons directory: a directory holding at least one addon (a folder with a {})", paths::MANIFEST),
            ));
        }
    }
    Ok(dedup(dirs))
}

/// The server-wide modules: an empty list means the default `base,web` (as Odoo).
pub(crate) fn server_wide_modules(r: Checked<Vec<String>>) -> Checked<Vec<String>> {
    let mods = r?;
    if mods.is_empty() {
        Ok(vec!["base".to_owned(), "web".to_owned()])
    } else {
        Ok(dedup(mods))
    }
}

/// Addon names (`-i`, `-u`): letters, digits and underscores.
pub(crate) fn module_names(r: Checked<Vec<String>>) -> Checked<Vec<String>> {
    let names = r?;
    for n in &names {
        if !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Reject::part(
                n,
                "addon names made of letters, digits and underscores",
            ));
        }
    }
    Ok(dedup(names))
}

/// `--dev`: `all` adds `reload`, `qweb` and `xml` (as Odoo).
pub(crate) fn dev_mode(r: Checked<Vec<String>>) -> Checked<Vec<String>> {
    let mut modes = r?;
    if modes.iter().any(|m| m == "all") {
        modes.extend(["reload", "qweb", "xml"].map(str::to_owned));
    }
    Ok(dedup(modes))
}

/// `--db-filter`: a regular expression once `%h` and `%d` are replaced.
pub(crate) fn dbfilter(r: Checked<String>) -> Checked<String> {
    let filter = r?;
    let probe = filter.replace("%h", "host").replace("%d", "domain");
    match regex::Regex::new(&probe) {
        Ok(_) => Ok(filter),
        Err(e) => Err(Reject::expected(format!(
            "a regular expression ({})",
            regex_error_line(&e)
        ))),
    }
}

/// The gist of a regex error, which spans several lines.
fn regex_error_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.lines().last().unwrap_or("invalid"))
        .to_owned()
}

/// `--log-level` choices, as Odoo.
pub const LOG_LEVELS: [&str; 11] = [
    "info",
    "debug_rpc",
    "warn",
    "test",
    "critical",
    "runbot",
    "debug_sql",
    "error",
    "debug",
    "debug_rpc_answer",
    "notset",
];

/// `--log-level`: one of [`LOG_LEVELS`].
pub(crate) fn log_level(r: Checked<String>) -> Checked<String> {
    choice(r, &LOG_LEVELS)
}

/// `--db_sslmode` choices, as libpq.
pub(crate) fn sslmode(r: Checked<String>) -> Checked<String> {
    choice(
        r,
        &[
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ],
    )
}

/// `session_store` choices.
pub(crate) fn session_store(r: Checked<String>) -> Checked<String> {
    choice(r, &["filesystem", "postgresql"])
}

fn choice(r: Checked<String>, choices: &[&str]) -> Checked<String> {
    match r {
        Ok(s) if choices.contains(&s.trim()) => Ok(s.trim().to_owned()),
        _ => Err(Reject::expected(format!("one of {}", choices.join(", ")))),
    }
}

/// Log level names accepted in `--log-handler`.
pub const HANDLER_LEVELS: [&str; 8] = [
    "DEBUG", "INFO", "RUNBOT", "WARNING", "WARN", "ERROR", "CRITICAL", "NOTSET",
];

/// `--log-handler`: `PREFIX:LEVEL` items (an empty prefix is the root), levels normalized
/// to upper case.
pub(crate) fn log_handler(r: Checked<Vec<String>>) -> Checked<Vec<String>> {
    r?.into_iter()
        .map(|item| {
            let bad = || {
                Reject::part(
                    &item,
                    format!(
                        "PREFIX:LEVEL with LEVEL one of {}",
                        HANDLER_LEVELS.join(", ")
                    ),
                )
            };
            let (prefix, level) = item.rsplit_once(':').ok_or_else(bad)?;
            let level = level.trim().to_ascii_uppercase();
            if !HANDLER_LEVELS.contains(&level.as_str()) {
                return Err(bad());
            }
            Ok(format!("{}:{level}", prefix.trim()))
        })
        .collect()
}

/// `v` without repeated items, first occurrence kept.
fn dedup<T: PartialEq>(v: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(port(Ok(0)).is_err());
        assert_eq!(port(Ok(8069)), Ok(8069));
        assert!(dbfilter(Ok("^%d$".into())).is_ok());
        let e = dbfilter(Ok("^(%d".into())).unwrap_err();
        assert!(e.expected.starts_with("a regular expression ("), "{e:?}");
        assert!(!e.expected.contains('\n'));
        assert_eq!(
            log_handler(Ok(vec!["hyper::proto:debug".into(), ":INFO".into()])),
            Ok(vec!["hyper::proto:DEBUG".into(), ":INFO".into()])
        );
        assert!(log_handler(Ok(vec!["x".into()])).is_err());
        assert_eq!(
            dev_mode(Ok(vec!["all".into()])).unwrap(),
            ["all", "reload", "qweb", "xml"]
        );
    }
}
