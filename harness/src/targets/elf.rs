//! ELF facts of a file, read as the kernel and the dynamic loader read it (program headers and
//! the dynamic segment, with the `object` crate's ELF types; never the section headers) and never
//! run: class, machine, interpreter, the needed libraries, the minimum kernel of the
//! NT_GNU_ABI_TAG note, the `GLIBC_x.y` versions a binary needs or a C library defines, and
//! version strings found in a binary's bytes.
//!
//! Every input is untrusted: a truncated or hostile file gives an error, never a panic, and a
//! file the kernel would refuse to run is an error that says why, never a "static" binary.

use std::collections::BTreeMap;

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, ReadRef};

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
    /// The libraries it needs (DT_NEEDED), in order.
    pub needed: Vec<String>,
    /// The `GLIBC_x.y` versions needed (DT_VERNEED; weak needs left out, as ld.so does not stop
    /// for them).
    pub glibc_needed: Vec<String>,
    /// The `GLIBC_x.y` versions defined (DT_VERDEF): a C library's.
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
            None if self.abi_min_kernel.is_some()
                || !self.glibc_needed.is_empty()
                || self.needed.iter().any(|n| n.starts_with("libc.so")) =>
            {
                "glibc"
            }
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
                if self.is_static() { "yes" } else { "no" }.to_owned(),
            ),
            (
                "needed",
                if self.needed.is_empty() {
                    "none".to_owned()
                } else {
                    self.needed.join(" ")
                },
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

    /// Whether nothing is loaded with it: no PT_INTERP and no DT_NEEDED. A binary that needs
    /// libraries but names no interpreter is not static: nothing would load them.
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
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

/// The smallest page size of a Linux kernel: the kernel reads at most one page of program
/// headers (`ELF_MIN_ALIGN`), and maps each PT_LOAD segment at a page-aligned file offset.
const PAGE: u64 = 4096;
/// The kernel's `PATH_MAX`, the longest PT_INTERP it reads.
const PATH_MAX: u64 = 4096;
/// Bounds on the entries walked in the dynamic section and the version chains.
const MAX_ENTRIES: usize = 1 << 16;

/// Reads the ELF facts of a file's bytes as the kernel's `load_elf_binary` (fs/binfmt_elf.c) and
/// the dynamic loader read them: through the program headers, never the section headers (which
/// neither reads, and which `strip` or a hostile file can remove or forge).
///
/// Refused, with the reason, as the kernel refuses them before running anything (ENOEXEC or EIO
/// from execve): a type other than ET_EXEC or ET_DYN, an `e_phentsize` that is not the class's
/// program header size, no program headers (`e_phnum` 0) or more than one page of them (`e_phnum`
/// 0xffff is not read as extended numbering), program headers outside the file, and a first
/// PT_INTERP shorter than 2 or longer than 4096 bytes, outside the file, or not NUL-terminated.
/// Also refused, as the kernel kills the process while mapping it: no PT_LOAD segment, a PT_LOAD
/// whose `p_filesz` exceeds its `p_memsz` or whose offset and address differ within a page, and a
/// PT_LOAD whose bytes lie outside the file (touching them raises SIGBUS). And as the dynamic loader
/// faults or stops on them: a PT_DYNAMIC, string table or version table whose address no PT_LOAD
/// maps from the file, and a version record whose version is not 1.
///
/// The dynamic section is read at its address (the last PT_DYNAMIC, as ld.so does) through the
/// PT_LOAD segments' mapping of addresses to file offsets: DT_NEEDED, DT_STRTAB, DT_VERNEED (the
/// `vn_next` and `vna_next` chains, as ld.so walks them), DT_VERDEF and DT_VERSYM.
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

/// A PT_LOAD segment: where its file bytes are mapped.
#[derive(Debug, Clone, Copy)]
struct Load {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
}

/// The file as the loader maps it: addresses to bytes through the PT_LOAD segments.
struct Image<'data> {
    data: &'data [u8],
    loads: Vec<Load>,
}

/// Where an address lands.
enum Mapped<'data> {
    /// In a segment's file bytes: the bytes from the address to the end of those.
    File(&'data [u8]),
    /// In a segment's zero-filled tail (`p_memsz` past `p_filesz`).
    Zeros,
    /// In no segment.
    Unmapped,
}

