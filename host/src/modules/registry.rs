//! [`Registry`] (Odoo's `odoo/modules/registry.py`): what the server knows of one database:
//! the addons installed there, the addons loaded for it beyond the server-wide ones, and a
//! `ready` flag that the cron workers check. It holds data only: the route table of a
//! database (its `Application`) is derived and cached by `http` from [`Registry::addons`].
//!
//! Registries live in an LRU cache (the `lru` crate) sized as Odoo sizes it:
//! `registry_lru_size`, else `limit_memory_soft / 15 MiB`. One is built lazily on the first
//! request for its database, or at start for `-d`. Addons installed in a database but not
//! server-wide are loaded once per process, through the same loader as the server-wide ones
//! ([`crate::modules::load_addons_reusing`]), the first time a registry needs them.

use super::module::{self, AddonSet};
use super::{loading, signaling, LoadedAddon};
use crate::config::Config;
use crate::error::Error;
use crate::sql_db::Databases;
use inphms_sdk::abi::HostApiRef;
use lru::LruCache;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

const TARGET: &str = "inphms.modules.registry";

/// The model registry of one database.
pub struct Registry {
    /// The database.
    pub db_name: String,
    /// The addons installed there, with their version.
    pub installed: BTreeMap<String, String>,
    /// The installed addons loaded for this database that are not server-wide.
    pub extra_addons: Vec<Arc<LoadedAddon>>,
    /// The database's `database.secret`, which keys the CSRF tokens of its requests (Odoo);
    /// `None` when unset (the data dir's secret is used).
    pub secret: Option<String>,
    ready: AtomicBool,
    /// The signaling sequences read before the registry was built (see [`signaling`]).
    sequences: signaling::Sequences,
    /// When it was built; `next_check` counts milliseconds from it.
    built_at: Instant,
    /// When the sequences are read again, in milliseconds from `built_at`.
    next_check: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("db_name", &self.db_name)
            .field("installed", &self.installed.keys().collect::<Vec<_>>())
            .field("ready", &self.ready())
            .finish()
    }
}

/// What registries need from the server: the configuration, the server-wide addons, and
/// the host's services handed to the addons loaded for a database.
struct Context {
    config: Arc<Config>,
    server_wide: Vec<Arc<LoadedAddon>>,
    host: HostApiRef,
}

/// The registries of one host (Odoo's `Registry.registries`, its LRU, and `Registry._lock`),
/// with what they are built from and the addons loaded for databases: owned by the
/// composition root and shared by `Arc`.
pub struct Registries {
    databases: Arc<Databases>,
    context: RwLock<Option<Context>>,
    cache: Mutex<LruCache<String, Arc<Registry>>>,
    /// The addons loaded for databases (never unloaded), by name.
    extra: Mutex<Vec<Arc<LoadedAddon>>>,
    /// One registry load at a time (Odoo's `Registry._lock`).
    loading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Registries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registries")
            .field("set_up", &self.context().is_ok())
            .finish()
    }
}

/// Odoo's registry LRU size: `registry_lru_size` when set, else `limit_memory_soft / 15 MiB`
/// (at least 1).
pub fn lru_size(config: &Config) -> usize {
    if config.registry_lru_size > 0 {
        return config.registry_lru_size;
    }
    ((config.limit_memory_soft / (15 * 1024 * 1024)) as usize).max(1)
}

type Setup = (Arc<Config>, Vec<Arc<LoadedAddon>>, HostApiRef);

impl Registries {
    /// No registry yet, on the databases `databases`; [`Registries::setup`] says what
    /// registries are built from.
    pub fn new(databases: Arc<Databases>) -> Arc<Registries> {
        Arc::new(Registries {
            databases,
            context: RwLock::new(None),
            cache: Mutex::new(LruCache::new(NonZeroUsize::new(136).expect("nonzero"))),
            extra: Mutex::new(Vec::new()),
            loading: tokio::sync::Mutex::const_new(()),
        })
    }

    /// The databases registries read.
    pub fn databases(&self) -> &Arc<Databases> {
        &self.databases
    }

    /// Sets what registries are built from: called at start, and again when the server-wide
    /// addons change (a new generation). `host` is handed to the addons loaded for databases.
    pub fn setup(&self, config: Arc<Config>, server_wide: Vec<Arc<LoadedAddon>>, host: HostApiRef) {
        let size = NonZeroUsize::new(lru_size(&config)).expect("at least 1");
        self.cache().resize(size);
        *self.context.write().unwrap_or_else(|e| e.into_inner()) = Some(Context {
            config,
            server_wide,
            host,
        });
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<Registry>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn context(&self) -> Result<Setup, Error> {
        let ctx = self.context.read().unwrap_or_else(|e| e.into_inner());
        let ctx = ctx.as_ref().ok_or(Error::NotSetUp("the registries"))?;
        Ok((Arc::clone(&ctx.config), ctx.server_wide.clone(), ctx.host))
    }

    /// The configuration registries are built with, once set up.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.context().ok().map(|(c, _, _)| c)
    }

