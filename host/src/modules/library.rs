//! Where an addon's compiled library is found, and whether it is current.
//!
//! The library file is `lib<crate>.so`, where `<crate>` is the manifest's `library` key
//! (default: the addon's technical name). If `library` contains a `/` or ends in `.so`, it is
//! a path relative to the addon folder and the only candidate. Otherwise these are tried:
//!
//! 1. the addon folder itself (an addon shipped with its prebuilt library);
//! 2. `$CARGO_TARGET_DIR/{release,debug}/` when that variable is set;
//! 3. `target/{release,debug}/` in the addon folder and in each folder above it (the addon's
//!    own cargo project, or the cargo workspace that holds it).
//!
//! Among the candidates that exist, the most recently modified wins. A library older than
//! the addon's `Cargo.toml` or any file under its `src/` is *stale*: it still loads, with a
//! warning.

use super::manifest::Manifest;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// The identity of a library file's content: its size and modification time, confirmed by
/// a hash of its bytes when those change (a rebuilt library with the same bytes is the same).
/// The stamp last hashed is remembered with its verdict, so that a file left with another
/// modification time (a copy that stopped, a refused build) is not read whole again at
/// every check of `--dev=reload` or SIGHUP.
#[derive(Debug)]
pub struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    hash: u64,
    /// The last other stamp hashed, and whether the bytes were the same.
    last_hashed: Mutex<Option<(Stamp, bool)>>,
}

impl Fingerprint {
    /// The fingerprint of a file whose size and modification time are `stamp` and whose
    /// content is `bytes` (read from a copy of it).
    pub fn from_bytes(stamp: &Stamp, bytes: &[u8]) -> Fingerprint {
        Fingerprint {
            len: stamp.len,
            modified: stamp.modified,
            hash: hash_bytes(bytes),
            last_hashed: Mutex::new(None),
        }
    }

    /// Whether `path` still holds the same bytes.
    pub fn matches(&self, path: &Path) -> bool {
        let Ok(meta) = std::fs::metadata(path) else {
            return false;
        };
        if meta.len() != self.len {
            return false;
        }
        let stamp = Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        if stamp.modified == self.modified {
            return true;
        }
        let mut last = self
            .last_hashed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, same)) = *last {
            if seen == stamp {
                return same;
            }
        }
        let same = hash_file(path).is_ok_and(|h| h == self.hash);
        *last = Some((stamp, same));
        same
    }
}

/// A fast, non-cryptographic hash of a file's bytes (FxHash's step over 8-byte words): it
/// only tells a rebuilt library from an identical one, and must not slow the start-up
/// (SipHash took about 15 ms per 8 MiB debug library).
fn hash_file(path: &Path) -> std::io::Result<u64> {
    Ok(hash_bytes(&std::fs::read(path)?))
}

/// FxHash's step over four interleaved lanes of 8-byte words (32-byte blocks), folded at
/// the end: the lanes' multiplications do not wait for each other, where one chain waits
/// for its last step at every word (hashing was ≈ 6% of the start-up's CPU with two addons,
/// BENCHMARKS.md). In-process only: never stored.
fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let word = |w: &[u8]| {
        let mut word = [0; 8];
        word.copy_from_slice(w);
        u64::from_le_bytes(word)
    };
    let len = bytes.len() as u64;
    let mut lanes = [len, len ^ 1, len ^ 2, len ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = step(*lane, word(w));
        }
    }
    let mut h = lanes.iter().fold(len, |h, &lane| step(h, lane));
    let mut words = blocks.remainder().chunks_exact(8);
    for w in &mut words {
        h = step(h, word(w));
    }
    for &b in words.remainder() {
        h = step(h, u64::from(b));
    }
    h
}

/// A file's size and modification time: what changes while it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The size in bytes.
    pub len: u64,
    /// The modification time, when the file system keeps one.
    pub modified: Option<SystemTime>,
}

impl Stamp {
    /// Reads `path`'s.
    pub fn of(path: &Path) -> std::io::Result<Stamp> {
        let meta = std::fs::metadata(path)?;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    /// Whether the file was modified less than `quiet` ago (or its time is in the future,
    /// or unknown): a writer may still be at work.
    pub fn is_recent(&self, quiet: std::time::Duration) -> bool {
        match self.modified {
            Some(t) => SystemTime::now()
                .duration_since(t)
                .map_or(true, |age| age < quiet),
            None => true,
        }
    }
}

/// The state of an addon's library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryState {
    /// Found and newer than the sources.
    Built(PathBuf),
    /// Found, but older than the sources.
    Stale(PathBuf),
    /// Not found; these paths were tried.
    Missing(Vec<PathBuf>),
}

