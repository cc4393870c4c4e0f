//! hostcert's parsers judged by the tools whose reading they claim to follow, on this machine:
//! kernel configs by kconfig's own `conf` (Debian's linux-kbuild), ELF files by readelf and the
//! kernel's loader, file types by stat(1) on real nodes (a FIFO, a socket, device nodes made with
//! mknod), and the mount table by util-linux's findmnt.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hostcert::facts::{Fact, FactValue, ProbeSet};
use hostcert::model::Probe;
use hostcert::targets::{self, TargetOptions};

/// Gathers `probes` from the target at `address` through the library's public API; `Err` when
/// the whole target could not be read.
fn try_gather(address: &str, probes: &[Probe]) -> Result<BTreeMap<Probe, Fact>, String> {
    let set: ProbeSet = probes.iter().cloned().collect();
    let opened = targets::open(address, &TargetOptions::default()).expect("the target opens");
    assert_eq!(opened.len(), 1, "{address}: one target");
    let gathered = opened[0].gather(&set).map_err(|e| e.reason)?;
    Ok(probes
        .iter()
        .map(|p| {
            (
                p.clone(),
                gathered.facts.get(p).expect("a fact per probe").clone(),
            )
        })
        .collect())
}

/// [`try_gather`] of a target that must answer.
fn gather(address: &str, probes: &[Probe]) -> BTreeMap<Probe, Fact> {
    try_gather(address, probes).expect("the target answers")
}

// ---- kernel configs, judged by kconfig's conf ----

/// kconfig's `conf` from Debian's linux-kbuild package: the program `make olddefconfig` runs.
const KCONFIG_CONF: &str = "/usr/lib/linux-kbuild-6.1/scripts/kconfig/conf";

/// The symbols every case may use, with their Kconfig types. Defaults are sentinels, so that
/// kconfig's output tells "never assigned" from any value a line can give.
const KCONFIG_SYMBOLS: &[(&str, &str)] = &[
    ("A", "tristate"),
    ("B", "tristate"),
    ("C", "bool"),
    ("D", "bool"),
    ("S", "string"),
    ("T", "string"),
    ("I", "int"),
    ("J", "int"),
    ("H", "hex"),
];
const UNSET_STRING: &str = "__unset__";
const UNSET_INT: &str = "987654321";
const UNSET_HEX: &str = "0xdeadbeef";

/// Each case: a name and the config lines after the header. A bool symbol is never given `m` or
/// a quoted value, and no symbol is given values of two types: without the Kconfig files hostcert
/// takes a symbol's type from its lines (see `KernelConfig::parse`).
const KCONFIG_CASES: &[(&str, &str)] = &[
    ("plain values", "CONFIG_A=y\nCONFIG_B=m\nCONFIG_C=y\n# CONFIG_D is not set\nCONFIG_S=\"landlock,lockdown\"\nCONFIG_I=64\nCONFIG_H=0x1f\n"),
    ("set, then not set", "CONFIG_A=y\n# CONFIG_A is not set\nCONFIG_C=y\n# CONFIG_C is not set\n"),
    ("not set, then set", "# CONFIG_A is not set\nCONFIG_A=m\n# CONFIG_C is not set\nCONFIG_C=y\n"),
    ("set twice", "CONFIG_A=m\nCONFIG_A=y\nCONFIG_S=\"one\"\nCONFIG_S=\"two\"\nCONFIG_I=1\nCONFIG_I=2\n"),
    ("=n unsets", "CONFIG_A=y\nCONFIG_A=n\nCONFIG_C=y\nCONFIG_C=no\n"),
    ("first character only", "CONFIG_A=yes\nCONFIG_B=maybe\nCONFIG_C=yellow\n"),
    ("empty values are refused", "CONFIG_A=y\nCONFIG_A=\nCONFIG_S=\"x\"\nCONFIG_S=\nCONFIG_I=5\nCONFIG_I=\nCONFIG_B=\nCONFIG_T=\nCONFIG_J=\n"),
    ("is not set leaves strings and numbers", "CONFIG_S=\"kept\"\n# CONFIG_S is not set\nCONFIG_I=7\n# CONFIG_I is not set\n# CONFIG_T is not set\n"),
    ("string escapes", "CONFIG_S=\"a\\\"b\\\\c\\d\"\nCONFIG_T=\"\"\n"),
    ("text after the closing quote", "CONFIG_S=\"x\" # trailing\nCONFIG_T=\"y\"z\"\n"),
    ("unclosed and unquoted strings", "CONFIG_S=\"good\"\nCONFIG_S=\"open\nCONFIG_T=bare\n"),
    ("a backslash before the end", "CONFIG_S=\"a\\\"\n"),
    ("numbers", "CONFIG_I=-12\nCONFIG_J=0\nCONFIG_H=ABCdef\n"),
    ("invalid numbers", "CONFIG_I=010\nCONFIG_J=12 \nCONFIG_H=0x\n"),
    ("CRLF line ends", "CONFIG_A=y\r\n# CONFIG_C is not set\r\nCONFIG_S=\"crlf\"\r\nCONFIG_I=42\r\n"),
    ("two carriage returns", "CONFIG_I=42\r\r\nCONFIG_A=y\r\r\nCONFIG_S=\"x\"\r\r\n"),
    ("comment forms", "#CONFIG_A is not set\nCONFIG_A=y\n# CONFIG_B  is not set\nCONFIG_B=m\nCONFIG_C=y\n# CONFIG_C is not settled\n#\n# a comment\n\n"),
    ("a NUL ends the line", "CONFIG_A=y\0garbage\nCONFIG_S=\"ab\0cd\"\n"),
    ("a last line without newline keeps its CR", "CONFIG_I=3\nCONFIG_I=5\r"),
];

