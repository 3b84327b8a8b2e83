//! Installing and upgrading addons in a database (Odoo's `odoo/modules/loading.py`, for SQL
//! data): each addon's `data` files run in dependency order, one transaction per addon, and
//! the addon is recorded in `ir_module_module` (name, state, latest_version) with the default
//! cron jobs of its manifest (`[[cron]]`). A failure rolls that addon back and names the
//! file, the line, the statement and PostgreSQL's message.
//!
//! Upgrading (`-u`) runs the data files again (write them to be re-runnable: `CREATE TABLE IF
//! NOT EXISTS`, `ON CONFLICT DO NOTHING`), sets the new version and adds missing crons.
//! After the explicit addons, `auto_install` addons whose dependencies are all installed are
//! installed too, as Odoo does.

use super::graph;
use super::manifest::{AutoInstall, Manifest};
use super::module::AddonSet;
use crate::sql_db::{Databases, DbError};
use inphms_sdk::abi::SqlValue;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

const TARGET: &str = "inphms.modules.loading";

/// Why installing or upgrading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallError {
    /// The addon being installed.
    pub addon: String,
    /// The data file, when the failure is in one.
    pub file: Option<PathBuf>,
    /// The line of the statement in the file.
    pub line: Option<usize>,
    /// The statement that failed.
    pub statement: Option<String>,
    /// What went wrong (PostgreSQL's message).
    pub message: String,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "addon '{}'", self.addon)?;
        if let Some(file) = &self.file {
            write!(f, ": {}", file.display())?;
            if let Some(line) = self.line {
                write!(f, " line {line}")?;
            }
        }
        if let Some(stmt) = &self.statement {
            let one_line: String = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
            let shown = if one_line.chars().count() > 200 {
                format!("{}...", one_line.chars().take(200).collect::<String>())
            } else {
                one_line
            };
            write!(f, ": statement `{shown}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InstallError {}

/// What [`load_modules`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Addons installed, in order.
    pub installed: Vec<String>,
    /// Addons upgraded, in order.
    pub upgraded: Vec<String>,
}

/// Whether the database holds the `base` tables (`ir_module_module`).
pub async fn is_initialized(dbs: &Databases, db: &str) -> Result<bool, DbError> {
    let mut cr = dbs.cursor(db, true);
    let rows = cr
        .execute("SELECT to_regclass('ir_module_module') IS NOT NULL", &[])
        .await?;
    let _ = cr.rollback().await;
    Ok(rows.rows.first().and_then(|r| r.first()) == Some(&SqlValue::Bool(true)))
}

/// The addons installed in `db`, with their version.
pub async fn installed_addons(
    dbs: &Databases,
    db: &str,
) -> Result<BTreeMap<String, String>, DbError> {
    let mut cr = dbs.cursor(db, true);
    let rows = cr
        .execute(
            "SELECT name, coalesce(latest_version, '') FROM ir_module_module WHERE state = 'installed' ORDER BY name",
            &[],
        )
        .await;
    let _ = cr.rollback().await;
    let mut out = BTreeMap::new();
    for row in rows?.rows.iter() {
        if let (Some(SqlValue::Text(n)), Some(SqlValue::Text(v))) = (row.first(), row.get(1)) {
            out.insert(n.to_string(), v.to_string());
        }
    }
    Ok(out)
}

/// The database's `database.secret` (Odoo's `ir.config_parameter`, made at install): the
/// key of the CSRF tokens of requests bound to the database. `None` when not set.
pub async fn database_secret(dbs: &Databases, db: &str) -> Result<Option<String>, DbError> {
    let mut cr = dbs.cursor(db, true);
    let rows = cr
        .execute(
            "SELECT value FROM ir_config_parameter WHERE key = 'database.secret'",
            &[],
        )
        .await;
    let _ = cr.rollback().await;
    Ok(match rows?.rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Text(v)) if !v.is_empty() => Some(v.to_string()),
        _ => None,
    })
}

