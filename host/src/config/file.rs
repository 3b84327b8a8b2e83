//! The config file, TOML or Odoo's INI: reading its `[options]` table (with the line of each
//! value, for errors), the keys and sections kept for addons, and writing it back in its
//! own form, atomically, for `--save`.

use super::error::{ConfigError, Origin};
use super::options::{Config, OPTIONS};
use super::value::Input;
use super::{ini, odoo};
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

/// The form of a config file: Inphms's TOML, or Odoo's INI (`odoo.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// TOML, the form `--save` writes unless the file read was INI.
    #[default]
    Toml,
    /// Odoo's `configparser` form: unquoted values, `False`/`None`/empty for unset.
    Ini,
}

/// The `[options]` table with the span of each value.
#[derive(serde::Deserialize)]
struct OptionSpans {
    #[serde(default)]
    options: BTreeMap<String, toml::Spanned<toml::Value>>,
}

/// Reads the file `path` (whose text is `text`) into `cfg`, in the form its content shows
/// ([`ini::looks_like_ini`]): the options of `[options]` are set and checked, the other keys
/// and sections are kept for [`Config::misc`].
pub(crate) fn apply(cfg: &mut Config, path: &Path, text: &str) -> Result<(), ConfigError> {
    if ini::looks_like_ini(text) {
        apply_ini(cfg, path, text)?;
        cfg.format = Format::Ini;
    } else {
        apply_toml(cfg, path, text)?;
        cfg.format = Format::Toml;
    }
    Ok(())
}

/// Reads a TOML file.
fn apply_toml(cfg: &mut Config, path: &Path, text: &str) -> Result<(), ConfigError> {
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
    let mut reader = Reader::new(cfg);
    for (key, value) in &spans.options {
        let origin = Origin::File {
            path: path.to_owned(),
            line: line_of(text, value.span().start),
        };
        reader.option(key, Input::Toml(value.get_ref()), value.get_ref(), origin)?;
    }
    let kept = reader.finish(path);
    cfg.misc = doc;
    cfg.misc.remove("options");
    if !kept.is_empty() {
        cfg.misc.insert("options".into(), toml::Value::Table(kept));
    }
    Ok(())
}

/// Reads an INI file: `False`, `None` and empty values leave an option unset (`False` sets a
/// boolean option to false); unknown keys of `[options]` are kept with Odoo's conversions
/// (`True`/`False` to booleans, `None` dropped), other sections as text.
fn apply_ini(cfg: &mut Config, path: &Path, text: &str) -> Result<(), ConfigError> {
    let sections = ini::parse(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: Some(e.line),
        message: e.message,
    })?;
    let mut misc = toml::Table::new();
    let mut reader = Reader::new(cfg);
    for section in &sections {
        if section.name != "options" {
            let table: toml::Table = section
                .entries
                .iter()
                .map(|e| (e.key.clone(), toml::Value::String(e.value.clone())))
                .collect();
            misc.insert(section.name.clone(), toml::Value::Table(table));
            continue;
        }
        for e in &section.entries {
            let origin = Origin::File {
                path: path.to_owned(),
                line: e.line,
            };
            let kept = match e.value.as_str() {
                "True" | "true" => toml::Value::Boolean(true),
                "False" | "false" => toml::Value::Boolean(false),
                _ => toml::Value::String(e.value.clone()),
            };
            let unset = matches!(e.value.as_str(), "False" | "false" | "None" | "none" | "");
            let key = odoo::alias(&e.key).unwrap_or(e.key.as_str());
            let boolean = OPTIONS
                .iter()
                .any(|d| d.key == key && d.kind == super::value::Kind::Bool);
            if unset && !(boolean && matches!(e.value.as_str(), "False" | "false")) {
                if !reader.known(&e.key) {
                    reader.unknown(&e.key, kept, &origin);
                }
                continue;
            }
            reader.option(&e.key, Input::Text(&e.value), &kept, origin)?;
        }
    }
    let kept = reader.finish(path);
    if !kept.is_empty() {
        misc.insert("options".into(), toml::Value::Table(kept));
    }
    cfg.misc = misc;
    Ok(())
}

/// The keys of `[options]` being read: options set, the others kept with their warnings.
struct Reader<'a> {
    cfg: &'a mut Config,
    /// Keys that are no option here, for addons.
    kept: toml::Table,
    /// Keys of the options with no effect given another value than their default.
    no_effect: Vec<String>,
}

