//! Creating, duplicating, dropping and renaming databases (Odoo's `exp_create_database`,
//! `exp_duplicate_database`, `exp_drop`, `exp_rename`), with their filestore
//! (`<data_dir>/filestore/<db>`). Other connections to a database are ended first, as
//! Odoo's `_drop_conn` does, and this host's pools and registry of it are closed. Nothing
//! is left half-created: a creation that fails drops what it made.

use super::{exception, Manager, Result};
use crate::modules::{self, loading, module};
use crate::service::rpc::fault::RpcFault;
use crate::sql_db::{self, DbError};
use inphms_sdk::abi::SqlValue;
use std::path::{Path, PathBuf};

const TARGET: &str = "inphms.service.db";

/// Odoo's `DBNAME_PATTERN` (`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`), also what keeps a name safe as
/// a folder of the filestore.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RpcFault::UserError(format!(
            "Invalid database name {name:?}: use only letters, numbers, underscores, hyphens or dots (starting with a letter or a number, 2 to 63 characters)"
        )))
    }
}

/// A name quoted as an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The message of a PostgreSQL error.
fn pg_message(e: &tokio_postgres::Error) -> String {
    DbError::from_pg(e).to_string()
}

/// One connection to the `postgres` database, outside the pools, for the statements that
/// cannot run in a transaction.
pub struct Admin {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<()>,
}

impl Admin {
    pub async fn connect(m: &Manager) -> Result<Admin> {
        let (client, conn) = sql_db::connect_unpooled(m.databases.pools().info(), "postgres")
            .await
            .map_err(|e| exception(format!("cannot connect to PostgreSQL: {e}")))?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Admin { client, driver })
    }

    /// Runs one statement; the error is PostgreSQL's message.
    pub async fn exec(&self, sql: &str) -> std::result::Result<(), String> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| pg_message(&e))
    }

    /// Whether the database `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        let rows = self
            .client
            .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| exception(pg_message(&e)))?;
        Ok(!rows.is_empty())
    }

    /// Ends the other connections to `name` (Odoo's `_drop_conn`; failures ignored as
    /// there).
    pub async fn drop_connections(&self, name: &str) {
        let _ = self
            .client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await;
    }

    /// `sql` on the database `name` after ending its connections, tried again (3 times in
    /// all) while PostgreSQL says the database is still in use.
    pub async fn exec_alone(&self, name: &str, sql: &str) -> std::result::Result<(), String> {
        let mut tries = 0;
        loop {
            self.drop_connections(name).await;
            match self.client.batch_execute(sql).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if tries < 2
                        && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) =>
                {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(pg_message(&e)),
            }
        }
    }

    pub async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }
}

impl Manager {
    /// Where the files of the database `name` are kept (Odoo's `config.filestore`).
    pub fn filestore(&self, name: &str) -> PathBuf {
        self.config.data_dir.join("filestore").join(name)
    }

    /// Forgets what this host holds of `name`: its registry, its pools, the list of
    /// databases.
    pub(super) fn close_db(&self, name: &str) {
        self.registries.forget(name);
        self.databases.pools().close_db(name);
        self.databases.list().invalidate();
    }

    /// Odoo's `_create_empty_database`: `DatabaseExists` when it does.
    pub(super) async fn create_empty(&self, admin: &Admin, name: &str) -> Result<()> {
        if admin.exists(name).await? {
            return Err(RpcFault::Application {
                name: "odoo.service.db.DatabaseExists".into(),
                message: format!("database {name:?} already exists!"),
            });
        }
        let template = &self.config.db_template;
        let collate = if template == "template0" {
            "LC_COLLATE 'C'"
        } else {
            ""
        };
        admin
            .exec(&format!(
                "CREATE DATABASE {} ENCODING 'unicode' {collate} TEMPLATE {}",
                ident(name),
                ident(template)
            ))
            .await
            .map_err(|e| exception(format!("Couldn't create database {name}: {e}")))?;
        self.databases.list().invalidate();
        Ok(())
    }

    /// Drops `name` after a failed creation or restore, logging (not hiding) a failure.
    pub(super) async fn drop_half_made(&self, admin: &Admin, name: &str) {
        self.close_db(name);
        if let Err(e) = admin
            .exec_alone(name, &format!("DROP DATABASE IF EXISTS {}", ident(name)))
            .await
        {
            tracing::error!(target: TARGET, "cannot drop the half-made database {name}: {e}");
        }
        let _ = std::fs::remove_dir_all(self.filestore(name));
        self.databases.list().invalidate();
    }