/// Installs `install` (and their dependencies) and upgrades `update` in `db`; `all` means
/// every installable addon (install) or every installed one (update).
pub async fn load_modules(
    dbs: &Databases,
    db: &str,
    set: &AddonSet,
    install: &[String],
    update: &[String],
) -> Result<Summary, InstallError> {
    let general = |message: String| InstallError {
        addon: install.first().cloned().unwrap_or_else(|| "base".into()),
        file: None,
        line: None,
        statement: None,
        message,
    };
    let mut installed = if is_initialized(dbs, db)
        .await
        .map_err(|e| general(e.to_string()))?
    {
        installed_addons(dbs, db)
            .await
            .map_err(|e| general(e.to_string()))?
    } else {
        BTreeMap::new()
    };
    let all_good = || graph::order_all(set).0;
    let wanted: Vec<String> = if install.iter().any(|n| n == "all") {
        all_good()
    } else {
        install.to_vec()
    };
    let mut upgrades: BTreeSet<String> = if update.iter().any(|n| n == "all") {
        installed.keys().cloned().collect()
    } else {
        update
            .iter()
            .filter(|n| installed.contains_key(*n))
            .cloned()
            .collect()
    };
    for n in update
        .iter()
        .filter(|n| *n != "all" && !installed.contains_key(*n))
    {
        tracing::warn!(target: TARGET, "addon '{n}' is not installed in {db}: not upgraded");
    }
    let mut summary = Summary::default();
    let mut roots: Vec<String> = wanted.clone();
    roots.extend(upgrades.iter().cloned());
    loop {
        let order = graph::order(set, &roots).map_err(|e| InstallError {
            addon: e.addon.clone(),
            file: None,
            line: None,
            statement: None,
            message: e.message,
        })?;
        for name in &order {
            let manifest = set
                .get(name)
                .and_then(|a| a.manifest.as_ref().ok())
                .expect("ordered addons have a manifest")
                .clone();
            let dir = set.get(name).expect("ordered").dir.clone();
            if !installed.contains_key(name) {
                install_one(dbs, db, name, &dir, &manifest, false).await?;
                installed.insert(name.clone(), manifest.version.clone());
                summary.installed.push(name.clone());
            } else if upgrades.remove(name) {
                install_one(dbs, db, name, &dir, &manifest, true).await?;
                installed.insert(name.clone(), manifest.version.clone());
                summary.upgraded.push(name.clone());
            }
        }
        // auto_install: addons whose (listed) dependencies are all installed.
        let (all, _) = graph::order_all(set);
        let auto: Vec<String> = all
            .into_iter()
            .filter(|n| !installed.contains_key(n))
            .filter(|n| {
                let Some(Ok(m)) = set.get(n).map(|a| &a.manifest) else {
                    return false;
                };
                match &m.auto_install {
                    AutoInstall::No => false,
                    AutoInstall::When(deps) => {
                        m.depends.iter().all(|d| installed.contains_key(d))
                            && deps.iter().all(|d| installed.contains_key(d))
                    }
                }
            })
            .collect();
        if auto.is_empty() {
            break;
        }
        roots = auto;
    }
    Ok(summary)
}

/// Runs the data files of one addon and records it, in one transaction.
async fn install_one(
    dbs: &Databases,
    db: &str,
    name: &str,
    dir: &std::path::Path,
    manifest: &Manifest,
    upgrade: bool,
) -> Result<(), InstallError> {
    let err = |file: Option<PathBuf>, line: Option<usize>, statement: Option<String>, e: String| {
        InstallError {
            addon: name.to_owned(),
            file,
            line,
            statement,
            message: e,
        }
    };
    tracing::info!(target: TARGET, "{} addon {name} in {db}", if upgrade { "upgrading" } else { "installing" });
    let mut cr = dbs.cursor(db, false);
    cr.batch("SET LOCAL lock_timeout = '15s'")
        .await
        .map_err(|e| err(None, None, None, e.to_string()))?;
    for rel in &manifest.data {
        let path = dir.join(rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let _ = cr.rollback().await;
                return Err(err(Some(path), None, None, format!("cannot be read: {e}")));
            }
        };
        if !rel.ends_with(".sql") {
            let _ = cr.rollback().await;
            return Err(err(
                Some(path),
                None,
                None,
                "only .sql data files are supported".into(),
            ));
        }
        for (line, stmt) in split_sql(&text) {
            if let Err(e) = cr.batch(&stmt).await {
                let _ = cr.rollback().await;
                let message = match &e {
                    DbError::Sql {
                        message, detail, ..
                    } => match detail {
                        Some(d) => format!("{message} ({})", d.replace('\n', "; ")),
                        None => message.clone(),
                    },
                    other => other.to_string(),
                };
                let e = err(Some(path.clone()), Some(line), Some(stmt), message);
                tracing::error!(target: TARGET, "{e}");
                return Err(e);
            }
        }
    }
    let record = async {
        cr.execute(
            "INSERT INTO ir_module_module (name, state, latest_version, write_date) \
             VALUES ($1, 'installed', $2, now() AT TIME ZONE 'UTC') \
             ON CONFLICT (name) DO UPDATE SET state = 'installed', \
             latest_version = EXCLUDED.latest_version, write_date = EXCLUDED.write_date",
            &[
                SqlValue::Text(name.into()),
                SqlValue::Text(manifest.version.as_str().into()),
            ],
        )
        .await?;
        for cron in &manifest.crons {
            cr.execute(
                "INSERT INTO ir_cron (cron_name, handler, module, interval_number, interval_type, priority, active, nextcall) \
                 SELECT $1::varchar, $2::varchar, $3::varchar, $4::int, $5::varchar, $6::int, $7::bool, \
                 now() AT TIME ZONE 'UTC' \
                 WHERE NOT EXISTS (SELECT 1 FROM ir_cron WHERE cron_name = $1::varchar AND module = $3::varchar)",
                &[
                    SqlValue::Text(cron.name.as_str().into()),
                    SqlValue::Text(cron.handler.as_str().into()),
                    SqlValue::Text(name.into()),
                    SqlValue::Int(cron.interval_number),
                    SqlValue::Text(cron.interval_type.as_str().into()),
                    SqlValue::Int(cron.priority),
                    SqlValue::Bool(cron.active),
                ],
            )
            .await?;
        }
        Ok::<(), DbError>(())
    };
    if let Err(e) = record.await {
        let _ = cr.rollback().await;
        return Err(err(
            None,
            None,
            None,
            format!("cannot record the addon: {e}"),
        ));
    }
    cr.commit()
        .await
        .map_err(|e| err(None, None, None, format!("commit failed: {e}")))
}