impl LibraryState {
    /// The library's path, when found.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LibraryState::Built(p) | LibraryState::Stale(p) => Some(p),
            LibraryState::Missing(_) => None,
        }
    }

    /// `built`, `stale` or `missing`.
    pub fn label(&self) -> &'static str {
        match self {
            LibraryState::Built(_) => "built",
            LibraryState::Stale(_) => "stale",
            LibraryState::Missing(_) => "missing",
        }
    }
}

/// The crate (library) name of an addon.
pub fn crate_name(name: &str, manifest: &Manifest) -> String {
    manifest
        .library
        .clone()
        .unwrap_or_else(|| name.to_owned())
        .replace('-', "_")
}

/// The file name of a library for `crate_name`.
pub fn file_name(crate_name: &str) -> String {
    format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Finds the library of the addon `name` in `dir`.
pub fn locate(name: &str, dir: &Path, manifest: &Manifest) -> LibraryState {
    let candidates = candidates(name, dir, manifest);
    let newest = candidates
        .iter()
        .filter_map(|p| Some((mtime(p)?, p)))
        .max_by_key(|(t, _)| *t);
    match newest {
        None => LibraryState::Missing(candidates),
        Some((built, path)) => {
            if newest_source(dir).is_some_and(|src| src > built) {
                LibraryState::Stale(path.clone())
            } else {
                LibraryState::Built(path.clone())
            }
        }
    }
}

/// The cargo command that builds the addon in `dir`.
pub fn build_hint(name: &str, dir: &Path) -> String {
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() {
        format!(
            "cargo build --manifest-path {} (or `cargo build -p {name}` in its workspace)",
            manifest.display()
        )
    } else {
        format!("put lib{name}.so in {}", dir.display())
    }
}

fn candidates(name: &str, dir: &Path, manifest: &Manifest) -> Vec<PathBuf> {
    if let Some(lib) = &manifest.library {
        if lib.contains('/') || lib.ends_with(std::env::consts::DLL_SUFFIX) {
            return vec![dir.join(lib)];
        }
    }
    let file = file_name(&crate_name(name, manifest));
    let mut list = vec![dir.join(&file)];
    let profiles = ["release", "debug"];
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        let target = PathBuf::from(target);
        list.extend(profiles.iter().map(|p| target.join(p).join(&file)));
    }
    for ancestor in dir.ancestors() {
        list.extend(
            profiles
                .iter()
                .map(|p| ancestor.join("target").join(p).join(&file)),
        );
    }
    list
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// The newest modification time among `Cargo.toml` and the files under `src/`.
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let cargo = mtime(&dir.join("Cargo.toml"));
    let src = walkdir::WalkDir::new(dir.join("src"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    cargo.into_iter().chain(src).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_hash_sees_every_byte_and_its_place() {
        // 32-byte blocks in four lanes, then a tail of words and bytes: a change anywhere,
        // or two words swapped between lanes, gives another hash.
        let bytes: Vec<u8> = (0..100u8).collect();
        let h = hash_bytes(&bytes);
        for i in 0..bytes.len() {
            let mut other = bytes.clone();
            other[i] ^= 1;
            assert_ne!(hash_bytes(&other), h, "byte {i}");
        }
        let mut swapped = bytes.clone();
        swapped.copy_within(0..8, 8);
        swapped[..8].copy_from_slice(&bytes[8..16]);
        assert_ne!(hash_bytes(&swapped), h);
        assert_ne!(hash_bytes(&bytes[..99]), h);
        assert_eq!(hash_bytes(&bytes), h);
    }

    #[test]
    fn a_changed_stamp_is_hashed_once() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("libx.so");
        let bytes = b"12345678abcdefgh";
        std::fs::write(&path, bytes).unwrap();
        let fp = Fingerprint::from_bytes(&Stamp::of(&path).unwrap(), bytes);
        assert!(fp.matches(&path));
        let stamp = |secs: u64| {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(secs)))
                .unwrap();
        };
        // Touched: another stamp, the same bytes (hashed).
        stamp(1000);
        assert!(fp.matches(&path));
        // Other bytes of the same size under that same stamp: the stamp's verdict stands,
        // the file is not read again (as the size and time of the loaded file are trusted).
        std::fs::write(&path, b"ABCDEFGH........").unwrap();
        stamp(1000);
        assert!(fp.matches(&path), "hashed again");
        // A new stamp is hashed.
        stamp(2000);
        assert!(!fp.matches(&path));
        std::fs::write(&path, b"short").unwrap();
        assert!(!fp.matches(&path));
    }
}
