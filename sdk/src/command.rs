//! Commands of the `inphms-host` command line declared by addons ([`#[command]`](macro@crate::command)),
//! with their arguments parsed by [`clap`], as the host's own commands are.
//!
//! A command takes either its raw arguments (`fn(&[String]) -> i32`) or a type implementing
//! [`clap::Parser`] (`fn(MyArgs) -> i32`). In the second form `inphms-host mycmd --help`
//! prints the command's options, and a bad argument gets clap's error and exit code 2,
//! before the function runs. The options the host reads for every command (`-c/--config`,
//! `-d/--database`, `--db_host`, `--db_port`, `--db_user`, `--db_password`, `--db_sslmode`,
//! `--log-level`, `--logfile`) are accepted too, listed under "Common options" unless the
//! addon's type declares them itself (to read them). The configuration they point to is
//! what [`Host::config`](crate::Host::config) reads in the command, as in a route.
//!
//! The SDK re-exports [`clap`]: implement [`clap::Parser`] by hand as below, or add
//! `clap = { version = "4", features = ["derive"] }` to the addon (cargo unifies it with the
//! SDK's) and `#[derive(clap::Parser)]`.
//!
//! ```
//! use inphms_sdk::clap::{Arg, ArgMatches, Command, CommandFactory, FromArgMatches, Parser};
//! use inphms_sdk::command;
//!
//! /// `inphms-host greet --name NAME [--times N]`.
//! struct GreetArgs {
//!     name: String,
//!     times: u32,
//! }
//!
//! impl CommandFactory for GreetArgs {
//!     fn command() -> Command {
//!         Command::new("greet")
//!             .arg(Arg::new("name").long("name").required(true).help("Who to greet"))
//!             .arg(
//!                 Arg::new("times")
//!                     .long("times")
//!                     .default_value("1")
//!                     .value_parser(inphms_sdk::clap::value_parser!(u32)),
//!             )
//!     }
//!     fn command_for_update() -> Command {
//!         Self::command()
//!     }
//! }
//!
//! impl FromArgMatches for GreetArgs {
//!     fn from_arg_matches(m: &ArgMatches) -> Result<Self, inphms_sdk::clap::Error> {
//!         Ok(GreetArgs {
//!             name: m.get_one::<String>("name").cloned().unwrap_or_default(),
//!             times: m.get_one::<u32>("times").copied().unwrap_or(1),
//!         })
//!     }
//!     fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), inphms_sdk::clap::Error> {
//!         *self = Self::from_arg_matches(m)?;
//!         Ok(())
//!     }
//! }
//!
//! impl Parser for GreetArgs {}
//!
//! /// Greets someone.
//! #[command(name = "greet")]
//! fn greet(args: GreetArgs) -> i32 {
//!     for _ in 0..args.times {
//!         println!("hello {}", args.name);
//!     }
//!     0
//! }
//! # fn main() {}
//! ```

use clap::{Arg, ArgAction, Command};
use std::io::Write;

/// The options the host reads for every command: (id, short, long, value name, help).
type Common = (
    &'static str,
    Option<char>,
    &'static str,
    &'static str,
    &'static str,
);
const COMMON: &[Common] = &[
    (
        "config",
        Some('c'),
        "config",
        "FILE",
        "The configuration file",
    ),
    (
        "database",
        Some('d'),
        "database",
        "DB",
        "Run the command in one transaction on DB",
    ),
    ("db_host", None, "db_host", "HOST", "PostgreSQL host"),
    ("db_port", None, "db_port", "PORT", "PostgreSQL port"),
    ("db_user", None, "db_user", "USER", "PostgreSQL user"),
    (
        "db_password",
        None,
        "db_password",
        "PASSWORD",
        "PostgreSQL password",
    ),
    (
        "db_sslmode",
        None,
        "db_sslmode",
        "MODE",
        "PostgreSQL SSL mode",
    ),
    ("log_level", None, "log-level", "LEVEL", "The log level"),
    ("logfile", None, "logfile", "FILE", "The log file"),
];

/// The clap command of an addon command `name`: the addon's arguments plus the common
/// options it does not declare itself.
fn command_of<T: clap::CommandFactory>(name: &'static str, help: &'static str) -> Command {
    let mut cmd = T::command()
        .name(name)
        .bin_name(format!("inphms-host {name}"));
    if cmd.get_about().is_none() && !help.is_empty() {
        cmd = cmd.about(help);
    }
    for &(id, short, long, value, text) in COMMON {
        let taken = cmd.get_arguments().any(|a| {
            a.get_id() == id
                || a.get_long() == Some(long)
                || (short.is_some() && a.get_short() == short)
        });
        if taken {
            continue;
        }
        let mut arg = Arg::new(id)
            .long(long)
            .value_name(value)
            .action(ArgAction::Set)
            .help(text)
            .help_heading("Common options");
        if let Some(s) = short {
            arg = arg.short(s);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Parses `args` for the command `name` (help line `help`) into `T` and runs `f` with it;
/// on `--help` or a bad argument, prints clap's text and returns clap's exit code (0 or 2)
/// without calling `f`. Called by the code `#[command]` generates.
#[doc(hidden)]
pub fn run<T: clap::Parser>(
    name: &'static str,
    help: &'static str,
    args: &[String],
    f: fn(T) -> i32,
) -> i32 {
    let mut cmd = command_of::<T>(name, help);
    let argv = std::iter::once(name.to_owned()).chain(args.iter().cloned());
    let parsed = cmd
        .try_get_matches_from_mut(argv)
        .and_then(|m| T::from_arg_matches(&m).map_err(|e| e.format(&mut cmd)));
    match parsed {
        Ok(value) => f(value),
        Err(e) => {
            let _ = e.print();
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            e.exit_code()
        }
    }
}
