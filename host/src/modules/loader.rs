//! Loading one addon library through the stable ABI, and every check made before the host
//! trusts it: the file settled and complete, the abi_stable layout, the SDK version, the
//! panic strategy, the declared name. Then its `post_load` hooks run.
//!
//! Each library is loaded from a private copy at a unique path (`<run dir>/<name>-<pid>-<n>.so`,
//! unlinked once mapped): glibc's `dlopen` returns an already-loaded image for a known path,
//! and abi_stable caches the first module per type in `load_from_file`, so both are avoided
//! (see `plugin-abi.md`). Libraries are never unloaded.
//!
//! `dlopen` of a truncated or half-written file (a `cp`, `scp` or `rsync --inplace` still at
//! work) kills the process with SIGBUS, so before the copy is opened: the source's size and
//! modification time must be the same before and after the copy, and the same over
//! [`SETTLE_WAIT`] when it was modified within [`QUIET`]; the copy must have the source's
//! size, and the copy's bytes must pass [`elf::check`]: every segment and section inside the
//! file. The copy is private, so what is checked is what is mapped.
//!
//! The wait is one for all the libraries of a load ([`Settled::wait_for`]: all stamped, one
//! sleep, all stamped again), not one per library one after another: after a build, a
//! start with N fresh libraries waits 150 ms, not N x 150 ms. A library whose stamp at its
//! copy is the one that held over that wait is settled; one that changed since (or loaded
//! without a [`Settled`]) waits on its own.

use super::elf;
use super::library::{Fingerprint, Stamp};
use abi_stable::library::{lib_header_from_path, LibraryError};
use inphms_sdk::abi::{AddonItems, AddonModuleRef, HostApiRef};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a recently modified library must keep its size and modification time before it
/// is loaded.
pub const SETTLE_WAIT: Duration = Duration::from_millis(150);

/// A library last modified longer ago than this is settled without [`SETTLE_WAIT`]: every
/// write updates the modification time, so no writer was at work for that long (and a wait
/// for each library would slow every start).
pub const QUIET: Duration = Duration::from_secs(2);

/// Libraries whose size and modification time held over one [`SETTLE_WAIT`] (see the
/// module documentation).
#[derive(Debug, Default)]
pub struct Settled {
    /// Each library and the stamp it had before and after the wait.
    stable: Vec<(PathBuf, Stamp)>,
}

impl Settled {
    /// Stamps each of `paths`; when some was modified within [`QUIET`], sleeps
    /// [`SETTLE_WAIT`] once and stamps them again. Those with the same stamp both times (or
    /// not modified recently: no wait needed) are settled. Blocks the calling thread for
    /// that one wait at most.
    pub fn wait_for<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Settled {
        let stamped: Vec<(PathBuf, Stamp)> = paths
            .into_iter()
            .filter_map(|p| Some((p.to_owned(), Stamp::of(p).ok()?)))
            .collect();
        if stamped.iter().any(|(_, s)| s.is_recent(QUIET)) {
            let started = Instant::now();
            std::thread::sleep(SETTLE_WAIT);
            tracing::debug!(target: "inphms.modules.loading",
                "waited {} ms once for {} library file(s) to settle",
                started.elapsed().as_millis(), stamped.len());
        } else {
            return Settled { stable: stamped };
        }
        let stable = stamped
            .into_iter()
            .filter(|(p, before)| Stamp::of(p).is_ok_and(|after| after == *before))
            .collect();
        Settled { stable }
    }

    /// Whether `path` held `stamp` over the wait.
    fn holds(&self, path: &Path, stamp: &Stamp) -> bool {
        self.stable.iter().any(|(p, s)| p == path && s == stamp)
    }
}

/// A library that passed every check.
#[derive(Clone, Copy)]
pub struct Library {
    /// The root module.
    pub module: AddonModuleRef,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("name", &self.module.name().as_str())
            .finish()
    }
}

/// Why a library was refused; the Display is the one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The library path (the original, not the private copy).
    pub path: PathBuf,
    /// What was expected and what was found.
    pub reason: String,
    /// Details (the full abi_stable report), logged at debug level.
    pub details: Option<String>,
    /// Whether the library is incompatible (as opposed to unreadable or failing post_load).
    pub incompatible: bool,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for LoadError {}

