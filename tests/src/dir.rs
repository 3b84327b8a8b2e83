//! [`TestDir`]: a temporary folder for one test (removed on drop) with helpers to write
//! files, config files and addons folders; its `home/` is the `HOME` of the commands and
//! servers it starts ([`TestDir::cmd`], [`TestDir::server`]).

use crate::cmd::Cmd;
use crate::server::ServerBuilder;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A temporary folder for one test, removed on drop.
pub struct TestDir {
    tmp: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

impl TestDir {
    /// A new empty folder, with an empty `home/`.
    pub fn new() -> TestDir {
        let tmp = tempfile::Builder::new()
            .prefix("inphms-test-")
            .tempdir()
            .expect("create a temporary folder");
        std::fs::create_dir_all(tmp.path().join("home")).expect("create home/");
        TestDir { tmp }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `rel` inside the folder.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    /// The `HOME` of the commands run from this folder.
    pub fn home(&self) -> PathBuf {
        self.join("home")
    }

    /// Writes `contents` to `rel` (parent folders created); returns its absolute path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent folders");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes a config file (TOML) to `rel`; returns its absolute path.
    pub fn config(&self, rel: impl AsRef<Path>, toml: &str) -> PathBuf {
        self.write(rel, toml)
    }

    /// The text of `rel` (panics if it cannot be read).
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Creates the addon `name` in the addons folder `addons_dir` (relative), with
    /// `manifest` as its `__manifest__.toml`; returns the addons folder.
    pub fn addon(&self, addons_dir: &str, name: &str, manifest: &str) -> PathBuf {
        self.write(format!("{addons_dir}/{name}/__manifest__.toml"), manifest);
        self.join(addons_dir)
    }

    /// An addons folder `addons/` holding one addon without a library, `dummy`
    /// (`name = "Dummy"`): the smallest valid `--addons-path`. Returns the folder.
    pub fn dummy_addons(&self) -> PathBuf {
        self.addon("addons", "dummy", "name = \"Dummy\"\n")
    }

    /// Copies the addon folder `src` (without its `target/`) into the addons folder
    /// `addons_dir` (relative); returns the copy.
    pub fn copy_addon(&self, src: &Path, addons_dir: &str) -> PathBuf {
        let name = src.file_name().expect("an addon folder has a name");
        let dest = self.join(addons_dir).join(name);
        if let Err(e) = inphms_test_support::fs::copy_tree(src, &dest, &["target"]) {
            panic!("copy the addon {}: {e}", src.display());
        }
        dest
    }

    /// A command run from this folder, with `HOME` set to [`TestDir::home`].
    pub fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::new(args).home(self.home()).current_dir(self.path())
    }

    /// A server run from this folder; `args` follow `inphms-host server`.
    pub fn server<I, S>(&self, args: I) -> ServerBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        ServerBuilder::new(self, args)
    }
}
