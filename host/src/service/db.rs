//! Databases at start-up (Odoo's `odoo/service/db.py`): creating a database, and
//! [`init_databases`] for `-d`, `-i` and `-u`. Listing and choosing databases is
//! `sql_db::dblist`.

use crate::config::Config;
use crate::error::Error;
use crate::modules::loading;
use crate::modules::module::AddonSet;
use crate::modules::registry::{self, Registries};
use crate::sql_db::dblist::db_names;
use crate::sql_db::{self, Databases, DbError};
use inphms_sdk::abi::HostApiRef;
use std::sync::Arc;

const TARGET: &str = "inphms.service.db";

/// Whether the database `name` exists.
pub async fn exists(dbs: &Databases, name: &str) -> Result<bool, DbError> {
    let mut cr = dbs.cursor("postgres", true);
    let rows = cr
        .execute(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[inphms_sdk::abi::SqlValue::Text(name.into())],
        )
        .await?;
    let _ = cr.rollback().await;
    Ok(!rows.rows.is_empty())
}

/// Creates the database `name` from `db_template` when it does not exist (Odoo's
/// `_create_empty_database`); whether it was created.
pub async fn create_empty_database(
    dbs: &Databases,
    config: &Config,
    name: &str,
) -> Result<bool, DbError> {
    if exists(dbs, name).await? {
        return Ok(false);
    }
    let (client, conn) = sql_db::connect_unpooled(dbs.pools().info(), "postgres").await?;
    let driver = tokio::spawn(conn);
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let sql = format!(
        "CREATE DATABASE {} ENCODING 'unicode' LC_COLLATE 'C' TEMPLATE {}",
        quote(name),
        quote(&config.db_template)
    );
    let result = client.batch_execute(&sql).await;
    drop(client);
    let _ = driver.await;
    match result {
        Ok(()) => {
            tracing::info!(target: TARGET, "Create database `{name}`.");
            Ok(true)
        }
        // Created meanwhile by another process.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
            Ok(false)
        }
        Err(e) => Err(DbError::from_pg(&e)),
    }
}

/// Sets up everything database-related at start-up: the registries (on the server-wide
/// addons `server_wide`, handing `host` to the addons loaded for databases), then
/// [`init_databases`]. An error means a `-d` database failed to initialise (already logged).
pub async fn setup(
    registries: &Registries,
    config: &Arc<Config>,
    set: &AddonSet,
    server_wide: Vec<Arc<crate::modules::LoadedAddon>>,
    host: HostApiRef,
) -> Result<(), Error> {
    registries.setup(Arc::clone(config), server_wide, host);
    init_databases(registries, config, set).await
}

/// Initialises the databases of `-d` before serving (Odoo's `preload_registries`): creates a
/// missing one and installs `base` there, installs `-i` and upgrades `-u` addons, then loads
/// its registry. Stops at the first database that fails, with the error.
pub async fn init_databases(
    registries: &Registries,
    config: &Config,
    set: &AddonSet,
) -> Result<(), Error> {
    let names = db_names(config);
    if names.is_empty() {
        if !config.init.is_empty() || !config.update.is_empty() {
            tracing::warn!(target: TARGET, "-i and -u need a database (-d): ignored");
        }
        return Ok(());
    }
    for db in names {
        init_database(registries, config, set, &db)
            .await
            .map_err(|e| {
                let e = Error::InitDatabase {
                    db: db.clone(),
                    source: Box::new(e),
                };
                tracing::error!(target: TARGET, "{e}");
                e
            })?;
    }
    Ok(())
}

