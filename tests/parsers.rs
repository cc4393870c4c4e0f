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

// ---- ELF files, judged by readelf, the kernel and ld.so ----

/// What readelf shows of a file's loader view: DT_NEEDED, PT_INTERP, and the highest non-weak
/// `GLIBC_x.y` of its version needs ("0" for none).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReadelfView {
    needed: String,
    interpreter: String,
    glibc_needed: String,
}

fn readelf(path: &Path) -> ReadelfView {
    support::require("readelf", "binutils");
    let output = Command::new("readelf")
        .args(["-W", "-d", "-V", "-l"])
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("readelf runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("Shared library: [")?.1.strip_suffix(']'))
        .collect();
    let interpreter = text
        .lines()
        .find_map(|l| {
            l.split_once("[Requesting program interpreter: ")?
                .1
                .strip_suffix(']')
        })
        .unwrap_or("none");
    let mut glibc: Vec<Vec<u64>> = text
        .lines()
        .filter(|l| !l.contains("Flags: WEAK"))
        .filter_map(|l| l.split_once("Name: GLIBC_")?.1.split_whitespace().next())
        .filter_map(|v| v.split('.').map(|n| n.parse().ok()).collect())
        .collect();
    glibc.sort();
    let glibc_needed = glibc.last().map_or("0".to_owned(), |v| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(".")
    });
    ReadelfView {
        needed: if needed.is_empty() {
            "none".to_owned()
        } else {
            needed.join(" ")
        },
        interpreter: interpreter.to_owned(),
        glibc_needed,
    }
}

fn elf_field(fact: &Fact, name: &str) -> String {
    match fact.value.as_ref().and_then(|v| v.field(name)) {
        Some(value) => value.to_string(),
        None => panic!("no `{name}` in {fact:?}"),
    }
}

/// hostcert's `elf` facts of real binaries equal readelf's view of them: this machine's sshd,
/// ssh and busybox-static, and the fixture trees' binaries.
#[test]
fn elf_facts_of_real_binaries_agree_with_readelf() {
    let mut files: Vec<(String, PathBuf)> = ["/usr/sbin/sshd", "/usr/bin/ssh", "/bin/busybox"]
        .iter()
        .map(|p| ("local".to_owned(), PathBuf::from(p)))
        .collect();
    let trees = support::fixture_trees();
    for tree in ["rootfs", "broken-glibc", "broken-abi-note", "udhcpc-only"] {
        for binary in [
            "usr/sbin/sshd",
            "usr/bin/ssh",
            "sbin/dhclient",
            "bin/busybox",
        ] {
            let path = trees.join(tree).join(binary);
            if path.is_file() && !path.is_symlink() {
                files.push((format!("rootfs:{}", trees.join(tree).display()), path));
            }
        }
    }
    assert!(files.len() > 6, "{files:?}");
    for (address, path) in files {
        let inside = match address.strip_prefix("rootfs:") {
            Some(root) => format!("/{}", path.strip_prefix(root).unwrap().display()),
            None => path.display().to_string(),
        };
        let probe = Probe::Elf(inside.clone());
        let fact = &gather(&address, std::slice::from_ref(&probe))[&probe];
        let view = readelf(&path);
        let ours = ReadelfView {
            needed: elf_field(fact, "needed"),
            interpreter: elf_field(fact, "interpreter"),
            glibc_needed: elf_field(fact, "glibc-needed"),
        };
        assert_eq!(ours, view, "{address} {inside}");
    }
}

/// How this machine's kernel and dynamic loader take a file: exec it and see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loader {
    /// It ran (whatever its own exit status).
    Runs,
    /// execve failed: the kernel refused it before running anything.
    KernelRefuses,
    /// It died by a signal before it could run (the kernel's or the loader's mapping failed).
    Killed,
    /// ld.so stopped it: "version `GLIBC_x.y' not found".
    VersionNotFound,
}