/// Splits SQL text into statements, with the line each starts on: `;` ends a statement
/// outside quotes (`'...'`, `"..."`, `$tag$...$tag$`) and comments (`--`, `/* */`).
pub fn split_sql(text: &str) -> Vec<(usize, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut line = 1;
    let mut start_line = None;
    let push = |out: &mut Vec<(usize, String)>, s: &str, l: Option<usize>| {
        let t = s.trim();
        let meaningful = t.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with("--")
        });
        if meaningful {
            out.push((l.unwrap_or(1), t.to_owned()));
        }
    };
    while i < b.len() {
        let c = b[i];
        if start_line.is_none() && !c.is_ascii_whitespace() {
            if c == b'-' && b.get(i + 1) == Some(&b'-') {
                // a comment before the statement: skip to the end of the line
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            start_line = Some(line);
            start = i;
        }
        match c {
            b'\n' => line += 1,
            b'\'' | b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                let tag_end = b[i + 1..].iter().position(|x| *x == b'$');
                if let Some(len) = tag_end {
                    let tag = &b[i..i + len + 2];
                    let valid = tag[1..tag.len() - 1]
                        .iter()
                        .all(|x| x.is_ascii_alphanumeric() || *x == b'_')
                        && !tag.get(1).is_some_and(u8::is_ascii_digit);
                    if valid {
                        let body_start = i + tag.len();
                        if let Some(end) =
                            text[body_start..].find(std::str::from_utf8(tag).unwrap_or("$$"))
                        {
                            line += text[i..body_start + end].matches('\n').count();
                            i = body_start + end + tag.len();
                            continue;
                        }
                    }
                }
            }
            b';' => {
                push(&mut out, &text[start..i], start_line);
                start = i + 1;
                start_line = None;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        push(&mut out, &text[start..], start_line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_with_lines() {
        let sql = "-- header\nCREATE TABLE a (x text DEFAULT ';');\n\nINSERT INTO a VALUES ('it''s; ok');\n/* c; */ SELECT $$ ; $$, $f$;$f$;\nDO $body$ BEGIN PERFORM 1; END $body$;\n-- trailing\n";
        let parts = split_sql(sql);
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert_eq!(
            parts[0],
            (2, "CREATE TABLE a (x text DEFAULT ';')".to_owned())
        );
        assert_eq!(parts[1].0, 4);
        assert_eq!(parts[2].0, 5);
        assert!(parts[3].1.starts_with("DO $body$"));
    }

    #[test]
    fn error_names_file_line_statement_and_message() {
        let e = InstallError {
            addon: "shop".into(),
            file: Some("/a/shop/data/x.sql".into()),
            line: Some(3),
            statement: Some("INSERT INTO\n  nope VALUES (1)".into()),
            message: "relation \"nope\" does not exist".into(),
        };
        assert_eq!(
            e.to_string(),
            "addon 'shop': /a/shop/data/x.sql line 3: statement `INSERT INTO nope VALUES (1)`: relation \"nope\" does not exist"
        );
    }
}
