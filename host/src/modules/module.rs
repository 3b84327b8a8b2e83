//! Addon discovery (Odoo's `odoo/modules/module.py:get_modules`): walks the addons paths and
//! reads each addon's manifest. An addon is a folder holding `__manifest__.toml`; its
//! technical name is the folder name. When two addons paths hold the same name, the first
//! path wins.

use super::manifest::{self, Manifest, ManifestError, MANIFEST_NAME};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// An addon found on the addons paths.
#[derive(Debug, Clone)]
pub struct Addon {
    /// The technical name (the folder name).
    pub name: String,
    /// The addon's folder.
    pub dir: PathBuf,
    /// The manifest, or why it cannot be used.
    pub manifest: Result<Manifest, ManifestError>,
}

impl Addon {
    /// The manifest file.
    pub fn manifest_file(&self) -> PathBuf {
        self.dir.join(MANIFEST_NAME)
    }
}

/// Every addon found, by name.
#[derive(Debug, Clone, Default)]
pub struct AddonSet {
    /// The addons paths, in order.
    pub paths: Vec<PathBuf>,
    /// The addons, by technical name.
    pub addons: BTreeMap<String, Addon>,
}

impl AddonSet {
    /// The addon called `name`.
    pub fn get(&self, name: &str) -> Option<&Addon> {
        self.addons.get(name)
    }

    /// The paths joined for messages: `(/a, /b)`.
    pub fn paths_text(&self) -> String {
        let list: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("({})", list.join(", "))
    }
}

/// Whether `name` is a valid technical name (what Odoo accepts as a module name).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Walks `paths` and reads every manifest. Warnings (unknown keys, a default license,
/// shadowed addons) are logged; faults are kept in [`Addon::manifest`].
pub fn discover(paths: &[PathBuf]) -> AddonSet {
    let mut set = AddonSet {
        paths: paths.to_vec(),
        addons: BTreeMap::new(),
    };
    for path in paths {
        let walker = WalkDir::new(path)
            .min_depth(1)
            .max_depth(1)
            .follow_links(true)
            .sort_by_file_name();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(target: "inphms.modules.module", "addons path {}: {e}", path.display());
                    continue;
                }
            };
            let dir = entry.path();
            if !entry.file_type().is_dir() || !dir.join(MANIFEST_NAME).is_file() {
                continue;
            }
            let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !is_valid_name(name) {
                tracing::warn!(target: "inphms.modules.module", "{}: '{name}' is not a valid addon name (letters, digits, _ and -), skipped", dir.display());
                continue;
            }
            if let Some(first) = set.addons.get(name) {
                tracing::debug!(target: "inphms.modules.module", "addon {name}: {} shadowed by {}", dir.display(), first.dir.display());
                continue;
            }
            set.addons.insert(name.to_owned(), read(name, dir));
        }
    }
    set
}

fn read(name: &str, dir: &Path) -> Addon {
    let manifest = manifest::load(dir).map(|(m, warnings)| {
        for w in warnings {
            tracing::warn!(target: "inphms.modules.module", "{w}");
        }
        m
    });
    Addon {
        name: name.to_owned(),
        dir: dir.to_owned(),
        manifest,
    }
}
