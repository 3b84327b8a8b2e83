//! `inphms-host server` (Odoo's `odoo/cli/server.py`): the start-up sequence in Odoo's
//! order: root warning, configuration and logging, the `postgres` user refusal, the
//! configuration report, the pid file, then the service.

use super::command::EarlyOptions;
use crate::config::{Config, ConfigError};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

super::command::register_command!(
    "server",
    "Starts the Inphms server (the default command).",
    run
);

/// Log target of the start-up report.
const TARGET: &str = "inphms";

fn run(mut args: Vec<OsString>, early: &EarlyOptions) -> i32 {
    check_root_user();
    if let Some(path) = &early.addons_path_arg {
        args.splice(0..0, [OsString::from("--addons-path"), path.clone()]);
    }
    let config = match Config::parse(&args) {
        Ok(c) => c,
        Err(e) => return super::report_config_error(&e),
    };
    if let Err(e) = crate::netsvc::init(&config) {
        return super::report_config_error(&e);
    }
    if check_postgres_user(&config) {
        return 1;
    }
    report_configuration(&config);
    // A worker of workers mode leaves the pid file and the configuration warnings to its
    // master.
    let worker = crate::service::worker::Role::from_env() != crate::service::worker::Role::Server;
    if !worker {
        for warning in &config.warnings {
            tracing::warn!(target: "inphms.tools.config", "{warning}");
        }
    }
    let pidfile = config.pidfile.as_deref().filter(|_| !worker);
    let _pidfile = match pidfile.map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            return super::report_config_error(&ConfigError::Invalid {
                option: "pidfile".into(),
                value: format!(
                    "{:?}",
                    config
                        .pidfile
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                        .to_string()
                ),
                origin: config.origin("pidfile"),
                expected: format!(
                    "a file that can be written ({})",
                    crate::config::io_reason(&e)
                ),
            })
        }
    };
    crate::service::server::run(Arc::new(config), args)
}

/// Warns on stderr when running as root (a warning only, as Odoo).
fn check_root_user() {
    if nix::unistd::Uid::effective().is_root() {
        eprintln!("Running as user 'root' is a security risk.");
    }
}

/// Refuses the database user `postgres` (from the configuration, which includes `$PGUSER`).
fn check_postgres_user(config: &Config) -> bool {
    if config.db_user.as_deref() == Some("postgres") {
        eprintln!("Using the database user 'postgres' is a security risk, aborting.");
        return true;
    }
    false
}

/// Logs the version, the config file, the addons paths and the database coordinates.
fn report_configuration(config: &Config) {
    tracing::info!(target: TARGET, "Inphms version {}", crate::release::VERSION);
    if let Some(file) = config.config_file.as_deref().filter(|f| f.is_file()) {
        tracing::info!(target: TARGET, "Using configuration file at {}", file.display());
    }
    let paths: Vec<String> = crate::modules::addons_paths(&config.addons_path)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    tracing::info!(target: TARGET, "addons paths: {paths:?}");
    let or_default = |v: Option<String>| v.unwrap_or_else(|| "default".to_owned());
    tracing::info!(
        target: TARGET,
        "database: {}@{}:{}",
        or_default(config.db_user.clone()),
        or_default(config.db_host.clone()),
        or_default(config.db_port.map(|p| p.to_string())),
    );
}

/// The pid file: written atomically at start, removed when dropped if it still holds this
/// process's id.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> std::io::Result<PidFile> {
        let pid = std::process::id().to_string();
        crate::config::write_atomic(path, &pid, 0o644)?;
        tracing::debug!(target: TARGET, "pid file {} written (pid {pid})", path.display());
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
