//! Configuration (Odoo's `odoo/tools/config.py`): Odoo's option names and defaults, read
//! from a TOML file's `[options]` table, the environment and the command line.
//!
//! Precedence: built-in defaults < config file < environment (`PGHOST`, `PGPORT`, `PGUSER`,
//! `PGPASSWORD`, `PGDATABASE`) < command line. The file is `-c/--config`, else `$INPHMS_RC`,
//! else `~/.inphmsrc` if it exists, else `$ODOO_RC`, else `~/.odoorc` if it exists. It is
//! TOML or Odoo's INI form (`odoo.conf`, told by its content, see [`ini`]); keys of
//! `[options]` that are no option are kept for addons, like other sections ([`odoo`]). Every option is defined once, in [`options`]; a bad value is a
//! [`ConfigError`] whose one-line message names the option, the value, its origin and what
//! was expected.
//!
//! ```toml
//! [options]
//! addons_path = ["/srv/addons"]
//! http_port = 8069
//! db_host = "localhost"
//!
//! [my_addon]          # other sections are kept for addons: Config::misc
//! api_key = "secret"
//! ```

mod args;
mod check;
pub mod cidr;
mod error;
mod file;
mod ini;
mod odoo;
mod options;
pub mod paths;
mod value;

pub use check::LOG_LEVELS;
pub use cidr::Cidr;
pub use error::{ConfigError, Origin};
pub(crate) use file::write_atomic;
pub use options::Config;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use value::Input;

impl Config {
    /// Reads the configuration for the `server` command: `args` are the command's arguments
    /// (no program name). With `-s/--save`, the effective options are written back.
    pub fn parse(args: &[OsString]) -> Result<Config, ConfigError> {
        let parsed = args::Parsed::new(args)?;
        let mut cfg = Config::defaults();

        let (rc_path, rc_origin, format) = match parsed.config() {
            Some(p) => (
                Some(paths::expand(&p.to_string_lossy())),
                Origin::Flag("--config".into()),
                file::Format::Toml,
            ),
            None => rc_location(),
        };
        // The form `--save` writes when the file does not exist yet.
        cfg.format = format;
        if let Some(path) = &rc_path {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
                        path: path.clone(),
                        line: None,
                        message: "not valid UTF-8; expected a TOML or INI file".into(),
                    })?;
                    file::apply(&mut cfg, path, &text)?;
                    cfg.config_file = Some(path.clone());
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && (parsed.save() || !matches!(rc_origin, Origin::Flag(_))) => {}
                Err(e) => {
                    return Err(ConfigError::Unreadable {
                        path: path.clone(),
                        origin: rc_origin,
                        reason: io_reason(&e),
                    })
                }
            }
        }
        cfg.rc_path = rc_path;

        cfg.apply_env()?;
        parsed.apply(&mut cfg)?;
        cfg.check_combination()?;
        if let Some(warning) = odoo::workers_only_warning(&cfg) {
            cfg.warnings.push(warning);
        }

        if parsed.save() {
            cfg.save()?;
        }
        Ok(cfg)
    }

    /// Sets the options that have an environment variable, from the variables that are set
    /// and not empty.
    fn apply_env(&mut self) -> Result<(), ConfigError> {
        for def in options::OPTIONS {
            let Some(var) = def.spec.env else { continue };
            let Some(raw) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let origin = Origin::Env(var);
            let Some(text) = raw.to_str() else {
                return Err(ConfigError::Invalid {
                    option: def.key.to_owned(),
                    value: format!("{raw:?}"),
                    origin,
                    expected: "UTF-8 text".into(),
                });
            };
            self.set(def.key, Input::Text(text), &origin)?;
        }
        Ok(())
    }

    /// Checks that hold between options.
    fn check_combination(&self) -> Result<(), ConfigError> {
        if self.db_name.len() > 1 && !(self.init.is_empty() && self.update.is_empty()) {
            return Err(ConfigError::Invalid {
                option: "db_name".into(),
                value: format!("{:?}", self.db_name.join(",")),
                origin: self.origin("db_name"),
                expected: "a single database when -i/--init or -u/--update is given".into(),
            });
        }
        Ok(())
    }

    /// Where the effective value of the option `key` comes from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// The value of `key` in the section `[section]` of the config file: where addons keep
    /// their own settings. In `[options]`, only the keys that are no option of the host
    /// (Odoo's `config.get('my_key')`); values of an INI file are text, except `True` and
    /// `False` in `[options]` (booleans, as Odoo reads them).
    pub fn misc(&self, section: &str, key: &str) -> Option<&toml::Value> {
        self.misc.get(section)?.as_table()?.get(key)
    }

    /// The folder of the HTTP sessions: `<data_dir>/sessions`.
    pub fn session_dir(&self) -> PathBuf {
        self.data_dir.join("sessions")
    }

    /// The database of the PostgreSQL session store: `session_db`, else `cron_db`.
    pub fn session_db(&self) -> &str {
        if self.session_db.trim().is_empty() {
            &self.cron_db
        } else {
            self.session_db.trim()
        }
    }

    /// The file `--save` writes: `-c`, else `$INPHMS_RC`, else `~/.inphmsrc`.
    pub fn rc_path(&self) -> Option<&Path> {
        self.rc_path.as_deref()
    }

    /// `admin_passwd` as the config file ([`Config::rc_path`]) has it now (another process
    /// may have changed it), with the file's modification time; `None` without a file. The
    /// error names the file and why.
    pub fn reread_admin_passwd(&self) -> Result<Option<(String, std::time::SystemTime)>, String> {
        let Some(path) = &self.rc_path else {
            return Ok(None);
        };
        let read = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .and_then(|at| std::fs::read_to_string(path).map(|t| (t, at)));
        let (text, at) = match read {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {}", path.display(), io_reason(&e))),
        };
        let mut cfg = Config::defaults();
        file::apply(&mut cfg, path, &text).map_err(|e| e.to_string())?;
        Ok(Some((cfg.admin_passwd, at)))
    }

    /// Writes the effective options to [`Config::rc_path`] (atomically, mode 0600, parent
    /// folders created): `[options]` sorted, then the other sections of the file read. The
    /// options `init`, `update`, `dev_mode` and `stop_after_init` are not written, nor unset
    /// optional ones. Afterwards [`Config::config_file`] is that file.
    pub fn save(&mut self) -> Result<PathBuf, ConfigError> {
        let path = self.rc_path.clone().ok_or_else(|| ConfigError::Save {
            path: PathBuf::from("~/.inphmsrc"),
            reason: "HOME is not set; give the file with -c/--config".into(),
        })?;
        let text = file::render(self).map_err(|e| ConfigError::Save {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        file::write_atomic(&path, &text, 0o600).map_err(|e| ConfigError::Save {
            path: path.clone(),
            reason: io_reason(&e),
        })?;
        self.config_file = Some(path.clone());
        Ok(path)
    }

    /// Sets the option `key` to `value` in the config file ([`Config::rc_path`]) and
    /// nothing else (Odoo's `config.save(['admin_passwd'])`): the file keeps its form
    /// (TOML or INI), comments and other values; written atomically (mode 0600), created
    /// when missing. `value` is written as it is (the caller hashes a password).
    pub fn save_option(&self, key: &str, value: &str) -> Result<PathBuf, ConfigError> {
        let path = self.rc_path.clone().ok_or_else(|| ConfigError::Save {
            path: PathBuf::from("~/.inphmsrc"),
            reason: "HOME is not set; give the file with -c/--config".into(),
        })?;
        let (text, format) = match std::fs::read_to_string(&path) {
            Ok(t) => {
                let format = if ini::looks_like_ini(&t) {
                    file::Format::Ini
                } else {
                    file::Format::Toml
                };
                (t, format)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), self.format),
            Err(e) => {
                return Err(ConfigError::Save {
                    path,
                    reason: io_reason(&e),
                })
            }
        };
        let text = file::set_option_line(&text, format, key, value);
        file::write_atomic(&path, &text, 0o600).map_err(|e| ConfigError::Save {
            path: path.clone(),
            reason: io_reason(&e),
        })?;
        Ok(path)
    }

    /// Reads `value` as the flag `--addons-path` (for the shared option given before the
    /// command): expanded, absolute, each folder existing and holding an addon.
    pub fn addons_path_flag(value: &OsStr) -> Result<Vec<PathBuf>, ConfigError> {
        let origin = Origin::Flag("--addons-path".into());
        let Some(text) = value.to_str() else {
            return Err(ConfigError::Invalid {
                option: "addons_path".into(),
                value: format!("{value:?}"),
                origin,
                expected: "UTF-8 text".into(),
            });
        };
        let mut cfg = Config::defaults();
        cfg.set("addons_path", Input::Text(text), &origin)?;
        Ok(cfg.addons_path)
    }
}

