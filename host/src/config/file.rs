//! The config file: reading its `[options]` table (with the line of each value, for errors)
//! and the other sections, and writing it back atomically for `--save`.

use super::error::{ConfigError, Origin};
use super::options::{Config, OPTIONS};
use super::value::Input;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The line (1-based) of the byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The `[options]` table with the span of each value.
#[derive(serde::Deserialize)]
struct OptionSpans {
    #[serde(default)]
    options: BTreeMap<String, toml::Spanned<toml::Value>>,
}

/// Reads the file `path` (whose text is `text`) into `cfg`: the options of `[options]` are
/// set and checked, the other sections are kept for [`Config::misc`].
pub(crate) fn apply(cfg: &mut Config, path: &Path, text: &str) -> Result<(), ConfigError> {
    let syntax = |line: Option<usize>, message: String| ConfigError::Syntax {
        path: path.to_owned(),
        line,
        message,
    };
    let toml_error = |e: toml::de::Error| {
        syntax(
            e.span().map(|s| line_of(text, s.start)),
            e.message().to_owned(),
        )
    };

    let doc: toml::Table = toml::from_str(text).map_err(toml_error)?;
    let top: BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(toml_error)?;
    for (key, value) in &top {
        if !value.get_ref().is_table() {
            return Err(syntax(
                Some(line_of(text, value.span().start)),
                format!("key '{key}' is outside any section; expected it under [options] or another [section]"),
            ));
        }
    }
    let spans: OptionSpans = toml::from_str(text).map_err(toml_error)?;
    for (key, value) in &spans.options {
        let origin = Origin::File {
            path: path.to_owned(),
            line: line_of(text, value.span().start),
        };
        if !cfg.set(key, Input::Toml(value.get_ref()), &origin)? {
            return Err(ConfigError::UnknownOption {
                option: key.clone(),
                value: value.get_ref().to_string(),
                origin,
            });
        }
    }
    cfg.misc = doc;
    cfg.misc.remove("options");
    Ok(())
}

/// The text `--save` writes: `[options]` sorted, then the other sections sorted.
pub(crate) fn render(cfg: &Config) -> Result<String, toml::ser::Error> {
    let mut options = toml::Table::new();
    for def in OPTIONS.iter().filter(|d| d.spec.save) {
        if let Some(v) = cfg.get_toml(def.key) {
            options.insert(def.key.to_owned(), v);
        }
    }
    let mut head = toml::Table::new();
    head.insert("options".to_owned(), toml::Value::Table(options));
    let mut text = toml::to_string(&head)?;
    if !cfg.misc.is_empty() {
        text.push('\n');
        text.push_str(&toml::to_string(&cfg.misc)?);
    }
    Ok(text)
}

/// Writes `text` to `path` atomically: a temporary file of `mode` in the same folder, then
/// renamed over `path`. Missing parent folders are created.
pub(crate) fn write_atomic(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
