//! Checks that a file is a complete shared library for this host before `dlopen` maps it.
//!
//! `dlopen` maps each loadable segment of a library straight from the file; a segment that
//! points past the end of a truncated or half-written file maps pages with no file behind
//! them, and the first touch of one kills the process with SIGBUS. So before a library is
//! opened, its bytes are checked here: the ELF identification (class, byte order, version)
//! and header (type `ET_DYN`, this host's machine), then that the program header table,
//! every segment with file contents, the section header table and every section with file
//! contents lie inside the file. Everything is read with bounds checks: no input panics.

use std::fmt;

/// Why a file is not a complete shared library for this host; the Display is a phrase
/// that follows the file's name (`is truncated or damaged: segment 2 (PT_LOAD) ends at
/// ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfError {
    message: String,
    foreign: bool,
}

impl ElfError {
    /// Whether the file is a sound ELF file built for another host (class, byte order,
    /// machine) or of another type, rather than damaged, truncated or not ELF.
    pub fn is_foreign(&self) -> bool {
        self.foreign
    }
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ElfError {}

const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const ET_DYN: u16 = 3;
const PT_NULL: u32 = 0;
const PT_LOAD: u32 = 1;
const SHT_NULL: u32 = 0;
const SHT_NOBITS: u32 = 8;
/// `e_phnum` when the real count is in section 0's `sh_info`.
const PN_XNUM: u16 = 0xffff;
/// `e_shstrndx` when the real index is in section 0's `sh_link`.
const SHN_XINDEX: u16 = 0xffff;

/// The class of this host's libraries.
const HOST_CLASS: u8 = if cfg!(target_pointer_width = "64") {
    ELFCLASS64
} else {
    ELFCLASS32
};

/// The byte order of this host's libraries.
const HOST_DATA: u8 = if cfg!(target_endian = "little") {
    ELFDATA2LSB
} else {
    ELFDATA2MSB
};

/// This host's `e_machine`, when known (another architecture skips the machine check).
const HOST_MACHINE: Option<u16> = if cfg!(target_arch = "x86_64") {
    Some(62)
} else if cfg!(target_arch = "aarch64") {
    Some(183)
} else if cfg!(target_arch = "x86") {
    Some(3)
} else if cfg!(target_arch = "arm") {
    Some(40)
} else if cfg!(target_arch = "riscv64") {
    Some(243)
} else if cfg!(target_arch = "powerpc64") {
    Some(21)
} else if cfg!(target_arch = "s390x") {
    Some(22)
} else if cfg!(target_arch = "loongarch64") {
    Some(258)
} else {
    None
};

/// A name for an `e_machine` value, for messages.
fn machine_name(machine: u16) -> &'static str {
    match machine {
        3 => "x86",
        8 => "mips",
        20 => "powerpc",
        21 => "powerpc64",
        22 => "s390x",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        _ => "an unknown machine",
    }
}

/// The name of a segment type, for messages.
fn segment_type(p_type: u32) -> String {
    match p_type {
        1 => "PT_LOAD".into(),
        2 => "PT_DYNAMIC".into(),
        3 => "PT_INTERP".into(),
        4 => "PT_NOTE".into(),
        6 => "PT_PHDR".into(),
        7 => "PT_TLS".into(),
        0x6474_e550 => "PT_GNU_EH_FRAME".into(),
        0x6474_e551 => "PT_GNU_STACK".into(),
        0x6474_e552 => "PT_GNU_RELRO".into(),
        0x6474_e553 => "PT_GNU_PROPERTY".into(),
        other => format!("type {other:#x}"),
    }
}

/// Bounds-checked reads of ELF fields in the file's class and byte order.
struct Reader<'a> {
    bytes: &'a [u8],
    wide: bool,
    big: bool,
}