impl<'a> Reader<'a> {
    fn new(cfg: &'a mut Config) -> Reader<'a> {
        Reader {
            cfg,
            kept: toml::Table::new(),
            no_effect: Vec::new(),
        }
    }

    /// Whether `key` is an option of the table (or an old name of one).
    fn known(&self, key: &str) -> bool {
        let key = odoo::alias(key).unwrap_or(key);
        OPTIONS.iter().any(|d| d.key == key)
    }

    /// Sets the option `key` from `input`, or keeps `raw` for addons when no option has
    /// that key.
    fn option(
        &mut self,
        key: &str,
        input: Input<'_>,
        raw: &toml::Value,
        origin: Origin,
    ) -> Result<(), ConfigError> {
        let option = odoo::alias(key).unwrap_or(key);
        if self.cfg.set(option, input, &origin)? {
            if odoo::UNUSED.contains(&option)
                && self.cfg.get_toml(option) != Config::defaults().get_toml(option)
            {
                self.no_effect.push(key.to_owned());
            }
        } else {
            let text = match raw {
                toml::Value::String(s) => s.clone(),
                toml::Value::Boolean(true) => "True".to_owned(),
                toml::Value::Boolean(false) => "False".to_owned(),
                other => other.to_string(),
            };
            if odoo::odoo_only(key) && !odoo::is_odoo_default(key, &text) {
                self.no_effect.push(key.to_owned());
            }
            self.unknown(key, raw.clone(), &origin);
        }
        Ok(())
    }

    /// Keeps `key`; warns when it looks like a typo of a known option.
    fn unknown(&mut self, key: &str, value: toml::Value, origin: &Origin) {
        if !odoo::odoo_only(key) && odoo::alias(key).is_none() {
            if let Some(near) = odoo::suggestion(key) {
                self.cfg.warnings.push(format!(
                    "unknown option {key} in {origin}, kept for addons: did you mean {near}?"
                ));
            }
        }
        self.kept.insert(key.to_owned(), value);
    }

    /// The keys kept; the warning listing the options with no effect.
    fn finish(self, path: &Path) -> toml::Table {
        if !self.no_effect.is_empty() {
            self.cfg.warnings.push(format!(
                "options with no effect here, accepted for Odoo's config files ({}): {}",
                path.display(),
                self.no_effect.join(", ")
            ));
        }
        self.kept
    }
}

/// The text `--save` writes, in the form of the file read ([`Format`]): `[options]` sorted
/// (the options, then the keys kept for addons), then the other sections sorted.
pub(crate) fn render(cfg: &Config) -> Result<String, toml::ser::Error> {
    let mut options = toml::Table::new();
    for def in OPTIONS.iter().filter(|d| d.spec.save) {
        if let Some(v) = cfg.get_toml(def.key) {
            options.insert(def.key.to_owned(), hashed_master_password(def.key, v));
        }
    }
    let mut misc = cfg.misc.clone();
    let kept = match misc.remove("options") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    if cfg.format == Format::Ini {
        let mut sections = vec![(
            "options".to_owned(),
            options
                .iter()
                .chain(kept.iter())
                .map(|(k, v)| (k.clone(), ini_text(v)))
                .collect::<Vec<_>>(),
        )];
        for (name, table) in &misc {
            let entries = match table {
                toml::Value::Table(t) => t.iter().map(|(k, v)| (k.clone(), ini_text(v))).collect(),
                _ => Vec::new(),
            };
            sections.push((name.clone(), entries));
        }
        return Ok(ini::render(&sections));
    }
    for (k, v) in kept {
        options.entry(k).or_insert(v);
    }
    let mut head = toml::Table::new();
    head.insert("options".to_owned(), toml::Value::Table(options));
    let mut text = toml::to_string(&head)?;
    if !misc.is_empty() {
        text.push('\n');
        text.push_str(&toml::to_string(&misc)?);
    }
    Ok(text)
}

/// The master password (`admin_passwd`) as `--save` writes it: hashed with passlib's
/// `pbkdf2_sha512` when it is plain text (Odoo's `set_admin_password`), as it is otherwise.
fn hashed_master_password(key: &str, v: toml::Value) -> toml::Value {
    match v {
        toml::Value::String(s)
            if key == "admin_passwd" && !base_identity::crypt::looks_hashed(&s) =>
        {
            toml::Value::String(base_identity::crypt::hash(
                &s,
                base_identity::crypt::DEFAULT_ROUNDS,
            ))
        }
        v => v,
    }
}

/// `text` (a config file in `format`) with the option `key` of `[options]` set to
/// `value`, everything else kept as it is (comments, order, other sections): the line of
/// `key` replaced, else a line added at the start of `[options]`, else an `[options]`
/// section added at the top.
pub(crate) fn set_option_line(text: &str, format: Format, key: &str, value: &str) -> String {
    let line = match format {
        Format::Toml => format!("{key} = {}", toml::Value::String(value.to_owned())),
        Format::Ini => format!("{key} = {value}"),
    };
    let mut out: Vec<String> = Vec::new();
    let mut section = String::new();
    let mut done = false;
    let mut options_at: Option<usize> = None;
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            section = trimmed[1..trimmed.len() - 1].trim().to_owned();
            out.push(raw.to_owned());
            if section == "options" && options_at.is_none() {
                options_at = Some(out.len());
            }
            continue;
        }
        let is_key = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| matches!(rest.trim_start().chars().next(), Some('=' | ':')));
        if section == "options" && is_key && !done {
            out.push(line.clone());
            done = true;
        } else {
            out.push(raw.to_owned());
        }
    }
    if !done {
        match options_at {
            Some(i) => out.insert(i, line),
            None => {
                out.insert(0, String::new());
                out.insert(0, line);
                out.insert(0, "[options]".to_owned());
            }
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// A value as Odoo's INI form writes it: text bare, booleans `True`/`False`, lists
/// comma-separated.
fn ini_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Boolean(true) => "True".into(),
        toml::Value::Boolean(false) => "False".into(),
        toml::Value::Array(items) => items.iter().map(ini_text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
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
    fn one_option_is_set_and_the_rest_of_the_file_kept() {
        let toml = "# mine\n[options]\nhttp_port = 9000\nadmin_passwd = \"old\"\n\n[x]\nadmin_passwd = 1\n";
        assert_eq!(
            set_option_line(toml, Format::Toml, "admin_passwd", "$h$1$a"),
            "# mine\n[options]\nhttp_port = 9000\nadmin_passwd = \"$h$1$a\"\n\n[x]\nadmin_passwd = 1\n"
        );
        let ini = "[options]\n; comment\nadmin_passwd: old\ndb_host = False\n";
        assert_eq!(
            set_option_line(ini, Format::Ini, "admin_passwd", "$h$1$a"),
            "[options]\n; comment\nadmin_passwd = $h$1$a\ndb_host = False\n"
        );
        // Missing: added at the start of [options], or with a new [options].
        assert_eq!(
            set_option_line(
                "[options]\nadmin_passwd_x = 1\n",
                Format::Toml,
                "admin_passwd",
                "p"
            ),
            "[options]\nadmin_passwd = \"p\"\nadmin_passwd_x = 1\n"
        );
        assert_eq!(
            set_option_line("", Format::Toml, "admin_passwd", "p"),
            "[options]\nadmin_passwd = \"p\"\n\n"
        );
        // What is written reads back.
        let mut cfg = Config::defaults();
        let text = set_option_line(toml, Format::Toml, "admin_passwd", "$pbkdf2-sha512$1$a$b");
        apply(&mut cfg, Path::new("/x.conf"), &text).unwrap();
        assert_eq!(cfg.admin_passwd, "$pbkdf2-sha512$1$a$b");
    }

    #[test]
    fn save_hashes_a_plain_master_password() {
        let mut cfg = Config::defaults();
        cfg.admin_passwd = "s3cr3t".into();
        let text = render(&cfg).unwrap();
        let mut back = Config::defaults();
        apply(&mut back, Path::new("/x.conf"), &text).unwrap();
        assert!(
            back.admin_passwd.starts_with("$pbkdf2-sha512$600000$"),
            "{text}"
        );
        assert!(base_identity::crypt::verify("s3cr3t", &back.admin_passwd, 600_000).valid);
        // A hash is written as it is.
        let again = render(&back).unwrap();
        assert!(again.contains(&back.admin_passwd));
    }

    #[test]
    fn odoos_defaults_warn_of_nothing_and_other_values_are_listed_once() {
        let read = |text: &str| {
            let mut cfg = Config::defaults();
            apply(&mut cfg, Path::new("/etc/odoo.conf"), text).unwrap();
            cfg
        };
        let cfg = read(
            "[options]\nworkers = 0\nlimit_time_cpu = 60\nsmtp_server = localhost\nwithout_demo = False\nx_sendfile = False\ndemo = {}\ndb_host = False\n",
        );
        assert_eq!(cfg.format, Format::Ini);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        assert_eq!(cfg.db_host, None);
        assert_eq!(cfg.workers, 0);
        assert_eq!(cfg.misc("options", "workers"), None);
        assert_eq!(
            cfg.misc("options", "smtp_server"),
            Some(&toml::Value::String("localhost".into()))
        );
        // (TOML: every value is a number; keys in sorted order.)
        let cfg = read("[options]\ngevent_port = 9000\nwithout_demo = True\nxmlrpc_port = 8070\n");
        assert_eq!(cfg.http_port, 8070);
        assert_eq!(
            cfg.warnings,
            ["options with no effect here, accepted for Odoo's config files (/etc/odoo.conf): gevent_port, without_demo"]
        );
        // workers is an option: set from the file, no warning.
        let cfg = read("[options]\nworkers = 2\nlimit_time_cpu = 5\n");
        assert_eq!(cfg.workers, 2);
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        let cfg = read("[options]\ngevent_port = 2\nhttp_portt = 1\n");
        assert_eq!(cfg.format, Format::Toml);
        assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
    }

    #[test]
    fn workers_only_options_warn_without_workers() {
        let mut cfg = Config::defaults();
        apply(
            &mut cfg,
            Path::new("/etc/odoo.conf"),
            "[options]\nlimit_time_cpu = 5\nlimit_request = 100\n",
        )
        .unwrap();
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        assert_eq!(
            odoo::workers_only_warning(&cfg).as_deref(),
            Some("options that apply only with --workers (workers = 0 here): limit_time_cpu, limit_request")
        );
        cfg.workers = 2;
        assert_eq!(odoo::workers_only_warning(&cfg), None);
        assert_eq!(odoo::workers_only_warning(&Config::defaults()), None);
    }

    #[test]
    fn lines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
