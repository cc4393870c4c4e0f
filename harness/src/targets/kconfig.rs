//! Kernel config files: reading them safely (plain or gzip, bounded), parsing symbols, and
//! telling a full config from a fragment. Shared by every target that reads a config.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::facts::{Fact, FactValue};
use crate::model::Probe;

/// The largest kernel config read, compressed or decompressed (real ones are 100 to 300 KiB).
const MAX_CONFIG_BYTES: u64 = crate::fsio::cap::KERNEL_CONFIG;

/// A full resolved config has thousands of symbol lines (the smallest in the shared fixtures has
/// about 2,800); fragments and defconfigs have a few hundred to about a thousand.
const MIN_FULL_CONFIG_SYMBOLS: usize = 2000;

/// A parsed kernel config.
#[derive(Debug, Clone)]
pub(crate) struct KernelConfig {
    /// Where it was read, as shown in evidence.
    pub source: String,
    /// Symbol (without `CONFIG_`) to value; `# CONFIG_X is not set` symbols are left out.
    pub symbols: BTreeMap<String, String>,
    /// The architecture and version of the `# Linux/<arch> <version> Kernel Configuration` line.
    pub header: Option<(String, String)>,
    /// Symbol lines, set or not set.
    pub symbol_lines: usize,
}

impl KernelConfig {
    /// Reads a config file (gzip when it starts with gzip's magic bytes). Errors name the file and,
    /// for a line that is not config syntax, the line.
    pub fn read(path: &Path, source: &str) -> Result<KernelConfig, String> {
        let raw = crate::fsio::read_regular(path, MAX_CONFIG_BYTES, "kernel config")
            .map_err(|e| format!("cannot read {source}: {}", e.cause))?;
        KernelConfig::from_bytes(&raw, source)
    }

