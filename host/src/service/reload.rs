//! Swapping addons without failing a request (SIGHUP): re-read the configuration, re-scan
//! the addons paths, load the libraries that changed (and new server-wide addons) from
//! private copies, run their checks and `post_load`, build a new [`Application`] generation
//! and switch to it atomically. Requests in flight finish on the generation they started on.
//! If any new build is refused, the current generation keeps serving.
//!
//! Library images are never unloaded (see `plugin-abi.md`): the images mapped so far are
//! counted, and past `limit_swaps` swaps the caller re-execs the process instead.
//!
//! A library refused (truncated, half-written, incompatible, failing `post_load`) is one
//! line naming the file and what is wrong, and the current generation keeps serving.
//! [`DevWatcher`] is `--dev=reload`: it swaps a changed library once it has settled. Its
//! file work (the addons paths scanned, the libraries stamped, a changed one hashed once per
//! stamp) runs on the blocking pool, not on a runtime worker.

use crate::config::Config;
use crate::http::application::Application;
use crate::http::session::SessionStore;
use crate::modules::library::{self, Stamp};
use crate::modules::{self, module, LoadedAddon};
use arc_swap::ArcSwap;
use inphms_sdk::abi::HostApiRef;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

const TARGET: &str = "inphms.service.server";

/// How long the websockets of a replaced addon go on after a swap before Close 1001.
pub const WEBSOCKET_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The state that survives generations.
pub struct Generations {
    /// The configuration of the current generation.
    pub config: Arc<Config>,
    /// The server command's arguments, to re-read the configuration.
    pub server_args: Vec<OsString>,
    /// The current generation, read by every new request.
    pub apps: Arc<ArcSwap<Application>>,
    /// The session store shared by all generations.
    pub sessions: Arc<dyn SessionStore>,
    /// Swaps done in this process (generations built from new library images).
    pub swaps: u32,
    /// Library images mapped in this process (never unloaded).
    pub images: usize,
    /// Their total size on disk, in bytes.
    pub image_bytes: u64,
    /// The host API handed to the addons loaded (this host's).
    pub host: HostApiRef,
    /// The host's metrics (swaps).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new generation serves.
    Swapped,
    /// Nothing changed; the current generation goes on.
    Unchanged,
    /// A new build was refused (already logged); the current generation goes on.
    Refused,
    /// The swap limit is reached: re-exec instead.
    NeedsPhoenix,
}

