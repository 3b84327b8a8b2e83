//! The command line of the `server` command, built with clap from the option table: every
//! value is taken as text and typed by the option table itself, so that flags, the file and
//! the environment are read and refused alike.

use super::error::{ConfigError, Origin};
use super::options::{Config, OPTIONS};
use super::value::{Input, Kind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::path::PathBuf;

/// The clap command of `inphms-host server`.
pub(crate) fn command() -> Command {
    let mut cmd = Command::new("server")
        .bin_name("inphms-host server")
        .about("Run the Inphms server.")
        .override_usage("inphms-host [--addons-path=PATHS] server [OPTIONS]")
        .no_binary_name(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("config")
                .short('c')
                .long("config")
                .value_name("PATH")
                .action(ArgAction::Set)
                .help("Config file (default: $INPHMS_RC, else ~/.inphmsrc)."),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Print the version and exit."),
        )
        .arg(
            Arg::new("save")
                .short('s')
                .long("save")
                .action(ArgAction::SetTrue)
                .help("Write the effective options to the config file."),
        );
    for def in OPTIONS {
        let Some(long) = def.spec.long else { continue };
        let mut arg = Arg::new(def.key)
            .long(long)
            .help_heading(heading(def.key))
            .aliases(def.spec.aliases)
            .help(def.help());
        if let Some(c) = def.spec.short {
            arg = arg.short(c);
        }
        arg = match (def.spec.negated, def.kind) {
            (true, _) => arg.action(ArgAction::SetTrue).overrides_with(def.key),
            (false, Kind::Bool) => arg
                .action(ArgAction::Append)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .value_name("BOOL"),
            (false, _) => arg
                .action(ArgAction::Append)
                .allow_negative_numbers(true)
                .value_name(def.spec.value_name),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The heading an option is listed under in `--help`, as Odoo's groups.
fn heading(key: &str) -> &'static str {
    match key {
        k if k.starts_with("http_") || k.starts_with("proxy_") || k == "max_content_length" => {
            "HTTP Service Configuration"
        }
        "dbfilter" | "list_db" => "Web interface Configuration",
        k if k.starts_with("db_") || k == "cron_db" => "Database related options",
        k if k.starts_with("log") || k.starts_with("syslog") => "Logging Configuration",
        k if k.starts_with("limit_") || k == "registry_lru_size" => "Multiprocessing options",
        "max_cron_threads" | "workers" | "worker_connections" => "Multiprocessing options",
        "dev_mode" => "Developers Options",
        _ => "Common options",
    }
}

/// The command line, parsed.
pub(crate) struct Parsed {
    matches: ArgMatches,
}

impl Parsed {
    /// Parses `args` (no program name).
    pub fn new(args: &[OsString]) -> Result<Parsed, ConfigError> {
        match command().try_get_matches_from(args) {
            Ok(matches) if matches.get_flag("version") => Err(ConfigError::Help(format!(
                "Inphms Server {}\n",
                crate::release::VERSION
            ))),
            Ok(matches) => Ok(Parsed { matches }),
            Err(e) => match e.kind() {
                clap::error::ErrorKind::DisplayHelp => Err(ConfigError::Help(e.to_string())),
                _ => {
                    let rendered = e.to_string();
                    let first = rendered.lines().next().unwrap_or("invalid command line");
                    Err(ConfigError::Usage {
                        message: first.trim_start_matches("error: ").to_owned(),
                    })
                }
            },
        }
    }

    /// `-c/--config`, if given.
    pub fn config(&self) -> Option<PathBuf> {
        self.matches.get_one::<String>("config").map(PathBuf::from)
    }

    /// `-s/--save`.
    pub fn save(&self) -> bool {
        self.matches.get_flag("save")
    }

    /// Sets every option given on the command line.
    pub fn apply(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        for def in OPTIONS {
            let Some(long) = def.spec.long else { continue };
            if self.matches.value_source(def.key) != Some(ValueSource::CommandLine) {
                continue;
            }
            let origin = Origin::Flag(format!("--{long}"));
            if def.spec.negated {
                if self.matches.get_flag(def.key) {
                    cfg.set(def.key, Input::Text("false"), &origin)?;
                }
                continue;
            }
            let values: Vec<String> = self
                .matches
                .get_many::<String>(def.key)
                .map(|v| v.cloned().collect())
                .unwrap_or_default();
            cfg.set(def.key, Input::Texts(&values), &origin)?;
        }
        Ok(())
    }
}