async fn init_database(
    registries: &Registries,
    config: &Config,
    set: &AddonSet,
    db: &str,
) -> Result<(), Error> {
    let dbs = registries.databases();
    let mut install: Vec<String> = config.init.clone();
    let created = create_empty_database(dbs, config, db)
        .await
        .map_err(|e| Error::database(db, e))?;
    if created && !install.iter().any(|n| n == "base") {
        install.push("base".into());
    }
    let initialized = loading::is_initialized(dbs, db)
        .await
        .map_err(|e| Error::database(db, e))?;
    // Installing anything installs base first (every addon depends on it).
    if !initialized && install.is_empty() {
        return Err(Error::NotInitialized { db: db.to_owned() });
    }
    if !install.is_empty() || !config.update.is_empty() {
        let summary = loading::load_modules(dbs, db, set, &install, &config.update)
            .await
            .map_err(|e| Error::database(db, e))?;
        if !summary.installed.is_empty() {
            tracing::info!(target: TARGET, "database {db}: installed {}", summary.installed.join(", "));
        }
        if !summary.upgraded.is_empty() {
            tracing::info!(target: TARGET, "database {db}: upgraded {}", summary.upgraded.join(", "));
        }
        // The other hosts serving the database build its registry again.
        match crate::modules::signaling::signal_registry_change(dbs, db).await {
            Ok(n) => {
                tracing::info!(target: TARGET, "database {db}: registry change signaled (base_registry_signaling {n})")
            }
            Err(e) => {
                tracing::warn!(target: TARGET, "database {db}: cannot signal the registry change to other hosts: {e}")
            }
        }
    }
    let registry = registries.renew(db).await?;
    startup_warnings(dbs, set, &registry).await;
    Ok(())
}

/// Runs the `startup_warnings` statements of the addons installed in the database (read
/// only) and logs each row's first column as a warning (`base`: an `admin` still on its
/// default password). A statement that fails is logged and skipped.
async fn startup_warnings(dbs: &Databases, set: &AddonSet, registry: &registry::Registry) {
    let db = registry.db_name.as_str();
    for name in registry.installed.keys() {
        let Some(Ok(manifest)) = set.get(name).map(|a| &a.manifest) else {
            continue;
        };
        for query in &manifest.startup_warnings {
            let mut cr = dbs.cursor(db, true);
            match cr.execute(query, &[]).await {
                Ok(rows) => {
                    for row in rows.rows.iter() {
                        if let Some(inphms_sdk::abi::SqlValue::Text(text)) = row.first() {
                            tracing::warn!(target: TARGET, "database {db}: {text}");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(target: TARGET, "database {db}: start-up check of addon {name} failed: {e}");
                }
            }
            let _ = cr.rollback().await;
        }
        if let Some(query) = &manifest.default_password_query {
            default_passwords(dbs, db, name, query).await;
        }
    }
}

/// Runs an addon's `default_password_query` (read only): each row is (warning, stored
/// hash, default password), the warning logged when the default password verifies against
/// the hash (whatever its salt and rounds; the check runs off the runtime's threads).
async fn default_passwords(dbs: &Databases, db: &str, addon: &str, query: &str) {
    use inphms_sdk::abi::SqlValue;
    let mut cr = dbs.cursor(db, true);
    let rows = cr.execute(query, &[]).await;
    let _ = cr.rollback().await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(target: TARGET, "database {db}: default password check of addon {addon} failed: {e}");
            return;
        }
    };
    for row in rows.rows.iter() {
        let (
            Some(SqlValue::Text(warning)),
            Some(SqlValue::Text(stored)),
            Some(SqlValue::Text(default)),
        ) = (row.first(), row.get(1), row.get(2))
        else {
            tracing::error!(target: TARGET, "database {db}: default password check of addon {addon}: expected rows of (warning, hash, password) as text");
            continue;
        };
        let (stored, default) = (stored.to_string(), default.to_string());
        let rounds = base_identity::crypt::DEFAULT_ROUNDS;
        let verified = tokio::task::spawn_blocking(move || {
            base_identity::crypt::verify(&default, &stored, rounds).valid
        })
        .await
        .unwrap_or(false);
        if verified {
            tracing::warn!(target: TARGET, "database {db}: {warning}");
        }
    }
}
