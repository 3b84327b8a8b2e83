//! The host of items 7 and 8 (swaps and re-execs): `test_swap` staged in an addons folder
//! of its own, where a swap installs the other release build (`v1`, `v2`) before the
//! SIGHUP; and the check of which build answers.

use crate::servers::{addon_source, stage_addon, Env, Kind, Server};
use inphms_test_support::http;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The host of items 7 and 8: `base`, `web` and `test_swap`, the latter from an addons
/// folder of its own (`--addons-path`), where a swap installs the other build.
pub(super) const SWAP_KIND: Kind = Kind::Host {
    load: "base,web,test_swap",
    access_log: true,
};

/// The release build `variant` (`v1`, `v2`) of `test_swap`, assembled by `cargo xtask bench`
/// in `target/release/bench-addons/test_swap-<variant>/`.
pub(super) fn swap_build(env: &Env, variant: &str) -> Result<PathBuf, String> {
    let lib = env
        .bin_dir
        .join("bench-addons")
        .join(format!("test_swap-{variant}"))
        .join("libtest_swap.so");
    if lib.is_file() {
        Ok(lib)
    } else {
        Err(format!(
            "{} is missing: `cargo xtask bench` builds it (cargo build --release -p test_swap --features {variant}, then a copy)",
            lib.display()
        ))
    }
}

/// Starts the host with `test_swap` v1 staged in `dir/addons` (and `extra` options); returns
/// it and the addon's folder, where [`crate::servers::install_library`] puts the next build.
pub(super) fn swap_server(
    env: &Env,
    dir: &Path,
    extra: &[&str],
) -> Result<(Server, PathBuf), String> {
    let addon = dir.join("addons").join("test_swap");
    stage_addon(
        &addon_source(&env.root, "test_swap"),
        &swap_build(env, "v1")?,
        &addon,
    )?;
    let mut args = vec![
        "--addons-path".to_owned(),
        dir.join("addons").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start_with(env, &SWAP_KIND, dir, &args)?;
    expect_version(&server, "v1")?;
    Ok((server, addon))
}

/// Checks that `/test_swap/version` answers `variant`.
pub(super) fn expect_version(server: &Server, variant: &str) -> Result<(), String> {
    let r = http::send(
        server.port,
        "GET",
        "/test_swap/version",
        &[],
        b"",
        Duration::from_secs(5),
    )
    .map_err(|e| format!("/test_swap/version: {e}"))?;
    if r.status == 200 && r.text() == variant {
        Ok(())
    } else {
        Err(format!(
            "/test_swap/version answered {} {:?}, expected {variant}; server log:\n{}",
            r.status,
            r.text(),
            server.log_tail()
        ))
    }
}
