//! File helpers: [`copy_tree`].

use std::path::Path;

/// Copies the folder `from` into `to` (created) recursively, skipping the folders whose name
/// is in `skip_dirs` (e.g. `target`) at any depth. The first failure is the error, naming
/// the file.
pub fn copy_tree(from: &Path, to: &Path, skip_dirs: &[&str]) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            let skipped = entry
                .file_name()
                .to_str()
                .is_some_and(|name| skip_dirs.contains(&name));
            if !skipped {
                copy_tree(&path, &dest, skip_dirs)?;
            }
        } else {
            std::fs::copy(&path, &dest).map_err(|e| {
                format!("cannot copy {} to {}: {e}", path.display(), dest.display())
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::copy_tree;

    #[test]
    fn copies_a_tree_without_the_skipped_folders() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/target")).unwrap();
        std::fs::write(src.path().join("a/f"), "1").unwrap();
        std::fs::write(src.path().join("a/target/g"), "2").unwrap();
        std::fs::write(src.path().join("top"), "3").unwrap();
        let to = dest.path().join("copy");
        copy_tree(src.path(), &to, &["target"]).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("a/f")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(to.join("top")).unwrap(), "3");
        assert!(!to.join("a/target").exists());
        let err = copy_tree(&src.path().join("missing"), &to, &[]).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