impl Generations {
    /// Counts the images of freshly loaded addons.
    fn count_images<'a>(&mut self, fresh: impl IntoIterator<Item = &'a LoadedAddon>) {
        for addon in fresh {
            self.images += 1;
            self.image_bytes += std::fs::metadata(&addon.library_path)
                .map(|m| m.len())
                .unwrap_or(0);
        }
    }

    /// Handles one SIGHUP: re-read the configuration, find what changed, load and build the
    /// new generation, swap it in and report.
    pub fn reload(&mut self) -> Reloaded {
        let started = Instant::now();
        let config = self.reread_config();
        let current = self.apps.load_full();
        let set = module::discover(&modules::addons_paths(&config.addons_path));
        let names = modules::server_wide_names(&config.server_wide_modules);
        let changed = modules::changed_addons(&set, &names, &current.addons);
        let config_changed = *config != *self.config;
        if changed.is_empty() && !config_changed {
            tracing::info!(target: TARGET, "SIGHUP: nothing changed; generation {} goes on", current.generation);
            return Reloaded::Unchanged;
        }
        if !changed.is_empty() && self.swaps >= self.config.limit_swaps {
            tracing::warn!(
                target: TARGET,
                "swap limit reached ({} swaps, {} library images, {} MiB kept mapped): re-exec instead",
                self.swaps,
                self.images,
                self.image_bytes / (1024 * 1024)
            );
            return Reloaded::NeedsPhoenix;
        }
        let Some((addons, fresh)) = self.load(&config, &current, &set, &names, config_changed)
        else {
            return Reloaded::Refused;
        };
        let generation = current.generation + 1;
        let app = match Application::new(
            Arc::clone(&config),
            addons,
            generation,
            Arc::clone(&self.sessions),
            Arc::clone(current.services()),
        ) {
            Ok(a) => a,
            Err(e) => return refuse(&current, e),
        };
        close_replaced_websockets(&current, &fresh);
        let routes = app.route_count();
        self.swap(config, app, !fresh.is_empty());
        self.report(generation, started, routes, &fresh);
        Reloaded::Swapped
    }

    /// Re-reads the configuration; a bad one is logged and the current one stays.
    fn reread_config(&self) -> Arc<Config> {
        let config = match Config::parse(&self.server_args) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(target: TARGET, "configuration not reloaded, the current one stays: {e}");
                Arc::clone(&self.config)
            }
        };
        if config.http_interface != self.config.http_interface
            || config.http_port != self.config.http_port
        {
            tracing::warn!(
                target: TARGET,
                "http_interface/http_port changed to {}:{}: this needs a restart; still listening on {}:{}",
                config.http_interface, config.http_port, self.config.http_interface, self.config.http_port
            );
        }
        config
    }

    /// Loads the changed addons (reusing the others) and decides whether the swap may go
    /// on: the new generation's addons and the names of the freshly loaded ones, or `None`
    /// when the swap is refused (already logged).
    fn load(
        &mut self,
        config: &Config,
        current: &Application,
        set: &module::AddonSet,
        names: &[String],
        config_changed: bool,
    ) -> Option<(Vec<Arc<LoadedAddon>>, Vec<String>)> {
        let run_dir = config.data_dir.join("run");
        let (report, fresh) =
            modules::load_addons_reusing(set, names, &run_dir, &current.addons, self.host);
        self.count_images(report.loaded.iter());
        // An addon serving now that is refused would be lost (or would keep its old build
        // while the new one is refused): the swap is refused. One that does not serve now
        // is left out, as at start, unless nothing else would change.
        let (serving, left_out): (Vec<_>, Vec<_>) = report
            .refused
            .iter()
            .partition(|(n, _)| current.addons.iter().any(|a| &a.name == n));
        if !serving.is_empty() || (fresh.is_empty() && !left_out.is_empty() && !config_changed) {
            let reasons: Vec<String> = report
                .refused
                .iter()
                .map(|(n, r)| format!("addon '{n}' refused: {r}"))
                .collect();
            refuse(current, reasons.join("; "));
            return None;
        }
        for (name, reason) in &left_out {
            tracing::error!(target: TARGET, "addon '{name}' refused, left out of the new generation: {reason}");
        }
        Some((report.into_generation(), fresh))
    }

    /// Switches every new request to `app`; the registries (per database) are rebuilt on
    /// its server-wide addons.
    fn swap(&mut self, config: Arc<Config>, app: Application, reloaded_libraries: bool) {
        app.services()
            .registries
            .setup(Arc::clone(&config), app.addons.clone(), self.host);
        self.apps.store(Arc::new(app));
        self.config = config;
        if reloaded_libraries {
            self.swaps += 1;
            self.metrics.service.swaps.inc();
        }
    }

    /// The one line saying which generation serves now.
    fn report(&self, generation: u64, started: Instant, routes: usize, fresh: &[String]) {
        tracing::info!(
            target: TARGET,
            "generation {generation} serving after {:.1} ms ({routes} routes; reloaded: {}); {} library images kept mapped ({} MiB), swap {} of {}",
            started.elapsed().as_secs_f64() * 1000.0,
            if fresh.is_empty() { "none".to_owned() } else { fresh.join(", ") },
            self.images,
            self.image_bytes / (1024 * 1024),
            self.swaps,
            self.config.limit_swaps,
        );
    }
}

/// Logs a refused swap (the current generation keeps serving) and says so.
fn refuse(current: &Application, reason: impl std::fmt::Display) -> Reloaded {
    tracing::error!(
        target: TARGET,
        "swap refused, generation {} keeps serving: {reason}",
        current.generation
    );
    Reloaded::Refused
}

/// Websockets of the replaced addons (those among `fresh` serving in `current`) get Close
/// 1001 once the grace period is over.
fn close_replaced_websockets(current: &Application, fresh: &[String]) {
    let replaced: Vec<String> = fresh
        .iter()
        .filter(|n| current.addons.iter().any(|a| &a.name == *n))
        .cloned()
        .collect();
    if replaced.is_empty() {
        return;
    }
    let sockets = Arc::clone(&current.services().websockets);
    tokio::spawn(async move {
        tokio::time::sleep(WEBSOCKET_GRACE).await;
        let n =
            crate::http::websocket::close_for_addons(&sockets, &replaced, 1001, "addon updated");
        if n > 0 {
            tracing::info!(target: TARGET, "{n} websocket(s) of the replaced addons closed (1001)");
        }
    });
}

/// What `--dev=reload` saw change.
pub enum DevChange {
    /// Nothing (or a change still settling, or one already refused).
    None,
    /// Addon libraries changed and have settled: reload.
    Addons,
    /// The host binary changed: re-exec.
    Binary,
}

/// The changed libraries at one check: each addon, its library and the library's stamp.
type Snapshot = Vec<(String, Option<PathBuf>, Option<Stamp>)>;