    /// Odoo's `exp_create_database`: a new database with `base` installed, its admin user's
    /// login and password set, and the language, country and phone kept as parameters.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_database(
        &self,
        name: &str,
        _demo: bool,
        lang: Option<&str>,
        user_password: &str,
        login: &str,
        country_code: Option<&str>,
        phone: Option<&str>,
    ) -> Result<()> {
        check_name(name)?;
        if login.trim().is_empty() {
            return Err(RpcFault::UserError(
                "the admin login may not be empty".into(),
            ));
        }
        tracing::info!(target: TARGET, "Create database `{name}`.");
        let admin = Admin::connect(self).await?;
        let made = self.create_empty(&admin, name).await;
        let result = match made {
            Ok(()) => {
                let init = self
                    .initialize(name, lang, user_password, login, country_code, phone)
                    .await;
                if let Err(e) = &init {
                    tracing::error!(target: TARGET, "database {name}: creation failed, dropped: {e:?}");
                    self.drop_half_made(&admin, name).await;
                }
                init
            }
            Err(e) => Err(e),
        };
        admin.close().await;
        result
    }

    /// Odoo's `_initialize_db`: installs `base` as `-d DB -i base` does, then the admin.
    async fn initialize(
        &self,
        name: &str,
        lang: Option<&str>,
        user_password: &str,
        login: &str,
        country_code: Option<&str>,
        phone: Option<&str>,
    ) -> Result<()> {
        let set = module::discover(&modules::addons_paths(&self.config.addons_path));
        loading::load_modules(&self.databases, name, &set, &["base".to_owned()], &[])
            .await
            .map_err(|e| exception(format!("cannot install base: {e}")))?;
        let mut cr = self.databases.cursor(name, false);
        let result = async {
            let hash = base_identity::crypt::hash(user_password, base_identity::crypt::DEFAULT_ROUNDS);
            cr.execute(
                "UPDATE res_users SET login = $1, password = $2, write_date = now() AT TIME ZONE 'UTC' WHERE id = 2",
                &[SqlValue::Text(login.into()), SqlValue::Text(hash.into())],
            )
            .await?;
            for (key, value) in [
                ("base.lang", lang),
                ("base.country_code", country_code),
                ("base.phone", phone),
            ] {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    cr.execute(
                        "INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2) \
                         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                        &[SqlValue::Text(key.into()), SqlValue::Text(v.into())],
                    )
                    .await?;
                }
            }
            cr.commit().await
        }
        .await;
        if result.is_err() {
            let _ = cr.rollback().await;
        }
        drop(cr);
        result.map_err(|e| exception(format!("cannot set up the admin user: {e}")))
    }

    /// Odoo's `exp_duplicate_database`: `new` made from `old` as a template (after ending
    /// `old`'s connections), with a new `database.uuid` and `database.secret`, its filestore
    /// copied; `neutralize` turns its cron jobs off.
    pub async fn duplicate_database(&self, old: &str, new: &str, neutralize: bool) -> Result<()> {
        check_name(new)?;
        tracing::info!(target: TARGET, "Duplicate database `{old}` to `{new}`.");
        let admin = Admin::connect(self).await?;
        let result = async {
            if !admin.exists(old).await? {
                return Err(exception(format!(
                    "Couldn't duplicate database {old}: it does not exist"
                )));
            }
            if admin.exists(new).await? {
                return Err(RpcFault::Application {
                    name: "odoo.service.db.DatabaseExists".into(),
                    message: format!("database {new:?} already exists!"),
                });
            }
            self.close_db(old);
            admin
                .exec_alone(
                    old,
                    &format!(
                        "CREATE DATABASE {} ENCODING 'unicode' TEMPLATE {}",
                        ident(new),
                        ident(old)
                    ),
                )
                .await
                .map_err(|e| {
                    exception(format!("Couldn't duplicate database {old} to {new}: {e}"))
                })?;
            self.databases.list().invalidate();
            if let Err(e) = self.after_copy(new, neutralize).await {
                self.drop_half_made(&admin, new).await;
                return Err(e);
            }
            let (from, to) = (self.filestore(old), self.filestore(new));
            if from.exists() && !to.exists() {
                if let Err(e) = copy_tree(&from, &to) {
                    self.drop_half_made(&admin, new).await;
                    return Err(exception(format!(
                        "cannot copy the filestore {}: {e}",
                        from.display()
                    )));
                }
            }
            Ok(())
        }
        .await;
        admin.close().await;
        result
    }

    /// What a copy of a database needs (Odoo's `ir.config_parameter.init(force=True)`): a
    /// new uuid and secret; `neutralize`: its cron jobs off.
    pub(super) async fn after_copy(&self, name: &str, neutralize: bool) -> Result<()> {
        let mut cr = self.databases.cursor(name, false);
        let result = async {
            cr.execute(
                "UPDATE ir_config_parameter SET value = gen_random_uuid()::text \
                 WHERE key IN ('database.uuid', 'database.secret')",
                &[],
            )
            .await?;
            if neutralize {
                cr.execute("UPDATE ir_cron SET active = false", &[]).await?;
                cr.execute(
                    "INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'true') \
                     ON CONFLICT (key) DO UPDATE SET value = 'true'",
                    &[],
                )
                .await?;
            }
            cr.commit().await
        }
        .await;
        if result.is_err() {
            let _ = cr.rollback().await;
        }
        drop(cr);
        if result.is_ok() {
            self.signal_changed(name).await;
        }
        self.databases.pools().close_db(name);
        result.map_err(|e| {
            exception(format!(
                "cannot renew the copy's identifiers in {name}: {e}"
            ))
        })
    }

    /// Bumps the registry signaling of `name` (Odoo's `signal_changes`), so that every
    /// host holding a registry of that name (a database dropped and made again, restored,
    /// renamed) builds it again rather than serve the old one; a failure is logged.
    pub(super) async fn signal_changed(&self, name: &str) {
        if let Err(e) = modules::signaling::signal_registry_change(&self.databases, name).await {
            tracing::warn!(target: TARGET, "database {name}: registry signaling not bumped: {e}");
        }
    }

    /// Turns the cron jobs of `name` off (Odoo's `neutralize_database`, for what exists here).
    pub async fn neutralize(&self, name: &str) -> Result<()> {
        self.after_copy(name, true).await
    }

    /// Odoo's `exp_drop`: `false` when `name` is not one of the databases listed.
    pub async fn drop(&self, name: &str) -> Result<bool> {
        let listed = crate::sql_db::dblist::list_dbs(&self.databases, &self.config, true)
            .await
            .map_err(|e| exception(e.to_string()))?;
        if !listed.iter().any(|n| n == name) {
            return Ok(false);
        }
        self.close_db(name);
        let admin = Admin::connect(self).await?;
        let result = admin
            .exec_alone(name, &format!("DROP DATABASE {}", ident(name)))
            .await;
        admin.close().await;
        self.databases.list().invalidate();
        if let Err(e) = result {
            tracing::info!(target: TARGET, "DROP DB: {name} failed: {e}");
            return Err(exception(format!("Couldn't drop database {name}: {e}")));
        }
        tracing::info!(target: TARGET, "DROP DB: {name}");
        let fs = self.filestore(name);
        if fs.exists() {
            std::fs::remove_dir_all(&fs).map_err(|e| {
                exception(format!(
                    "database {name} dropped, but not its filestore {}: {e}",
                    fs.display()
                ))
            })?;
        }
        Ok(true)
    }

    /// Odoo's `exp_rename`, with the filestore.
    pub async fn rename(&self, old: &str, new: &str) -> Result<()> {
        check_name(new)?;
        self.close_db(old);
        let admin = Admin::connect(self).await?;
        let result = admin
            .exec_alone(
                old,
                &format!("ALTER DATABASE {} RENAME TO {}", ident(old), ident(new)),
            )
            .await;
        admin.close().await;
        self.databases.list().invalidate();
        if let Err(e) = result {
            tracing::info!(target: TARGET, "RENAME DB: {old} -> {new} failed: {e}");
            return Err(exception(format!(
                "Couldn't rename database {old} to {new}: {e}"
            )));
        }
        tracing::info!(target: TARGET, "RENAME DB: {old} -> {new}");
        self.signal_changed(new).await;
        self.databases.pools().close_db(new);
        let (from, to) = (self.filestore(old), self.filestore(new));
        if from.exists() && !to.exists() {
            std::fs::rename(&from, &to).map_err(|e| {
                exception(format!(
                    "database renamed, but not its filestore {}: {e}",
                    from.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// Copies the folder `from` to `to` (which must not exist).
pub(super) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
