//! ELF facts of a file, read with the `object` crate and never run: class, machine, interpreter,
//! the minimum kernel of the NT_GNU_ABI_TAG note, the `GLIBC_x.y` versions a binary needs or a
//! C library defines, and version strings found in a binary's bytes.
//!
//! Every input is untrusted: a truncated or hostile file gives an error, never a panic.

use std::collections::BTreeMap;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;

use crate::facts::FactValue;
use crate::model::compare_dotted;

/// The largest file whose ELF facts are read (a whole file is read into memory).
pub(super) const MAX_ELF_BYTES: u64 = 256 << 20;

/// What the headers of one ELF file say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ElfInfo {
    /// `32` or `64`.
    pub class: &'static str,
    /// The machine as `uname -m` spells it (`x86_64`, `aarch64`), or `e_machine-N`.
    pub machine: String,
    /// PT_INTERP, when there is one.
    pub interpreter: Option<String>,
    /// The minimum kernel of the NT_GNU_ABI_TAG note (`3.2.0`), when there is one for Linux.
    pub abi_min_kernel: Option<String>,
    /// The `GLIBC_x.y` versions needed (from SHT_GNU_verneed).
    pub glibc_needed: Vec<String>,
    /// The `GLIBC_x.y` versions defined (from SHT_GNU_verdef): a C library's.
    pub glibc_defined: Vec<String>,
}

impl ElfInfo {
    /// The `elf` fact's record; `interpreter_present` is `None` when there is no interpreter.
    /// `glibc_provided` is the highest `GLIBC_` version of the C library found beside it.
    pub fn record(
        &self,
        interpreter_present: Option<bool>,
        glibc_provided: Option<String>,
    ) -> FactValue {
        let libc = match &self.interpreter {
            Some(interp) if interp.contains("ld-musl") => "musl",
            Some(interp) if interp.contains("ld-linux") || interp.contains("ld64.so") => "glibc",
            Some(_) => "unknown",
            None if self.abi_min_kernel.is_some() || !self.glibc_needed.is_empty() => "glibc",
            None => "none",
        };
        let fields = [
            ("class", self.class.to_owned()),
            ("machine", self.machine.clone()),
            (
                "interpreter",
                self.interpreter
                    .clone()
                    .unwrap_or_else(|| "none".to_owned()),
            ),
            (
                "interpreter-present",
                match interpreter_present {
                    None => "none",
                    Some(true) => "yes",
                    Some(false) => "no",
                }
                .to_owned(),
            ),
            (
                "abi-min-kernel",
                self.abi_min_kernel
                    .clone()
                    .unwrap_or_else(|| "0".to_owned()),
            ),
            (
                "glibc-needed",
                max_version(&self.glibc_needed).unwrap_or_else(|| "0".to_owned()),
            ),
            (
                "static",
                if self.interpreter.is_none() {
                    "yes"
                } else {
                    "no"
                }
                .to_owned(),
            ),
            ("libc", libc.to_owned()),
            (
                "glibc-provided",
                glibc_provided.unwrap_or_else(|| "none".to_owned()),
            ),
        ];
        FactValue::Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
                .collect(),
        )
    }

    /// The `libc-versions` fact's record, or an error when the file defines no `GLIBC_` version.
    pub fn libc_record(&self) -> Result<FactValue, String> {
        let Some(max) = max_version(&self.glibc_defined) else {
            return Err("defines no GLIBC_ versions (not a glibc C library)".to_owned());
        };
        let mut versions = self.glibc_defined.clone();
        versions.sort_by(|a, b| compare_dotted(a, b).unwrap_or(std::cmp::Ordering::Equal));
        versions.dedup();
        Ok(FactValue::Record(BTreeMap::from([
            ("max".to_owned(), FactValue::Text(max)),
            ("versions".to_owned(), FactValue::Text(versions.join(" "))),
        ])))
    }
}