    /// Parses a config's bytes as read from a file (gzip when they start with gzip's magic).
    pub fn from_bytes(raw: &[u8], source: &str) -> Result<KernelConfig, String> {
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(raw)
                .take(MAX_CONFIG_BYTES + 1)
                .read_to_end(&mut text)
                .map_err(|e| format!("{source} is not a readable gzip file: {e}"))?;
            text
        } else {
            raw.to_vec()
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(format!(
                "{source} is larger than {} MiB; not a kernel config",
                MAX_CONFIG_BYTES >> 20
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{source} is not text; not a kernel config"))?;
        KernelConfig::parse(&text, source)
    }

    /// Parses config text as kconfig's `conf_read_simple` (scripts/kconfig/confdata.c) reads it:
    /// lines end at `\n` (one `\r` before it is dropped) and at a NUL byte; blank lines and `#`
    /// comments are skipped, except `# CONFIG_X is not set` (exactly one space after `#`, the
    /// name up to the next space, then text starting with `is not set`), which unsets X; every
    /// other line must be `CONFIG_X=value`. A line kconfig warns about as unexpected data (one
    /// that starts otherwise, or has no `=`), or a symbol name that is not `[A-Za-z0-9_]+`, is
    /// an error naming its line number: a damaged config is refused rather than half read.
    ///
    /// The last assignment kconfig accepts wins (kconfig warns "override: reassigning to
    /// symbol"); an assignment kconfig refuses for the symbol's type ("symbol value invalid",
    /// "invalid string found") is skipped and the earlier value stays. Without the Kconfig files
    /// the type of each symbol is taken from the forms of all its lines, as kconfig writes them:
    /// a string if any value is quoted; else a bool or tristate if any value starts with `y`, `m`
    /// or `n` (kconfig reads only that first character); else a number (int or hex) if any value
    /// is one; else a bool or tristate. Then, as kconfig does for that type:
    ///
    /// - bool or tristate: `y...` and `m...` set `y` and `m`; `n...` and `is not set` unset;
    /// - string: `"..."` sets the text up to the first unescaped `"` with each `\x` read as `x`
    ///   (what follows the closing quote is ignored; an unclosed string is refused); unquoted
    ///   values and `is not set` are skipped;
    /// - int: a decimal value (`-5`, no leading zero), hex: a hex value (`0x1f`, `1f`), kept as
    ///   written; anything else (`CONFIG_X=`, trailing blanks) and `is not set` are skipped.
    pub fn parse(text: &str, source: &str) -> Result<KernelConfig, String> {
        let mut assignments: Vec<(&str, Assignment<'_>)> = Vec::new();
        let mut header = None;
        let mut symbol_lines = 0;
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            // getline() then C strings: one \r before the \n goes with it (a last line without
            // \n keeps its \r, as kconfig's does), and a NUL ends the line's text.
            let line = match raw.strip_suffix('\n') {
                Some(line) => line.strip_suffix('\r').unwrap_or(line),
                None => raw,
            };
            let line = line.split('\0').next().unwrap_or_default();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let unset = comment
                    .strip_prefix(" CONFIG_")
                    .and_then(|rest| rest.split_once(' '))
                    .filter(|(_, rest)| rest.starts_with("is not set"));
                match unset {
                    Some((symbol, _)) => {
                        symbol_lines += 1;
                        if valid_symbol_name(symbol) {
                            assignments.push((symbol, Assignment::NotSet));
                        }
                    }
                    None if header.is_none() => header = parse_header(comment.trim()),
                    None => {}
                }
                continue;
            }
            let parsed = line
                .strip_prefix("CONFIG_")
                .and_then(|rest| rest.split_once('='))
                .filter(|(symbol, _)| valid_symbol_name(symbol));
            let Some((symbol, value)) = parsed else {
                let shown: String = line.chars().take(60).collect();
                return Err(format!(
                    "{source}:{}: not a kernel config line: `{shown}`",
                    index + 1
                ));
            };
            symbol_lines += 1;
            assignments.push((symbol, Assignment::Value(value)));
        }
        let mut kinds: BTreeMap<&str, SymbolType> = BTreeMap::new();
        for (symbol, assignment) in &assignments {
            let kind = kinds.entry(symbol).or_insert(SymbolType::Unknown);
            *kind = (*kind).max(assignment.suggested_type());
        }
        let mut symbols = BTreeMap::new();
        for (symbol, assignment) in &assignments {
            match assignment.value_for(kinds[symbol]) {
                Some(Some(value)) => symbols.insert((*symbol).to_owned(), value),
                Some(None) => symbols.remove(*symbol),
                None => continue,
            };
        }
        Ok(KernelConfig {
            source: source.to_owned(),
            symbols,
            header,
            symbol_lines,
        })
    }

    /// Refuses what looks like a fragment (a defconfig, an overlay, `savedefconfig` output):
    /// its missing symbols mean "left at the default", not "disabled", so judging it would be
    /// wrong either way.
    pub fn ensure_full(&self) -> Result<(), String> {
        if self.header.is_some() || self.symbol_lines >= MIN_FULL_CONFIG_SYMBOLS {
            return Ok(());
        }
        Err(format!(
            "{} looks like a config fragment, not a full kernel config: it has no `# Linux/<arch> <version> Kernel Configuration` header and only {} symbol lines (a full config has thousands); resolve it first (`make olddefconfig`) and check the resulting .config",
            self.source, self.symbol_lines
        ))
    }

    /// The kernel version in the header, if there is one.
    pub fn header_version(&self) -> Option<&str> {
        self.header.as_ref().map(|(_, version)| version.as_str())
    }

    /// The architecture as `uname -m` names it, from the config's own symbols (more reliable
    /// than the header, which says `x86` for both 32 and 64 bit).
    pub fn architecture(&self) -> Option<String> {
        let set = |symbol: &str| self.symbols.get(symbol).is_some_and(|v| v == "y");
        let arch = if set("X86_64") {
            "x86_64"
        } else if set("X86_32") || set("X86") {
            "i686"
        } else if set("ARM64") {
            "aarch64"
        } else if set("ARM") {
            "armv7l"
        } else if set("PPC64") && set("CPU_LITTLE_ENDIAN") {
            "ppc64le"
        } else if set("PPC64") {
            "ppc64"
        } else if set("S390") {
            "s390x"
        } else if set("RISCV") && set("64BIT") {
            "riscv64"
        } else {
            return self.header.as_ref().map(|(arch, _)| arch.clone());
        };
        Some(arch.to_owned())
    }
}

/// The fact a `kernel-config` probe gives from a config that was read (or why none could be):
/// the symbol's value, absent when it is not set, the config's path as the source.
pub(crate) fn symbol_fact(
    config: &Result<KernelConfig, String>,
    probe: &Probe,
    symbol: &str,
) -> Fact {
    match config {
        Ok(config) => {
            let value = config
                .symbols
                .get(symbol)
                .map_or(FactValue::Absent, |v| FactValue::Text(v.clone()));
            Fact::read(probe.clone(), config.source.clone(), value)
        }
        Err(reason) => Fact::failed(probe.clone(), "kernel config", reason.clone()),
    }
}

/// `Linux/x86_64 6.6.9 Kernel Configuration` to (`x86_64`, `6.6.9`).
fn parse_header(comment: &str) -> Option<(String, String)> {
    let rest = comment.strip_prefix("Linux/")?;
    let rest = rest.strip_suffix("Kernel Configuration")?.trim();
    let (arch, version) = rest.split_once(' ')?;
    Some((arch.to_owned(), version.trim().to_owned()))
}

/// A symbol name kconfig could know: letters, digits and `_`.
fn valid_symbol_name(symbol: &str) -> bool {
    !symbol.is_empty()
        && symbol
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One line about a symbol: `CONFIG_X=value` or `# CONFIG_X is not set`.
#[derive(Debug, Clone, Copy)]
enum Assignment<'a> {
    Value(&'a str),
    NotSet,
}

/// The type of a symbol, as far as its lines tell; a later variant wins when lines disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum SymbolType {
    /// Only `is not set` lines and values no type accepts: read as a bool or tristate.
    Unknown,
    /// A decimal value (or digits only, such as `010`, which no type but hex accepts).
    Int,
    /// A hex value with `0x` or a hex letter.
    Hex,
    /// A value starting with `y`, `m` or `n`.
    Tristate,
    /// A quoted value.
    String,
}

impl<'a> Assignment<'a> {
    fn suggested_type(self) -> SymbolType {
        match self {
            Assignment::NotSet => SymbolType::Unknown,
            Assignment::Value(value) if value.starts_with('"') => SymbolType::String,
            Assignment::Value(value) if value.starts_with(['y', 'm', 'n']) => SymbolType::Tristate,
            Assignment::Value(value)
                if valid_hex(value) && !value.bytes().all(|b| b.is_ascii_digit()) =>
            {
                SymbolType::Hex
            }
            Assignment::Value(value) if value.bytes().all(|b| b.is_ascii_digit()) => {
                SymbolType::Int
            }
            Assignment::Value(value) if valid_int(value) => SymbolType::Int,
            Assignment::Value(_) => SymbolType::Unknown,
        }
    }

