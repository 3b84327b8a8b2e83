//! Starts and runs the server (Odoo's `odoo/service/server.py`, `ThreadedServer`): loads the
//! server-wide addons, builds the first [`Application`] generation, opens the HTTP listener
//! (or takes it over from a previous image), then runs the lifecycle until a signal stops it:
//! SIGHUP swaps addons, SIGQUIT dumps what runs, the memory soft limit, the swap limit and
//! stuck handlers re-exec the process (phoenix) without refusing a connection.
//!
//! With `workers` above 0 the process is the master of workers mode instead
//! ([`super::prefork`]); the workers it starts run this same server, an HTTP worker without
//! cron threads and recycling (exiting after a drain, the master replacing it) where the
//! threaded server re-execs, plus `limit_request`; the cron worker without HTTP.

use super::cron::Cron;
use super::limits;
use super::phoenix;
use super::reload::{DevChange, DevWatcher, Generations, Reloaded};
use super::signals::Signals;
use super::worker::{Link, Role};
use crate::config::Config;
use crate::host_api::HostServices;
use crate::http::application::Application;
use crate::http::connections;
use crate::http::server::{self as http_server, ListenerSource, ServeOptions, Stop};
use crate::http::session::{FilesystemSessionStore, SessionStore};
use crate::http::session_counts::CountedStore;
use crate::http::session_pg::PgSessionStore;
use crate::http::Services;
use crate::metrics::Metrics;
use crate::modules::registry::Registries;
use crate::modules::{self, module};
use crate::sql_db::Databases;
use arc_swap::ArcSwap;
use inphms_sdk::abi::HostApiRef;
use std::ffi::OsString;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const TARGET: &str = "inphms.service.server";

/// The state of one host, built once here (the composition root) and handed down by `Arc`
/// to what needs it: the databases (pools, the list of databases, the cursors lent to
/// addons), the registries, the request path's state (body budgets, requests in flight,
/// websockets), the cron workers' state, and the host API whose `ctx` leads the addons'
/// callbacks back to this host. Nothing of it is a process-wide static, so two hosts in one
/// process share none of it.
#[derive(Clone)]
pub struct Host {
    /// The configuration the host started with.
    pub config: Arc<Config>,
    /// PostgreSQL.
    pub databases: Arc<Databases>,
    /// The registries of the databases served.
    pub registries: Arc<Registries>,
    /// The request path's state, shared by every generation.
    pub http: Arc<Services>,
    /// The cron workers' state.
    pub cron: Arc<Cron>,
    /// The host API handed to this host's addons.
    pub api: HostApiRef,
    /// The database manager (the `db` service).
    pub db_manager: Arc<super::db_manager::Manager>,
    /// The metrics (`--metrics`), which every layer above records into.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("databases", &self.databases)
            .field("registries", &self.registries)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host for `config`; addons' queries run on `runtime` (else on the runtime of the
    /// thread asking).
    pub fn new(config: Arc<Config>, runtime: Option<tokio::runtime::Handle>) -> Host {
        let databases = Databases::new(&config, runtime);
        let registries = Registries::new(Arc::clone(&databases));
        let metrics = Arc::new(Metrics::new(config.metrics));
        let http = Services::new(Arc::clone(&registries), Arc::clone(&metrics));
        let cron = Cron::new(
            Arc::clone(&config),
            Arc::clone(&registries),
            Arc::clone(&metrics),
        );
        let rpc = super::rpc::RpcServices::new();
        let api = HostServices::api(Arc::clone(&config), Arc::clone(&http), rpc.clone());
        if config.metrics {
            super::metrics::register(&metrics, &http);
        }
        let db_manager = Arc::new(super::db_manager::Manager::new(
            Arc::clone(&config),
            Arc::clone(&databases),
            Arc::clone(&registries),
        ));
        super::db_manager::web::install(api, &db_manager);
        let host = Host {
            db_manager,
            config,
            databases,
            registries,
            http,
            cron,
            api,
            metrics,
        };
        rpc.set_host(host.clone());
        host
    }
}

