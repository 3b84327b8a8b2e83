//! Addons (Odoo's `odoo/modules`): discovery on the addons paths, manifests, dependency
//! order, compiled-library location, stable-ABI loading and the checks before trust. The
//! host services handed to addons at load (`HostApiRef`) come from the caller: they are the
//! `host_api` layer's, above this one.
//!
//! [`load_addons`] is the entry point of the server; [`addon_commands`] and
//! [`run_addon_command`] serve the command line.

pub mod elf;
pub mod graph;
pub mod library;
pub mod loader;
pub mod loading;
pub mod manifest;
pub mod module;
pub mod registry;
pub mod signaling;

use abi_stable::std_types::RVec;
use inphms_sdk::abi::{AddonItems, HostApiRef, Invocation, ItemKind};
use library::LibraryState;
use loader::{Library, LoadError};
use manifest::Manifest;
use module::AddonSet;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// An addon whose library is loaded, checked and initialised.
#[derive(Debug)]
pub struct LoadedAddon {
    /// The technical name.
    pub name: String,
    /// The addon folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// The library file it was loaded from.
    pub library_path: PathBuf,
    /// The loaded library.
    pub library: Library,
    /// What it declares.
    pub items: AddonItems,
    /// The library file's identity when it was loaded (to tell a rebuilt one).
    pub fingerprint: library::Fingerprint,
}

/// The outcome of loading a set of addons.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The addons loaded, in dependency order.
    pub loaded: Vec<LoadedAddon>,
    /// The addons refused, with the reason (not logged: see [`LoadReport::log_refused`]).
    pub refused: Vec<(String, String)>,
    /// The addons of a previous generation kept as they were (see [`load_addons_reusing`]).
    pub reused: Vec<std::sync::Arc<LoadedAddon>>,
    /// The dependency order of the addons that could be ordered.
    pub order: Vec<String>,
}

impl LoadReport {
    /// Every addon of the new generation, in dependency order: the reused ones and the
    /// newly loaded ones.
    pub fn into_generation(self) -> Vec<std::sync::Arc<LoadedAddon>> {
        let mut all: Vec<std::sync::Arc<LoadedAddon>> = self.reused;
        all.extend(self.loaded.into_iter().map(std::sync::Arc::new));
        let order = self.order;
        all.sort_by_key(|a| {
            order
                .iter()
                .position(|n| *n == a.name)
                .unwrap_or(usize::MAX)
        });
        all
    }

    /// Logs each refusal, one line each.
    pub fn log_refused(&self) {
        for (name, reason) in &self.refused {
            tracing::error!(target: "inphms.modules.loading", "addon '{name}' refused: {reason}");
        }
    }
}

/// Warns once about every addon on the paths whose manifest or dependencies are broken,
/// except those of `names`, whose load refuses them with their own line (nothing needs the
/// others yet; they are skipped).
pub fn report_broken(set: &AddonSet, names: &[String]) {
    let all: Vec<String> = set.addons.keys().cloned().collect();
    let (_, errors) = graph::order_each(set, &all);
    for (root, e) in errors {
        if !names.contains(&root) {
            tracing::warn!(target: "inphms.modules", "addon '{root}' skipped: {e}");
        }
    }
}

/// Loads `names` and their dependencies in dependency order: each library is located,
/// loaded from a private copy in `run_dir`, checked, and its `post_load` run.
///
/// An addon that cannot be loaded (a broken manifest, a missing dependency or a cycle, a
/// library missing or refused) is logged in one line; it and the addons depending on it
/// are skipped, and the rest load. Each addon is handed `host`, the host's services.
pub fn load_addons(
    set: &AddonSet,
    names: &[String],
    run_dir: &Path,
    host: HostApiRef,
) -> LoadReport {
    let (report, _) = load_addons_reusing(set, names, run_dir, &[], host);
    report.log_refused();
    report
}