    /// The server-wide addons registries are built on.
    pub fn server_wide(&self) -> Vec<Arc<LoadedAddon>> {
        self.context().map(|(_, s, _)| s).unwrap_or_default()
    }

    /// The registries in the cache that are ready, most recently used first.
    pub fn ready_registries(&self) -> Vec<Arc<Registry>> {
        self.cache()
            .iter()
            .map(|(_, r)| Arc::clone(r))
            .filter(|r| r.ready())
            .collect()
    }

    /// The cached registry of `db`, if any (does not change the LRU order).
    pub fn cached(&self, db: &str) -> Option<Arc<Registry>> {
        self.cache().peek(db).cloned()
    }

    /// Forgets the registry of `db` (Odoo's `Registry.delete(db)`: the database is being
    /// dropped or renamed).
    pub fn forget(&self, db: &str) {
        self.cache().pop(db);
    }

    /// The registry of `db` (Odoo's `Registry(db)`): the cached one (now the most recently
    /// used), or a new one.
    ///
    /// A cached registry is checked against the database's signaling sequences at most once
    /// per [`signaling::CHECK_INTERVAL`] (Odoo's `check_signaling`): changed by another
    /// host (an install, an upgrade), it is built again. A failed check keeps it.
    pub async fn get(&self, db: &str) -> Result<Arc<Registry>, Error> {
        let cached = self.cache().get(db).cloned();
        if let Some(r) = cached {
            if !r.check_due() {
                return Ok(r);
            }
            return self.check_signaling(db, r).await;
        }
        let _guard = self.loading.lock().await;
        if let Some(r) = self.cache().get(db) {
            return Ok(Arc::clone(r));
        }
        self.load(db).await
    }

    /// `r` if the signaling sequences of `db` did not move since it was built, else the
    /// registry built again.
    async fn check_signaling(&self, db: &str, r: Arc<Registry>) -> Result<Arc<Registry>, Error> {
        // Bounded: with every connection busy, the request goes on with the registry it
        // has rather than wait for the pool (the next check comes soon enough).
        let read = tokio::time::timeout(
            signaling::READ_TIMEOUT,
            signaling::read(&self.databases, db),
        );
        let now = match read.await {
            Ok(Ok(now)) => now,
            Ok(Err(e)) => {
                tracing::debug!(target: TARGET, "database {db}: signaling not read ({e}); keeping the registry");
                return Ok(r);
            }
            Err(_) => return Ok(r),
        };
        if now == r.sequences {
            return Ok(r);
        }
        let _guard = self.loading.lock().await;
        // Built again meanwhile by another request.
        if let Some(current) = self.cache().get(db) {
            if !Arc::ptr_eq(current, &r) {
                return Ok(Arc::clone(current));
            }
        }
        if now[0] != r.sequences[0] {
            tracing::info!(target: TARGET, "database {db}: Reloading the model registry after database signaling.");
        } else {
            tracing::info!(target: TARGET, "database {db}: Invalidating caches after database signaling.");
        }
        self.load(db).await
    }

    /// Builds the registry of `db` again (after installing addons), replacing the cached
    /// one (Odoo's `Registry.new(db)`).
    pub async fn renew(&self, db: &str) -> Result<Arc<Registry>, Error> {
        let _guard = self.loading.lock().await;
        self.load(db).await
    }

    async fn load(&self, db: &str) -> Result<Arc<Registry>, Error> {
        let started = Instant::now();
        let (config, server_wide, host) = self.context()?;
        let result = self.build(db, &config, &server_wide, host).await;
        let mut cache = self.cache();
        match result {
            Ok(r) => {
                let r = Arc::new(r);
                r.ready.store(true, Ordering::SeqCst);
                cache.put(db.to_owned(), Arc::clone(&r));
                tracing::info!(target: TARGET, "Registry loaded in {:.3}s", started.elapsed().as_secs_f64());
                Ok(r)
            }
            Err(e) => {
                cache.pop(db);
                Err(e)
            }
        }
    }

