//! Addon manifests (`__manifest__.toml`): parsing, defaults and validation, with Odoo's keys
//! and meaning (`odoo/modules/module.py:load_manifest`).
//!
//! Every fault names the manifest file, the line when one can be found, and what was
//! expected. Unknown keys and a missing `license` are warnings, not faults.

use crate::release::SERIE;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The manifest file name.
pub const MANIFEST_NAME: &str = "__manifest__.toml";

/// `auto_install`: never, or when all (or the listed) dependencies are installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoInstall {
    /// `false` (the default).
    No,
    /// `true`, or the list given (a subset of `depends`).
    When(Vec<String>),
}

/// A default cron job an addon creates at install (`[[cron]]` tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSpec {
    /// The job's name.
    pub name: String,
    /// The handler name (declared by an addon with `#[cron]`).
    pub handler: String,
    /// Interval count.
    pub interval_number: i64,
    /// `minutes`, `hours`, `days`, `weeks` or `months`.
    pub interval_type: String,
    /// Lower runs first.
    pub priority: i64,
    /// Whether the job starts active.
    pub active: bool,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest file.
    pub file: PathBuf,
    /// `name`: the human name (required).
    pub name: String,
    /// `version`, adapted to the host's series (`1.0` → `1.0.1.0`).
    pub version: String,
    /// `summary`.
    pub summary: String,
    /// `description`.
    pub description: String,
    /// `author`.
    pub author: String,
    /// `website`.
    pub website: String,
    /// `license` (default `LGPL-3`).
    pub license: String,
    /// `category` (default `Uncategorized`).
    pub category: String,
    /// `depends`: addons this one needs.
    pub depends: Vec<String>,
    /// `installable` (default true).
    pub installable: bool,
    /// `auto_install`.
    pub auto_install: AutoInstall,
    /// `application`.
    pub application: bool,
    /// `data`: SQL files run at install, relative to the addon folder.
    pub data: Vec<String>,
    /// `library`: the compiled library's crate name, or a path relative to the addon folder.
    pub library: Option<String>,
    /// `commands`: the command-line commands the addon declares (looked up by `inphms-host`).
    pub commands: Vec<String>,
    /// `[[cron]]`: default cron jobs created at install.
    pub crons: Vec<CronSpec>,
    /// `session_token_query`: the statement (one `$1` parameter, the session's `uid`)
    /// whose single row keys the session token (Odoo's `_compute_session_token`; see
    /// `inphms_sdk::session::session_token`). The host checks the token of every
    /// `auth = "user"` request with it; `base` declares it, as the owner of `res_users`.
    pub session_token_query: Option<String>,
    /// `apikey_query`: the statement finding the API keys of an index (`$1`, a key's first 8
    /// characters) for a scope (`$2`): rows of (user id, passlib `pbkdf2_sha512` hash of the
    /// key). The host checks `auth = "bearer"` requests with it; `base` declares it.
    pub apikey_query: Option<String>,
    /// `public_user_query`: the statement giving the id of the public user, whom the
    /// handler of an `auth = "public"` route sees as the session's `uid` when nobody is
    /// logged in (Odoo's `base.public_user`); `base` declares it.
    pub public_user_query: Option<String>,
    /// `startup_warnings`: statements run on each database at start (read-only), each row's
    /// first column logged as a warning (`base`: an `admin` still on its default password).
    pub startup_warnings: Vec<String>,
    /// `default_password_query`: a statement run on each database at start (read-only)
    /// giving rows of (warning, stored password hash, default password); each warning is
    /// logged when its default password verifies against the hash (`base_identity`'s
    /// `crypt::verify`, whatever the salt and rounds): `base`'s `admin` still on `admin`.
    pub default_password_query: Option<String>,
}

/// A manifest that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub fault: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {}: {}", self.file.display(), line, self.fault),
            None => write!(f, "{}: {}", self.file.display(), self.fault),
        }
    }
}

impl std::error::Error for ManifestError {}

const KNOWN_KEYS: &[&str] = &[
    "name",
    "version",
    "summary",
    "description",
    "author",
    "website",
    "license",
    "category",
    "depends",
    "installable",
    "auto_install",
    "application",
    "data",
    "library",
    "commands",
    "cron",
    "sequence",
    "images",
    "external_dependencies",
    "session_token_query",
    "apikey_query",
    "public_user_query",
    "startup_warnings",
    "default_password_query",
];

/// Reads and validates the manifest of the addon in `dir`. Returns it with its warnings.
pub fn load(dir: &Path) -> Result<(Manifest, Vec<String>), ManifestError> {
    let file = dir.join(MANIFEST_NAME);
    let text = std::fs::read_to_string(&file).map_err(|e| ManifestError {
        file: file.clone(),
        line: None,
        fault: format!("cannot be read: {e}"),
    })?;
    parse(&file, &text)
}

