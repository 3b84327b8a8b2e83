//! `inphms-host help` (Odoo's `help` command): lists every command, addon-provided ones
//! included, with one line of description.

use super::command::{all_commands, EarlyOptions};
use std::ffi::OsString;

super::command::register_command!("help", "Lists the available commands.", run);

fn run(_args: Vec<OsString>, early: &EarlyOptions) -> i32 {
    print!("{}", text(early));
    0
}

/// The help text.
pub fn text(early: &EarlyOptions) -> String {
    let commands = all_commands(early);
    let width = commands.iter().map(|(n, _)| n.len()).max().unwrap_or(0) + 2;
    let mut out = String::from(
        "Inphms CLI, use 'inphms-host server --help' for regular server options.\n\n\
         Available commands:\n",
    );
    for (name, help) in &commands {
        out.push_str(&format!("    {name:<width$}{help}\n"));
    }
    out.push_str("\nUse 'inphms-host <command> --help' for individual command help.\n");
    out
}
