//! What the start-up work moved off its path still does (issue 23, BENCHMARKS.md "Start-up
//! and idle memory"): the CSRF secret of a fresh data dir, now created on the blocking pool
//! while the addons load, exists (32 bytes, mode 0600) before the first answer and is kept
//! by the next start; a route with converters, whose regex is compiled at its first match,
//! answers its first request; and the binary is linked with packed relative relocations
//! (`DT_RELR`) where the build machine's glibc reads them.

use inphms_tests::{host_bin, http_get, TestDir};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn a_fresh_data_dir_has_its_secret_before_the_first_answer_and_keeps_it() {
    let td = TestDir::new();
    let secret_path = td.join("data").join("csrf_secret");
    assert!(!secret_path.exists());
    let server = td.test_http_server(&[]).start_healthy();
    let secret = std::fs::read(&secret_path).expect("the secret exists once serving");
    assert_eq!(secret.len(), 32);
    let mode = std::fs::metadata(&secret_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // The first request of a route with a converter compiles its regex and matches.
    let resp = http_get(server.port(), "/test_http/item/7", &[]);
    assert_eq!((resp.status, resp.text().as_str()), (200, "item 7"));
    assert_eq!(
        http_get(server.port(), "/test_http/item/x", &[]).status,
        404,
        "an int converter refuses a word"
    );
    drop(server);

    let again = td.test_http_server(&[]).start_healthy();
    assert_eq!(std::fs::read(&secret_path).unwrap(), secret, "kept");
    drop(again);
}

#[test]
fn the_binary_packs_its_relative_relocations_where_glibc_reads_them() {
    let glibc = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .expect("getconf runs");
    let text = String::from_utf8_lossy(&glibc.stdout).trim().to_owned();
    let version: Vec<u32> = text
        .strip_prefix("glibc ")
        .unwrap_or_else(|| panic!("not glibc: {text:?}"))
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let relr_expected = (version[0], version.get(1).copied().unwrap_or(0)) >= (2, 36);
    let bytes = std::fs::read(host_bin()).unwrap();
    let tags = dynamic_tags(&bytes);
    const DT_RELASZ: u64 = 8;
    const DT_RELR: u64 = 36;
    let has_relr = tags.iter().any(|&(t, _)| t == DT_RELR);
    assert_eq!(
        has_relr, relr_expected,
        "{text}: DT_RELR present: {has_relr}"
    );
    if relr_expected {
        let relasz = tags
            .iter()
            .find(|&&(t, _)| t == DT_RELASZ)
            .map_or(0, |t| t.1);
        // Only the relocations that are not relative remain as RELA entries (a few KiB;
        // ≈ 746 KB when every relative relocation was one).
        assert!(relasz < 64 * 1024, "RELA table of {relasz} bytes");
    }
}

/// The (tag, value) pairs of an ELF64 little-endian file's `PT_DYNAMIC` segment.
fn dynamic_tags(elf: &[u8]) -> Vec<(u64, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "an ELF64 little-endian file");
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    const PT_DYNAMIC: u32 = 2;
    let dynamic = (0..phnum as usize)
        .map(|i| phoff + i * phentsize as usize)
        .find(|&ph| u32_at(ph) == PT_DYNAMIC)
        .expect("a PT_DYNAMIC segment");
    let (offset, size) = (u64_at(dynamic + 8) as usize, u64_at(dynamic + 32) as usize);
    (offset..offset + size)
        .step_by(16)
        .map(|o| (u64_at(o), u64_at(o + 8)))
        .take_while(|&(tag, _)| tag != 0)
        .collect()
}