/// Runs the server with `config` (parsed from `server_args`, the `server` command's
/// arguments, which a SIGHUP parses again) and returns the process exit code.
pub fn run(config: Arc<Config>, server_args: Vec<OsString>) -> i32 {
    let link = Link::from_env();
    if link.role == Role::Server
        && config.workers > 0
        && config.http_enable
        && !config.stop_after_init
    {
        return super::prefork::run(config);
    }
    // The cron threads of workers mode run in the cron worker alone.
    let config = if link.role == Role::Http {
        let mut c = Config::clone(&config);
        c.max_cron_threads = 0;
        Arc::new(c)
    } else {
        config
    };
    // Until the handlers are installed (at the start of the runtime), the handled signals
    // wait blocked instead of killing the process; every thread inherits this mask.
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&super::signals::handled_set()),
        None,
    );
    limits::cap_malloc_arenas();
    if let Err(e) = limits::set_memory_hard(config.limit_memory_hard) {
        tracing::warn!(target: TARGET, "cannot set RLIMIT_AS to {}: {e}", config.limit_memory_hard);
    }
    let exe = match phoenix::resolve_exe() {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(target: TARGET, "cannot resolve the executable ({e}): re-exec disabled");
            None
        }
    };
    // The listener is taken before the runtime starts its threads (socket activation).
    let listener = if config.http_enable && !config.stop_after_init && link.role != Role::Cron {
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
    let worker = link.is_worker();
    let code = runtime.block_on(start(config, server_args, listener, exe, link));
    if worker {
        // A handler still running after the drain (past limit_time_cpu, stuck) must not
        // keep a recycled worker alive: its requests were given up.
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    code
}

fn display_interface(config: &Config) -> &str {
    if config.http_interface.is_empty() {
        "0.0.0.0"
    } else {
        &config.http_interface
    }
}

/// Loads the addons and builds generation 1; serves unless `--stop-after-init`.
async fn start(
    config: Arc<Config>,
    server_args: Vec<OsString>,
    listener: Option<(TcpListener, ListenerSource)>,
    exe: Option<PathBuf>,
    link: Link,
) -> i32 {
    let host = Host::new(Arc::clone(&config), Some(tokio::runtime::Handle::current()));
    if config.list_db && link.role != Role::Cron && host.db_manager.master.is_default() {
        tracing::warn!(target: TARGET, "the database manager's master password is the default 'admin': set admin_passwd in the config file, or a new one from /web/database/manager");
    }
    if link.role == Role::Http {
        host.http.inflight.set_request_limit(config.limit_request);
        if config.limit_time_cpu > 0 {
            host.http.inflight.watch_cpu();
        }
        if let Some(shared) = super::requests_shm::SharedRequests::map() {
            host.http.inflight.set_mirror(Arc::new(shared));
        }
    }
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(target: TARGET, "cannot install the signal handlers: {e}");
            return 1;
        }
    };
    // Off the start-up's path, while the addons load: the list of databases that the first
    // request needs, and the CSRF secret of a fresh data dir (created with an fsync), which
    // `Application::new` then reads.
    if listener.is_some() {
        let databases = Arc::clone(&host.databases);
        let config = Arc::clone(&config);
        tokio::spawn(async move { crate::sql_db::dblist::prefetch(&databases, &config).await });
    }
    let secret = {
        let data_dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || crate::http::csrf::secret_from_data_dir(&data_dir))
    };
    let paths = modules::addons_paths(&config.addons_path);
    let set = module::discover(&paths);
    let names = modules::server_wide_names(&config.server_wide_modules);
    modules::report_broken(&set, &names);
    let run_dir = config.data_dir.join("run");
    crate::http::body::remove_leftovers(&config.data_dir);
    let report = modules::load_addons(&set, &names, &run_dir, host.api);
    let Some(sessions) = session_store(&host, &config).await else {
        return 1;
    };
    let images = report.loaded.len();
    let image_bytes = report
        .loaded
        .iter()
        .filter_map(|a| std::fs::metadata(&a.library_path).ok())
        .map(|m| m.len())
        .sum();
    let loaded: Vec<String> = report.loaded.iter().map(|a| a.name.clone()).collect();
    let addons = report.into_generation();
    // Counted for the metrics (sessions read and written, by store type).
    let sessions: Arc<dyn SessionStore> = if config.metrics {
        Arc::new(CountedStore::new(sessions, &host.metrics.sessions))
    } else {
        sessions
    };
    // An error is reported by `Application::new`, which reads the secret again.
    let _ = secret.await;
    let app = match Application::new(
        Arc::clone(&config),
        addons,
        1,
        sessions.clone(),
        Arc::clone(&host.http),
    ) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(target: TARGET, "{e}");
            return 1;
        }
    };
    tracing::info!(target: TARGET, "generation 1: addons {} ({} routes)", loaded.join(", "), app.route_count());
    let generations = Generations {
        config: Arc::clone(&config),
        server_args,
        apps: Arc::new(ArcSwap::from_pointee(app)),
        sessions,
        swaps: 0,
        images,
        image_bytes,
        host: host.api,
        metrics: Arc::clone(&host.metrics),
    };
    if config.metrics {
        super::metrics::register_generation(&host.metrics, &generations.apps);
    }
    // Databases: pools, registries, `-d`/`-i`/`-u` (a failure fails --stop-after-init).
    let server_wide = generations.apps.load().addons.clone();
    let setup = super::db::setup(&host.registries, &config, &set, server_wide, host.api).await;
    if setup.is_err() && config.stop_after_init {
        return 1;
    }
    if config.stop_after_init {
        tracing::info!(target: TARGET, "stop after init");
        return 0;
    }
    let cron = super::cron::spawn(&host.cron);
    let Some((listener, source)) = listener else {
        if link.role == Role::Cron {
            tracing::info!(target: TARGET, "cron worker: {} cron thread(s)", config.max_cron_threads);
            link.tell("ready", "");
        } else {
            tracing::info!(target: TARGET, "HTTP service disabled (--no-http)");
        }
        let mut stop = signals.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
        cron.stop().await;
        return 0;
    };
    match source {
        ListenerSource::Activated => {
            tracing::info!(target: TARGET, "HTTP service (hyper) running through socket activation")
        }
        ListenerSource::Bound => tracing::info!(
            target: TARGET,
            "HTTP service (hyper) running on {}:{}",
            display_interface(&config),
            listener.local_addr().map(|a| a.port()).unwrap_or(config.http_port)
        ),
    }
    link.tell("ready", "");
    lifecycle(&host, generations, listener, signals, exe, cron, &link).await
}