/// Where a glibc binary's `libc.so.6` is looked for: beside its interpreter, then in the
/// multiarch and lib64 folders.
pub(super) fn libc_candidates(info: &ElfInfo) -> Vec<String> {
    let mut candidates = Vec::new();
    if let Some(dir) = info
        .interpreter
        .as_deref()
        .and_then(|i| i.rsplit_once('/'))
        .map(|(dir, _)| dir)
        .filter(|dir| dir.starts_with('/'))
    {
        candidates.push(format!("{dir}/libc.so.6"));
    }
    let triplet = match info.machine.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "i686" => "i386-linux-gnu",
        "armv7l" => "arm-linux-gnueabihf",
        "ppc64le" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        _ => "",
    };
    if !triplet.is_empty() {
        candidates.push(format!("/lib/{triplet}/libc.so.6"));
        candidates.push(format!("/usr/lib/{triplet}/libc.so.6"));
    }
    for dir in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
        candidates.push(format!("{dir}/libc.so.6"));
    }
    candidates.dedup();
    candidates
}

/// The highest of dotted versions.
fn max_version(versions: &[String]) -> Option<String> {
    versions
        .iter()
        .max_by(|a, b| compare_dotted(a, b).unwrap_or(std::cmp::Ordering::Equal))
        .cloned()
}

/// Reads the ELF facts of a file's bytes.
pub(super) fn parse(data: &[u8]) -> Result<ElfInfo, String> {
    if data.len() < 5 || &data[..4] != b"\x7fELF" {
        return Err("not an ELF file".to_owned());
    }
    match data[4] {
        elf::ELFCLASS64 => parse_as::<elf::FileHeader64<Endianness>>(data, "64"),
        elf::ELFCLASS32 => parse_as::<elf::FileHeader32<Endianness>>(data, "32"),
        other => Err(format!("unknown ELF class {other}")),
    }
}

