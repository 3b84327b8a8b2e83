//! Build script of `inphms-host`: link options of the `inphms-host` binary.
//!
//! Relative relocations are packed (`-z pack-relative-relocs`, glibc's `DT_RELR`) when
//! the binary is built for the glibc it is built on and that glibc is 2.36 or newer (the
//! first to read `DT_RELR`; a binary linked so requires it). The host is a PIE with
//! ≈ 31,000 relative relocations: as `RELA` entries (24 bytes each) they were a 746 KB table
//! that the dynamic loader read at every start (and that stayed resident, ≈ 0.7 MiB of the
//! idle RSS); packed, a few KiB (BENCHMARKS.md, "Start-up and idle memory"). The binary stays
//! position-independent (ASLR) and `BIND_NOW`; only the table's encoding changes. Elsewhere
//! (another libc, a cross build, an older glibc) nothing is added.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("TARGET") == var("HOST");
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && native
        && glibc_reads_relr()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`: `glibc 2.36`) is 2.36 or
/// newer.
fn glibc_reads_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}