    /// What this line does to a symbol of `kind`, as kconfig's `conf_set_sym_val`: `None` when
    /// kconfig skips it, `Some(None)` when it unsets the symbol, `Some(Some(value))` when it
    /// sets it.
    fn value_for(self, kind: SymbolType) -> Option<Option<String>> {
        match (kind, self) {
            (SymbolType::Unknown | SymbolType::Tristate, Assignment::NotSet) => Some(None),
            (_, Assignment::NotSet) => None,
            (SymbolType::Unknown | SymbolType::Tristate, Assignment::Value(value)) => {
                match value.as_bytes().first() {
                    Some(b'y') => Some(Some("y".to_owned())),
                    Some(b'm') => Some(Some("m".to_owned())),
                    Some(b'n') => Some(None),
                    _ => None,
                }
            }
            (SymbolType::String, Assignment::Value(value)) => unquote(value).map(Some),
            (SymbolType::Int, Assignment::Value(value)) => {
                valid_int(value).then(|| Some(value.to_owned()))
            }
            (SymbolType::Hex, Assignment::Value(value)) => {
                valid_hex(value).then(|| Some(value.to_owned()))
            }
        }
    }
}

/// kconfig's string reading: after the opening quote, each `\` takes the next character as it
/// is, and the first unescaped `"` ends the value (what follows is ignored). `None` without an
/// opening or a closing quote.
fn unquote(value: &str) -> Option<String> {
    let mut chars = value.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// kconfig's `sym_string_valid` for an int: an optional `-`, then digits without a leading
/// zero (`0` alone is fine).
fn valid_int(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// kconfig's `sym_string_valid` for a hex: an optional `0x` or `0X`, then at least one hex
/// digit.
fn valid_hex(value: &str) -> bool {
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_unset_symbols_and_the_header() {
        let text = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.1.0 Kernel Configuration\n#\nCONFIG_NET_NS=y\nCONFIG_VETH=m\n# CONFIG_AUFS_FS is not set\nCONFIG_LSM=\"landlock,lockdown\"\nCONFIG_NR_CPUS=64\nCONFIG_X86_64=y\n";
        let config = KernelConfig::parse(text, "c").unwrap();
        assert_eq!(config.symbols.get("NET_NS").map(String::as_str), Some("y"));
        assert_eq!(config.symbols.get("VETH").map(String::as_str), Some("m"));
        assert_eq!(
            config.symbols.get("LSM").map(String::as_str),
            Some("landlock,lockdown")
        );
        assert_eq!(config.symbols.get("AUFS_FS"), None);
        assert_eq!(config.header, Some(("x86".to_owned(), "6.1.0".to_owned())));
        assert_eq!(config.header_version(), Some("6.1.0"));
        assert_eq!(config.architecture().as_deref(), Some("x86_64"));
        assert_eq!(config.symbol_lines, 6);
        assert!(
            config.ensure_full().is_ok(),
            "a header makes it a full config"
        );
    }

    /// Regression: a symbol set and later `# CONFIG_X is not set` was read as set. In kconfig
    /// the last assignment wins.
    #[test]
    fn the_last_assignment_wins_as_in_kconfig() {
        let read = |text: &str| KernelConfig::parse(text, "c").unwrap().symbols;
        let symbols = read("CONFIG_NET_NS=y\n# CONFIG_NET_NS is not set\n");
        assert_eq!(symbols.get("NET_NS"), None);
        let symbols = read("# CONFIG_A is not set\nCONFIG_A=m\nCONFIG_B=y\nCONFIG_B=n\n");
        assert_eq!(symbols.get("A").map(String::as_str), Some("m"));
        assert_eq!(symbols.get("B"), None, "=n unsets");
        // An assignment kconfig refuses leaves the earlier value.
        let symbols = read("CONFIG_A=y\nCONFIG_A=\nCONFIG_I=64\nCONFIG_I=\nCONFIG_I=64 \n");
        assert_eq!(symbols.get("A").map(String::as_str), Some("y"));
        assert_eq!(symbols.get("I").map(String::as_str), Some("64"));
        // `is not set` does not unset a string or a number.
        let symbols =
            read("CONFIG_S=\"x\"\n# CONFIG_S is not set\nCONFIG_I=5\n# CONFIG_I is not set\n");
        assert_eq!(symbols.get("S").map(String::as_str), Some("x"));
        assert_eq!(symbols.get("I").map(String::as_str), Some("5"));
    }

    #[test]
    fn values_read_as_kconfig_reads_them() {
        let text = "CONFIG_A=yes\r\nCONFIG_B=maybe\nCONFIG_S=\"a\\\"b\\\\c\\d\" tail\nCONFIG_U=\"open\nCONFIG_V=bare\nCONFIG_E=\nCONFIG_H=0x1F\nCONFIG_Z=010\nCONFIG_N=-3\n# CONFIG_C is not settled\n#CONFIG_D is not set\n# CONFIG_F  is not set\nCONFIG_D=y\nCONFIG_F=y\nCONFIG_C=y\nCONFIG_C=n\nCONFIG_NUL=y\0junk\nCONFIG_LAST=5\r";
        let symbols = KernelConfig::parse(text, "c").unwrap().symbols;
        let get = |name: &str| symbols.get(name).map(String::as_str);
        assert_eq!(get("A"), Some("y"));
        assert_eq!(get("B"), Some("m"));
        assert_eq!(get("S"), Some("a\"b\\cd"));
        assert_eq!(get("U"), None, "an unclosed string is refused");
        assert_eq!(get("V"), None, "a bare word is no value of any type");
        assert_eq!(get("E"), None, "an empty value is no value of any type");
        assert_eq!(get("H"), Some("0x1F"));
        assert_eq!(
            get("Z"),
            None,
            "digits are an int, and an int has no leading zero"
        );
        assert_eq!(get("N"), Some("-3"));
        assert_eq!(get("C"), None);
        assert_eq!(get("D"), Some("y"), "`#CONFIG_D` is a plain comment");
        assert_eq!(get("F"), Some("y"), "two spaces: a plain comment");
        assert_eq!(get("NUL"), Some("y"));
        assert_eq!(
            get("LAST"),
            None,
            "a last line's \\r stays, and `5\\r` is no number"
        );
    }

    #[test]
    fn garbage_lines_are_refused_with_their_line_number() {
        let error = KernelConfig::parse("CONFIG_A=y\nhello world\n", "c").unwrap_err();
        assert_eq!(error, "c:2: not a kernel config line: `hello world`");
        let error = KernelConfig::parse("CONFIG_=y\n", "c").unwrap_err();
        assert_eq!(error, "c:1: not a kernel config line: `CONFIG_=y`");
        // What kconfig warns about as unexpected data.
        for (text, line) in [
            ("CONFIG_A=y\n   \n", 2),
            ("  CONFIG_A=y\n", 1),
            ("CONFIG_A\n", 1),
            ("\r\nCONFIG_A=y\n\rCONFIG_B=y\n", 3),
        ] {
            let error = KernelConfig::parse(text, "c").unwrap_err();
            assert!(
                error.starts_with(&format!("c:{line}: ")),
                "{text:?}: {error}"
            );
        }
    }

    #[test]
    fn a_short_config_without_header_is_a_fragment() {
        let config = KernelConfig::parse("CONFIG_A=y\n# CONFIG_B is not set\n", "frag").unwrap();
        let error = config.ensure_full().unwrap_err();
        assert!(
            error.starts_with("frag looks like a config fragment, not a full kernel config: it has no `# Linux/<arch> <version> Kernel Configuration` header and only 2 symbol lines"),
            "{error}"
        );
    }

    #[test]
    fn gzip_binary_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = "# Linux/arm64 6.12.0 Kernel Configuration\nCONFIG_ARM64=y\n";
        let gz_path = dir.path().join("config.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut encoder, plain.as_bytes()).unwrap();
        let gz = encoder.finish().unwrap();
        std::fs::write(&gz_path, &gz).unwrap();
        let config = KernelConfig::read(&gz_path, "config.gz").unwrap();
        assert_eq!(config.architecture().as_deref(), Some("aarch64"));
        let truncated = dir.path().join("truncated.gz");
        std::fs::write(&truncated, &gz[..gz.len() / 2]).unwrap();
        let error = KernelConfig::read(&truncated, "truncated.gz").unwrap_err();
        assert!(
            error.starts_with("truncated.gz is not a readable gzip file: "),
            "{error}"
        );
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0u8, 159, 146, 150]).unwrap();
        assert_eq!(
            KernelConfig::read(&binary, "binary").unwrap_err(),
            "binary is not text; not a kernel config"
        );
    }
}
