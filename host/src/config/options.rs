//! The option table: every option defined once, with its type, default, command-line flag,
//! environment variable, check and help. The [`options!`] macro turns the table into the
//! [`Config`] struct, the list [`OPTIONS`] that drives the command line, the environment and
//! `--save`, and the typed setter and getter used when reading the file.
//!
//! Adding an option is adding one entry here.

use super::check;
use super::cidr::Cidr;
use super::error::{ConfigError, Origin};
use super::file::Format;
use super::paths;
use super::value::{Input, Kind, OptValue, Reject};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How an option is reached besides the `[options]` table of the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// The long flag, without `--`; `None` for a file-only option.
    pub long: Option<&'static str>,
    /// The short flag.
    pub short: Option<char>,
    /// Other long flags (hidden from the help).
    pub aliases: &'static [&'static str],
    /// The environment variable, between the file and the command line.
    pub env: Option<&'static str>,
    /// The flag takes no value and sets the option to false (`--no-http`).
    pub negated: bool,
    /// Written by `--save`.
    pub save: bool,
    /// The value placeholder in the help.
    pub value_name: &'static str,
}

impl Spec {
    /// An option with the flag `--long`.
    pub const fn flag(long: &'static str) -> Spec {
        Spec {
            long: Some(long),
            short: None,
            aliases: &[],
            env: None,
            negated: false,
            save: true,
            value_name: "VALUE",
        }
    }

    /// An option read from the file only.
    pub const fn file_only() -> Spec {
        Spec {
            long: None,
            ..Spec::flag("")
        }
    }

    pub const fn short(self, c: char) -> Spec {
        Spec {
            short: Some(c),
            ..self
        }
    }

    pub const fn aliases(self, aliases: &'static [&'static str]) -> Spec {
        Spec { aliases, ..self }
    }

    pub const fn env(self, var: &'static str) -> Spec {
        Spec {
            env: Some(var),
            ..self
        }
    }

    pub const fn negated(self) -> Spec {
        Spec {
            negated: true,
            ..self
        }
    }

    pub const fn no_save(self) -> Spec {
        Spec {
            save: false,
            ..self
        }
    }

    pub const fn value(self, value_name: &'static str) -> Spec {
        Spec { value_name, ..self }
    }
}

/// One option of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OptionDef {
    /// The key in `[options]` and the field of [`Config`].
    pub key: &'static str,
    /// The doc lines; the help.
    pub doc: &'static [&'static str],
    /// Flag, environment variable, saving.
    pub spec: Spec,
    /// The kind of flag the type takes.
    pub kind: Kind,
}