/// `--dev=reload`: watches the server-wide addons' libraries and the host binary, at each
/// check of the lifecycle loop.
///
/// A changed library is swapped in once it has stopped changing: the changed libraries
/// (which, where, size and modification time) the same at two checks in a row; a changed
/// binary is re-executed likewise. Then a
/// library that is still refused (truncated, broken) is not tried again until it changes
/// again, so a refusal is one line, and the next complete write is swapped in.
pub struct DevWatcher {
    state: WatchState,
}

/// What [`DevWatcher`] remembers between checks (moved to the blocking pool for a check).
#[derive(Default)]
struct WatchState {
    exe_modified: Option<SystemTime>,
    /// The host binary's stamp at the last check once it changed (it is re-executed once
    /// it has stopped changing too).
    exe_pending: Option<Stamp>,
    /// The changed libraries seen at the last check, waiting to settle.
    pending: Option<Snapshot>,
    /// The changed libraries of the last reload asked for.
    tried: Option<Snapshot>,
}

impl DevWatcher {
    /// A watcher of the current generation's libraries and of the binary `exe`.
    pub fn new(_generations: &Generations, exe: Option<&Path>) -> Self {
        DevWatcher {
            state: WatchState {
                exe_modified: exe.and_then(modified),
                ..WatchState::default()
            },
        }
    }

    /// Looks for changes (when `--dev` has `reload`; the configuration of a reload counts),
    /// on the blocking pool.
    pub async fn check(&mut self, generations: &Generations, exe: Option<&Path>) -> DevChange {
        let enabled = generations
            .config
            .dev_mode
            .iter()
            .any(|m| m == "reload" || m == "all");
        if !enabled {
            return DevChange::None;
        }
        let config = Arc::clone(&generations.config);
        let apps = Arc::clone(&generations.apps);
        let exe = exe.map(Path::to_owned);
        let exe_modified = self.state.exe_modified;
        let mut state = std::mem::take(&mut self.state);
        let checked = tokio::task::spawn_blocking(move || {
            let change = state.check(&config, &apps, exe.as_deref());
            (state, change)
        })
        .await;
        match checked {
            Ok((state, change)) => {
                self.state = state;
                change
            }
            Err(e) => {
                tracing::error!(target: TARGET, "autoreload: the check failed ({e}); watching on");
                self.state.exe_modified = exe_modified;
                DevChange::None
            }
        }
    }
}

impl WatchState {
    fn check(
        &mut self,
        config: &Config,
        apps: &ArcSwap<Application>,
        exe: Option<&Path>,
    ) -> DevChange {
        let exe_now = exe.and_then(|e| Stamp::of(e).ok());
        if let Some(now) = exe_now.filter(|n| n.modified != self.exe_modified) {
            if self.exe_pending == Some(now) {
                return DevChange::Binary;
            }
            if self.exe_pending.is_none() {
                tracing::info!(target: TARGET, "autoreload: the host binary changed; waiting for it to stop changing");
            }
            self.exe_pending = Some(now);
            return DevChange::None;
        }
        self.exe_pending = None;
        let apps = apps.load();
        let set = module::discover(&modules::addons_paths(&config.addons_path));
        let names = modules::server_wide_names(&config.server_wide_modules);
        let changed = modules::changed_addons(&set, &names, &apps.addons);
        if changed.is_empty() {
            self.pending = None;
            self.tried = None;
            return DevChange::None;
        }
        let snapshot: Snapshot = changed
            .into_iter()
            .map(|name| {
                let path = set.get(&name).and_then(|a| {
                    let manifest = a.manifest.as_ref().ok()?;
                    library::locate(&name, &a.dir, manifest)
                        .path()
                        .map(Path::to_owned)
                });
                let stamp = path.as_deref().and_then(|p| Stamp::of(p).ok());
                (name, path, stamp)
            })
            .collect();
        if self.tried.as_ref() == Some(&snapshot) {
            return DevChange::None;
        }
        if self.pending.as_ref() != Some(&snapshot) {
            // One line when a change begins; a copy still going on is logged in debug.
            let names: Vec<&str> = snapshot.iter().map(|(n, _, _)| n.as_str()).collect();
            if self.pending.is_none() {
                tracing::info!(target: TARGET, "autoreload: {} changed; waiting for it to stop changing", names.join(", "));
            } else {
                tracing::debug!(target: TARGET, "autoreload: {} still changing", names.join(", "));
            }
            self.pending = Some(snapshot);
            return DevChange::None;
        }
        self.pending = None;
        self.tried = Some(snapshot);
        DevChange::Addons
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}
