//! The command registry: every command is one [`Command`] submitted with
//! `inventory::submit!` from its own file, plus the commands provided by addons.

use std::ffi::OsString;
use std::path::PathBuf;

/// A command of `inphms-host COMMAND`. Register one from its own file:
///
/// ```no_run
/// use inphms_host::cli::{Command, EarlyOptions};
/// use std::ffi::OsString;
///
/// inventory::submit! {
///     Command { name: "mycmd", help: "Does one thing.", run }
/// }
///
/// fn run(args: Vec<OsString>, early: &EarlyOptions) -> i32 {
///     println!("{} argument(s), {} addons folder(s)", args.len(), early.addons_path.len());
///     0
/// }
/// # fn main() {}
/// ```
pub struct Command {
    /// The name typed after `inphms-host`.
    pub name: &'static str,
    /// One line of description, shown by `inphms-host help`.
    pub help: &'static str,
    /// Runs the command with the arguments after its name; returns the exit code.
    pub run: fn(args: Vec<OsString>, early: &EarlyOptions) -> i32,
}

inventory::collect!(Command);

/// Registers a built-in command from its own file (the host's shorthand for the
/// `inventory::submit!` above): `register_command!("name", "One line of help.", run);`.
macro_rules! register_command {
    ($name:literal, $help:literal, $run:expr $(,)?) => {
        inventory::submit! {
            $crate::cli::Command { name: $name, help: $help, run: $run }
        }
    };
}
pub(crate) use register_command;

/// What is known before the command runs.
#[derive(Debug, Clone, Default)]
pub struct EarlyOptions {
    /// The configured addons folders: `--addons-path` given before the command, else the
    /// configuration's (file, default). `crate::modules::addons_paths` adds the built-in ones.
    pub addons_path: Vec<PathBuf>,
    /// The raw value of `--addons-path` given before the command, if any (the `server`
    /// command reads it as its own `--addons-path` flag).
    pub addons_path_arg: Option<OsString>,
}

/// The built-in commands, sorted by name.
pub fn builtins() -> Vec<&'static Command> {
    let mut all: Vec<&'static Command> = inventory::iter::<Command>.into_iter().collect();
    all.sort_by_key(|c| c.name);
    all
}

/// The built-in command `name`.
pub fn builtin(name: &str) -> Option<&'static Command> {
    inventory::iter::<Command>
        .into_iter()
        .find(|c| c.name == name)
}

/// Every command, built-in or provided by an addon of `early.addons_path`, as
/// `(name, help)` sorted by name; a built-in hides an addon command of the same name.
pub fn all_commands(early: &EarlyOptions) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = builtins()
        .into_iter()
        .map(|c| (c.name.to_owned(), c.help.to_owned()))
        .collect();
    for c in crate::modules::addon_commands(&early.addons_path) {
        if !all.iter().any(|(n, _)| *n == c.name) {
            let help = if c.help.is_empty() {
                format!("(addon {})", c.addon)
            } else {
                format!("{} (addon {})", c.help, c.addon)
            };
            all.push((c.name, help));
        }
    }
    all.sort();
    all
}