/// The session store the configuration chooses (`session_store`): the filesystem one in
/// the data dir (its temporary files of writes cut short removed off the start-up path),
/// or the PostgreSQL one in `session_db`. `None` when it cannot be made (logged).
async fn session_store(host: &Host, config: &Config) -> Option<Arc<dyn SessionStore>> {
    if config.session_store == "postgresql" {
        let store = PgSessionStore::open(
            Arc::clone(host.databases.pools()),
            config.session_db(),
            tokio::runtime::Handle::current(),
        )
        .await;
        return Some(store);
    }
    let sessions = match FilesystemSessionStore::new(config.session_dir()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(target: TARGET, "session store {}: {e}", config.session_dir().display());
            return None;
        }
    };
    {
        // Temporary files of session writes cut short (a SIGKILL), off the start-up path.
        let sessions = Arc::clone(&sessions);
        tokio::task::spawn_blocking(move || match sessions.remove_stale_temporaries() {
            Ok(0) => {}
            Ok(n) => tracing::info!(target: TARGET, "removed {n} stale temporary session file(s)"),
            Err(e) => tracing::warn!(target: TARGET, "cannot clean the session folder: {e}"),
        });
    }
    Some(sessions)
}

/// Why serving stopped.
enum Exit {
    Stop,
    Phoenix(String),
}

/// The listener's settings for `config`; an HTTP worker (`role`) also holds at most
/// `worker_connections` connections.
fn serve_options(config: &Config, role: Role) -> ServeOptions {
    ServeOptions {
        max_in_flight: http_server::concurrency_cap(
            std::env::var("INPHMS_MAX_HTTP_THREADS").ok().as_deref(),
            i64::from(config.db_maxconn),
            i64::from(config.max_cron_threads),
        ),
        max_connections: connections::cap(
            config.http_max_connections,
            u64::from(config.db_maxconn),
        ),
        header_timeout: Duration::from_secs(config.http_header_timeout.max(1)),
        drain_timeout: Duration::from_secs(config.limit_time_real.clamp(1, 30)),
        worker_connections: (role == Role::Http)
            .then(|| usize::try_from(config.worker_connections.max(1)).unwrap_or(usize::MAX)),
    }
}