impl OptionDef {
    /// The help line.
    pub fn help(&self) -> String {
        self.doc
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Generates [`Config`], [`OPTIONS`], `Config::defaults`, `Config::set` and
/// `Config::get_toml` from the option table.
macro_rules! options {
    ($(
        $(#[doc = $doc:literal])+
        $key:ident : $ty:ty = $default:expr, $spec:expr, $check:expr;
    )+) => {
        /// The effective configuration: built-in defaults < config file < environment <
        /// command line. Fields are named as the keys of `[options]`.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )+
            /// The config file actually read (or written by `--save`), if any.
            pub config_file: Option<PathBuf>,
            /// Where `--save` writes: `-c`, else `$INPHMS_RC`, else `~/.inphmsrc`.
            pub(crate) rc_path: Option<PathBuf>,
            /// The sections of the file other than `[options]`.
            pub(crate) misc: toml::Table,
            /// Where each option that is not a default comes from.
            pub(crate) origins: BTreeMap<&'static str, Origin>,
            /// The form of the config file read, which `--save` keeps.
            pub(crate) format: Format,
            /// What reading the configuration found worth a warning (options with no
            /// effect, a key that looks like a typo), logged once at start.
            pub warnings: Vec<String>,
        }

        /// Every option, in table order.
        pub(crate) const OPTIONS: &[OptionDef] = &[$(
            OptionDef {
                key: stringify!($key),
                doc: &[$($doc),+],
                spec: $spec,
                kind: <$ty as OptValue>::KIND,
            },
        )+];

        impl Config {
            /// The built-in defaults, with no file, environment or command line.
            pub fn defaults() -> Config {
                Config {
                    $( $key: $default, )+
                    config_file: None,
                    rc_path: None,
                    misc: toml::Table::new(),
                    origins: BTreeMap::new(),
                    format: Format::Toml,
                    warnings: Vec::new(),
                }
            }

            /// Sets the option `key` from `input` read at `origin`; `Ok(false)` when no
            /// option has that key.
            pub(crate) fn set(
                &mut self,
                key: &str,
                input: Input<'_>,
                origin: &Origin,
            ) -> Result<bool, ConfigError> {
                match key {
                    $( stringify!($key) => {
                        let checked: Result<$ty, Reject> = ($check)(<$ty as OptValue>::parse(input));
                        self.$key = checked.map_err(|r| ConfigError::Invalid {
                            option: key.to_owned(),
                            value: r.value.unwrap_or_else(|| input.to_string()),
                            origin: origin.clone(),
                            expected: r.expected,
                        })?;
                        self.origins.insert(stringify!($key), origin.clone());
                        Ok(true)
                    } )+
                    _ => Ok(false),
                }
            }

            /// The value of the option `key` as `--save` writes it.
            pub(crate) fn get_toml(&self, key: &str) -> Option<toml::Value> {
                match key {
                    $( stringify!($key) => OptValue::to_toml(&self.$key), )+
                    _ => None,
                }
            }
        }
    };
}

const MIB: u64 = 1024 * 1024;

options! {
    /// Comma-separated list of folders holding addons; each must hold at least one addon
    /// (a folder with a __manifest__.toml). The built-in addons are always searched too.
    addons_path: Vec<PathBuf> = Vec::new(),
        Spec::flag("addons-path").value("PATHS"), check::addons_path;
    /// Comma-separated list of server-wide addons, loaded without a database.
    server_wide_modules: Vec<String> = vec!["base".into(), "web".into()],
        Spec::flag("load").value("MODULES"), check::server_wide_modules;
    /// Folder of the data: sessions, filestore.
    data_dir: PathBuf = paths::default_data_dir(),
        Spec::flag("data-dir").short('D').value("PATH"), check::none;
    /// Address the HTTP service listens on; empty means all interfaces.
    http_interface: String = String::new(),
        Spec::flag("http-interface").aliases(&["xmlrpc-interface"]).value("ADDRESS"), check::none;
    /// Port the HTTP service listens on.
    http_port: u16 = 8069,
        Spec::flag("http-port").short('p').aliases(&["xmlrpc-port"]).value("PORT"), check::port;
    /// Serve HTTP (--no-http disables the HTTP service).
    http_enable: bool = true,
        Spec::flag("no-http").aliases(&["no-xmlrpc"]).negated(), check::none;
    /// Trust the X-Forwarded-* headers of a reverse proxy.
    proxy_mode: bool = false,
        Spec::flag("proxy-mode"), check::none;
    /// Comma-separated networks of the proxies trusted in proxy mode; empty trusts any peer.
    proxy_trusted: Vec<Cidr> = Vec::new(),
        Spec::flag("proxy-trusted").value("CIDRS"), check::none;
    /// Serve Prometheus metrics at /metrics, to loopback clients and the proxy_trusted
    /// networks only (others get 403); off, /metrics is not found and nothing is recorded.
    metrics: bool = false,
        Spec::flag("metrics"), check::none;
    /// Seconds allowed to receive the headers of a request.
    http_header_timeout: u64 = 10,
        Spec::flag("http-header-timeout").value("SECONDS"), check::none;
    /// Seconds an idle keep-alive connection is kept open.
    http_keepalive_timeout: u64 = 60,
        Spec::flag("http-keepalive-timeout").value("SECONDS"), check::none;
    /// Most connections open at once; past it, the connection waiting longest for its
    /// client (idle keep-alive, slow headers, stalled body) is closed to make room. 0
    /// computes it from the soft limit of open files (RLIMIT_NOFILE): (limit - 64 -
    /// db_maxconn) x 3/4, at least 16: 64 descriptors for the log, the listener, the runtime,
    /// addon libraries and session files, db_maxconn for PostgreSQL, and a quarter of the
    /// rest for the files requests open (spooled bodies, streamed static files).
    http_max_connections: u64 = 0,
        Spec::flag("http-max-connections").value("COUNT"), check::none;
    /// Most websockets open at once; past it an upgrade is answered 503. A websocket keeps
    /// its HTTP connection (and is never closed to make room), so this must stay below
    /// http_max_connections (the server refuses to start otherwise); 0 is half of it (a
    /// websocket served by event callbacks costs a descriptor and a few KiB, no thread).
    websocket_max_connections: u64 = 0,
        Spec::flag("websocket-max-connections").value("COUNT"), check::none;
    /// Seconds a websocket stays open before the server closes it (4002, "Keep alive
    /// timeout"; the client reconnects, as with Odoo's bus); 0 never. Idle sockets are
    /// pinged meanwhile, and cut when the ping goes unanswered.
    websocket_keep_alive_timeout: u64 = 3600,
        Spec::flag("websocket-keep-alive-timeout").value("SECONDS"), check::none;
    /// Websocket messages a client may send in excess of one per websocket_rate_limit_delay
    /// (Odoo's rate limit: more than this many within this many delays closes the socket
    /// with 1013); 0 turns the limit off.
    websocket_rate_limit_burst: u64 = 10,
        Spec::flag("websocket-rate-limit-burst").value("COUNT"), check::none;
    /// Seconds between two websocket messages of a client, on average (see
    /// websocket_rate_limit_burst).
    websocket_rate_limit_delay: f64 = 0.2,
        Spec::flag("websocket-rate-limit-delay").value("SECONDS"), check::none;
    /// Seconds of silence from a websocket's client after which the server pings it; the
    /// client then has as long again to answer before its connection is cut. The time
    /// the server does not read the socket (its handler is behind) does not count.
    websocket_ping_interval: u64 = 30,
        Spec::flag("websocket-ping-interval").value("SECONDS"), check::none;
    /// Bytes of messages waiting to be written to one websocket, at most: a message that
    /// would go past it (its client reads too slowly) is refused and the socket closed
    /// with 1013; a loop handler's send waits for room instead (up to limit_time_real).
    /// A message alone in the queue is always accepted.
    websocket_send_buffer: u64 = 4 * MIB,
        Spec::flag("websocket-send-buffer").value("BYTES"), check::none;
    /// Bytes of messages waiting to be written to all websockets together, at most (as
    /// websocket_send_buffer).
    websocket_send_buffer_total: u64 = 256 * MIB,
        Spec::flag("websocket-send-buffer-total").value("BYTES"), check::none;
    /// Largest request body accepted, in bytes.
    max_content_length: u64 = 128 * MIB,
        Spec::flag("max-content-length").value("BYTES"), check::none;
    /// Request bodies larger than this many bytes are received into a temporary file under
    /// the data dir (a handler reads it mapped) instead of memory.
    http_body_spool: u64 = MIB,
        Spec::flag("http-body-spool").value("BYTES"), check::none;
    /// Seconds a request body may go without a byte before the request is answered 408 and
    /// its connection closed; 0 waits forever.
    http_body_timeout: u64 = 10,
        Spec::flag("http-body-timeout").value("SECONDS"), check::none;
    /// Bytes per second a request body must average once it has taken http_body_timeout
    /// seconds: it may take http_body_timeout seconds plus one per that many bytes received
    /// (Apache's RequestReadTimeout MinRate), else 408 and its connection closed; 0 is no
    /// minimum (http_body_timeout 0 turns both off).
    http_body_min_rate: u64 = 1024,
        Spec::flag("http-body-min-rate").value("BYTES"), check::none;
    /// Regular expression filtering the databases shown; %h is the host, %d the first part
    /// of the domain.
    dbfilter: String = String::new(),
        Spec::flag("db-filter").value("REGEXP"), check::dbfilter;
    /// List the databases (--no-database-list hides them).
    list_db: bool = true,
        Spec::flag("no-database-list").negated(), check::none;
    /// Milliseconds the list of databases read from PostgreSQL is kept before it is read
    /// again (the database choice of every request uses it); 0 reads it for every request.
    db_list_cache_ttl: u64 = 1000,
        Spec::flag("db-list-cache-ttl").value("MILLISECONDS"), check::none;
    /// Comma-separated databases to use.
    db_name: Vec<String> = Vec::new(),
        Spec::flag("database").short('d').env("PGDATABASE").value("NAMES"), check::none;
    /// Database user.
    db_user: Option<String> = None,
        Spec::flag("db_user").short('r').aliases(&["db-user"]).env("PGUSER").value("USER"), check::none;
    /// Database password.
    db_password: Option<String> = None,
        Spec::flag("db_password").short('w').aliases(&["db-password"]).env("PGPASSWORD").value("PASSWORD"), check::none;
    /// Database server host (a folder for a unix socket).
    db_host: Option<String> = None,
        Spec::flag("db_host").aliases(&["db-host"]).env("PGHOST").value("HOST"), check::none;
    /// Database server port.
    db_port: Option<u16> = None,
        Spec::flag("db_port").aliases(&["db-port"]).env("PGPORT").value("PORT"), check::opt_port;
    /// Database SSL mode: disable, allow, prefer, require, verify-ca or verify-full.
    db_sslmode: String = "prefer".into(),
        Spec::flag("db_sslmode").aliases(&["db-sslmode"]).value("MODE"), check::sslmode;
    /// Largest number of database connections in the pool.
    db_maxconn: u32 = 64,
        Spec::flag("db_maxconn").aliases(&["db-maxconn"]).value("COUNT"), check::positive;
    /// Folder of PostgreSQL's `pg_dump`, `psql` and `pg_restore` (the database manager's
    /// backups); empty finds them on `PATH`.
    pg_path: String = String::new(),
        Spec::flag("pg_path").aliases(&["pg-path"]).value("PATH"), check::none;
    /// Template of new databases.
    db_template: String = "template0".into(),
        Spec::flag("db-template").value("NAME"), check::non_empty;
    /// Database the cron runners listen on for wake-ups.
    cron_db: String = "postgres".into(),
        Spec::flag("cron-db").value("NAME"), check::non_empty;
    /// Where HTTP sessions are kept: "filesystem" (the data dir) or "postgresql" (a table
    /// in session_db, shared by every host on the same PostgreSQL).
    session_store: String = "filesystem".into(),
        Spec::flag("session-store").value("STORE"), check::session_store;
    /// Database of the "postgresql" session store; empty: the cron database (cron_db).
    session_db: String = String::new(),
        Spec::flag("session-db").value("NAME"), check::none;
    /// Comma-separated addons to install ("all" for all).
    init: Vec<String> = Vec::new(),
        Spec::flag("init").short('i').value("MODULES").no_save(), check::module_names;
    /// Comma-separated addons to update ("all" for all).
    update: Vec<String> = Vec::new(),
        Spec::flag("update").short('u').value("MODULES").no_save(), check::module_names;
    /// Do not load demonstration data.
    without_demo: bool = false,
        Spec::flag("without-demo"), check::none;
    /// File to write the process id to, removed at exit.
    pidfile: Option<PathBuf> = None,
        Spec::flag("pidfile").value("PATH"), check::none;
    /// File to write the log to, instead of stderr.
    logfile: Option<PathBuf> = None,
        Spec::flag("logfile").value("PATH"), check::none;
    /// Send the log to the local syslog (as Odoo: `Inphms Server X.Y:DB:LEVEL:TARGET:MESSAGE`,
    /// facility user) instead of stderr or the log file.
    syslog: bool = false,
        Spec::flag("syslog"), check::none;
    /// The socket of the local syslog daemon.
    syslog_socket: PathBuf = PathBuf::from("/dev/log"),
        Spec::flag("syslog-socket").value("PATH"), check::none;
    /// Log level preset: info, debug_rpc, warn, test, critical, runbot, debug_sql, error,
    /// debug, debug_rpc_answer or notset.
    log_level: String = "info".into(),
        Spec::flag("log-level").value("LEVEL"), check::log_level;
    /// Log level of a target prefix, as PREFIX:LEVEL (":LEVEL" for all); repeatable.
    log_handler: Vec<String> = vec![":INFO".into()],
        Spec::flag("log-handler").value("PREFIX:LEVEL"), check::log_handler;
    /// Stop after the initialization instead of serving.
    stop_after_init: bool = false,
        Spec::flag("stop-after-init").no_save(), check::none;
    /// HTTP worker processes (prefork, Odoo's `--workers`): a master process holds the
    /// listening socket and runs this many worker processes, plus one cron worker process;
    /// 0 serves from this one process (threaded).
    workers: u32 = 0,
        Spec::flag("workers").value("COUNT"), check::none;
    /// In workers mode, client connections an HTTP worker holds at once (nginx's name): at
    /// the limit it stops accepting, and another worker takes the next connection. 1 (the
    /// default) is Odoo's prefork isolation: one request per connection (`Connection:
    /// close`), so a worker that crashes loses only the request it was serving; more trades
    /// that isolation for keep-alive throughput. Upgraded connections (websockets) are not
    /// counted.
    worker_connections: u32 = 1,
        Spec::flag("worker-connections").value("COUNT"), check::positive;
    /// Number of cron runner threads.
    max_cron_threads: u32 = 2,
        Spec::flag("max-cron-threads").value("COUNT"), check::none;
    /// Memory (bytes) above which the server is recycled after the current request.
    limit_memory_soft: u64 = 2048 * MIB,
        Spec::flag("limit-memory-soft").value("BYTES"), check::none;
    /// Memory (bytes) the process cannot exceed.
    limit_memory_hard: u64 = 2560 * MIB,
        Spec::flag("limit-memory-hard").value("BYTES"), check::none;
    /// Memory (bytes) that the request bodies being served may hold in all, received or
    /// mapped from their spool files; past it a request is answered 503 with Retry-After (a
    /// body larger than all of it, 413); 0 is no limit.
    limit_memory_bodies: u64 = 256 * MIB,
        Spec::flag("limit-memory-bodies").value("BYTES"), check::none;
    /// Disk (bytes) that the spool files of the request bodies being served may take in
    /// all, under the data dir, charged as the bytes arrive; past it a request is answered
    /// 503 with Retry-After (a body larger than all of it, 413); 0 is no limit.
    limit_disk_bodies: u64 = 1024 * MIB,
        Spec::flag("limit-disk-bodies").value("BYTES"), check::none;
    /// CPU seconds allowed to a request.
    limit_time_cpu: u64 = 60,
        Spec::flag("limit-time-cpu").value("SECONDS"), check::none;
    /// Real seconds allowed to a request.
    limit_time_real: u64 = 120,
        Spec::flag("limit-time-real").value("SECONDS"), check::none;
    /// Real seconds allowed to a cron job; -1 uses limit_time_real, 0 is no limit.
    limit_time_real_cron: i64 = -1,
        Spec::flag("limit-time-real-cron").value("SECONDS"), check::none;
    /// Requests a worker serves before it is recycled.
    limit_request: u64 = 65536,
        Spec::flag("limit-request").value("COUNT"), check::none;
    /// In-process addon swaps (SIGHUP) before the server re-execs itself instead, freeing
    /// the library images that swaps keep mapped.
    limit_swaps: u32 = 16,
        Spec::flag("limit-swaps").value("COUNT"), check::none;
    /// Handlers still running in addon code after their request was answered 504 at
    /// limit_time_real: at this many, the server re-execs itself.
    limit_time_stuck: u32 = 4,
        Spec::flag("limit-time-stuck").value("COUNT"), check::none;
    /// Databases kept in the registry cache; 0 computes it from the memory limits.
    registry_lru_size: usize = 0,
        Spec::file_only(), check::none;
    /// Comma-separated developer features: all, reload, qweb, xml, werkzeug...
    dev_mode: Vec<String> = Vec::new(),
        Spec::flag("dev").value("FEATURES").no_save(), check::dev_mode;
    /// Master password of the database manager (file only).
    admin_passwd: String = "admin".into(),
        Spec::file_only(), check::none;
}