fn parse_as<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class: &'static str,
) -> Result<ElfInfo, String> {
    let bad = |e: object::Error| format!("malformed ELF file: {e}");
    let header = Elf::parse(data).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let machine = machine_name(header.e_machine(endian), class, endian);
    let mut interpreter = None;
    let mut abi_min_kernel = None;
    for segment in header.program_headers(endian, data).map_err(bad)? {
        match segment.p_type(endian) {
            elf::PT_INTERP => {
                let bytes = segment.data(endian, data).map_err(|()| {
                    "malformed ELF file: PT_INTERP lies outside the file".to_owned()
                })?;
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                interpreter = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
            }
            elf::PT_NOTE => {
                if let Some(mut notes) = segment.notes(endian, data).map_err(bad)? {
                    while let Some(note) = notes.next().map_err(bad)? {
                        if note.name() == elf::ELF_NOTE_GNU
                            && note.n_type(endian) == elf::NT_GNU_ABI_TAG
                        {
                            abi_min_kernel = abi_tag(note.desc(), endian).or(abi_min_kernel);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut glibc_needed = Vec::new();
    let mut glibc_defined = Vec::new();
    // Section headers may be missing (a stripped-to-the-bone file): then no versions are known.
    if let Ok(sections) = header.sections(endian, data) {
        for section in sections.iter() {
            if let Some((mut needs, link)) = section.gnu_verneed(endian, data).map_err(bad)? {
                let strings = sections.strings(endian, data, link).map_err(bad)?;
                while let Some((_, mut auxs)) = needs.next().map_err(bad)? {
                    while let Some(aux) = auxs.next().map_err(bad)? {
                        let name = aux.name(endian, strings).map_err(bad)?;
                        if let Some(v) = glibc_version(name) {
                            glibc_needed.push(v);
                        }
                    }
                }
            }
            if let Some((mut defs, link)) = section.gnu_verdef(endian, data).map_err(bad)? {
                let strings = sections.strings(endian, data, link).map_err(bad)?;
                while let Some((_, mut auxs)) = defs.next().map_err(bad)? {
                    if let Some(aux) = auxs.next().map_err(bad)? {
                        let name = aux.name(endian, strings).map_err(bad)?;
                        if let Some(v) = glibc_version(name) {
                            glibc_defined.push(v);
                        }
                    }
                }
            }
        }
    }
    Ok(ElfInfo {
        class,
        machine,
        interpreter,
        abi_min_kernel,
        glibc_needed,
        glibc_defined,
    })
}

/// `GLIBC_2.34` to `2.34`; `GLIBC_PRIVATE` and others to `None`.
fn glibc_version(name: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(name).ok()?;
    let version = text.strip_prefix("GLIBC_")?;
    compare_dotted(version, version).map(|_| version.to_owned())
}

/// The NT_GNU_ABI_TAG descriptor: OS (0 = Linux), then the minimum kernel's three numbers.
fn abi_tag(desc: &[u8], endian: Endianness) -> Option<String> {
    use object::Endian;
    if desc.len() < 16 {
        return None;
    }
    let word = |i: usize| {
        let bytes: [u8; 4] = desc[i * 4..i * 4 + 4].try_into().ok()?;
        Some(endian.read_u32_bytes(bytes))
    };
    if word(0)? != elf::ELF_NOTE_OS_LINUX {
        return None;
    }
    Some(format!("{}.{}.{}", word(1)?, word(2)?, word(3)?))
}

/// `e_machine` as `uname -m` spells the machine.
fn machine_name(machine: u16, class: &str, endian: Endianness) -> String {
    let little = endian == Endianness::Little;
    match (machine, class) {
        (elf::EM_X86_64, "64") => "x86_64",
        (elf::EM_X86_64, _) => "x32",
        (elf::EM_386, _) => "i686",
        (elf::EM_AARCH64, _) => "aarch64",
        (elf::EM_ARM, _) => "armv7l",
        (elf::EM_RISCV, "64") => "riscv64",
        (elf::EM_RISCV, _) => "riscv32",
        (elf::EM_PPC64, _) if little => "ppc64le",
        (elf::EM_PPC64, _) => "ppc64",
        (elf::EM_PPC, _) => "ppc",
        (elf::EM_S390, "64") => "s390x",
        (elf::EM_S390, _) => "s390",
        (elf::EM_MIPS, "64") => "mips64",
        (elf::EM_MIPS, _) => "mips",
        (elf::EM_LOONGARCH, _) => "loongarch64",
        (other, _) => return format!("e_machine-{other}"),
    }
    .to_owned()
}

/// The OpenSSH version in a binary's bytes: the text after the first `OpenSSH_` that starts with
/// a digit (`9.2p1`).
pub(super) fn openssh_version(data: &[u8]) -> Option<String> {
    const MARK: &[u8] = b"OpenSSH_";
    let mut start = 0;
    while let Some(offset) = data[start..].windows(MARK.len()).position(|w| w == MARK) {
        let at = start + offset + MARK.len();
        let version: String = data[at..]
            .iter()
            .take(32)
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'.')
            .map(|&b| char::from(b))
            .collect();
        if version.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(version);
        }
        start = at;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_read() {
        let data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = parse(&data).unwrap();
        assert_eq!(info.class, "64");
        assert_eq!(info.machine, std::env::consts::ARCH);
        assert!(info
            .interpreter
            .as_deref()
            .is_some_and(|i| i.contains("ld-linux")));
        assert!(!info.glibc_needed.is_empty());
    }

    #[test]
    fn garbage_and_truncated_files_are_errors_not_panics() {
        assert!(parse(b"").is_err());
        assert!(parse(b"#!/bin/sh\n").is_err());
        let data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        for len in [5, 16, 63, 64, 100, 1000, 4096] {
            let _ = parse(&data[..len.min(data.len())]);
        }
        let mut broken = data[..4096.min(data.len())].to_vec();
        broken[4] = 9;
        assert!(parse(&broken).is_err());
    }

    #[test]
    fn openssh_versions_are_found() {
        assert_eq!(
            openssh_version(b"xxOpenSSH_%s yy OpenSSH_9.2p1 Debian-2+deb12u3\0"),
            Some("9.2p1".to_owned())
        );
        assert_eq!(openssh_version(b"OpenSSH_"), None);
        assert_eq!(openssh_version(b"nothing"), None);
    }
}