// global: a counter only for unique names of the private copies (no state shared by hosts)
static COPIES: AtomicU64 = AtomicU64::new(0);

/// The private copy of a library, removed when dropped (once mapped, or on a refusal).
struct PrivateCopy(PathBuf);

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The private copy's bytes, mapped rather than read: the checks and the fingerprint read
/// them from the page cache the copy was just written to, without a heap buffer the size of
/// the library to fault in, zero and fill at every load (≈ 9% of the start-up's CPU with
/// two addons; BENCHMARKS.md, "Start-up and idle memory"). An empty file maps to nothing.
fn map_copy(copy: &Path) -> std::io::Result<Mapped> {
    let file = std::fs::File::open(copy)?;
    if file.metadata()?.len() == 0 {
        return Ok(Mapped(None));
    }
    // SAFETY: the copy is private to this process (a unique name in its run directory,
    // written above and unlinked once mapped); nothing truncates or writes it while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    Ok(Mapped(Some(map)))
}

/// A mapped file (`None`: empty).
struct Mapped(Option<memmap2::Mmap>);

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Loads the library at `path` for the addon `name`, checks it, and returns it with its
/// items and the fingerprint of the bytes loaded. `post_load` is not run here: see [`init`].
/// A library modified within [`QUIET`] waits [`SETTLE_WAIT`] on its own: to load several,
/// see [`load_settled`].
pub fn load(
    name: &str,
    path: &Path,
    run_dir: &Path,
) -> Result<(Library, AddonItems, Fingerprint), LoadError> {
    load_settled(name, path, run_dir, &Settled::default())
}

