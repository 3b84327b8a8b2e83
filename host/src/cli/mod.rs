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
pub mod help;
mod scaffold;
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
        let rest = rest
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return crate::modules::run_addon_command(
            &early.addons_path,
            cmd,
            rest,
            command_host().api,
        );
    }
    let known: Vec<String> = command::all_commands(&early)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    eprintln!("Unknown command '{name}'");
    eprintln!("Known commands: {}", known.join(", "));
    1
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

/// The host an addon command runs in: the default configuration (its `[options]` were not
/// read; `Host::config` finds nothing) and no runtime of its own.
fn command_host() -> crate::service::server::Host {
    let config = std::sync::Arc::new(crate::config::Config::defaults());
    crate::service::server::Host::new(config, None)
}