impl Reader<'_> {
    fn slice<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let start = usize::try_from(at).ok()?;
        let end = start.checked_add(N)?;
        self.bytes.get(start..end)?.try_into().ok()
    }

    fn u16(&self, at: u64) -> Option<u16> {
        let b = self.slice::<2>(at)?;
        Some(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, at: u64) -> Option<u32> {
        let b = self.slice::<4>(at)?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&self, at: u64) -> Option<u64> {
        let b = self.slice::<8>(at)?;
        Some(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// An address or offset: 4 bytes in a 32-bit file, 8 in a 64-bit one.
    fn word(&self, at: u64) -> Option<u64> {
        if self.wide {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }
}

/// The offsets of the fields read, per class.
struct Layout {
    header: u64,
    phoff: u64,
    shoff: u64,
    phentsize: u64,
    phnum: u64,
    shentsize: u64,
    shnum: u64,
    shstrndx: u64,
    ph_size: u16,
    ph_offset: u64,
    ph_filesz: u64,
    sh_size_entry: u16,
    sh_type: u64,
    sh_offset: u64,
    sh_size: u64,
    sh_link: u64,
    sh_info: u64,
}

const LAYOUT64: Layout = Layout {
    header: 64,
    phoff: 32,
    shoff: 40,
    phentsize: 54,
    phnum: 56,
    shentsize: 58,
    shnum: 60,
    shstrndx: 62,
    ph_size: 56,
    ph_offset: 8,
    ph_filesz: 32,
    sh_size_entry: 64,
    sh_type: 4,
    sh_offset: 24,
    sh_size: 32,
    sh_link: 40,
    sh_info: 44,
};

const LAYOUT32: Layout = Layout {
    header: 52,
    phoff: 28,
    shoff: 32,
    phentsize: 42,
    phnum: 44,
    shentsize: 46,
    shnum: 48,
    shstrndx: 50,
    ph_size: 32,
    ph_offset: 4,
    ph_filesz: 16,
    sh_size_entry: 40,
    sh_type: 4,
    sh_offset: 16,
    sh_size: 20,
    sh_link: 24,
    sh_info: 28,
};

/// Checks that `bytes` (a whole file) are a shared library for this host whose tables,
/// segments and sections all lie inside the file.
pub fn check(bytes: &[u8]) -> Result<(), ElfError> {
    let len = bytes.len() as u64;
    let err = |message: String| {
        Err(ElfError {
            message,
            foreign: false,
        })
    };
    let foreign = |message: String| {
        Err(ElfError {
            message,
            foreign: true,
        })
    };
    let past_end = |what: &str, end: Option<u64>| match end {
        Some(end) if end <= len => Ok(()),
        Some(end) => err(format!(
            "is truncated or damaged: {what} ends at {end}, past the end of the file ({len} bytes)"
        )),
        None => err(format!(
            "is truncated or damaged: {what} has an impossible size (it overflows)"
        )),
    };
    if len < 16 {
        return err(format!("is not an ELF file (only {len} bytes)"));
    }
    if bytes[..4] != *b"\x7fELF" {
        return err("is not an ELF file (no ELF magic number)".into());
    }
    let class = bytes[4];
    let data = bytes[5];
    let bits = |c: u8| match c {
        ELFCLASS32 => "32-bit".to_owned(),
        ELFCLASS64 => "64-bit".to_owned(),
        other => format!("unknown class {other}"),
    };
    if class != HOST_CLASS {
        return foreign(format!(
            "is a {} ELF file; this host loads {} libraries",
            bits(class),
            bits(HOST_CLASS)
        ));
    }
    let order = |d: u8| match d {
        ELFDATA2LSB => "little-endian".to_owned(),
        ELFDATA2MSB => "big-endian".to_owned(),
        other => format!("of unknown byte order {other}"),
    };
    if data != HOST_DATA {
        return foreign(format!(
            "is a {} ELF file; this host loads {} libraries",
            order(data),
            order(HOST_DATA)
        ));
    }
    if bytes[6] != 1 {
        return err(format!(
            "is an ELF file of version {}; expected version 1",
            bytes[6]
        ));
    }
    let r = Reader {
        bytes,
        wide: class == ELFCLASS64,
        big: data == ELFDATA2MSB,
    };
    let l = if r.wide { &LAYOUT64 } else { &LAYOUT32 };
    past_end("the ELF header", Some(l.header))?;
    // The header is inside the file: its fields read (the fallbacks are unreachable).
    let e_type = r.u16(16).unwrap_or_default();
    let e_machine = r.u16(18).unwrap_or_default();
    if e_type != ET_DYN {
        let kind = match e_type {
            1 => "a relocatable object (ET_REL)",
            2 => "an executable (ET_EXEC)",
            4 => "a core dump (ET_CORE)",
            _ => "an ELF file of unknown type",
        };
        return foreign(format!(
            "is {kind} (type {e_type}), not a shared library (ET_DYN)"
        ));
    }
    if let Some(host) = HOST_MACHINE {
        if e_machine != host {
            return foreign(format!(
                "is built for {} (ELF machine {e_machine}); this host is {} ({host})",
                machine_name(e_machine),
                machine_name(host)
            ));
        }
    }
    let phoff = r.word(l.phoff).unwrap_or_default();
    let shoff = r.word(l.shoff).unwrap_or_default();
    let phentsize = r.u16(l.phentsize).unwrap_or_default();
    let e_phnum = r.u16(l.phnum).unwrap_or_default();
    let shentsize = r.u16(l.shentsize).unwrap_or_default();
    let e_shnum = r.u16(l.shnum).unwrap_or_default();
    let e_shstrndx = r.u16(l.shstrndx).unwrap_or_default();

    // Section 0 may hold the real counts (extended numbering).
    let mut shnum = u64::from(e_shnum);
    let mut phnum = u64::from(e_phnum);
    let mut shstrndx = u64::from(e_shstrndx);
    if shoff != 0 {
        if shentsize != l.sh_size_entry {
            return err(format!(
                "is damaged: section header entries of {shentsize} bytes; expected {}",
                l.sh_size_entry
            ));
        }
        let extended = e_shnum == 0 || e_phnum == PN_XNUM || e_shstrndx == SHN_XINDEX;
        if extended {
            past_end("section header 0", shoff.checked_add(u64::from(shentsize)))?;
        }
        if e_shnum == 0 {
            shnum = r.word(shoff + l.sh_size).unwrap_or_default();
        }
        if e_phnum == PN_XNUM {
            phnum = u64::from(r.u32(shoff + l.sh_info).unwrap_or_default());
        }
        if e_shstrndx == SHN_XINDEX {
            shstrndx = u64::from(r.u32(shoff + l.sh_link).unwrap_or_default());
        }
    } else {
        shnum = 0;
    }

    if phnum == 0 {
        return err("is not a loadable library: it has no program header table".into());
    }
    if phentsize != l.ph_size {
        return err(format!(
            "is damaged: program header entries of {phentsize} bytes; expected {}",
            l.ph_size
        ));
    }
    let table_end = phnum
        .checked_mul(u64::from(phentsize))
        .and_then(|size| phoff.checked_add(size));
    past_end(
        &format!("the program header table ({phnum} entries)"),
        table_end,
    )?;
    let mut loads = 0;
    for i in 0..phnum {
        // Inside the table, checked above.
        let at = phoff + i * u64::from(phentsize);
        let p_type = r.u32(at).unwrap_or_default();
        let offset = r.word(at + l.ph_offset).unwrap_or_default();
        let filesz = r.word(at + l.ph_filesz).unwrap_or_default();
        if p_type == PT_LOAD {
            loads += 1;
        }
        if p_type == PT_NULL || (filesz == 0 && p_type != PT_LOAD) {
            continue;
        }
        past_end(
            &format!("segment {i} ({})", segment_type(p_type)),
            offset.checked_add(filesz),
        )?;
    }
    if loads == 0 {
        return err("is not a loadable library: it has no PT_LOAD segment".into());
    }

    // Then the sections (the segments first: they are what `dlopen` maps).
    let table_end = shnum
        .checked_mul(u64::from(shentsize))
        .and_then(|size| shoff.checked_add(size));
    past_end(
        &format!("the section header table ({shnum} entries)"),
        table_end,
    )?;
    let names = section_names(&r, l, shoff, shentsize, shnum, shstrndx);
    for i in 0..shnum {
        let at = shoff + i * u64::from(shentsize);
        let sh_type = r.u32(at + l.sh_type).unwrap_or_default();
        if sh_type == SHT_NULL || sh_type == SHT_NOBITS {
            continue;
        }
        let offset = r.word(at + l.sh_offset).unwrap_or_default();
        let size = r.word(at + l.sh_size).unwrap_or_default();
        let what = match names.as_ref().and_then(|n| n.name(&r, at)) {
            Some(name) => format!("section {i} ({name})"),
            None => format!("section {i}"),
        };
        past_end(&what, offset.checked_add(size))?;
    }
    Ok(())
}

/// The section name string table, when it lies inside the file.
struct SectionNames {
    offset: u64,
    size: u64,
}

fn section_names(
    r: &Reader<'_>,
    l: &Layout,
    shoff: u64,
    shentsize: u16,
    shnum: u64,
    shstrndx: u64,
) -> Option<SectionNames> {
    if shstrndx == 0 || shstrndx >= shnum {
        return None;
    }
    let at = shoff.checked_add(shstrndx.checked_mul(u64::from(shentsize))?)?;
    let offset = r.word(at + l.sh_offset)?;
    let size = r.word(at + l.sh_size)?;
    let end = offset.checked_add(size)?;
    (end <= r.bytes.len() as u64).then_some(SectionNames { offset, size })
}

impl SectionNames {
    /// The name of the section whose header is at `header`: printable ASCII, at most 64
    /// bytes, ending inside the table.
    fn name(&self, r: &Reader<'_>, header: u64) -> Option<String> {
        let index = u64::from(r.u32(header)?);
        if index >= self.size {
            return None;
        }
        let start = usize::try_from(self.offset.checked_add(index)?).ok()?;
        let end = usize::try_from(self.offset.checked_add(self.size)?).ok()?;
        let table = r.bytes.get(start..end)?;
        let len = table.iter().take(65).position(|&b| b == 0)?;
        let name = &table[..len];
        (!name.is_empty() && name.iter().all(|b| b.is_ascii_graphic()))
            .then(|| String::from_utf8_lossy(name).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A real shared library of this host: the first one mapped into this test process
    /// (its C library), found in `/proc/self/maps`.
    fn real_library() -> (std::path::PathBuf, Vec<u8>) {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
        let path = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.starts_with('/') && p.contains(".so"))
            .expect("a shared library is mapped into the test process");
        let bytes = std::fs::read(path).expect("read the library");
        (path.into(), bytes)
    }

    /// A library of this host with its section header table: the C library mapped into
    /// this process, or an addon library built in this workspace.
    fn libraries() -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut libs = vec![real_library()];
        let built =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/libbase.so");
        if let Ok(bytes) = std::fs::read(&built) {
            libs.push((built, bytes));
        }
        libs
    }

    #[test]
    fn a_real_library_passes() {
        for (path, bytes) in libraries() {
            check(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn every_truncation_of_a_real_library_is_refused() {
        for (path, bytes) in libraries() {
            let len = bytes.len();
            // Every cut in the headers, then cuts through the rest of the file.
            let cuts = (0..4096.min(len)).chain((4096..len).step_by(len / 997 + 1));
            for cut in cuts {
                let e = check(&bytes[..cut]).expect_err(&format!(
                    "{} cut at {cut} of {len} bytes passed",
                    path.display()
                ));
                assert!(!e.to_string().is_empty());
            }
            // The last byte missing: the section header table (or a section) is cut.
            let e = check(&bytes[..len - 1]).unwrap_err().to_string();
            assert!(
                e.contains(&format!("past the end of the file ({} bytes)", len - 1)),
                "{e}"
            );
        }
    }

    #[test]
    fn a_half_written_library_names_the_segment_past_the_end() {
        let (_, bytes) = real_library();
        // Past the headers, within the first PT_LOAD segment's file contents.
        let half = &bytes[..bytes.len() / 2];
        let e = check(half).unwrap_err().to_string();
        assert!(e.starts_with("is truncated or damaged: segment "), "{e}");
        assert!(
            e.ends_with(&format!("past the end of the file ({} bytes)", half.len())),
            "{e}"
        );
    }

    #[test]
    fn random_damage_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x1f15);
        for (_, bytes) in libraries() {
            let mut damaged = bytes.clone();
            let mut flipped = Vec::new();
            for round in 0..3000 {
                // Flips in the headers and tables (where they matter most), or anywhere,
                // then a random cut every third round.
                for _ in 0..rng.random_range(1..8) {
                    let at = if round % 2 == 0 {
                        rng.random_range(0..4096.min(damaged.len()))
                    } else {
                        rng.random_range(0..damaged.len())
                    };
                    flipped.push((at, damaged[at]));
                    damaged[at] ^= 1 << rng.random_range(0..8);
                }
                let cut = if round % 3 == 0 {
                    rng.random_range(0..damaged.len())
                } else {
                    damaged.len()
                };
                let _ = check(&damaged[..cut]);
                for (at, old) in flipped.drain(..).rev() {
                    damaged[at] = old;
                }
            }
            assert_eq!(damaged, bytes);
            // Random garbage behind a valid identification.
            for _ in 0..500 {
                let n = rng.random_range(16..2048);
                let mut garbage: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                garbage[..16].copy_from_slice(&bytes[..16]);
                let _ = check(&garbage);
            }
        }
    }

    #[test]
    fn header_faults_are_named() {
        let (_, bytes) = real_library();
        let with = |at: usize, value: u8| {
            let mut b = bytes.clone();
            b[at] = value;
            check(&b).unwrap_err().to_string()
        };
        assert_eq!(
            check(b"#!/bin/sh\necho hi\n").unwrap_err().to_string(),
            "is not an ELF file (no ELF magic number)"
        );
        assert_eq!(
            check(b"\x7fELF").unwrap_err().to_string(),
            "is not an ELF file (only 4 bytes)"
        );
        let mut b = bytes.clone();
        b[4] ^= 3;
        assert!(check(&b).unwrap_err().is_foreign());
        assert!(!check(&bytes[..bytes.len() / 2]).unwrap_err().is_foreign());
        let other_class = if HOST_CLASS == ELFCLASS64 { 1 } else { 2 };
        assert!(with(4, other_class).contains("ELF file; this host loads"));
        let other_data = if HOST_DATA == ELFDATA2LSB { 2 } else { 1 };
        assert!(with(5, other_data).contains("-endian ELF file; this host loads"));
        // e_type is at 16 in either class; 2 is ET_EXEC in either byte order's low byte.
        let e_type_low = if HOST_DATA == ELFDATA2LSB { 16 } else { 17 };
        assert_eq!(
            with(e_type_low, 2),
            "is an executable (ET_EXEC) (type 2), not a shared library (ET_DYN)"
        );
        let e_machine_low = if HOST_DATA == ELFDATA2LSB { 18 } else { 19 };
        if HOST_MACHINE.is_some() {
            let e = with(e_machine_low, 0xb7 ^ bytes[e_machine_low]);
            assert!(e.starts_with("is built for "), "{e}");
        }
    }
}