/// [`load`], with no wait for a library that `settled` found stable with the stamp it has at
/// its copy.
pub fn load_settled(
    name: &str,
    path: &Path,
    run_dir: &Path,
    settled: &Settled,
) -> Result<(Library, AddonItems, Fingerprint), LoadError> {
    let fail = |reason: String, incompatible: bool| LoadError {
        path: path.to_owned(),
        reason,
        details: None,
        incompatible,
    };
    std::fs::create_dir_all(run_dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", run_dir.display()), false))?;
    let copy = PrivateCopy(run_dir.join(format!(
        "{name}-{}-{}{}",
        std::process::id(),
        COPIES.fetch_add(1, Ordering::Relaxed),
        std::env::consts::DLL_SUFFIX
    )));
    let before = Stamp::of(path).map_err(|e| fail(format!("cannot be read: {e}"), false))?;
    std::fs::copy(path, &copy.0)
        .map_err(|e| fail(format!("cannot copy to {}: {e}", copy.0.display()), false))?;
    let bytes = map_copy(&copy.0)
        .map_err(|e| fail(format!("cannot read {}: {e}", copy.0.display()), false))?;
    let after = Stamp::of(path).map_err(|e| fail(format!("cannot be read: {e}"), false))?;
    if after != before || bytes.len() as u64 != before.len {
        return Err(fail(
            format!(
                "is being written: it changed while it was copied ({} bytes before, {} after, \
                 {} copied); it loads once it has stopped changing",
                before.len,
                after.len,
                bytes.len()
            ),
            false,
        ));
    }
    elf::check(&bytes).map_err(|e| fail(e.to_string(), e.is_foreign()))?;
    if before.is_recent(QUIET) && !settled.holds(path, &before) {
        std::thread::sleep(SETTLE_WAIT);
        let later = Stamp::of(path).map_err(|e| fail(format!("cannot be read: {e}"), false))?;
        if later != before {
            return Err(fail(
                format!(
                    "is being written: it changed within {} ms of its copy ({} bytes, then {}); \
                     it loads once it has stopped changing",
                    SETTLE_WAIT.as_millis(),
                    before.len,
                    later.len
                ),
                false,
            ));
        }
    }
    let fingerprint = Fingerprint::from_bytes(&before, &bytes);
    drop(bytes);
    let header = lib_header_from_path(&copy.0);
    // Mapped (or failed): the copy is no longer needed on disk.
    drop(copy);
    let header = header.map_err(|e| library_error(path, e))?;
    // The version first: a library of another SDK line is refused as such, not as the
    // layout differences that come with it.
    let declared_version = header.version_strings().version.as_str();
    check_sdk_version(declared_version).map_err(|r| fail(r, true))?;
    let module = header
        .init_root_module::<AddonModuleRef>()
        .map_err(|e| library_error(path, e))?;
    if !panic_unwind(&module) {
        return Err(fail(
            "built with panic = \"abort\"; expected panic = \"unwind\" (a panic in a handler \
             would kill the server): remove `panic = \"abort\"` from the addon's cargo profile"
                .into(),
            true,
        ));
    }
    // The root module's own record of its version, checked again (it is the one shown).
    check_sdk_version(module.sdk_version().as_str()).map_err(|r| fail(r, true))?;
    let declared = module.name().as_str();
    if declared != name {
        return Err(fail(
            format!(
                "declares the name '{declared}', expected '{name}' (its folder name): rename \
                 the folder or set `inphms_sdk::addon!(name = \"{name}\")`"
            ),
            true,
        ));
    }
    let items = (module.items())();
    Ok((Library { module }, items, fingerprint))
}

/// Runs the addon's `post_load` hooks, handing it the host's services (`host`: the host
/// API, which lives above this layer and is given by the caller).
pub fn init(name: &str, path: &Path, library: &Library, host: HostApiRef) -> Result<(), LoadError> {
    let outcome = (library.module.init())(host);
    match outcome.error.into_option() {
        None => Ok(()),
        Some(e) => Err(LoadError {
            path: path.to_owned(),
            // A panic's message is generic ("Internal Server Error"): say what it was.
            reason: if e.kind == inphms_sdk::abi::ErrorKind::Panic {
                format!("post_load of '{name}' {}", e.debug)
            } else {
                format!("post_load of '{name}' failed: {}", e.message)
            },
            details: (!e.debug.is_empty()).then(|| e.debug.to_string()),
            incompatible: false,
        }),
    }
}

fn panic_unwind(module: &AddonModuleRef) -> bool {
    module.panic_unwind()
}

/// Checks that an addon built with SDK `version` can run in this host (semver for addons):
/// the same line (`0.minor` while 0.x, else the major), and, from 1.0, a minor not newer
/// than the host's. Any patch release of the line is accepted: its layout is then checked
/// field by field, and an addon built with a newer patch runs when it matches.
pub fn check_sdk_version(version: &str) -> Result<(), String> {
    check_sdk_version_against(crate::release::SDK_VERSION, version)
}

fn check_sdk_version_against(host: &str, version: &str) -> Result<(), String> {
    let host = semver::Version::parse(host)
        .map_err(|e| format!("the host's SDK version '{host}' is not a version number ({e})"))?;
    let addon = semver::Version::parse(version).map_err(|e| {
        format!("declares SDK version '{version}', which is not a version number ({e})")
    })?;
    let compatible = if host.major == 0 {
        addon.major == 0 && addon.minor == host.minor
    } else {
        addon.major == host.major && addon.minor <= host.minor
    };
    if !compatible {
        return Err(format!(
            "SDK version mismatch: built with inphms-sdk {addon}, the host's is {host} \
             (an addon needs the same {}): rebuild the addon against this SDK",
            if host.major == 0 {
                "0.minor, any patch".to_owned()
            } else {
                format!("major, a minor up to {}", host.minor)
            }
        ));
    }
    Ok(())
}

fn library_error(path: &Path, e: LibraryError) -> LoadError {
    let (reason, details, incompatible) = match &e {
        LibraryError::OpenError { err, .. } => (
            format!("cannot be loaded as a shared library: {err}"),
            None,
            false,
        ),
        LibraryError::GetSymbolError { .. } => (
            "is not an Inphms addon library: it exports no root module \
             (expected `inphms_sdk::addon!()` in its lib.rs)"
                .to_owned(),
            None,
            true,
        ),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => (
            format!(
                "SDK version mismatch: built with inphms-sdk {actual_version}, the host's is \
                 {expected_version}: rebuild the addon against this SDK"
            ),
            None,
            true,
        ),
        LibraryError::AbiInstability(_) => {
            let full = e.to_string();
            (
                format!(
                    "ABI layout differs from the host's inphms-sdk {}: {}; rebuild the addon \
                     against this SDK",
                    crate::release::SDK_VERSION,
                    abi_summary(&full)
                ),
                Some(full),
                true,
            )
        }
        other => (other.to_string().trim().replace('\n', " "), None, true),
    };
    LoadError {
        path: path.to_owned(),
        reason,
        details,
        incompatible,
    }
}

/// The useful tail of an abi_stable layout report, on one line: the type and field that
/// differ, what differs, what was expected and what was found.
///
/// The report ends with the path to the first difference ("N error(s)inside:", then a
/// `field_name:` and `type:` per level, the last being the differing field): the type is
/// the one holding that field (the level before it), the field its name.
pub fn abi_summary(report: &str) -> String {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let mut error = None;
    let mut expected = None;
    let mut found = None;
    for (i, line) in lines.iter().enumerate() {
        let value = |rest: &str| -> String {
            if rest.trim().is_empty() {
                lines.get(i + 1).map(|s| s.trim()).unwrap_or("").to_owned()
            } else {
                rest.trim().to_owned()
            }
        };
        if let Some(rest) = line.strip_prefix("Error:") {
            error = Some(value(rest));
        } else if let Some(rest) = line.strip_prefix("Expected:") {
            expected = Some(value(rest));
        } else if let Some(rest) = line.strip_prefix("Found:") {
            found = Some(value(rest));
        }
    }
    let mut parts = Vec::new();
    let path = difference_path(&lines);
    if let Some((field, _)) = path.last() {
        if let Some((_, holder)) = path.len().checked_sub(2).and_then(|i| path.get(i)) {
            parts.push(format!("type '{holder}'"));
        }
        parts.push(format!("field '{field}'"));
    }
    parts.extend(error);
    parts.extend(expected.map(|e| format!("expected {e}")));
    parts.extend(found.map(|f| format!("found {f}")));
    if parts.is_empty() {
        report
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("layout mismatch")
            .trim()
            .to_owned()
    } else {
        parts.join(", ")
    }
}

/// The `(field, type)` levels of the report's last path to a difference (after the last
/// "N error(s)inside:" with N > 0, up to the layouts that follow it).
fn difference_path<'r>(lines: &[&'r str]) -> Vec<(&'r str, &'r str)> {
    let start = lines.iter().rposition(|l| {
        l.strip_suffix("error(s)inside:")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n > 0)
    });
    let Some(start) = start else {
        return Vec::new();
    };
    let mut path = Vec::new();
    let mut field = None;
    for line in &lines[start + 1..] {
        if line.starts_with("Layout of ") || line.starts_with("Error:") {
            break;
        }
        if let Some(name) = line.strip_prefix("field_name:") {
            field = Some(name.trim());
        } else if let (Some(ty), Some(name)) = (line.strip_prefix("type:"), field.take()) {
            path.push((name, ty.trim()));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of abi_stable's report for `test_abi_break` (a root-module field of another
    /// type), and one for a field of a type deeper in the tree.
    #[test]
    fn the_summary_names_the_type_and_the_field() {
        let report = "0 error(s)inside:\n    <other>\n    field_name:0\n    type:AddonModule\n\
            1 error(s)inside:\n    <other>\n    field_name:0\n    type:AddonModule\n    \
            size:64 align:8\n    field_name:panic_unwind\n    type:u64\n\
            Layout of expected type:\n    type:bool\n\
            Error:mismatched type\nExpected:\n    bool\nFound:\n    u64\n";
        assert_eq!(
            abi_summary(report),
            "type 'AddonModule', field 'panic_unwind', mismatched type, expected bool, found u64"
        );
        let deeper = "1 error(s)inside:\n    <other>\n    field_name:0\n    type:AddonModule\n\
            field_name:items\n    type:extern \"C\" fn() -> AddonItems\n\
            field_name:routes\n    type:RVec<RouteDescriptor>\n\
            field_name:0\n    type:RouteDescriptor\n\
            field_name:blocking\n    type:u32\n\
            Error:mismatched type\nExpected:\n    bool\nFound:\n    u32\n";
        assert_eq!(
            abi_summary(deeper),
            "type 'RouteDescriptor', field 'blocking', mismatched type, expected bool, found u32"
        );
    }

    /// Semver for addons: any patch of the host's line, not another line; from 1.0, a
    /// minor up to the host's. A mismatch says it is one.
    #[test]
    fn newer_patches_of_the_same_line_are_accepted() {
        for (host, addon) in [("0.2.0", "0.2.1"), ("0.2.3", "0.2.0"), ("0.2.0", "0.2.0")] {
            assert_eq!(
                check_sdk_version_against(host, addon),
                Ok(()),
                "{host} {addon}"
            );
        }
        for (host, addon) in [("1.2.0", "1.1.9"), ("1.2.0", "1.2.7")] {
            assert_eq!(
                check_sdk_version_against(host, addon),
                Ok(()),
                "{host} {addon}"
            );
        }
        for (host, addon) in [
            ("0.2.0", "0.3.0"),
            ("0.2.5", "0.1.9"),
            ("0.2.0", "1.2.0"),
            ("1.2.0", "1.3.0"),
            ("1.2.0", "2.0.0"),
        ] {
            let e = check_sdk_version_against(host, addon).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "SDK version mismatch: built with inphms-sdk {addon}, the host's is {host}"
                )),
                "{e}"
            );
        }
        assert!(check_sdk_version_against("0.2.0", "x")
            .unwrap_err()
            .contains("not a version number"));
    }

    /// Ten libraries just written are waited for once together, not ten times; one that
    /// changed after the wait is not settled (its load waits on its own).
    #[test]
    fn fresh_libraries_are_waited_for_once_together() {
        let t = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..10)
            .map(|i| {
                let p = t.path().join(format!("lib{i}.so"));
                std::fs::write(&p, vec![0u8; 100 + i]).unwrap();
                p
            })
            .collect();
        let started = Instant::now();
        let settled = Settled::wait_for(paths.iter().map(PathBuf::as_path));
        let took = started.elapsed();
        assert!(took >= SETTLE_WAIT, "no wait for fresh files: {took:?}");
        // One wait of 150 ms and 20 stats; ten waits would be 1.5 s (a generous bound for
        // a busy machine, that ten sleeps cannot meet).
        assert!(took < SETTLE_WAIT * 10, "{took:?}");
        for p in &paths {
            assert!(settled.holds(p, &Stamp::of(p).unwrap()), "{}", p.display());
        }
        std::fs::write(&paths[0], b"rewritten").unwrap();
        assert!(!settled.holds(&paths[0], &Stamp::of(&paths[0]).unwrap()));
        assert!(!Settled::default().holds(&paths[1], &Stamp::of(&paths[1]).unwrap()));

        // Files not modified within QUIET: no wait, all settled.
        let old = std::time::SystemTime::now() - QUIET * 2;
        for p in &paths {
            std::fs::File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_modified(old))
                .unwrap();
        }
        let settled = Settled::wait_for(paths.iter().map(PathBuf::as_path));
        for p in &paths {
            assert!(settled.holds(p, &Stamp::of(p).unwrap()));
        }
    }

    #[test]
    fn a_truncated_library_is_refused_before_dlopen_and_its_copy_removed() {
        let t = tempfile::tempdir().unwrap();
        // The C library mapped into this test process: a real shared library.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let real = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.starts_with('/') && p.contains(".so"))
            .unwrap();
        let bytes = std::fs::read(real).unwrap();
        let lib = t.path().join("libhalf.so");
        std::fs::write(&lib, &bytes[..bytes.len() / 2]).unwrap();
        let run_dir = t.path().join("run");
        let e = load("half", &lib, &run_dir).unwrap_err();
        assert_eq!(e.path, lib);
        assert!(
            e.reason.starts_with("is truncated or damaged: segment "),
            "{e}"
        );
        assert!(
            e.reason.ends_with(&format!(
                "past the end of the file ({} bytes)",
                bytes.len() / 2
            )),
            "{e}"
        );
        assert!(!e.incompatible);
        assert_eq!(
            std::fs::read_dir(&run_dir).unwrap().count(),
            0,
            "copy removed"
        );
        let missing = load("gone", &t.path().join("libgone.so"), &run_dir).unwrap_err();
        assert!(missing.reason.starts_with("cannot be read: "), "{missing}");
    }
}
