//! Swapping addons without failing a request (SIGHUP): re-read the configuration, re-scan
//! the addons paths, load the libraries that changed (and new server-wide addons) from
//! private copies, run their checks and `post_load`, build a new [`Application`] generation
//! and switch to it atomically. Requests in flight finish on the generation they started on.
//! If any new build is refused, the current generation keeps serving.
//!
//! Library images are never unloaded (see `plugin-abi.md`): the images mapped so far are
//! counted, and past `limit_swaps` swaps the caller re-execs the process instead.

use crate::config::Config;
use crate::http::application::Application;
use crate::http::session::SessionStore;
use crate::modules::{self, module, LoadedAddon};
use arc_swap::ArcSwap;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Instant;

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

    /// Handles one SIGHUP.
    pub fn reload(&mut self) -> Reloaded {
        let started = Instant::now();
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
        let current = self.apps.load_full();
        let set = module::discover(&modules::addons_paths(&config.addons_path));
        let names = modules::server_wide_names(&config.server_wide_modules);
        let changed = match modules::changed_addons(&set, &names, &current.addons) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target: TARGET, "swap refused, generation {} keeps serving: {e}", current.generation);
                return Reloaded::Refused;
            }
        };
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
        let run_dir = config.data_dir.join("run");
        let (report, fresh) = match modules::load_addons_reusing(
            &set,
            &names,
            &run_dir,
            &current.addons,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(target: TARGET, "swap refused, generation {} keeps serving: {e}", current.generation);
                return Reloaded::Refused;
            }
        };
        self.count_images(report.loaded.iter());
        if !report.refused.is_empty() {
            let names: Vec<&str> = report.refused.iter().map(|(n, _)| n.as_str()).collect();
            tracing::error!(
                target: TARGET,
                "swap refused ({} refused), generation {} keeps serving",
                names.join(", "),
                current.generation
            );
            return Reloaded::Refused;
        }
        let order = modules::graph::order(&set, &names).unwrap_or_default();
        let addons = report.into_generation(&order);
        let generation = current.generation + 1;
        let app = match Application::new(
            Arc::clone(&config),
            addons,
            generation,
            Arc::clone(&self.sessions),
        ) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(target: TARGET, "swap refused, generation {} keeps serving: {e}", current.generation);
                return Reloaded::Refused;
            }
        };
        // Websockets of the replaced addons get Close 1001 once the grace period is over.
        let replaced: Vec<String> = fresh
            .iter()
            .filter(|n| current.addons.iter().any(|a| &a.name == *n))
            .cloned()
            .collect();
        if !replaced.is_empty() {
            tokio::spawn(async move {
                tokio::time::sleep(WEBSOCKET_GRACE).await;
                let n = crate::http::websocket::close_for_addons(&replaced, 1001, "addon updated");
                if n > 0 {
                    tracing::info!(target: TARGET, "{n} websocket(s) of the replaced addons closed (1001)");
                }
            });
        }
        let routes = app.route_count();
        // Registries (per database) are rebuilt on the new server-wide addons.
        modules::registry::setup(Arc::clone(&config), app.addons.clone());
        self.apps.store(Arc::new(app));
        self.config = config;
        if !fresh.is_empty() {
            self.swaps += 1;
        }
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
        Reloaded::Swapped
    }
}