/// Logs the connection cap, and warns when a cap set by hand is above what the limit of
/// open files allows (an `accept` would then fail; the listener backs off and evicts).
fn report_connection_cap(config: &Config, cap: Option<usize>) {
    let nofile = connections::nofile_soft_limit();
    let nofile_text = nofile.map_or("unlimited".to_owned(), |n| n.to_string());
    match cap {
        Some(cap) => {
            tracing::info!(target: TARGET, "at most {cap} connections open (http_max_connections; RLIMIT_NOFILE soft limit {nofile_text})")
        }
        None => tracing::info!(target: TARGET, "connections not capped (RLIMIT_NOFILE unlimited)"),
    }
    if let (Some(cap), Some(n)) = (cap, nofile) {
        let fits = connections::default_cap(n, u64::from(config.db_maxconn));
        if config.http_max_connections > 0 && cap > fits {
            tracing::warn!(target: TARGET, "http_max_connections {cap} is above the {fits} that the limit of open files ({n}) leaves room for: raise the limit (ulimit -n) or lower the cap");
        }
    }
}

/// Serves, and reacts to signals and limits, until a stop; re-execs when asked to.
async fn lifecycle(
    host: &Host,
    mut generations: Generations,
    mut listener: TcpListener,
    signals: Signals,
    exe: Option<PathBuf>,
    cron: super::cron::CronHandle,
    link: &Link,
) -> i32 {
    let mut cron = Some(cron);
    let mut workers = Arc::clone(&host.cron);
    let mut soft_limit = limits::SoftLimit::new(std::time::Instant::now());
    loop {
        let (stop_tx, stop_rx) = watch::channel(None);
        let options = serve_options(&generations.config, link.role);
        report_connection_cap(&generations.config, options.max_connections);
        let serving = tokio::spawn(http_server::serve(
            listener,
            Arc::clone(&generations.apps),
            options,
            stop_rx,
        ));
        let exit = watch_until_exit(
            host,
            &mut generations,
            &signals,
            &mut soft_limit,
            exe.as_deref(),
        )
        .await;
        // A worker recycles where the threaded server re-execs: it tells the master (which
        // starts its replacement), drains and exits.
        let recycle = link.is_worker() && matches!(exit, Exit::Phoenix(_));
        if let Exit::Phoenix(why) = &exit {
            if recycle {
                tracing::info!(target: TARGET, "worker recycling: {why}");
                link.tell("recycle", why);
            } else {
                tracing::info!(target: TARGET, "Initiating server reload: {why}");
            }
        }
        // A plain stop closes the listening socket at once (new connections are refused;
        // in a worker, only its copy: the others serve on); a re-exec keeps it for the new
        // image.
        let _ = stop_tx.send(Some(match exit {
            Exit::Phoenix(_) if !recycle => Stop::Handover,
            _ => Stop::Close,
        }));
        let Some(report) = drain(serving).await else {
            return 1;
        };
        // Cron workers finish their current job, on a stop as before a re-exec.
        if let Some(c) = cron.take() {
            c.stop().await;
        }
        if recycle || matches!(exit, Exit::Stop) {
            return 0;
        }
        let Some(l) = report.listener else {
            tracing::error!(target: TARGET, "the listening socket was not kept for the re-exec");
            return 1;
        };
        reexec(exe.as_deref(), &l, &host.metrics);
        // Still here: the re-exec did not happen (logged); serve on.
        workers = workers.with_config(Arc::clone(&generations.config));
        cron = Some(super::cron::spawn(&workers));
        listener = l;
    }
}

/// Reacts to signals, the periodic checks of the limits and `--dev=reload`, until one of
/// them asks for a stop or a re-exec.
async fn watch_until_exit(
    host: &Host,
    generations: &mut Generations,
    signals: &Signals,
    soft_limit: &mut limits::SoftLimit,
    exe: Option<&Path>,
) -> Exit {
    let mut stop = signals.stop.clone();
    let mut tick = tokio::time::interval(limits::CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watcher = DevWatcher::new(generations, exe);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Exit::Stop,
            _ = signals.reload.notified() => {
                if let Some(exit) = reload(generations) {
                    return exit;
                }
            }
            _ = signals.dump.notified() => dump(host),
            _ = host.http.inflight.request_limit_reached() => {
                return Exit::Phoenix(format!(
                    "limit_request reached ({} requests)",
                    host.http.inflight.entered()
                ));
            }
            _ = tick.tick() => {
                if let Some(exit) = check_limits(host, generations, soft_limit) {
                    return exit;
                }
                match watcher.check(generations, exe).await {
                    DevChange::None => {}
                    DevChange::Addons => {
                        tracing::info!(target: TARGET, "autoreload: addon library changed, swapping");
                        if let Some(exit) = reload(generations) {
                            return exit;
                        }
                    }
                    DevChange::Binary => return Exit::Phoenix("autoreload: the host binary changed".into()),
                }
            }
        }
    }
}

