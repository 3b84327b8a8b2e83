//! Starts and runs the server (Odoo's `odoo/service/server.py`): loads the server-wide
//! addons, builds the first [`Application`] generation, opens the HTTP listener and serves
//! until a signal stops it.

use crate::config::Config;
use crate::http::application::Application;
use crate::http::server::{self as http_server, ServeOptions};
use crate::http::session::FilesystemSessionStore;
use crate::modules::{self, module};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

const TARGET: &str = "inphms.service.server";

/// Runs the server with `config` and returns the process exit code.
pub fn run(config: Arc<Config>) -> i32 {
    modules::host_api::set_config(Arc::clone(&config));
    // The listener is taken before the runtime starts its threads (socket activation).
    let listener = if config.http_enable && !config.stop_after_init {
        match http_server::listen(&config.http_interface, config.http_port) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(target: TARGET, "cannot listen on {}:{}: {e}", display_interface(&config), config.http_port);
                return 1;
            }
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("inphms-http")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(target: TARGET, "cannot start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(serve(config, listener))
}

fn display_interface(config: &Config) -> &str {
    if config.http_interface.is_empty() {
        "0.0.0.0"
    } else {
        &config.http_interface
    }
}

async fn serve(
    config: Arc<Config>,
    listener: Option<(std::net::TcpListener, http_server::ListenerSource)>,
) -> i32 {
    let paths = modules::addons_paths(&config.addons_path);
    let set = module::discover(&paths);
    modules::report_broken(&set);
    let names = modules::server_wide_names(&config.server_wide_modules);
    let run_dir = config.data_dir.join("run");
    let report = match modules::load_addons(&set, &names, &run_dir) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(target: TARGET, "{e}");
            return 1;
        }
    };
    let loaded: Vec<String> = report.loaded.iter().map(|a| a.name.clone()).collect();
    tracing::info!(target: TARGET, "addons loaded: {}", loaded.join(", "));
    let sessions = match FilesystemSessionStore::new(config.session_dir()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(target: TARGET, "session store {}: {e}", config.session_dir().display());
            return 1;
        }
    };
    let addons = report.loaded.into_iter().map(Arc::new).collect();
    let app = match Application::new(Arc::clone(&config), addons, 1, sessions) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(target: TARGET, "{e}");
            return 1;
        }
    };
    tracing::info!(target: TARGET, "generation 1: {} route(s)", app.route_count());
    if config.stop_after_init {
        tracing::info!(target: TARGET, "stop after init");
        return 0;
    }
    let app = Arc::new(ArcSwap::from_pointee(app));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(watch_signals(stop_tx));
    let Some((listener, source)) = listener else {
        tracing::info!(target: TARGET, "HTTP service disabled (--no-http)");
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
        return 0;
    };
    match source {
        http_server::ListenerSource::Activated => {
            tracing::info!(target: TARGET, "HTTP service (hyper) running through socket activation")
        }
        http_server::ListenerSource::Bound => tracing::info!(
            target: TARGET,
            "HTTP service (hyper) running on {}:{}",
            display_interface(&config),
            listener.local_addr().map(|a| a.port()).unwrap_or(config.http_port)
        ),
    }
    let options = ServeOptions {
        max_in_flight: http_server::concurrency_cap(
            std::env::var("INPHMS_MAX_HTTP_THREADS").ok().as_deref(),
            config.db_maxconn as i64,
            config.max_cron_threads as i64,
        ),
        header_timeout: Duration::from_secs(config.http_header_timeout.max(1) as u64),
        drain_timeout: Duration::from_secs(30),
    };
    match http_server::serve(listener, app, options, stop_rx).await {
        Ok(report) => {
            tracing::info!(target: TARGET, "HTTP service stopped: {} request(s) were in flight, {}", report.in_flight, if report.drained { "all finished" } else { "some were cut at the drain timeout" });
            0
        }
        Err(e) => {
            tracing::error!(target: TARGET, "HTTP service failed: {e}");
            1
        }
    }
}

/// First SIGINT or SIGTERM: graceful stop. A second one: immediate exit.
async fn watch_signals(stop: watch::Sender<bool>) {
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::error!(target: TARGET, "cannot install signal handlers");
        return;
    };
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    tracing::info!(target: TARGET, "Initiating shutdown");
    tracing::info!(target: TARGET, "Hit CTRL-C again or send a second signal to force the shutdown.");
    let _ = stop.send(true);
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    eprintln!("Forced shutdown.");
    std::process::exit(0);
}