    async fn build(
        &self,
        db: &str,
        config: &Config,
        server_wide: &[Arc<LoadedAddon>],
        host: HostApiRef,
    ) -> Result<Registry, Error> {
        let initialized = loading::is_initialized(&self.databases, db)
            .await
            .map_err(|e| Error::database(db, e))?;
        if !initialized {
            return Err(Error::NotInitialized { db: db.to_owned() });
        }
        // Read before what the registry holds: a change signaled in between is seen at
        // the next check.
        // A database where they cannot be made (no right to create a sequence) is served
        // without signaling (a warning), as before it existed.
        let sequences = match signaling::setup(&self.databases, db).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(target: TARGET, "database {db}: no registry signaling ({e}); other hosts' changes need a restart");
                [0; 6]
            }
        };
        let installed = loading::installed_addons(&self.databases, db)
            .await
            .map_err(|e| Error::database(db, e))?;
        let wanted: Vec<String> = installed
            .keys()
            .filter(|n| !server_wide.iter().any(|a| &a.name == *n))
            .cloned()
            .collect();
        let extra_addons = if wanted.is_empty() {
            Vec::new()
        } else {
            self.load_extra(config, &wanted, server_wide, host)?
        };
        let secret = loading::database_secret(&self.databases, db)
            .await
            .map_err(|e| Error::database(db, e))?;
        Ok(Registry {
            db_name: db.to_owned(),
            installed,
            extra_addons,
            secret,
            ready: AtomicBool::new(false),
            sequences,
            built_at: Instant::now(),
            next_check: AtomicU64::new(signaling::CHECK_INTERVAL.as_millis() as u64),
        })
    }
    /// Loads (once per host) the addons `names` and their dependencies that are not loaded
    /// yet.
    fn load_extra(
        &self,
        config: &Config,
        names: &[String],
        server_wide: &[Arc<LoadedAddon>],
        host: HostApiRef,
    ) -> Result<Vec<Arc<LoadedAddon>>, Error> {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        let mut previous: Vec<Arc<LoadedAddon>> = server_wide.to_vec();
        // The latest load of an addon first: a library rebuilt since (an upgrade) is
        // compared with its last load, not its first.
        previous.extend(extra.iter().rev().cloned());
        let set: AddonSet = module::discover(&super::addons_paths(&config.addons_path));
        let (report, fresh) =
            super::load_addons_reusing(&set, names, &config.data_dir.join("run"), &previous, host);
        report.log_refused();
        if let Some((name, reason)) = report.refused.first() {
            return Err(Error::Addon {
                addon: name.clone(),
                reason: format!("cannot be loaded: {reason}"),
            });
        }
        let mut out: Vec<Arc<LoadedAddon>> = Vec::new();
        for a in report.reused {
            if !server_wide.iter().any(|s| Arc::ptr_eq(s, &a)) {
                out.push(a);
            }
        }
        for a in report.loaded {
            let a = Arc::new(a);
            extra.push(Arc::clone(&a));
            out.push(a);
        }
        if !fresh.is_empty() {
            tracing::info!(target: TARGET, "addons loaded for databases: {}", fresh.join(", "));
        }
        Ok(out)
    }
}

impl Registry {
    /// Whether the signaling sequences are due to be read: true for one caller per
    /// [`signaling::CHECK_INTERVAL`].
    fn check_due(&self) -> bool {
        let now = self.built_at.elapsed().as_millis() as u64;
        let next = self.next_check.load(Ordering::Relaxed);
        now >= next
            && self
                .next_check
                .compare_exchange(
                    next,
                    now + signaling::CHECK_INTERVAL.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Whether the registry is fully loaded.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The addons whose items serve this database: the server-wide ones, then the installed
    /// extra ones.
    pub fn addons(&self, server_wide: &[Arc<LoadedAddon>]) -> Vec<Arc<LoadedAddon>> {
        let mut all = server_wide.to_vec();
        for a in &self.extra_addons {
            if !all.iter().any(|b| b.name == a.name) {
                all.push(Arc::clone(a));
            }
        }
        all
    }

    /// The addon declaring the RPC method `method` of `model` (`#[rpc]`), and the method's
    /// id, among the addons serving this database (on `server_wide`); `Err(false)` when no
    /// addon declares that model at all, `Err(true)` when the model exists without it.
    pub fn rpc_method(
        &self,
        server_wide: &[Arc<LoadedAddon>],
        model: &str,
        method: &str,
    ) -> Result<(Arc<LoadedAddon>, u32), bool> {
        let mut model_known = false;
        for a in self.addons(server_wide) {
            for m in a.items.rpcs.iter().filter(|m| m.model.as_str() == model) {
                model_known = true;
                if m.method.as_str() == method {
                    return Ok((Arc::clone(&a), m.id));
                }
            }
        }
        Err(model_known)
    }

    /// The addon declaring the cron handler `name`, and the handler's id, among the addons
    /// serving this database (on `server_wide`).
    pub fn cron_handler(
        &self,
        server_wide: &[Arc<LoadedAddon>],
        name: &str,
    ) -> Option<(Arc<LoadedAddon>, u32)> {
        self.addons(server_wide).into_iter().find_map(|a| {
            let id = a
                .items
                .crons
                .iter()
                .find(|c| c.name.as_str() == name)
                .map(|c| c.id)?;
            Some((a, id))
        })
    }
}