impl<'data> Image<'data> {
    fn at(&self, address: u64) -> Mapped<'data> {
        for load in self.loads.iter().rev() {
            let Some(delta) = address.checked_sub(load.vaddr) else {
                continue;
            };
            if delta < load.filesz {
                let start = usize::try_from(load.offset + delta).unwrap_or(usize::MAX);
                let end = usize::try_from(load.offset + load.filesz).unwrap_or(usize::MAX);
                return self
                    .data
                    .get(start..end)
                    .map_or(Mapped::Unmapped, Mapped::File);
            }
            if delta < load.memsz {
                return Mapped::Zeros;
            }
        }
        Mapped::Unmapped
    }

    /// `size` bytes at an address, all in one segment's file bytes.
    fn bytes(&self, address: u64, size: usize, what: &str) -> Result<&'data [u8], String> {
        match self.at(address) {
            Mapped::File(bytes) if bytes.len() >= size => Ok(&bytes[..size]),
            _ => Err(format!(
                "malformed ELF file: {what} at 0x{address:x} is not in the file bytes of a PT_LOAD segment (the dynamic loader would fault)"
            )),
        }
    }

    fn read<T: object::Pod>(&self, address: u64, what: &str) -> Result<&'data T, String> {
        let bytes = self.bytes(address, std::mem::size_of::<T>(), what)?;
        object::pod::from_bytes::<T>(bytes)
            .map(|(value, _)| value)
            .map_err(|()| format!("malformed ELF file: {what} at 0x{address:x} cannot be read"))
    }

    /// A NUL-terminated string at an address.
    fn string(&self, address: u64, what: &str) -> Result<&'data [u8], String> {
        match self.at(address) {
            Mapped::File(bytes) => match bytes.iter().position(|&b| b == 0) {
                Some(end) => Ok(&bytes[..end]),
                None => Err(format!(
                    "malformed ELF file: {what} at 0x{address:x} is not NUL-terminated within its segment"
                )),
            },
            _ => Err(format!(
                "malformed ELF file: {what} at 0x{address:x} is not in the file bytes of a PT_LOAD segment (the dynamic loader would fault)"
            )),
        }
    }
}