/// [`load_addons`], reusing the addons of `previous` whose library is unchanged (same path
/// and same bytes): only new addons and rebuilt libraries are loaded. Returns the report
/// (whose refusals are not logged yet) and the names of the addons (re)loaded.
pub fn load_addons_reusing(
    set: &AddonSet,
    names: &[String],
    run_dir: &Path,
    previous: &[std::sync::Arc<LoadedAddon>],
    host: HostApiRef,
) -> (LoadReport, Vec<String>) {
    let (order, unordered) = graph::order_each(set, names);
    let mut report = LoadReport::default();
    let mut fresh = Vec::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    for (name, e) in unordered {
        report.refused.push((name, e.to_string()));
    }
    // Each library located once; those found are stamped and, if any was just modified,
    // waited for once together (not `SETTLE_WAIT` each, one after another).
    let located: Vec<Option<LibraryState>> = order
        .iter()
        .map(|name| {
            let (dir, manifest) = set.get(name).map(|a| (&a.dir, &a.manifest))?;
            Some(library::locate(name, dir, manifest.as_ref().ok()?))
        })
        .collect();
    let settled =
        loader::Settled::wait_for(located.iter().flatten().filter_map(LibraryState::path));
    for (name, state) in order.iter().zip(located) {
        let name = name.clone();
        let (Some((dir, Ok(manifest))), Some(state)) =
            (set.get(&name).map(|a| (&a.dir, &a.manifest)), state)
        else {
            // Unreachable: ordered addons exist and have a manifest.
            continue;
        };
        if let Some(dep) = manifest.depends.iter().find(|d| broken.contains(*d)) {
            let reason = format!("depends on '{dep}', which was refused");
            broken.insert(name.clone());
            report.refused.push((name, reason));
            continue;
        }
        if let Some(old) = previous.iter().find(|p| p.name == name) {
            if state.path() == Some(old.library_path.as_path())
                && old.fingerprint.matches(&old.library_path)
            {
                report.reused.push(std::sync::Arc::clone(old));
                continue;
            }
        }
        match load_one(&name, dir, manifest, state, run_dir, &settled, host) {
            Ok(loaded) => {
                fresh.push(name.clone());
                report.loaded.push(loaded)
            }
            Err(reason) => {
                broken.insert(name.clone());
                report.refused.push((name, reason));
            }
        }
    }
    report.order = order;
    (report, fresh)
}

/// The addons of `names` (and their dependencies) that a reload would load: new ones, and
/// those whose library moved or changed bytes since `previous` loaded them. Those that
/// cannot be ordered are left out (a load refuses them).
pub fn changed_addons(
    set: &AddonSet,
    names: &[String],
    previous: &[std::sync::Arc<LoadedAddon>],
) -> Vec<String> {
    let (order, _) = graph::order_each(set, names);
    order
        .into_iter()
        .filter(|name| {
            let Some(old) = previous.iter().find(|p| &p.name == name) else {
                return true;
            };
            let Some((dir, Ok(manifest))) = set.get(name).map(|a| (&a.dir, &a.manifest)) else {
                return true;
            };
            let current = library::locate(name, dir, manifest);
            current.path() != Some(old.library_path.as_path())
                || !old.fingerprint.matches(&old.library_path)
        })
        .collect()
}

/// Loads, checks and initialises one addon whose library was located (`state`).
fn load_one(
    name: &str,
    dir: &Path,
    manifest: &Manifest,
    state: LibraryState,
    run_dir: &Path,
    settled: &loader::Settled,
    host: HostApiRef,
) -> Result<LoadedAddon, String> {
    let path = match state {
        LibraryState::Built(p) => p,
        LibraryState::Stale(p) => {
            tracing::warn!(target: "inphms.modules.loading", "addon '{name}': library {} is older than its sources; loading it anyway", p.display());
            p
        }
        LibraryState::Missing(tried) => {
            let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "no compiled library; tried {}; build it with {}",
                tried.join(", "),
                library::build_hint(name, dir)
            ));
        }
    };
    let log_err = |e: LoadError| {
        if let Some(details) = &e.details {
            tracing::debug!(target: "inphms.modules.loading", "addon '{name}' details: {details}");
        }
        e.to_string()
    };
    let (library, items, fingerprint) =
        loader::load_settled(name, &path, run_dir, settled).map_err(log_err)?;
    tracing::info!(target: "inphms.modules.loading", "loading addon {name} ({})", path.display());
    loader::init(name, &path, &library, host).map_err(log_err)?;
    Ok(LoadedAddon {
        name: name.to_owned(),
        dir: dir.to_owned(),
        manifest: manifest.clone(),
        library_path: path,
        library,
        items,
        fingerprint,
    })
}

