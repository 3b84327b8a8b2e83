//! The command line (Odoo's `odoo/cli`): `inphms-host [--addons-path=PATHS] [COMMAND]
//! [OPTIONS]`.
//!
//! `--addons-path` given before the command is read first, so that commands provided by
//! addons can be found. No command means `server`; `-h`/`--help` alone means `help`. Commands
//! register themselves in one registry (a [`command::Command`] submitted to `inventory` by
//! one `register_command!` line in their file), so
//! adding a command is adding one file here.

mod addons;
pub mod command;
mod cron;
mod db;
pub mod help;
mod routes;
mod scaffold;
mod sdk_path;
mod server;

pub use command::{Command, EarlyOptions};

use crate::config::{Config, ConfigError};
use std::ffi::{OsStr, OsString};

/// Runs the command line `args` (program name first) and returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    crate::netsvc::init_early();
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let (early, args) = match take_early(args) {
        Ok(x) => x,
        Err(e) => return report_config_error(&e),
    };
    let (name, rest) = split_command(args);
    if let Some(cmd) = command::builtin(&name) {
        return (cmd.run)(rest, &early);
    }
    let addon_commands = crate::modules::addon_commands(&early.addons_path);
    if let Some(cmd) = addon_commands.iter().find(|c| c.name == name) {
        let rest: Vec<String> = rest
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let db = match command_database(&rest) {
            Ok(db) => db,
            Err(code) => return code,
        };
        // The command's own configuration (`-c`, environment, options among its arguments:
        // what `Host::config` reads there, as in a route) and logging; with a database, a
        // runtime too. The host lives until the command returns (its `api` leads the
        // addon's cursor back to it).
        let config = match command_config(&rest) {
            Ok(config) => config,
            Err(code) => return code,
        };
        let (runtime, host) = match &db {
            Some(_) => match command_runtime(1) {
                Ok(rt) => {
                    let host = crate::service::server::Host::new(config, Some(rt.handle().clone()));
                    (Some(rt), host)
                }
                Err(code) => return code,
            },
            None => (None, crate::service::server::Host::new(config, None)),
        };
        let code = crate::modules::run_addon_command(
            &early.addons_path,
            cmd,
            rest,
            host.api,
            db.as_deref().map(|db| (&*host.databases, db)),
        );
        drop(host);
        drop(runtime);
        return code;
    }
    let known: Vec<String> = command::all_commands(&early)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    eprintln!("Unknown command '{name}'");
    eprintln!("Known commands: {}", known.join(", "));
    1
}

/// The database of an addon command: `-d DB`, `-dDB`, `--database DB` or
/// `--database=DB` among its arguments (which the command still receives). With one, the
/// command runs in a transaction on it (see `modules::run_addon_command`).
fn command_database(args: &[String]) -> Result<Option<String>, i32> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value = if a == "-d" || a == "--database" {
            i += 1;
            match args.get(i) {
                Some(v) => Some(v.clone()),
                None => {
                    eprintln!("inphms-host: option '{a}' needs a database name");
                    return Err(2);
                }
            }
        } else if let Some(v) = a.strip_prefix("--database=") {
            Some(v.to_owned())
        } else {
            a.strip_prefix("-d")
                .filter(|v| !v.is_empty() && !a.starts_with("--"))
                .map(str::to_owned)
        };
        if let Some(v) = value {
            if v.is_empty() || v.contains(',') {
                eprintln!("inphms-host: option -d of a command takes one database name, got {v:?}");
                return Err(2);
            }
            found = Some(v);
        }
        i += 1;
    }
    Ok(found)
}

/// The configuration and logging of an addon command: the configuration file and
/// environment, with `-c FILE`, `--db_host`... among the command's arguments read too.
fn command_config(args: &[String]) -> Result<std::sync::Arc<Config>, i32> {
    const WITH_VALUE: &[&str] = &[
        "-c",
        "--config",
        "--db_host",
        "--db_port",
        "--db_user",
        "--db_password",
        "--db_sslmode",
        "--log-level",
        "--logfile",
    ];
    let mut options: Vec<OsString> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if WITH_VALUE.contains(&a) && i + 1 < args.len() {
            options.push(a.into());
            options.push(args[i + 1].clone().into());
            i += 1;
        } else if WITH_VALUE
            .iter()
            .any(|f| f.starts_with("--") && a.starts_with(&format!("{f}=")))
        {
            options.push(a.into());
        }
        i += 1;
    }
    let config = Config::parse(&options).map_err(|e| report_config_error(&e))?;
    crate::netsvc::init(&config).map_err(|e| report_config_error(&e))?;
    Ok(std::sync::Arc::new(config))
}

/// The runtime of a command run on a database (its PostgreSQL connections), with `threads`
/// workers; an error is said on stderr and is the exit code.
pub(crate) fn command_runtime(threads: usize) -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the runtime: {e}");
            1
        })
}

fn is_flag(a: &OsStr) -> bool {
    a.as_encoded_bytes().starts_with(b"-")
}

/// Takes `--addons-path=X` or `--addons-path X` when it comes first and a command follows.
fn take_early(mut args: Vec<OsString>) -> Result<(EarlyOptions, Vec<OsString>), ConfigError> {
    let mut raw: Option<OsString> = None;
    if let Some(first) = args.first().and_then(|a| a.to_str()) {
        if let Some(value) = first.strip_prefix("--addons-path=") {
            if args.get(1).is_some_and(|a| !is_flag(a)) {
                raw = Some(value.into());
                args.remove(0);
            }
        } else if first == "--addons-path" && args.get(2).is_some_and(|a| !is_flag(a)) {
            raw = Some(args[1].clone());
            args.drain(..2);
        }
    }
    let addons_path = match &raw {
        Some(value) => Config::addons_path_flag(value)?,
        None => Config::parse(&[])
            .map(|c| c.addons_path)
            .unwrap_or_default(),
    };
    let early = EarlyOptions {
        addons_path,
        addons_path_arg: raw,
    };
    Ok((early, args))
}

/// The command name and its arguments.
fn split_command(args: Vec<OsString>) -> (String, Vec<OsString>) {
    match args.first() {
        Some(a) if a == "-h" || a == "--help" => ("help".into(), args[1..].to_vec()),
        Some(a) if !is_flag(a) => (a.to_string_lossy().into_owned(), args[1..].to_vec()),
        _ => ("server".into(), args),
    }
}

/// Prints a configuration error (one line on stderr, or the help on stdout) and returns the
/// exit code.
pub fn report_config_error(e: &ConfigError) -> i32 {
    match e {
        ConfigError::Help(text) => print!("{text}"),
        _ => eprintln!("inphms-host: {e}"),
    }
    e.exit_code()
}