fn parse_as<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    class: &'static str,
) -> Result<ElfInfo, String> {
    let header: &Elf = data
        .read_at(0)
        .map_err(|()| "malformed ELF file: shorter than its ELF header".to_owned())?;
    let endian = match header.e_ident().data {
        elf::ELFDATA2LSB => Endianness::Little,
        elf::ELFDATA2MSB => Endianness::Big,
        other => return Err(format!("malformed ELF file: unknown byte order {other}")),
    };
    let refused = |why: String| format!("the kernel refuses to run it: {why}");
    let e_type = header.e_type(endian);
    if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
        let kind = match e_type {
            elf::ET_REL => "a relocatable object (ET_REL)".to_owned(),
            elf::ET_CORE => "a core dump (ET_CORE)".to_owned(),
            other => format!("of type {other}"),
        };
        return Err(refused(format!(
            "it is {kind}, not an executable or shared object"
        )));
    }
    let machine = machine_name(header.e_machine(endian), class, endian);
    let entry_size = std::mem::size_of::<Elf::ProgramHeader>();
    let phentsize = usize::from(header.e_phentsize(endian));
    if phentsize != entry_size {
        return Err(refused(format!(
            "e_phentsize is {phentsize}, not the {entry_size} bytes of an ELFCLASS{class} program header"
        )));
    }
    let phnum = usize::from(header.e_phnum(endian));
    if phnum == 0 {
        return Err(refused(
            "e_phnum is 0: it has no program headers".to_owned(),
        ));
    }
    let table_size = (phnum * entry_size) as u64;
    if table_size > PAGE {
        return Err(refused(format!(
            "e_phnum is {phnum}: {table_size} bytes of program headers, more than the one page ({PAGE} bytes) it reads"
        )));
    }
    let phoff: u64 = header.e_phoff(endian).into();
    let phdrs: &[Elf::ProgramHeader] = data.read_slice_at(phoff, phnum).map_err(|()| {
        refused(format!(
            "its {phnum} program headers at offset {phoff} lie outside the file ({} bytes)",
            data.len()
        ))
    })?;
    let bad = |e: object::Error| format!("malformed ELF file: {e}");
    let mut interpreter = None;
    let mut abi_min_kernel = None;
    let mut dynamic = None;
    let mut loads = Vec::new();
    let mut seen_interp = false;
    for (index, segment) in phdrs.iter().enumerate() {
        let offset: u64 = segment.p_offset(endian).into();
        let filesz: u64 = segment.p_filesz(endian).into();
        let end = offset
            .checked_add(filesz)
            .filter(|&end| end <= data.len() as u64);
        match segment.p_type(endian) {
            // Only the first PT_INTERP counts: the kernel stops at it.
            elf::PT_INTERP if !seen_interp => {
                seen_interp = true;
                if !(2..=PATH_MAX).contains(&filesz) {
                    return Err(refused(format!(
                        "its PT_INTERP is {filesz} bytes long (from 2 to {PATH_MAX})"
                    )));
                }
                let bytes = end
                    .and_then(|end| data.get(offset as usize..end as usize))
                    .ok_or_else(|| {
                        refused(format!(
                            "its PT_INTERP (offset {offset}, {filesz} bytes) lies outside the file"
                        ))
                    })?;
                if bytes.last() != Some(&0) {
                    return Err(refused("its PT_INTERP is not NUL-terminated".to_owned()));
                }
                let path = bytes.split(|&b| b == 0).next().unwrap_or_default();
                interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
            elf::PT_LOAD => {
                let load = Load {
                    vaddr: segment.p_vaddr(endian).into(),
                    offset,
                    filesz,
                    memsz: segment.p_memsz(endian).into(),
                };
                if load.filesz > load.memsz {
                    return Err(refused(format!(
                        "PT_LOAD segment {index} has p_filesz {} larger than p_memsz {}",
                        load.filesz, load.memsz
                    )));
                }
                if end.is_none() {
                    return Err(refused(format!(
                        "PT_LOAD segment {index} (offset {offset}, {filesz} bytes) lies outside the file ({} bytes)",
                        data.len()
                    )));
                }
                if load.filesz > 0 && load.offset % PAGE != load.vaddr % PAGE {
                    return Err(refused(format!(
                        "PT_LOAD segment {index}: offset 0x{:x} and address 0x{:x} differ within a page, so it cannot be mapped",
                        load.offset, load.vaddr
                    )));
                }
                loads.push(load);
            }
            elf::PT_DYNAMIC => dynamic = Some(segment.p_vaddr(endian).into()),
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
    if loads.is_empty() {
        return Err(refused("it has no PT_LOAD segment to map".to_owned()));
    }
    let image = Image { data, loads };
    let dynamic = match dynamic {
        Some(address) => read_dynamic::<Elf>(&image, address, endian)?,
        None => Dynamic::default(),
    };
    Ok(ElfInfo {
        class,
        machine,
        interpreter,
        abi_min_kernel,
        needed: dynamic.needed,
        glibc_needed: dynamic.glibc_needed,
        glibc_defined: dynamic.glibc_defined,
    })
}

/// What the dynamic section says.
#[derive(Debug, Default)]
struct Dynamic {
    needed: Vec<String>,
    glibc_needed: Vec<String>,
    glibc_defined: Vec<String>,
}

/// Reads the dynamic section at `address` as ld.so does (`elf_get_dynamic_info`: entries up to
/// DT_NULL, a later entry of a tag replacing an earlier one), then the needed libraries and the
/// version needs and definitions.
fn read_dynamic<Elf: FileHeader<Endian = Endianness>>(
    image: &Image<'_>,
    address: u64,
    endian: Endianness,
) -> Result<Dynamic, String> {
    let entry_size = std::mem::size_of::<Elf::Dyn>() as u64;
    let mut tags: BTreeMap<u64, u64> = BTreeMap::new();
    let mut needed_offsets = Vec::new();
    for index in 0..MAX_ENTRIES as u64 {
        let at = address.wrapping_add(index * entry_size);
        let entry: &Elf::Dyn = match image.at(at) {
            // Past the file bytes the loader sees zeros: DT_NULL.
            Mapped::Zeros => break,
            Mapped::Unmapped if index == 0 => {
                return Err(format!(
                    "malformed ELF file: its PT_DYNAMIC at 0x{address:x} is not in a PT_LOAD segment (the dynamic loader would fault)"
                ))
            }
            _ => image.read(at, "a dynamic entry")?,
        };
        let tag: u64 = entry.d_tag(endian).into();
        let value: u64 = entry.d_val(endian).into();
        if tag == u64::from(elf::DT_NULL) {
            break;
        }
        if tag == u64::from(elf::DT_NEEDED) {
            needed_offsets.push(value);
        }
        tags.insert(tag, value);
    }
    let tag = |t: u32| tags.get(&u64::from(t)).copied();
    let mut dynamic = Dynamic::default();
    let uses_strings = !needed_offsets.is_empty()
        || tag(elf::DT_VERNEED).is_some()
        || tag(elf::DT_VERDEF).is_some();
    let Some(strtab) = tag(elf::DT_STRTAB) else {
        if uses_strings {
            return Err(
                "malformed ELF file: its dynamic section names libraries or versions but has no DT_STRTAB"
                    .to_owned(),
            );
        }
        return Ok(dynamic);
    };
    let string = |offset: u64, what: &str| -> Result<String, String> {
        let bytes = image.string(strtab.wrapping_add(offset), what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    };
    for offset in needed_offsets {
        dynamic.needed.push(string(offset, "a DT_NEEDED name")?);
    }
    if let Some(versym) = tag(elf::DT_VERSYM) {
        image.bytes(versym, 2, "the DT_VERSYM table")?;
    }
    if let Some(mut at) = tag(elf::DT_VERNEED) {
        for _ in 0..MAX_ENTRIES {
            let need: &elf::Verneed<Endianness> = image.read(at, "a DT_VERNEED record")?;
            if need.vn_version.get(endian) != 1 {
                return Err(format!(
                    "malformed ELF file: version need record at 0x{at:x} has version {}, not 1 (the dynamic loader refuses it)",
                    need.vn_version.get(endian)
                ));
            }
            string(
                u64::from(need.vn_file.get(endian)),
                "a version need's file name",
            )?;
            let mut aux_at = at.wrapping_add(u64::from(need.vn_aux.get(endian)));
            for _ in 0..MAX_ENTRIES {
                let aux: &elf::Vernaux<Endianness> = image.read(aux_at, "a version need")?;
                let name = string(u64::from(aux.vna_name.get(endian)), "a version name")?;
                // ld.so does not stop for a weak version need it cannot meet.
                let weak = aux.vna_flags.get(endian) & elf::VER_FLG_WEAK != 0;
                if let (false, Some(version)) = (weak, glibc_version(name.as_bytes())) {
                    dynamic.glibc_needed.push(version);
                }
                match aux.vna_next.get(endian) {
                    0 => break,
                    next => aux_at = aux_at.wrapping_add(u64::from(next)),
                }
            }
            match need.vn_next.get(endian) {
                0 => break,
                next => at = at.wrapping_add(u64::from(next)),
            }
        }
    }
    if let Some(mut at) = tag(elf::DT_VERDEF) {
        for _ in 0..MAX_ENTRIES {
            let def: &elf::Verdef<Endianness> = image.read(at, "a DT_VERDEF record")?;
            if def.vd_version.get(endian) != 1 {
                return Err(format!(
                    "malformed ELF file: version definition at 0x{at:x} has version {}, not 1 (the dynamic loader refuses it)",
                    def.vd_version.get(endian)
                ));
            }
            let aux: &elf::Verdaux<Endianness> = image.read(
                at.wrapping_add(u64::from(def.vd_aux.get(endian))),
                "a version definition's name",
            )?;
            let name = string(u64::from(aux.vda_name.get(endian)), "a version name")?;
            if let Some(version) = glibc_version(name.as_bytes()) {
                dynamic.glibc_defined.push(version);
            }
            match def.vd_next.get(endian) {
                0 => break,
                next => at = at.wrapping_add(u64::from(next)),
            }
        }
    }
    Ok(dynamic)
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

    /// Regression: without section headers the version needs were not read, and `e_phnum` 0 or
    /// 0xffff (no program headers as `object` reads them) made a "static" binary.
    #[test]
    fn the_loader_view_ignores_section_headers_and_refuses_bad_program_headers() {
        let data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let original = parse(&data).unwrap();
        assert!(!original.needed.is_empty() && !original.is_static());
        let mut stripped = data.clone();
        stripped[0x28..0x30].fill(0); // e_shoff
        stripped[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
        assert_eq!(parse(&stripped).unwrap(), original);
        for (phnum, reason) in [(0u16, "e_phnum is 0"), (0xffff, "e_phnum is 65535")] {
            let mut broken = data.clone();
            broken[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
            let error = parse(&broken).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
        let mut broken = data.clone();
        broken[0x36..0x38].copy_from_slice(&32u16.to_le_bytes());
        assert!(parse(&broken).unwrap_err().contains("e_phentsize is 32"));
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