/// The folder of the addons shipped with the host (`base`, `web`), always searched after the
/// configured addons paths, as Odoo always searches `odoo/addons`. It is the first of:
/// `$INPHMS_ADDONS_ROOT`; an `addons` folder holding `base/__manifest__.toml` next to the
/// executable or in a folder above it (a cargo `target/` layout or an installation
/// prefix); the source tree the host was built from.
pub fn builtin_addons_dir() -> Option<PathBuf> {
    let holds_base = |d: &Path| d.join("base").join(manifest::MANIFEST_NAME).is_file();
    if let Some(dir) = std::env::var_os("INPHMS_ADDONS_ROOT").map(PathBuf::from) {
        return holds_base(&dir).then_some(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        for ancestor in exe.ancestors().skip(1) {
            for candidate in [
                ancestor.join("addons"),
                ancestor.join("share/inphms/addons"),
            ] {
                if holds_base(&candidate) {
                    return Some(candidate);
                }
            }
        }
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../addons");
    holds_base(&source).then(|| source.canonicalize().unwrap_or(source))
}

/// The addons paths searched: the configured ones, then [`builtin_addons_dir`].
pub fn addons_paths(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut paths = configured.to_vec();
    if let Some(builtin) = builtin_addons_dir() {
        if !paths.iter().any(|p| same_dir(p, &builtin)) {
            paths.push(builtin);
        }
    }
    paths
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The server-wide addons to load: the configured ones, with `base` and `web` appended
/// when missing (as Odoo does).
pub fn server_wide_names(configured: &[String]) -> Vec<String> {
    let mut names: Vec<String> = configured
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    for required in ["base", "web"] {
        if !names.iter().any(|n| n == required) {
            names.push(required.to_owned());
        }
    }
    names
}

/// A command provided by an addon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonCommand {
    /// The command name.
    pub name: String,
    /// Its one-line help.
    pub help: String,
    /// The addon providing it.
    pub addon: String,
}

/// Where command lookups load their private library copies.
fn command_run_dir() -> PathBuf {
    std::env::temp_dir().join(format!("inphms-run-{}", nix::unistd::getuid()))
}

/// The commands declared by the addons of `addons_paths` (those whose manifest lists
/// `commands`); their libraries are loaded to read each command's help.
pub fn addon_commands(addons_paths: &[PathBuf]) -> Vec<AddonCommand> {
    let set = module::discover(&self::addons_paths(addons_paths));
    let mut out = Vec::new();
    for (name, addon) in &set.addons {
        let Ok(manifest) = &addon.manifest else {
            continue;
        };
        if manifest.commands.is_empty() {
            continue;
        }
        let helps = load_for_command(name, &addon.dir, manifest)
            .map(|(_, items)| items.commands.into_vec())
            .unwrap_or_default();
        for cmd in &manifest.commands {
            let help = helps
                .iter()
                .find(|c| c.name.as_str() == cmd)
                .map(|c| c.help.to_string())
                .unwrap_or_default();
            out.push(AddonCommand {
                name: cmd.clone(),
                help,
                addon: name.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn load_for_command(
    name: &str,
    dir: &Path,
    manifest: &Manifest,
) -> Result<(Library, AddonItems), crate::Error> {
    let path = library::locate(name, dir, manifest)
        .path()
        .map(Path::to_owned)
        .ok_or_else(|| crate::Error::Addon {
            addon: name.to_owned(),
            reason: format!(
                "has no compiled library; build it with {}",
                library::build_hint(name, dir)
            ),
        })?;
    loader::load(name, &path, &command_run_dir())
        .map(|(library, items, _)| (library, items))
        .map_err(|e| crate::Error::Addon {
            addon: name.to_owned(),
            reason: format!("cannot be loaded: {e}"),
        })
}

/// After a command committed on `db`: the cache sequence bumped (the host cannot tell what
/// the command changed; `users passwd` changes the rows keying session tokens, which every
/// host caches), then one [`signaling::CHECK_INTERVAL`] waited before the command exits,
/// so that a request any host starts after the command returned reads the sequences again
/// before its answer (a request in a check's interval uses what the host has).
fn signal_after_command(dbs: &crate::sql_db::Databases, db: &str) {
    match dbs
        .cursors()
        .block_on(signaling::signal_cache_change(dbs, db))
    {
        Ok(Ok(Some(n))) => {
            tracing::info!(target: "inphms.modules", "database {db}: cache change signaled (base_cache_signaling_default {n})");
            std::thread::sleep(signaling::CHECK_INTERVAL);
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) | Err(e) => {
            eprintln!("database {db}: the other hosts' caches are not told of the change ({e}); they see it at their restart");
        }
    }
}

/// A command's outcome, failed (its transaction rolled back) when it returns an error or
/// a non-zero exit code.
struct CommandRun(inphms_sdk::abi::Outcome);

impl crate::sql_db::env::AttemptOutcome for CommandRun {
    fn failed(&self) -> bool {
        self.0.error.is_some() || self.0.exit_code != 0
    }
}

/// Runs the command `cmd` of its addon with `args` (the addon handed `host`, the host's
/// services); returns the exit code. With `db` (the host's databases and the command's
/// `-d`), the command runs in one transaction on that database, which
/// its cursor reaches; committed when it succeeds, rolled back otherwise.
pub fn run_addon_command(
    addons_paths: &[PathBuf],
    cmd: &AddonCommand,
    args: Vec<String>,
    host: HostApiRef,
    db: Option<(&crate::sql_db::Databases, &str)>,
) -> i32 {
    let set = module::discover(&self::addons_paths(addons_paths));
    let Some(Ok(manifest)) = set.get(&cmd.addon).map(|a| &a.manifest) else {
        eprintln!("addon '{}' is no longer on the addons path", cmd.addon);
        return 1;
    };
    let dir = &set.get(&cmd.addon).expect("checked").dir;
    let (library, items) = match load_for_command(&cmd.addon, dir, manifest) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let Some(desc) = items.commands.iter().find(|c| c.name.as_str() == cmd.name) else {
        eprintln!(
            "addon '{}' lists the command '{}' in its manifest but its library does not declare it",
            cmd.addon, cmd.name
        );
        return 1;
    };
    if let Err(e) = loader::init(&cmd.addon, dir, &library, host) {
        eprintln!("{e}");
        return 1;
    }
    let call = || {
        CommandRun((library.module.call())(Invocation {
            kind: ItemKind::Command,
            item: desc.id,
            request: abi_stable::std_types::ROption::RNone,
            endpoint: abi_stable::std_types::ROption::RNone,
            args: args.iter().cloned().map(Into::into).collect::<RVec<_>>(),
            handle: 0,
            socket_event: abi_stable::std_types::ROption::RNone,
            outcome: abi_stable::std_types::ROption::RNone,
        }))
    };
    let outcome = match db {
        None => call().0,
        // One transaction, committed when the command succeeds (exit code 0), the
        // cursor the command's `inphms_sdk::Cursor::command` reaches.
        Some((dbs, db)) => match crate::sql_db::env::transaction(dbs, db, false, 1, None, call) {
            Ok(run) => {
                use crate::sql_db::env::AttemptOutcome;
                if !run.failed() {
                    signal_after_command(dbs, db);
                }
                run.0
            }
            Err(e) => {
                eprintln!("command '{}' on database {db}: {e}", cmd.name);
                return 1;
            }
        },
    };
    if let Some(e) = outcome.error.into_option() {
        eprintln!("command '{}' failed: {}", cmd.name, e.message);
        return 1;
    }
    outcome.exit_code
}