/// Swaps in a new generation; a re-exec when the swap limit is reached.
fn reload(generations: &mut Generations) -> Option<Exit> {
    // Loading libraries blocks: keep this worker's other tasks moving.
    (tokio::task::block_in_place(|| generations.reload()) == Reloaded::NeedsPhoenix)
        .then(|| Exit::Phoenix("the swap limit is reached".into()))
}

/// The periodic check: trims the heap; a re-exec past the soft memory limit or with too
/// many stuck handlers.
fn check_limits(
    host: &Host,
    generations: &Generations,
    soft_limit: &mut limits::SoftLimit,
) -> Option<Exit> {
    limits::trim_heap();
    let limit = generations.config.limit_memory_soft;
    if let Some(why) = soft_limit.check(limit, limits::rss_bytes(), std::time::Instant::now()) {
        return Some(Exit::Phoenix(why));
    }
    // A worker's handler past limit_time_cpu (measured in workers mode only).
    let cpu_limit = Duration::from_secs(generations.config.limit_time_cpu);
    if let Some(used) = host
        .http
        .inflight
        .max_handler_cpu()
        .filter(|used| !cpu_limit.is_zero() && *used > cpu_limit)
    {
        return Some(Exit::Phoenix(format!(
            "limit_time_cpu ({}s) exceeded: a handler used {:.1}s of CPU",
            cpu_limit.as_secs(),
            used.as_secs_f64()
        )));
    }
    let stuck = host.http.inflight.stuck();
    if stuck > 0 && stuck >= generations.config.limit_time_stuck as usize {
        return Some(Exit::Phoenix(format!(
            "{stuck} handlers are stuck past limit_time_real"
        )));
    }
    None
}

/// Waits for the HTTP service to drain and logs how it went; `None` if it failed (logged).
async fn drain(
    serving: tokio::task::JoinHandle<std::io::Result<http_server::DrainReport>>,
) -> Option<http_server::DrainReport> {
    let report = match serving.await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            tracing::error!(target: TARGET, "HTTP service failed: {e}");
            return None;
        }
        Err(e) => {
            tracing::error!(target: TARGET, "HTTP service task failed: {e}");
            return None;
        }
    };
    tracing::info!(
        target: TARGET,
        "HTTP service drained: {} request(s) were in flight, {}",
        report.in_flight,
        if report.drained { "all finished" } else { "some were cut at the drain timeout" }
    );
    Some(report)
}

/// Re-executes `exe` with the listening socket `listener`; returns only if that failed
/// (logged), and the caller serves on.
fn reexec(exe: Option<&Path>, listener: &TcpListener, metrics: &Metrics) {
    let Some(exe) = exe else {
        tracing::error!(target: TARGET, "re-exec impossible (executable unknown); serving on");
        return;
    };
    let args = phoenix::stripped_args(&std::env::args_os().collect::<Vec<_>>());
    let reexecs = metrics.service.reexecs.get() + 1;
    let err = phoenix::reexec(exe, &args, listener.as_fd(), reexecs);
    tracing::error!(target: TARGET, "re-exec of {} failed: {err}; serving on", exe.display());
}

/// SIGQUIT: logs every request in flight, and every handler stuck past its time limit.
fn dump(host: &Host) {
    let inflight = &host.http.inflight;
    let requests = inflight.snapshot();
    tracing::info!(target: TARGET, "SIGQUIT: {} request(s) in flight, {} stuck handler(s)", requests.len(), inflight.stuck());
    for (r, elapsed) in requests {
        tracing::info!(
            target: TARGET,
            "in flight: {} {} database {} for {:.3}s",
            r.method,
            r.path,
            r.db.as_deref().unwrap_or("-"),
            elapsed.as_secs_f64()
        );
    }
    for (r, elapsed) in inflight.stuck_snapshot() {
        tracing::info!(
            target: TARGET,
            "stuck handler: {} {} database {} for {:.3}s (answered 504, still running)",
            r.method,
            r.path,
            r.db.as_deref().unwrap_or("-"),
            elapsed.as_secs_f64()
        );
    }
}
