//! What the tidy tests (`layers.rs`, `globals.rs`) share: the host's source files.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, sorted, without the scaffold templates (text the `scaffold`
/// command writes, not host code).
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            // Scaffold templates are text the `scaffold` command writes, not host code.
            if !path.ends_with("cli/templates") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
