//! The version a binary carries, read and never run: a Go binary's build info (what
//! `go version -m` prints) and the version string of a C binary.
//!
//! Go's linker writes a 32-byte header that starts with `\xff Go buildinf:` at a 16-byte aligned
//! offset of the `.go.buildinfo` section (or, without one, the first writable data segment), and
//! `debug/buildinfo` reads it in two formats:
//!
//! - Go 1.18 and later (flags bit 2 set): the Go version and the module information follow the
//!   header inline, each as a varint length and the bytes;
//! - before 1.18: two pointers (of the header's pointer size and byte order) to Go string
//!   headers, each a pointer and a length, resolved through the program's PT_LOAD segments.
//!
//! The module information is framed by 16-byte sentinels and holds `path`, `mod`, `dep`, `=>`
//! and `build` lines (tab-separated; `build` values that contain spaces or quotes are quoted
//! Go-style). This module reads both formats as `debug/buildinfo` does, with every read bounded
//! by the file.

use std::collections::BTreeMap;

use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};

/// The magic that starts Go's build info header.
const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The header's size and alignment.
const HEADER: usize = 32;
const ALIGN: usize = 16;
/// How much of the data segment Go searches for the header.
const SEARCH: u64 = 64 << 10;
/// The longest string the pointer format may point to.
const MAX_STRING: u64 = 1 << 20;

/// What a Go binary's build info says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoBuildInfo {
    /// The Go toolchain (`go1.19.8`).
    pub go_version: String,
    /// The main package's import path (`path`), when recorded.
    pub path: Option<String>,
    /// The main module's path and version (`mod`), when recorded.
    pub main_module: Option<(String, String)>,
    /// The build settings (`build KEY=VALUE`), values unquoted.
    pub settings: BTreeMap<String, String>,
}

impl GoBuildInfo {
    /// The `-X importpath.name=value` definitions of the `-ldflags` build setting, in order.
    pub fn ldflags_definitions(&self) -> Vec<(String, String)> {
        let Some(flags) = self.settings.get("-ldflags") else {
            return Vec::new();
        };
        let words = split_quoted(flags);
        let mut definitions = Vec::new();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let definition = if word == "-X" || word == "--X" {
                words.next().map(String::as_str)
            } else {
                word.strip_prefix("-X=")
                    .or_else(|| word.strip_prefix("--X="))
            };
            if let Some((name, value)) = definition.and_then(|d| d.split_once('=')) {
                definitions.push((name.to_owned(), value.to_owned()));
            }
        }
        definitions
    }

    /// The program's own version: a `-X …version=` definition (`main.version` first, then any
    /// variable named `version` or `Version`), else the main module's version unless it is
    /// `(devel)`. The source says which.
    pub fn program_version(&self) -> Option<(String, String)> {
        let definitions = self.ldflags_definitions();
        let named = |wanted: &dyn Fn(&str) -> bool| {
            definitions
                .iter()
                .find(|(name, value)| wanted(name) && !value.trim().is_empty())
                .map(|(name, value)| (value.trim().to_owned(), format!("-X {name}")))
        };
        named(&|name| name == "main.version")
            .or_else(|| {
                named(&|name| {
                    name.rsplit('.')
                        .next()
                        .is_some_and(|last| last.eq_ignore_ascii_case("version"))
                })
            })
            .or_else(|| {
                self.main_module
                    .as_ref()
                    .filter(|(_, version)| !version.is_empty() && version != "(devel)")
                    .map(|(path, version)| (version.clone(), format!("module {path}")))
            })
    }
}

