//! `inphms-host sdk-path`: prints the folder of the `inphms-sdk` source this host was built
//! with (beside its built-in addons, or its source tree), which a scaffolded addon's
//! `[patch.crates-io]` points to; fails when the host has no SDK source at hand (then an
//! addon depends on the published `inphms-sdk` by version).

use super::command::EarlyOptions;
use std::ffi::OsString;

super::command::register_command!(
    "sdk-path",
    "Prints the folder of the inphms-sdk source this host was built with.",
    run
);

fn run(args: Vec<OsString>, _early: &EarlyOptions) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!(
            "usage: inphms-host sdk-path\n\nPrints the folder of the inphms-sdk source (version {}) \
             this host was built with.",
            crate::release::SDK_VERSION
        );
        return 0;
    }
    if let Some(extra) = args.first() {
        eprintln!(
            "sdk-path: takes no argument, got {:?}",
            extra.to_string_lossy()
        );
        return 2;
    }
    match super::scaffold::sdk_path() {
        Some(path) => {
            println!("{}", path.display());
            0
        }
        None => {
            eprintln!(
                "sdk-path: this host has no inphms-sdk source at hand; depend on the published \
                 inphms-sdk = \"{}\"",
                crate::release::SDK_VERSION
            );
            1
        }
    }
}