/// Cases kconfig warns about as unexpected data: hostcert refuses the config, naming the line.
const KCONFIG_REFUSED: &[(&str, &str, usize)] = &[
    ("garbage", "CONFIG_A=y\nhello world\n", 2),
    ("indented assignment", "CONFIG_A=y\n  CONFIG_B=y\n", 2),
    ("blank but for spaces", "CONFIG_A=y\n   \n", 2),
];

/// Runs `conf --olddefconfig` on `config` with the symbols' Kconfig in a temporary folder.
/// Returns what kconfig wrote and its warnings.
fn kconfig_reads(config: &str) -> (BTreeMap<String, Option<String>>, String) {
    support::require(KCONFIG_CONF, "linux-kbuild-6.1");
    let dir = tempfile::tempdir().unwrap();
    let mut kconfig = "config MODULES\n\tbool \"modules\"\n\tdefault y\n\tmodules\n".to_owned();
    for (symbol, kind) in KCONFIG_SYMBOLS {
        let default = match *kind {
            "string" => format!("\n\tdefault \"{UNSET_STRING}\""),
            "int" => format!("\n\tdefault {UNSET_INT}"),
            "hex" => format!("\n\tdefault {UNSET_HEX}"),
            _ => String::new(),
        };
        kconfig += &format!("config {symbol}\n\t{kind} \"{symbol}\"{default}\n");
    }
    std::fs::write(dir.path().join("Kconfig"), kconfig).unwrap();
    std::fs::write(dir.path().join(".config"), config).unwrap();
    let output = Command::new(KCONFIG_CONF)
        .args(["--olddefconfig", "Kconfig"])
        .env("KCONFIG_CONFIG", ".config")
        .current_dir(dir.path())
        .output()
        .expect("conf runs");
    assert!(output.status.success(), "conf failed: {output:?}");
    let written = std::fs::read_to_string(dir.path().join(".config")).unwrap();
    let mut values = BTreeMap::new();
    for line in written.lines() {
        if let Some(rest) = line.strip_prefix("# CONFIG_") {
            if let Some(symbol) = rest.strip_suffix(" is not set") {
                values.insert(symbol.to_owned(), None);
            }
        } else if let Some((symbol, value)) =
            line.strip_prefix("CONFIG_").and_then(|l| l.split_once('='))
        {
            let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => value.to_owned(),
            };
            let unset = [UNSET_STRING, UNSET_INT, UNSET_HEX].contains(&value.as_str());
            values.insert(symbol.to_owned(), (!unset).then_some(value));
        }
    }
    let warnings = String::from_utf8_lossy(&output.stderr).into_owned();
    (values, warnings)
}

const KCONFIG_HEADER: &str = "#\n# Linux/x86_64 6.1.0 Kernel Configuration\n#\nCONFIG_MODULES=y\n";

/// Every case read by hostcert (a `kernel-config:` target) and by kconfig: the same value, or
/// the same absence, for every symbol.
#[test]
fn kernel_configs_read_as_kconfig_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let probes: Vec<Probe> = KCONFIG_SYMBOLS
        .iter()
        .map(|(symbol, _)| Probe::KernelConfig((*symbol).to_owned()))
        .collect();
    let mut disagreements = Vec::new();
    for (name, body) in KCONFIG_CASES {
        let text = format!("{KCONFIG_HEADER}{body}");
        let (kconfig, _) = kconfig_reads(&text);
        let path = dir.path().join("config");
        std::fs::write(&path, &text).unwrap();
        let facts = gather(&format!("kernel-config:{}", path.display()), &probes);
        for probe in &probes {
            let Probe::KernelConfig(symbol) = probe else {
                unreachable!()
            };
            let expected = kconfig.get(symbol).cloned().flatten();
            let fact = &facts[probe];
            let got = match &fact.value {
                Some(FactValue::Text(text)) => Some(text.clone()),
                Some(FactValue::Absent) => None,
                other => panic!("{name}: {symbol}: {other:?} {:?}", fact.error),
            };
            if got != expected {
                disagreements.push(format!(
                    "{name}: CONFIG_{symbol}: kconfig {expected:?}, hostcert {got:?}"
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "hostcert and kconfig disagree:\n{}",
        disagreements.join("\n")
    );
}

/// What kconfig skips with an "unexpected data" warning, hostcert refuses, naming the line.
#[test]
fn lines_kconfig_warns_about_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let header_lines = KCONFIG_HEADER.lines().count();
    for (name, body, line) in KCONFIG_REFUSED {
        let text = format!("{KCONFIG_HEADER}{body}");
        let (_, warnings) = kconfig_reads(&text);
        let at = header_lines + line;
        assert!(
            warnings.contains(&format!(".config:{at}:warning: unexpected data")),
            "{name}: kconfig does not warn about line {at}: {warnings}"
        );
        let path = dir.path().join("config");
        std::fs::write(&path, &text).unwrap();
        let probe = Probe::KernelConfig("A".to_owned());
        let error = try_gather(&format!("kernel-config:{}", path.display()), &[probe])
            .expect_err("a damaged config is refused");
        assert!(
            error.contains(&format!("config:{at}: not a kernel config line")),
            "{name}: {error}"
        );
    }
}
