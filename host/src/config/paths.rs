//! Paths of the configuration: expansion (`~`, `$VARS`), absolute and normalized forms, the
//! default locations (config file, data folder, built-in addons) and what makes a folder an
//! addons folder.

use std::path::{Component, Path, PathBuf};

/// The file that marks a folder as an addon.
pub const MANIFEST: &str = "__manifest__.toml";

/// The home folder (`$HOME`), if set.
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Expands `~` and environment variables (`$VAR`, `${VAR}`; unknown ones are kept as
/// written), then makes the path absolute (against the current folder) and removes `.` and
/// `..` components without resolving symbolic links.
pub fn expand(raw: &str) -> PathBuf {
    let raw = raw.trim();
    let with_vars = expand_vars(raw);
    let expanded = match with_vars.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match home() {
            Some(h) => format!("{}{rest}", h.display()),
            None => with_vars.clone(),
        },
        _ => with_vars,
    };
    absolute(Path::new(&expanded))
}

/// `$VAR` and `${VAR}` replaced by their values; unknown variables are left as is (as
/// Python's `os.path.expandvars`).
fn expand_vars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match std::env::var(name) {
            Ok(value) if !name.is_empty() => out.push_str(&value),
            _ => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// `path` made absolute against the current folder, with `.` and `..` removed.
pub fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The default configuration file: `~/.inphmsrc`.
pub fn default_rc() -> Option<PathBuf> {
    home().map(|h| h.join(".inphmsrc"))
}

/// The default data folder: `$XDG_DATA_HOME/Inphms`, else `~/.local/share/Inphms`, else
/// `/var/lib/inphms`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return absolute(&PathBuf::from(xdg).join("Inphms"));
    }
    match home() {
        Some(h) => h.join(".local/share/Inphms"),
        None => PathBuf::from("/var/lib/inphms"),
    }
}

/// Whether `dir` has at least one subfolder holding a `__manifest__.toml`.
pub fn holds_addon(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| e.path().join(MANIFEST).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_normalizes() {
        std::env::set_var("INPHMS_TEST_VAR", "/srv");
        assert_eq!(
            expand("$INPHMS_TEST_VAR/a/./b/../c"),
            PathBuf::from("/srv/a/c")
        );
        assert_eq!(expand("${INPHMS_TEST_VAR}/x"), PathBuf::from("/srv/x"));
        assert_eq!(
            expand("/a/$INPHMS_NO_SUCH_VAR/b"),
            PathBuf::from("/a/$INPHMS_NO_SUCH_VAR/b")
        );
        if let Some(h) = home() {
            assert_eq!(expand("~/x"), h.join("x"));
        }
    }
}
