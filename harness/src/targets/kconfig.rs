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

    /// Parses config text. A line that is neither blank, a comment, nor `CONFIG_X=value` is an
    /// error naming its line number: a damaged config is refused rather than half read.
    pub fn parse(text: &str, source: &str) -> Result<KernelConfig, String> {
        let mut symbols = BTreeMap::new();
        let mut header = None;
        let mut symbol_lines = 0;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim();
                if comment.starts_with("CONFIG_") && comment.ends_with(" is not set") {
                    symbol_lines += 1;
                } else if header.is_none() {
                    header = parse_header(comment);
                }
                continue;
            }
            let parsed = line
                .strip_prefix("CONFIG_")
                .and_then(|rest| rest.split_once('='))
                .filter(|(symbol, _)| {
                    !symbol.is_empty()
                        && symbol
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            let Some((symbol, value)) = parsed else {
                let shown: String = line.chars().take(60).collect();
                return Err(format!(
                    "{source}:{}: not a kernel config line: `{shown}`",
                    index + 1
                ));
            };
            symbol_lines += 1;
            symbols.insert(symbol.to_owned(), unquote(value.trim()));
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

fn unquote(value: &str) -> String {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .map_or_else(
            || value.to_owned(),
            |v| v.replace("\\\"", "\"").replace("\\\\", "\\"),
        )
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

    #[test]
    fn garbage_lines_are_refused_with_their_line_number() {
        let error = KernelConfig::parse("CONFIG_A=y\nhello world\n", "c").unwrap_err();
        assert_eq!(error, "c:2: not a kernel config line: `hello world`");
        let error = KernelConfig::parse("CONFIG_=y\n", "c").unwrap_err();
        assert_eq!(error, "c:1: not a kernel config line: `CONFIG_=y`");
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