/// Reads the Go build info of an ELF file; `Ok(None)` for an ELF file that is not a Go binary,
/// `Err` for a file that is not ELF or is damaged.
pub fn read_go(data: &[u8]) -> Result<Option<GoBuildInfo>, String> {
    let file = object::File::parse(data).map_err(|e| format!("not a readable ELF file: {e}"))?;
    if file.format() != object::BinaryFormat::Elf {
        return Err("not an ELF file".to_owned());
    }
    let start = file
        .section_by_name(".go.buildinfo")
        .map(|section| section.address())
        .or_else(|| {
            file.segments()
                .find(|segment| {
                    matches!(segment.flags(), SegmentFlags::Elf { p_flags }
                        if p_flags & (object::elf::PF_X | object::elf::PF_W) == object::elf::PF_W)
                })
                .map(|segment| segment.address())
        });
    let Some(start) = start else {
        return Ok(None);
    };
    let window = read_at(&file, start, SEARCH).unwrap_or_default();
    let Some(header) = find_header(window) else {
        return Ok(None);
    };
    let pointer_size = usize::from(header[14]);
    let flags = header[15];
    let (version, modinfo) = if flags & 2 != 0 {
        let (version, rest) =
            decode_string(&header[HEADER..]).ok_or("the build info's Go version is cut off")?;
        let (modinfo, _) =
            decode_string(rest).ok_or("the build info's module information is cut off")?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if pointer_size != 4 && pointer_size != 8 {
            return Err(format!(
                "the build info names a pointer size of {pointer_size}"
            ));
        }
        let big_endian = flags != 0;
        let read_pointer = |bytes: &[u8]| -> Option<u64> {
            let bytes = bytes.get(..pointer_size)?;
            Some(match (pointer_size, big_endian) {
                (4, false) => u64::from(u32::from_le_bytes(bytes.try_into().ok()?)),
                (4, true) => u64::from(u32::from_be_bytes(bytes.try_into().ok()?)),
                (_, false) => u64::from_le_bytes(bytes.try_into().ok()?),
                (_, true) => u64::from_be_bytes(bytes.try_into().ok()?),
            })
        };
        let read_string = |address: u64| -> Option<Vec<u8>> {
            let string_header = read_at(&file, address, 2 * pointer_size as u64)?;
            if string_header.len() < 2 * pointer_size {
                return None;
            }
            let data = read_pointer(string_header)?;
            let length = read_pointer(&string_header[pointer_size..])?;
            if length > MAX_STRING {
                return None;
            }
            let bytes = read_at(&file, data, length)?;
            (bytes.len() as u64 == length).then(|| bytes.to_vec())
        };
        let version_address = read_pointer(&header[16..]).ok_or("a short build info header")?;
        let modinfo_address =
            read_pointer(&header[16 + pointer_size..]).ok_or("a short build info header")?;
        (
            read_string(version_address).ok_or("the build info's Go version cannot be read")?,
            read_string(modinfo_address).unwrap_or_default(),
        )
    };
    if version.is_empty() {
        return Ok(None);
    }
    let mut info = GoBuildInfo {
        go_version: String::from_utf8_lossy(&version).into_owned(),
        ..GoBuildInfo::default()
    };
    // Strip the sentinels that frame the module information (cmd/go's infoStart and infoEnd).
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        parse_modinfo(
            &String::from_utf8_lossy(&modinfo[16..modinfo.len() - 16]),
            &mut info,
        );
    }
    Ok(Some(info))
}

/// The first header at a 16-byte aligned offset of the window, as Go searches for it.
fn find_header(window: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    while at + HEADER <= window.len() {
        let found = window[at..].windows(MAGIC.len()).position(|w| w == MAGIC)? + at;
        if found % ALIGN == 0 && window.len() - found >= HEADER {
            return Some(&window[found..]);
        }
        at = (found + ALIGN) & !(ALIGN - 1);
    }
    None
}

/// The bytes at a virtual address, from the PT_LOAD segment that maps it in the file: at most
/// `size`, fewer when the segment's file part ends first.
fn read_at<'a>(file: &object::File<'a>, address: u64, size: u64) -> Option<&'a [u8]> {
    for segment in file.segments() {
        let (_, file_size) = segment.file_range();
        let start = segment.address();
        let end = start.checked_add(file_size)?;
        if address >= start && address < end {
            let length = size.min(end - address);
            return segment.data_range(address, length).ok().flatten();
        }
    }
    None
}

/// A varint-prefixed string and what follows it.
fn decode_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length: u64 = 0;
    for (index, byte) in bytes.iter().take(10).enumerate() {
        length |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            let length = usize::try_from(length).ok()?;
            let rest = &bytes[index + 1..];
            return (rest.len() >= length).then(|| rest.split_at(length));
        }
    }
    None
}

/// The module information's lines, as `debug.ParseBuildInfo` reads them.
fn parse_modinfo(text: &str, info: &mut GoBuildInfo) {
    for line in text.lines() {
        let mut fields = line.splitn(2, '\t');
        let (Some(kind), Some(rest)) = (fields.next(), fields.next()) else {
            continue;
        };
        match kind {
            "path" => info.path = Some(rest.to_owned()),
            "mod" => {
                let mut parts = rest.split('\t');
                if let (Some(path), Some(version)) = (parts.next(), parts.next()) {
                    info.main_module = Some((path.to_owned(), version.to_owned()));
                }
            }
            "build" => {
                if let Some((key, value)) = rest.split_once('=') {
                    let value = if value.starts_with('"') {
                        unquote_go(value).unwrap_or_else(|| value.to_owned())
                    } else {
                        value.to_owned()
                    };
                    info.settings.insert(key.to_owned(), value);
                }
            }
            _ => {}
        }
    }
}