/// Parses manifest `text` read from `file`.
pub fn parse(file: &Path, text: &str) -> Result<(Manifest, Vec<String>), ManifestError> {
    let table: Table = text.parse::<Table>().map_err(|e| ManifestError {
        file: file.to_owned(),
        line: e.span().map(|s| line_of(text, s.start)),
        fault: format!("invalid TOML: {}", e.message()),
    })?;
    let fields = Fields {
        file,
        text,
        table: &table,
    };
    let mut warnings = Vec::new();
    for key in table.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            warnings.push(format!("{}: unknown key '{key}' (ignored)", fields.at(key)));
        }
    }
    let name = fields
        .string("name")?
        .ok_or_else(|| fields.error(None, "missing required key 'name' (a string)"))?;
    let license = match fields.string("license")? {
        Some(l) if !l.is_empty() => l,
        _ => {
            warnings.push(format!(
                "{}: missing 'license', defaulting to LGPL-3",
                file.display()
            ));
            "LGPL-3".to_owned()
        }
    };
    let version_raw = fields
        .string("version")?
        .unwrap_or_else(|| "1.0".to_owned());
    let version =
        adapt_version(&version_raw).map_err(|fault| fields.error(Some("version"), &fault))?;
    let depends = fields.strings("depends")?;
    let auto_install = match table.get("auto_install") {
        None | Some(Value::Boolean(false)) => AutoInstall::No,
        Some(Value::Boolean(true)) => AutoInstall::When(depends.clone()),
        Some(Value::Array(_)) => {
            let list = fields.strings("auto_install")?;
            if let Some(extra) = list.iter().find(|d| !depends.contains(d)) {
                return Err(fields.error(
                    Some("auto_install"),
                    &format!("'auto_install' names '{extra}', which is not in 'depends'"),
                ));
            }
            AutoInstall::When(list)
        }
        Some(v) => {
            return Err(fields.error(
                Some("auto_install"),
                &format!(
                    "'auto_install' must be a boolean or a list of strings, found {}",
                    v.type_str()
                ),
            ))
        }
    };
    let crons = fields.crons()?;
    let manifest = Manifest {
        file: file.to_owned(),
        name,
        version,
        summary: fields.string("summary")?.unwrap_or_default(),
        description: fields.string("description")?.unwrap_or_default(),
        author: fields.string("author")?.unwrap_or_default(),
        website: fields.string("website")?.unwrap_or_default(),
        license,
        category: fields
            .string("category")?
            .unwrap_or_else(|| "Uncategorized".to_owned()),
        depends,
        installable: fields.boolean("installable")?.unwrap_or(true),
        auto_install,
        application: fields.boolean("application")?.unwrap_or(false),
        data: fields.strings("data")?,
        library: fields.string("library")?,
        commands: fields.strings("commands")?,
        crons,
        session_token_query: fields.string("session_token_query")?,
        apikey_query: fields.string("apikey_query")?,
        public_user_query: fields.string("public_user_query")?,
        startup_warnings: fields.strings("startup_warnings")?,
        default_password_query: fields.string("default_password_query")?,
    };
    Ok((manifest, warnings))
}

/// Odoo's `adapt_version`: prefixes the host's series unless the version already starts
/// with it; the rest must be `x.y` or `x.y.z`. A five-part version of another series is
/// refused.
pub fn adapt_version(v: &str) -> Result<String, String> {
    let prefix = format!("{SERIE}.");
    let (full, base) = match v.strip_prefix(&prefix) {
        Some(rest) if v != SERIE => (v.to_owned(), rest.to_owned()),
        _ => (format!("{SERIE}.{v}"), v.to_owned()),
    };
    let parts: Vec<&str> = base.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric && (parts.len() == 2 || parts.len() == 3) {
        return Ok(full);
    }
    let all: Vec<&str> = v.split('.').collect();
    if all.len() == 5 && all.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!(
            "'version' = \"{v}\" is for series {}.{}, but this host runs series {SERIE}",
            all[0], all[1]
        ));
    }
    Err(format!(
        "'version' = \"{v}\" is invalid: expected x.y, x.y.z or {SERIE}.x.y[.z]"
    ))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Typed access to a manifest table, with errors naming the key and its line.
struct Fields<'a> {
    file: &'a Path,
    text: &'a str,
    table: &'a Table,
}