fn exec(path: &Path, arg: &str) -> Loader {
    use std::os::unix::process::ExitStatusExt;
    for _ in 0..20 {
        match Command::new(path)
            .arg(arg)
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .output()
        {
            // A file just written can still be open in a child forked meanwhile.
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(_) => return Loader::KernelRefuses,
            Ok(output) if output.status.signal().is_some() => return Loader::Killed,
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                if stderr.contains("version `GLIBC_") && stderr.contains("not found") {
                    return Loader::VersionNotFound;
                }
                return Loader::Runs;
            }
        }
    }
    panic!("{} stays busy", path.display());
}

/// What hostcert must say of a mutated copy: facts with these fields, or an error saying this.
enum Says {
    Facts(&'static [(&'static str, &'static str)]),
    Error(&'static str),
}

/// A mutation of a 64-bit little-endian ELF file's bytes.
type Mutation = fn(&mut [u8]);

/// A mutated copy: its name, the original's bytes, the argument it runs with, the mutation, what
/// the loader does with it, and what hostcert must say.
type Case<'a> = (&'a str, &'a [u8], &'a str, Mutation, Loader, Says);

fn u16_at(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn u64_at(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// The offset of the first program header of a type.
fn phdr(data: &[u8], p_type: u32) -> usize {
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(data[0x38..0x3a].try_into().unwrap()) as usize;
    (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&at| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) == p_type)
        .expect("the program header exists")
}

fn strip_section_headers(data: &mut [u8]) {
    u64_at(data, 0x28, 0);
    u16_at(data, 0x3c, 0);
    u16_at(data, 0x3e, 0);
}

/// As ci/fixtures' broken-glibc: the first `GLIBC_2.` string becomes `GLIBC_9.`.
fn bump_glibc(data: &mut [u8]) {
    let at = data
        .windows(8)
        .position(|w| w == b"GLIBC_2.")
        .expect("a GLIBC_ version");
    data[at + 6] = b'9';
}

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;

/// Regression: an sshd with its section headers stripped hid its `GLIBC_` needs, and `e_phnum` 0
/// or 0xffff read as a static binary that passed every check. Each mutated copy of this
/// machine's sshd (and busybox-static) is read by hostcert, run by the kernel and ld.so, and,
/// where it keeps its section headers, read by readelf: hostcert's facts must predict what the
/// loader does, and the facts must equal readelf's view of the same dynamic section.
#[test]
fn mutated_binaries_read_as_the_kernel_and_ld_so_take_them() {
    let root = tempfile::tempdir().unwrap();
    // A tree with this machine's loader and C library, so that `interpreter-present` and
    // `glibc-provided` are judged as on this machine, where the copies run.
    for (from, to) in [
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
    ] {
        let to = root.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    let sshd = std::fs::read("/usr/sbin/sshd").expect("openssh-server is installed");
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let original = readelf(Path::new("/usr/sbin/sshd"));
    let glibc_provided = {
        let probe = Probe::LibcVersions("/lib/x86_64-linux-gnu/libc.so.6".to_owned());
        elf_field(
            &gather("local", std::slice::from_ref(&probe))[&probe],
            "max",
        )
    };
    let dynamic_ok: &[(&str, &str)] = &[("static", "no"), ("interpreter-present", "yes")];
    let cases: Vec<Case> = vec![
        (
            "sshd",
            &sshd,
            "-?",
            |_| {},
            Loader::Runs,
            Says::Facts(dynamic_ok),
        ),
        (
            "sshd-no-sections",
            &sshd,
            "-?",
            strip_section_headers,
            Loader::Runs,
            Says::Facts(dynamic_ok),
        ),
        (
            "sshd-glibc-9",
            &sshd,
            "-?",
            bump_glibc,
            Loader::VersionNotFound,
            Says::Facts(dynamic_ok),
        ),
        (
            "sshd-glibc-9-no-sections",
            &sshd,
            "-?",
            |d| {
                bump_glibc(d);
                strip_section_headers(d);
            },
            Loader::VersionNotFound,
            Says::Facts(dynamic_ok),
        ),
        (
            "sshd-phnum-0",
            &sshd,
            "-?",
            |d| u16_at(d, 0x38, 0),
            Loader::KernelRefuses,
            Says::Error("e_phnum is 0"),
        ),
        (
            "sshd-phnum-ffff",
            &sshd,
            "-?",
            |d| u16_at(d, 0x38, 0xffff),
            Loader::KernelRefuses,
            Says::Error("e_phnum is 65535"),
        ),
        (
            "sshd-phnum-100",
            &sshd,
            "-?",
            |d| u16_at(d, 0x38, 100),
            Loader::KernelRefuses,
            Says::Error("more than the one page"),
        ),
        (
            "sshd-phentsize",
            &sshd,
            "-?",
            |d| u16_at(d, 0x36, 32),
            Loader::KernelRefuses,
            Says::Error("e_phentsize is 32"),
        ),
        (
            "sshd-phoff-past-end",
            &sshd,
            "-?",
            |d| {
                let len = d.len() as u64;
                u64_at(d, 0x20, len - 16);
            },
            Loader::KernelRefuses,
            Says::Error("lie outside the file"),
        ),
        (
            "sshd-type-rel",
            &sshd,
            "-?",
            |d| u16_at(d, 0x10, 1),
            Loader::KernelRefuses,
            Says::Error("relocatable object"),
        ),
        (
            "sshd-interp-unterminated",
            &sshd,
            "-?",
            |d| {
                let at = phdr(d, PT_INTERP);
                let offset = u64::from_le_bytes(d[at + 8..at + 16].try_into().unwrap()) as usize;
                let size = u64::from_le_bytes(d[at + 32..at + 40].try_into().unwrap()) as usize;
                d[offset + size - 1] = b'x';
            },
            Loader::KernelRefuses,
            Says::Error("PT_INTERP is not NUL-terminated"),
        ),
        (
            "sshd-interp-too-long",
            &sshd,
            "-?",
            |d| {
                let at = phdr(d, PT_INTERP);
                u64_at(d, at + 32, 5000);
            },
            Loader::KernelRefuses,
            Says::Error("PT_INTERP is 5000 bytes long"),
        ),
        (
            "sshd-interp-outside",
            &sshd,
            "-?",
            |d| {
                let at = phdr(d, PT_INTERP);
                let len = d.len() as u64;
                u64_at(d, at + 8, len);
            },
            Loader::KernelRefuses,
            Says::Error("PT_INTERP (offset"),
        ),
        (
            "sshd-no-interp",
            &sshd,
            "-?",
            |d| {
                let at = phdr(d, PT_INTERP);
                d[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
            },
            Loader::Killed,
            Says::Facts(&[
                ("static", "no"),
                ("interpreter", "none"),
                ("interpreter-present", "no"),
            ]),
        ),
        (
            "sshd-load-filesz-over-memsz",
            &sshd,
            "-?",
            |d| {
                let at = phdr(d, PT_LOAD);
                let filesz = u64::from_le_bytes(d[at + 32..at + 40].try_into().unwrap());
                u64_at(d, at + 40, filesz - 1);
            },
            Loader::Killed,
            Says::Error("larger than p_memsz"),
        ),
        (
            "busybox",
            &busybox,
            "true",
            |_| {},
            Loader::Runs,
            Says::Facts(&[("static", "yes"), ("needed", "none"), ("glibc-needed", "0")]),
        ),
        (
            "busybox-no-sections",
            &busybox,
            "true",
            strip_section_headers,
            Loader::Runs,
            Says::Facts(&[("static", "yes")]),
        ),
        (
            "busybox-phnum-0",
            &busybox,
            "true",
            |d| u16_at(d, 0x38, 0),
            Loader::KernelRefuses,
            Says::Error("e_phnum is 0"),
        ),
        (
            "busybox-phnum-ffff",
            &busybox,
            "true",
            |d| u16_at(d, 0x38, 0xffff),
            Loader::KernelRefuses,
            Says::Error("e_phnum is 65535"),
        ),
    ];
    for (name, bytes, _, mutate, _, _) in &cases {
        let mut data = bytes.to_vec();
        mutate(&mut data);
        let path = root.path().join("bin").join(name);
        std::fs::write(&path, &data).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let probes: Vec<Probe> = cases
        .iter()
        .map(|(name, ..)| Probe::Elf(format!("/bin/{name}")))
        .collect();
    let facts = gather(&format!("rootfs:{}", root.path().display()), &probes);
    let mut wrong = Vec::new();
    for ((name, _, arg, _, loader, says), probe) in cases.iter().zip(&probes) {
        let path = root.path().join("bin").join(name);
        let observed = exec(&path, arg);
        // Kernels before 6.x also refuse more than one page of program headers; later ones read
        // up to 64 KiB of them, and then die on the garbage past the real ones.
        let also = if *name == "sshd-phnum-100" {
            Loader::Killed
        } else {
            *loader
        };
        if observed != *loader && observed != also {
            wrong.push(format!(
                "{name}: the loader: {observed:?}, expected {loader:?}"
            ));
        }
        let fact = &facts[probe];
        match says {
            Says::Error(reason) => match &fact.error {
                Some(error) if error.contains(reason) => {}
                _ => wrong.push(format!(
                    "{name}: hostcert: {fact:?}, expected an error with `{reason}`"
                )),
            },
            Says::Facts(fields) => {
                for (field, value) in *fields {
                    if fact
                        .value
                        .as_ref()
                        .and_then(|v| v.field(field))
                        .map(ToString::to_string)
                        .as_deref()
                        != Some(value)
                    {
                        wrong.push(format!(
                            "{name}: hostcert: {fact:?}, expected {field} = {value}"
                        ));
                    }
                }
            }
        }
        if name.starts_with("sshd") && fact.error.is_none() {
            // The dynamic section read through the program headers is readelf's, whether or not
            // the section headers are there (readelf needs them: read the copy that keeps them).
            let judged = if name.contains("glibc-9") {
                readelf(&root.path().join("bin/sshd-glibc-9"))
            } else {
                original.clone()
            };
            let needed = elf_field(fact, "needed");
            let interpreter = elf_field(fact, "interpreter");
            let glibc_needed = elf_field(fact, "glibc-needed");
            if needed != judged.needed || glibc_needed != judged.glibc_needed {
                wrong.push(format!("{name}: hostcert needed {needed:?} glibc-needed {glibc_needed}, readelf {judged:?}"));
            }
            if *name != "sshd-no-interp" && interpreter != judged.interpreter {
                wrong.push(format!(
                    "{name}: interpreter {interpreter}, readelf {}",
                    judged.interpreter
                ));
            }
            // What ld.so does follows from the facts: a need above the C library's versions.
            let refuses = semver_like(&glibc_needed) > semver_like(&glibc_provided);
            if refuses != (*loader == Loader::VersionNotFound) {
                wrong.push(format!("{name}: glibc-needed {glibc_needed}, glibc-provided {glibc_provided}, loader {loader:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn semver_like(version: &str) -> Vec<u64> {
    version.split('.').filter_map(|n| n.parse().ok()).collect()
}

// ---- file types, judged by stat(1) on real nodes ----

/// Makes every file type in `dir`: device nodes with mknod (as root), a FIFO, a socket (kept
/// open by the returned listener), a folder, a file, and relative links.
fn make_nodes(dir: &Path) -> std::os::unix::net::UnixListener {
    support::require("mknod", "coreutils");
    std::fs::create_dir_all(dir.join("dev")).unwrap();
    for args in [
        vec!["mknod", "-m", "0666", "dev/ptmx", "c", "5", "2"],
        vec!["mknod", "-m", "0666", "dev/null", "c", "1", "3"],
        vec!["mknod", "-m", "0660", "dev/loop9", "b", "7", "9"],
        vec!["mkfifo", "-m", "0600", "dev/fifo"],
    ] {
        let status = Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .status()
            .expect("coreutils runs");
        assert!(status.success(), "{args:?}: mknod needs root");
    }
    std::fs::write(dir.join("dev/regular"), "x").unwrap();
    std::fs::create_dir_all(dir.join("dev/folder")).unwrap();
    std::os::unix::fs::symlink("ptmx", dir.join("dev/link-to-ptmx")).unwrap();
    std::os::unix::fs::symlink("missing", dir.join("dev/dangling")).unwrap();
    std::os::unix::net::UnixListener::bind(dir.join("dev/socket")).unwrap()
}

const NODES: &[&str] = &[
    "ptmx",
    "null",
    "loop9",
    "fifo",
    "regular",
    "folder",
    "link-to-ptmx",
    "socket",
    "dangling",
];

/// stat(1)'s view of a path: type, major, minor, whether the path is a link; `None` when it does
/// not exist (stat -L fails).
fn stat(path: &Path) -> Option<(String, String, String, String)> {
    let output = Command::new("stat")
        .args(["-L", "-c", "%F|%Hr|%Lr"])
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("stat runs");
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.trim().split('|').collect();
    let file_type = match fields[0] {
        "regular file" | "regular empty file" => "regular",
        "directory" => "directory",
        "character special file" => "char-device",
        "block special file" => "block-device",
        "fifo" => "fifo",
        "socket" => "socket",
        other => panic!("stat says {other}"),
    };
    let link = if path.is_symlink() { "yes" } else { "no" };
    Some((
        file_type.to_owned(),
        fields[1].to_owned(),
        fields[2].to_owned(),
        link.to_owned(),
    ))
}

/// Regression: the `file` probe recorded only file/directory/other. On this machine and in an OS
/// tree, every file type and device number equals what stat(1) says.
#[test]
fn file_types_and_device_numbers_agree_with_stat() {
    let root = tempfile::tempdir().unwrap();
    let _socket = make_nodes(root.path());
    for address in [
        "local".to_owned(),
        format!("rootfs:{}", root.path().display()),
    ] {
        let probes: Vec<Probe> = NODES
            .iter()
            .map(|name| {
                Probe::File(if address == "local" {
                    root.path().join("dev").join(name).display().to_string()
                } else {
                    format!("/dev/{name}")
                })
            })
            .collect();
        let facts = gather(&address, &probes);
        for (name, probe) in NODES.iter().zip(&probes) {
            let expected = stat(&root.path().join("dev").join(name));
            let fact = &facts[probe];
            let got = match &fact.value {
                Some(FactValue::Absent) => None,
                Some(_) => Some((
                    elf_field(fact, "type"),
                    elf_field(fact, "major"),
                    elf_field(fact, "minor"),
                    elf_field(fact, "symlink"),
                )),
                None => panic!("{address} {name}: {fact:?}"),
            };
            assert_eq!(got, expected, "{address} {name}");
        }
    }
}

/// `host.dev.ptmx` (kernel-features 1.2.0, which every built-in profile runs) passes only the
/// character device 5:2, whatever else sits at /dev/ptmx; 1.1.0 passed them all.
#[test]
fn the_ptmx_check_passes_only_character_device_5_2() {
    let root = tempfile::tempdir().unwrap();
    let _socket = make_nodes(root.path());
    let work = support::Work::new();
    for (node, outcome) in [
        ("ptmx", "pass"),
        ("link-to-ptmx", "pass"),
        ("null", "fail"),
        ("loop9", "fail"),
        ("fifo", "fail"),
        ("socket", "fail"),
        ("regular", "fail"),
    ] {
        let probe = Probe::File(format!("/dev/{node}"));
        let mut fact = gather(
            &format!("rootfs:{}", root.path().display()),
            std::slice::from_ref(&probe),
        )
        .remove(&probe)
        .unwrap();
        fact.probe = Probe::File("/dev/ptmx".to_owned());
        let snapshot = serde_json::json!({
            "format-version": 1,
            "tool-version": "0.1.0",
            "gathered-at": "2026-11-29T12:00:00Z",
            "target": {"name": "h", "kind": "local", "address": "h", "hostname": "h"},
            "facts": [fact],
        });
        work.write("facts.json", &snapshot.to_string());
        let output = work.hostcert(&[
            "run",
            "--facts",
            "facts.json",
            "--profile",
            "container-host",
            "--report-dir",
            "report",
            "--exact",
            "h::kernel-features::host.dev.ptmx",
        ]);
        let report = work.json("report/report.json");
        let result = &report["results"][0];
        assert_eq!(result["check"], "host.dev.ptmx", "{output:?}");
        assert_eq!(result["suite-version"], "1.2.0");
        assert_eq!(result["outcome"], outcome, "{node}: {result}");
    }
}

// ---- the mount table, judged by findmnt ----

/// Regression for the `mounts` probe: in a private mount namespace with mounts whose paths and
/// sources hold a space, a tab, a newline and a backslash, and two mounts stacked on one point,
/// `hostcert gather` on the local target reads each mount point as util-linux's findmnt does.
#[test]
fn mounts_agree_with_findmnt_in_a_private_mount_namespace() {
    support::require("unshare", "util-linux");
    support::require("findmnt", "util-linux");
    let work = support::Work::new();
    let base = work.path("m");
    let points = [
        "a b",
        "t\tab",
        "new\nline",
        "back\\slash",
        "stacked",
        "unmounted",
    ];
    for point in points {
        std::fs::create_dir_all(base.join(point)).unwrap();
    }
    let mut targets: Vec<String> = ["/", "/proc", "/sys", "/dev", "/sys/fs/cgroup", "/nowhere"]
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    targets.extend(points.iter().map(|p| base.join(p).display().to_string()));
    let probes: String = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "      m{i}: {{mounts: {}}}\n",
                serde_json::to_string(t).unwrap()
            )
        })
        .collect();
    work.write(
        "suites/mounts.yaml",
        &format!("name: mounts-test\nversion: 1.0.0\nchecks:\n  - id: t.mounts\n    version: 1.0.0\n    title: t\n    severity: low\n    applies-to: {{target-kinds: [local]}}\n    probes:\n{probes}    expect: {{fact: m0, exists: true}}\n"),
    );
    work.write(
        "profile.yaml",
        "name: mounts-test\nversion: 1.0.0\nsuites:\n  mounts-test: \"=1.0.0\"\ngate: [critical]\n",
    );
    let script = r#"set -e
mount -t tmpfs -o size=1m "src with space" "$M/a b"
mount -t tmpfs -o size=1m "src	tab" "$M/t	ab"
mount -t tmpfs -o size=1m nl "$M/new
line"
mount -t tmpfs -o size=1m 'b\s' "$M/back\\slash"
mount -t tmpfs -o size=1m lower "$M/stacked"
mount -t tmpfs -o size=2m,ro,nosuid upper "$M/stacked"
findmnt -J --list -v -o ID,PARENT,MAJ:MIN,FSROOT,TARGET,SOURCE,FSTYPE,VFS-OPTIONS,FS-OPTIONS > findmnt.json
"$HOSTCERT" gather --suites suites --profile profile.yaml --target local --output facts.json
"#;
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("M", &base)
        .env("HOSTCERT", support::BIN)
        .current_dir(work.dir.path())
        .output()
        .expect("unshare runs");
    assert!(output.status.success(), "{output:?}");
    let findmnt = work.json("findmnt.json");
    let facts = work.json("facts.json");
    let mut compared = 0;
    for target in &targets {
        let last = findmnt["filesystems"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|fs| fs["target"] == target.as_str());
        let fact = facts["facts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["probe"]["mounts"] == target.as_str())
            .unwrap_or_else(|| panic!("no fact for {target:?}"));
        let Some(fs) = last else {
            assert_eq!(fact["value"], "absent", "{target:?}: {fact}");
            continue;
        };
        let record = &fact["value"]["record"];
        let text = |field: &str| record[field]["text"].as_str().unwrap_or("?").to_owned();
        let json = |value: &serde_json::Value| match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (ours, theirs) in [
            ("id", "id"),
            ("parent-id", "parent"),
            ("device", "maj:min"),
            ("root", "fsroot"),
            ("source", "source"),
            ("fs-type", "fstype"),
            ("options", "vfs-options"),
            ("super-options", "fs-options"),
        ] {
            assert_eq!(text(ours), json(&fs[theirs]), "{target:?} {ours}: {fact}");
        }
        compared += 1;
    }
    assert!(compared >= 8, "{compared} mounts compared");
    let stacked = facts["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["probe"]["mounts"] == base.join("stacked").display().to_string().as_str())
        .unwrap();
    assert_eq!(stacked["value"]["record"]["stacked"]["text"], "2");
    assert_eq!(stacked["value"]["record"]["read-only"]["text"], "yes");
    assert_eq!(stacked["value"]["record"]["source"]["text"], "upper");
}