/// A Go double-quoted string literal's value (strconv.Unquote), `None` when it is not one.
fn unquote_go(quoted: &str) -> Option<String> {
    let body = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
            }
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            'U' => {
                let hex: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Splits flags as the Go linker's command line does (cmd/internal/quoted.Split): on spaces,
/// with single- or double-quoted words kept whole.
fn split_quoted(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            for c in chars.by_ref() {
                if c == first {
                    break;
                }
                word.push(c);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

/// The version string a C runtime binary carries, found in its bytes: conmon's
/// `conmon version X`, and crun's `PACKAGE_VERSION`, which its `--version` prints through the
/// format string `%s version %s` that follows it in the read-only data. `None` when the pattern
/// is not there.
pub fn c_version(program: &str, data: &[u8]) -> Option<String> {
    let version_chars =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'~' | b'+');
    match program {
        "conmon" => {
            let marker = b"conmon version ";
            let at = data.windows(marker.len()).position(|w| w == marker)? + marker.len();
            let version: Vec<u8> = data[at..]
                .iter()
                .copied()
                .take_while(version_chars)
                .take(64)
                .collect();
            starts_with_digit(&version).then(|| String::from_utf8_lossy(&version).into_owned())
        }
        "crun" => {
            let marker = b"%s version %s\n";
            let mut from = 0;
            while let Some(found) = data[from..].windows(marker.len()).position(|w| w == marker) {
                let at = from + found;
                // The NUL-terminated string just before (past any alignment padding).
                let end = data[..at].iter().rposition(|b| *b != 0)? + 1;
                let start = data[..end]
                    .iter()
                    .rposition(|b| *b == 0)
                    .map_or(0, |p| p + 1);
                let candidate = &data[start..end];
                if starts_with_digit(candidate)
                    && candidate.len() <= 64
                    && candidate.iter().all(version_chars)
                    && candidate.contains(&b'.')
                {
                    return Some(String::from_utf8_lossy(candidate).into_owned());
                }
                from = at + marker.len();
            }
            None
        }
        _ => None,
    }
}

fn starts_with_digit(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldflags_definitions_and_the_program_version() {
        let mut info = GoBuildInfo::default();
        info.settings.insert(
            "-ldflags".to_owned(),
            " \t\t-w \t-X \"github.com/docker/docker/dockerversion.Version=20.10.24+dfsg1\" -X main.gitCommit=abc -X=main.version=1.1.12".to_owned(),
        );
        assert_eq!(
            info.ldflags_definitions(),
            [
                (
                    "github.com/docker/docker/dockerversion.Version".to_owned(),
                    "20.10.24+dfsg1".to_owned()
                ),
                ("main.gitCommit".to_owned(), "abc".to_owned()),
                ("main.version".to_owned(), "1.1.12".to_owned()),
            ]
        );
        assert_eq!(
            info.program_version(),
            Some(("1.1.12".to_owned(), "-X main.version".to_owned()))
        );
        let module_only = GoBuildInfo {
            main_module: Some((
                "github.com/opencontainers/runc".to_owned(),
                "v1.2.8".to_owned(),
            )),
            ..GoBuildInfo::default()
        };
        assert_eq!(
            module_only.program_version().map(|v| v.0),
            Some("v1.2.8".to_owned())
        );
        let devel = GoBuildInfo {
            main_module: Some(("x".to_owned(), "(devel)".to_owned())),
            ..GoBuildInfo::default()
        };
        assert_eq!(devel.program_version(), None);
    }

    #[test]
    fn go_quoting_and_varints() {
        assert_eq!(
            unquote_go(r#""a\tb \"c\" \x41\u00e9""#).as_deref(),
            Some("a\tb \"c\" Aé")
        );
        assert_eq!(
            decode_string(&[3, b'a', b'b', b'c', 9]),
            Some((&b"abc"[..], &[9u8][..]))
        );
        assert_eq!(decode_string(&[5, b'a']), None);
    }

    #[test]
    fn c_versions_from_their_strings() {
        assert_eq!(
            c_version("conmon", b"\0conmon version 2.1.6\0").as_deref(),
            Some("2.1.6")
        );
        assert_eq!(
            c_version(
                "crun",
                b"x\0please\x001.8.1\0\0\0%s version %s\ncommit: %s\n"
            )
            .as_deref(),
            Some("1.8.1")
        );
        assert_eq!(c_version("crun", b"%s version %s\n"), None);
    }
}