impl Fields<'_> {
    fn line(&self, key: &str) -> Option<usize> {
        let mut offset = 0;
        for line in self.text.split_inclusive('\n') {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix(key) {
                let rest = rest.trim_start();
                if rest.starts_with('=') || (key == "cron" && t.starts_with("[[cron")) {
                    return Some(line_of(self.text, offset));
                }
            }
            if key == "cron" && t.starts_with("[[cron]]") {
                return Some(line_of(self.text, offset));
            }
            offset += line.len();
        }
        None
    }

    fn at(&self, key: &str) -> String {
        match self.line(key) {
            Some(l) => format!("{} line {l}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }

    fn error(&self, key: Option<&str>, fault: &str) -> ManifestError {
        ManifestError {
            file: self.file.to_owned(),
            line: key.and_then(|k| self.line(k)),
            fault: fault.to_owned(),
        }
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> ManifestError {
        self.error(
            Some(key),
            &format!("'{key}' must be {expected}, found {}", found.type_str()),
        )
    }

    fn string(&self, key: &str) -> Result<Option<String>, ManifestError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ManifestError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "a boolean", v)),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ManifestError> {
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong(key, "a list of strings", other)),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "a list of strings", v)),
        }
    }

    fn crons(&self) -> Result<Vec<CronSpec>, ManifestError> {
        let list = match self.table.get("cron") {
            None => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(v) => return Err(self.wrong("cron", "an array of tables ([[cron]])", v)),
        };
        let mut crons = Vec::new();
        for item in list {
            let Value::Table(t) = item else {
                return Err(self.wrong("cron", "an array of tables ([[cron]])", item));
            };
            let sub = Fields {
                file: self.file,
                text: self.text,
                table: t,
            };
            let need = |k: &str| -> Result<String, ManifestError> {
                sub.string(k)?.ok_or_else(|| {
                    self.error(Some("cron"), &format!("[[cron]] needs '{k}' (a string)"))
                })
            };
            let interval_type = sub
                .string("interval_type")?
                .unwrap_or_else(|| "days".into());
            if !["minutes", "hours", "days", "weeks", "months"].contains(&interval_type.as_str()) {
                return Err(self.error(
                    Some("cron"),
                    &format!(
                        "[[cron]] 'interval_type' = \"{interval_type}\": expected minutes, hours, days, weeks or months"
                    ),
                ));
            }
            let int = |k: &str, default: i64| -> Result<i64, ManifestError> {
                match t.get(k) {
                    None => Ok(default),
                    Some(Value::Integer(i)) => Ok(*i),
                    Some(v) => Err(self.wrong(k, "an integer", v)),
                }
            };
            crons.push(CronSpec {
                name: need("name")?,
                handler: need("handler")?,
                interval_number: int("interval_number", 1)?,
                interval_type,
                priority: int("priority", 5)?,
                active: sub.boolean("active")?.unwrap_or(true),
            });
        }
        Ok(crons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<(Manifest, Vec<String>), ManifestError> {
        parse(Path::new("/a/shop/__manifest__.toml"), text)
    }

    #[test]
    fn defaults_and_warnings() {
        let (m, w) = p("name = \"Shop\"\ncolor = 3\n").unwrap();
        assert_eq!(m.version, format!("{SERIE}.1.0"));
        assert_eq!(m.license, "LGPL-3");
        assert!(m.installable);
        assert_eq!(m.auto_install, AutoInstall::No);
        assert!(w
            .iter()
            .any(|w| w.contains("unknown key 'color'") && w.contains("line 2")));
        assert!(w.iter().any(|w| w.contains("defaulting to LGPL-3")));
    }

    #[test]
    fn errors_name_file_line_and_fault() {
        let e = p("name = \"Shop\"\ndepends = \"base\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/a/shop/__manifest__.toml line 2: 'depends' must be a list of strings, found string"
        );
        let e = p("summary = \"x\"\n").unwrap_err();
        assert!(e
            .to_string()
            .ends_with("missing required key 'name' (a string)"));
        let e = p("license = 'MIT'\nname = = 3\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/a/shop/__manifest__.toml line 2: invalid TOML"),
            "{e}"
        );
    }

    #[test]
    fn versions() {
        assert_eq!(adapt_version("2.1").unwrap(), format!("{SERIE}.2.1"));
        assert_eq!(
            adapt_version(&format!("{SERIE}.3.0.1")).unwrap(),
            format!("{SERIE}.3.0.1")
        );
        assert!(adapt_version("17.0.1.0.0")
            .unwrap_err()
            .contains("series 17.0"));
        assert!(adapt_version("abc").is_err());
    }

    #[test]
    fn auto_install_subset() {
        let (m, _) =
            p("name='x'\ndepends=['base','web']\nauto_install=true\nlicense='MIT'").unwrap();
        assert_eq!(
            m.auto_install,
            AutoInstall::When(vec!["base".into(), "web".into()])
        );
        let e = p("name='x'\ndepends=['base']\nauto_install=['web']").unwrap_err();
        assert!(e.to_string().contains("'auto_install' names 'web'"));
    }

    #[test]
    fn crons() {
        let (m, _) = p("name='x'\nlicense='MIT'\n[[cron]]\nname='Vacuum'\nhandler='base.autovacuum'\ninterval_type='hours'\n").unwrap();
        assert_eq!(m.crons[0].handler, "base.autovacuum");
        assert_eq!(m.crons[0].interval_number, 1);
        let e = p("name='x'\n[[cron]]\nname='V'\n").unwrap_err();
        assert!(e.to_string().contains("[[cron]] needs 'handler'"));
    }
}