/// The config file when no `-c` is given, how it was chosen, and the form `--save` gives
/// it if it does not exist: `$INPHMS_RC`, else `~/.inphmsrc` if it exists, else
/// `$ODOO_RC`, else `~/.odoorc` if it exists (both INI), else `~/.inphmsrc`.
fn rc_location() -> (Option<PathBuf>, Origin, file::Format) {
    let env = |var| std::env::var_os(var).filter(|v: &OsString| !v.is_empty());
    let expand = |p: OsString| Some(paths::expand(&p.to_string_lossy()));
    if let Some(p) = env("INPHMS_RC") {
        return (expand(p), Origin::Env("INPHMS_RC"), file::Format::Toml);
    }
    let inphmsrc = paths::default_rc();
    if inphmsrc.as_deref().is_some_and(Path::exists) {
        return (inphmsrc, Origin::Default, file::Format::Toml);
    }
    if let Some(p) = env("ODOO_RC") {
        return (expand(p), Origin::Env("ODOO_RC"), file::Format::Ini);
    }
    if let Some(odoorc) = paths::home().map(|h| h.join(".odoorc")) {
        if odoorc.exists() {
            return (Some(odoorc), Origin::Default, file::Format::Ini);
        }
    }
    (inphmsrc, Origin::Default, file::Format::Toml)
}

/// An I/O error's reason without the `(os error N)` suffix.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_sections_are_kept_for_addons() {
        let mut cfg = Config::defaults();
        let text = "[options]\nhttp_port = 9000\n\n[my_addon]\napi_key = \"k\"\nretries = 3\n";
        file::apply(&mut cfg, Path::new("/x/inphms.conf"), text).unwrap();
        assert_eq!(cfg.http_port, 9000);
        assert_eq!(
            cfg.origin("http_port"),
            Origin::File {
                path: "/x/inphms.conf".into(),
                line: 2
            }
        );
        assert_eq!(
            cfg.misc("my_addon", "api_key").and_then(|v| v.as_str()),
            Some("k")
        );
        assert_eq!(
            cfg.misc("my_addon", "retries").and_then(|v| v.as_integer()),
            Some(3)
        );
        assert!(cfg.misc("options", "http_port").is_none());
        assert!(cfg.misc("nope", "x").is_none());
        assert_eq!(cfg.session_dir(), cfg.data_dir.join("sessions"));
    }
}
