//! The one batch an SSH host runs: a POSIX `sh` script, generated from the probes, that prints
//! every fact in its own frame, and the parser that turns the frames back into facts.
//!
//! The script reads what the local target would read (the same kernel config candidates, the
//! same os-release fallback, the same module lists) and sends the raw bytes; the meaning is
//! decided here, with the same code the local target uses. Every probe argument is
//! shell-quoted, and nothing the host sends is ever executed locally.
//!
//! The whole output after its first line goes through one `base64` (or `od` where `base64` is
//! missing), so that a host's terminal settings and line endings cannot alter it, and the
//! script spawns about one process per fact: a file is one `head`. Decoded, a frame is
//!
//! ```text
//! \n@@HC <nonce> BEGIN <id> <source>\n<raw payload>\n@@HC <nonce> END <id> <status>\n
//! ```
//!
//! where the nonce is 96 random bits chosen for this batch: a payload cannot end its frame early
//! unless it contains the nonce, which nothing on the host has seen.

use std::collections::BTreeMap;

use base64::Engine;

use crate::facts::{Fact, FactSet, FactValue, ProbeSet};
use crate::model::Probe;
use crate::targets::command::{command_record, COMMAND_TIMEOUT};
use crate::targets::host::{
    file_record, kernel_config_places, parse_os_release, FileStat, ModuleIndex, MAX_FILE_BYTES,
};
use crate::targets::kconfig::{symbol_fact, KernelConfig};
use crate::targets::mounts::{mounts_fact, MountTable, MOUNTINFO};
use crate::targets::node;
use crate::targets::package_list::{
    package_fact, PackageList, TargetFiles, APK_INSTALLED, DPKG_STATUS, MAX_DATABASE_BYTES,
    MAX_RPMDB_BYTES, RPM_DB_DIRS,
};
use crate::targets::runtimes;

/// The script for a set of probes, and what is needed to read its output.
pub(super) struct Batch {
    /// The script, fed to `sh -s` on the host.
    pub script: String,
    nonce: String,
    /// Probe to frame id, for the probes that have their own frame.
    ids: BTreeMap<Probe, String>,
    /// Files sent whole (or filtered) for facts derived from files, by path, with frame ids.
    files: BTreeMap<String, String>,
    /// Paths whose existence was tested, with frame ids.
    exists: BTreeMap<String, String>,
}

/// Quotes a string for POSIX sh.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// How the batch reads one probe: every kind of probe is named here, once.
enum Way<'p> {
    /// From the `release` frame every batch has.
    Release,
    /// From the `arch` frame every batch has.
    Architecture,
    /// From the `kconfig` frame, which the batch has when a probe asks for a config symbol.
    KernelConfig(&'p str),
    /// From the `osr` frame (os-release).
    OsRelease(&'p str),
    /// From the module list frames.
    KernelModule(&'p str),
    /// From the `mountinfo` frame.
    Mounts(&'p str),
    /// From the `mountinfo` frame: the cgroup layout.
    CgroupMode,
    /// From the files the batch sends (package databases, changelogs, binaries' presence): one
    /// runtime of the inventory.
    Runtime(&'p str),
    /// From the same files: the whole inventory.
    Runtimes,
    /// From `/etc/passwd`, `/etc/subuid` and `/etc/subgid`, which the batch sends.
    SubidRanges(&'p str),
    /// From the package databases the batch sends (dpkg's status and apk's database whole,
    /// the rpm part): the package list, or one package.
    Packages,
    /// From a frame of its own.
    Own(Own<'p>),
    /// Not read over SSH: the fact's source and the reason, and whether it is "not given" (the
    /// run had no input for it) rather than failed.
    Not {
        source: String,
        reason: &'static str,
        not_given: bool,
    },
}

/// A probe read by a frame of its own.
enum Own<'p> {
    /// `stat` of a path (the `file` probe).
    Stat(&'p str),
    /// The bytes of a file, as text (`file-content`, `sysctl`).
    Text(String),
    /// The names in a folder.
    Names(&'p str),
    /// A command's output and exit status.
    Command(&'p [String]),
}

impl Own<'_> {
    /// Where the frame reads: a path or the command line.
    fn source(&self) -> String {
        match self {
            Own::Stat(path) | Own::Names(path) => (*path).to_owned(),
            Own::Text(path) => path.clone(),
            Own::Command(argv) => argv.join(" "),
        }
    }
}

/// Why ELF facts are not read over SSH: they would need each binary's bytes sent back.
const NOT_OVER_SSH: &str = "not read over SSH: hostcert reads ELF files only from OS trees, images and this machine (use --image for the image side of a pair)";

fn way(probe: &Probe) -> Way<'_> {
    match probe {
        Probe::KernelRelease => Way::Release,
        Probe::Architecture => Way::Architecture,
        Probe::KernelConfig(symbol) => Way::KernelConfig(symbol),
        Probe::OsRelease(key) => Way::OsRelease(key),
        Probe::KernelModule(name) => Way::KernelModule(name),
        Probe::Mounts(point) => Way::Mounts(point),
        Probe::CgroupMode => Way::CgroupMode,
        Probe::Runtime(name) => Way::Runtime(name),
        Probe::Runtimes => Way::Runtimes,
        Probe::SubidRanges(user) => Way::SubidRanges(user),
        Probe::Packages | Probe::Package(_) => Way::Packages,
        Probe::Boot => Way::Not {
            source: "vm:".to_owned(),
            reason: crate::targets::NOT_BOOTED,
            not_given: true,
        },
        Probe::UserCgroup(_) | Probe::FileCaps(_) | Probe::Filesystem(_) => Way::Not {
            source: probe.to_string(),
            reason: "not read over SSH yet: judge this host with --target host-root:/ run on it, or from an OS tree of its image",
            not_given: false,
        },
        Probe::File(path) => Way::Own(Own::Stat(path)),
        Probe::FileContent(path) => Way::Own(Own::Text(path.clone())),
        Probe::Sysctl(name) => Way::Own(Own::Text(sysctl_path(name))),
        Probe::DirList(path) => Way::Own(Own::Names(path)),
        Probe::Command(argv) => Way::Own(Own::Command(argv)),
        Probe::Elf(path) | Probe::LibcVersions(path) | Probe::OpensshVersion(path) => Way::Not {
            source: path.clone(),
            reason: NOT_OVER_SSH,
            not_given: false,
        },
        Probe::Image(_) | Probe::LiveRun => Way::Not {
            source: "--image".to_owned(),
            reason: crate::facts::NO_IMAGE,
            not_given: true,
        },
        Probe::SeccompProfile(_) => Way::Not {
            source: "--param seccomp-profile".to_owned(),
            reason: crate::facts::NO_SECCOMP_PROFILE,
            not_given: true,
        },
        Probe::ProbeProgram => Way::Not {
            source: crate::targets::probe_program::PROGRAM.to_owned(),
            reason:
                "the probe program runs over SSH in its own session; this batch does not run it",
            not_given: false,
        },
        Probe::ImageIntegrity(_)
        | Probe::ImageConfig(_)
        | Probe::ImageLabel(_)
        | Probe::ImageInfo(_) => Way::Not {
            source: probe.to_string(),
            reason: crate::targets::NOT_AN_IMAGE,
            not_given: false,
        },
    }
}

const PRELUDE: &str = r#"set -u
export LC_ALL=C
T=$(mktemp -d 2>/dev/null) || T="/tmp/hostcert.$$"
mkdir -p "$T" 2>/dev/null
trap 'rm -rf "$T"' EXIT
if command -v base64 >/dev/null 2>&1; then ENC=b; else ENC=x; fi
printf 'HC-ENC %s\n' "$ENC"
b() { printf '\n@@HC %s BEGIN %s %s\n' "$N" "$1" "$2"; }
e() { printf '\n@@HC %s END %s %s\n' "$N" "$1" "$2"; }
fail() { e "$1" error; b "$1.err" "$2"; cat "$T/e"; e "$1.err" ok; }
rd() { b "$1" "$2"; if [ ! -e "$2" ]; then e "$1" absent; elif [ -d "$2" ]; then printf 'Is a directory' > "$T/e"; fail "$1" "$2"; elif head -c MAXPLUS "$2" 2> "$T/e"; then e "$1" ok; else fail "$1" "$2"; fi; }
TO=''
command -v timeout >/dev/null 2>&1 && TO="timeout TIMEOUT"
{
r=$(cat /proc/sys/kernel/osrelease 2>/dev/null)
b release /proc/sys/kernel/osrelease; printf '%s' "$r"; e release ok
b arch 'uname -m'; uname -m; e arch ok
rd hostname /proc/sys/kernel/hostname
"#;

/// Closes the script: everything inside the braces is encoded by one process.
const EPILOGUE: &str = r#"printf '\n@@HC %s DONE\n' "$N"
} | if [ "$ENC" = b ]; then base64; else od -An -v -tx1; fi
"#;

/// The script's lines for a probe read by its own frame `id`.
fn own_snippet(id: &str, read: &Own<'_>) -> String {
    match read {
        Own::Stat(path) => {
            let path = shell_quote(path);
            format!(
                "b {id} {path}; if [ ! -e {path} ]; then e {id} absent; else if [ -L {path} ]; then printf '%s' 'l|'; else printf '%s' '-|'; fi; if stat -L -c '%f|%u|%g|%s|%t|%T' {path} 2> \"$T/e\"; then e {id} ok; else fail {id} {path}; fi; fi\n"
            )
        }
        // Not the shell's `read`: it reads a byte at a time, and many /proc/sys files answer
        // only a read at offset 0.
        Own::Text(path) => format!("rd {id} {}\n", shell_quote(path)),
        Own::Names(path) => {
            let path = shell_quote(path);
            format!(
                "b {id} {path}; if [ -d {path} ]; then if (cd {path} && for f in * .*; do if [ \"$f\" != . ] && [ \"$f\" != .. ] && {{ [ -e \"$f\" ] || [ -L \"$f\" ]; }}; then printf '%s\\0' \"$f\"; fi; done) 2> \"$T/e\"; then e {id} ok; else fail {id} {path}; fi; elif [ -e {path} ]; then printf 'Not a directory' > \"$T/e\"; fail {id} {path}; else e {id} absent; fi\n"
            )
        }
        Own::Command(argv) => {
            let program = shell_quote(&argv[0]);
            let command: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            let command = command.join(" ");
            let source = shell_quote(&argv.join(" "));
            format!(
                "b {id} {source}; if command -v {program} >/dev/null 2>&1; then $TO {command} > \"$T/o\" 2> \"$T/c\" < /dev/null; s=$?; if [ -n \"$TO\" ] && [ $s = 124 ]; then e {id} timeout; else head -c {max} \"$T/o\"; e {id} \"exit:$s\"; b {id}.err {source}; head -c {max} \"$T/c\"; e {id}.err ok; fi; else e {id} absent; fi\n",
                max = MAX_FILE_BYTES
            )
        }
    }
}

impl Batch {
    /// The script that reads every probe, with a fresh nonce.
    pub fn new(probes: &ProbeSet, nonce: &str) -> Batch {
        let mut script = format!("N={}\n", shell_quote(nonce));
        script += &PRELUDE
            .replace("MAXPLUS", &(MAX_FILE_BYTES + 1).to_string())
            .replace("TIMEOUT", &COMMAND_TIMEOUT.as_secs().to_string());
        let mut ids = BTreeMap::new();
        let (mut kernel_config, mut mounts, mut os_release) = (false, false, false);
        let mut modules: Vec<&str> = Vec::new();
        let mut own = String::new();
        for (index, probe) in probes.iter().enumerate() {
            match way(probe) {
                // Every batch has these frames; the inventory's and subid's files are listed by
                // `file_inputs`.
                Way::Release
                | Way::Architecture
                | Way::Runtime(_)
                | Way::Runtimes
                | Way::SubidRanges(_)
                | Way::Packages
                | Way::Not { .. } => {}
                Way::KernelConfig(_) => kernel_config = true,
                Way::Mounts(_) | Way::CgroupMode => mounts = true,
                Way::OsRelease(_) => os_release = true,
                Way::KernelModule(name) => modules.push(name),
                Way::Own(read) => {
                    let id = format!("p{index}");
                    own += &own_snippet(&id, &read);
                    ids.insert(probe.clone(), id);
                }
            }
        }
        if kernel_config {
            // The places the local reader tries, in its order; a `*` stays a glob.
            let places = kernel_config_places("$r");
            let words: Vec<String> = places
                .iter()
                .map(|place| {
                    place
                        .split('*')
                        .map(|part| format!("\"{part}\""))
                        .collect::<Vec<_>>()
                        .join("*")
                })
                .collect();
            script += &format!(
                r#"kc=''
for f in {}; do
  if [ -e "$f" ]; then kc=$f; break; fi
done
if [ -n "$kc" ]; then
  b kconfig "$kc"; if head -c 16777217 "$kc" 2> "$T/e"; then e kconfig ok; else fail kconfig "$kc"; fi
else
  b kconfig "{}"; e kconfig absent
fi
"#,
                words.join(" "),
                places.join(", ")
            );
        }
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        let mut exists: BTreeMap<String, String> = BTreeMap::new();
        let (file_paths, exist_paths) = file_inputs(probes);
        for path in file_paths {
            let id = format!("f{}", files.len());
            if (path == DPKG_STATUS || path == APK_INSTALLED) && wants_package_list(probes) {
                // The whole database, for the package list.
                let quoted = shell_quote(&path);
                script += &format!(
                    "b {id} {quoted}; if [ ! -e {quoted} ]; then e {id} absent; elif [ -d {quoted} ]; then printf 'Is a directory' > \"$T/e\"; fail {id} {quoted}; elif head -c {} {quoted} 2> \"$T/e\"; then e {id} ok; else fail {id} {quoted}; fi\n",
                    MAX_DATABASE_BYTES + 1
                );
            } else if path == DPKG_STATUS || path == APK_INSTALLED {
                // Only the stanzas of runtime packages: a status file can be megabytes.
                let names: Vec<String> = runtimes::package_names()
                    .iter()
                    .map(|n| n.replace('.', "\\."))
                    .collect();
                let key = if path == DPKG_STATUS {
                    "Package: "
                } else {
                    "P:"
                };
                let program = shell_quote(&format!(
                    "BEGIN{{RS=\"\";ORS=\"\\n\\n\"}} $0 ~ /(^|\\n){key}({})(\\n|$)/",
                    names.join("|")
                ));
                let quoted = shell_quote(&path);
                script += &format!(
                    "b {id} {quoted}; if [ ! -e {quoted} ]; then e {id} absent; elif awk {program} {quoted} 2> \"$T/e\"; then e {id} ok; else fail {id} {quoted}; fi\n"
                );
            } else {
                script += &format!("rd {id} {}\n", shell_quote(&path));
            }
            files.insert(path, id);
        }
        for path in exist_paths {
            let id = format!("x{}", exists.len());
            let quoted = shell_quote(&path);
            script += &format!(
                "b {id} {quoted}; if [ -e {quoted} ]; then e {id} yes; else e {id} no; fi\n"
            );
            exists.insert(path, id);
        }
        if mounts {
            script += &format!("rd mountinfo {MOUNTINFO}\n");
        }
        if os_release {
            script += "if [ -e /etc/os-release ]; then rd osr /etc/os-release; else rd osr /usr/lib/os-release; fi\n";
        }
        if !modules.is_empty() {
            // Names are validated ([A-Za-z0-9_-]); a dash and an underscore are the same.
            let alternatives: Vec<String> = modules
                .iter()
                .map(|m| m.replace(['_', '-'], "[-_]"))
                .collect();
            let pattern = shell_quote(&format!("(^|/)({})\\.ko", alternatives.join("|")));
            let find_names: Vec<String> = alternatives
                .iter()
                .map(|a| format!("-name {}", shell_quote(&format!("{a}.ko*"))))
                .collect();
            script += &format!(
                r#"if [ -e /proc/modules ]; then b modules.loaded /proc/modules; cut -d' ' -f1 /proc/modules; e modules.loaded ok; else b modules.loaded /proc/modules; e modules.loaded absent; fi
for f in builtin dep; do
  p="/lib/modules/$r/modules.$f"
  b "modules.$f" "$p"; if [ -e "$p" ]; then grep -E {pattern} "$p" | cut -d: -f1; e "modules.$f" ok; else e "modules.$f" absent; fi
done
if [ ! -e "/lib/modules/$r/modules.dep" ] && [ -d "/lib/modules/$r" ]; then b modules.files "/lib/modules/$r"; find "/lib/modules/$r" -type f \( {} \) 2>/dev/null; e modules.files ok; fi
"#,
                find_names.join(" -o ")
            );
        }
        script += &own;
        if wants_rpm_database(probes) {
            // Last: the largest frames, so that a host whose database overruns the output cap
            // still sends every other fact.
            script += &rpm_section();
        }
        script += EPILOGUE;
        Batch {
            script,
            nonce: nonce.to_owned(),
            ids,
            files,
            exists,
        }
    }

    /// Turns the host's decoded output ([`Output::finish`]) into one fact per probe. `ended` says why the batch stopped when
    /// it did not finish (a lost connection, a timeout): the facts it did not reach fail with
    /// that reason, and the ones it did reach are kept.
    /// Also returns the host name the host reported, and whether any frame came back at all.
    pub fn facts(
        &self,
        probes: &ProbeSet,
        output: &[u8],
        ended: Option<&str>,
    ) -> (FactSet, Option<String>, bool) {
        let (frames, done) = parse_frames(output, &self.nonce);
        let missing = ended.map_or_else(
            || {
                if done {
                    "the host's batch did not report this fact".to_owned()
                } else {
                    "the host's batch stopped before this fact".to_owned()
                }
            },
            |reason| format!("the host's batch stopped before this fact: {reason}"),
        );
        let release = frames
            .get("release")
            .map(|f| String::from_utf8_lossy(&f.payload).trim().to_owned())
            .filter(|r| !r.is_empty());
        let mut kernel_config: Option<Result<KernelConfig, String>> = None;
        let mut modules: Option<Result<ModuleIndex, String>> = None;
        let mut mount_table: Option<Result<MountTable, String>> = None;
        let mut inventory: Option<runtimes::Inventory> = None;
        let mut package_list: Option<Result<PackageList, String>> = None;
        let sent = SentFiles::new(&frames, &self.files, &self.exists, &missing);
        let mut facts = FactSet::default();
        for probe in probes {
            let fact = match way(probe) {
                Way::Runtime(name) => inventory
                    .get_or_insert_with(|| runtimes::Inventory::read(&sent))
                    .fact(probe, name),
                Way::Runtimes => inventory
                    .get_or_insert_with(|| runtimes::Inventory::read(&sent))
                    .summary_fact(probe),
                Way::Packages => package_fact(
                    package_list.get_or_insert_with(|| PackageList::read(&sent)),
                    probe,
                ),
                Way::CgroupMode => {
                    let table =
                        mount_table.get_or_insert_with(|| mount_table_of(&frames, &missing));
                    match table
                        .as_ref()
                        .map_err(Clone::clone)
                        .and_then(node::live_cgroup_mode)
                    {
                        Ok((mode, source)) => {
                            Fact::read(probe.clone(), source, FactValue::Text(mode))
                        }
                        Err(reason) => Fact::failed(probe.clone(), "cgroup layout", reason),
                    }
                }
                Way::SubidRanges(user) => match node::subid_ranges(&sent, user) {
                    Ok(value) => Fact::read(
                        probe.clone(),
                        "/etc/passwd, /etc/subuid, /etc/subgid",
                        value,
                    ),
                    Err(reason) => Fact::failed(probe.clone(), "/etc/subuid, /etc/subgid", reason),
                },
                Way::Release => match &release {
                    Some(release) => Fact::read(
                        probe.clone(),
                        "/proc/sys/kernel/osrelease",
                        FactValue::Text(release.clone()),
                    ),
                    None => {
                        Fact::failed(probe.clone(), "/proc/sys/kernel/osrelease", missing.clone())
                    }
                },
                Way::Architecture => match frames.get("arch") {
                    Some(frame) if frame.status == "ok" => {
                        Fact::read(probe.clone(), "uname -m", FactValue::Text(frame.text()))
                    }
                    _ => Fact::failed(probe.clone(), "uname -m", missing.clone()),
                },
                Way::KernelConfig(symbol) => {
                    let config = kernel_config.get_or_insert_with(|| match frames.get("kconfig") {
                        Some(frame) if frame.status == "ok" => KernelConfig::from_bytes(&frame.payload, &frame.source),
                        Some(frame) if frame.status == "absent" => Err(format!(
                            "no kernel config found (tried {}); enable CONFIG_IKCONFIG_PROC or install the kernel's config file",
                            frame.source
                        )),
                        Some(frame) => Err(format!("cannot read the kernel config {}: {}", frame.source, error_text(&frames, "kconfig"))),
                        None => Err(missing.clone()),
                    });
                    symbol_fact(config, probe, symbol)
                }
                Way::OsRelease(key) => match frames.get("osr") {
                    Some(frame) if frame.status == "ok" => {
                        let value = parse_os_release(&frame.text())
                            .remove(key)
                            .map_or(FactValue::Absent, FactValue::Text);
                        Fact::read(probe.clone(), frame.source.clone(), value)
                    }
                    Some(frame) if frame.status == "absent" => {
                        Fact::read(probe.clone(), "/etc/os-release", FactValue::Absent)
                    }
                    Some(frame) => Fact::failed(
                        probe.clone(),
                        frame.source.clone(),
                        error_text(&frames, "osr"),
                    ),
                    None => Fact::failed(probe.clone(), "/etc/os-release", missing.clone()),
                },
                Way::KernelModule(name) => {
                    let index = modules.get_or_insert_with(|| {
                        let Some(release) = &release else {
                            return Err(missing.clone());
                        };
                        let ok =
                            |id: &str| frames.get(id).filter(|f| f.status == "ok").map(Frame::text);
                        let files = ok("modules.files").map(|text| {
                            text.lines()
                                .map(crate::targets::host::module_name)
                                .collect()
                        });
                        ModuleIndex::new(
                            true,
                            &format!("/lib/modules/{release}"),
                            ok("modules.loaded").as_deref(),
                            ok("modules.builtin").as_deref(),
                            ok("modules.dep").as_deref(),
                            files,
                        )
                    });
                    match index {
                        Ok(index) => index.fact(probe, name),
                        Err(reason) => {
                            Fact::failed(probe.clone(), "kernel modules", reason.clone())
                        }
                    }
                }
                Way::Mounts(point) => {
                    let table =
                        mount_table.get_or_insert_with(|| mount_table_of(&frames, &missing));
                    mounts_fact(table, probe, point)
                }
                Way::Not {
                    source,
                    reason,
                    not_given: true,
                } => Fact::not_given(probe.clone(), source, reason),
                Way::Not {
                    source,
                    reason,
                    not_given: false,
                } => Fact::failed(probe.clone(), source, reason),
                Way::Own(read) => match self.ids.get(probe).and_then(|id| frames.get(id)) {
                    Some(frame) => self.own_frame_fact(probe, &read, frame, &frames),
                    None => Fact::failed(probe.clone(), read.source(), missing.clone()),
                },
            };
            facts.insert(fact);
        }
        let hostname = frames
            .get("hostname")
            .filter(|f| f.status == "ok")
            .map(Frame::text)
            .filter(|h| !h.is_empty());
        (facts, hostname, !frames.is_empty())
    }

    /// A fact read by its own frame: files, folders, sysctls, commands.
    fn own_frame_fact(
        &self,
        probe: &Probe,
        read: &Own<'_>,
        frame: &Frame,
        frames: &BTreeMap<String, Frame>,
    ) -> Fact {
        let source = frame.source.clone();
        if frame.status == "absent" {
            return Fact::read(probe.clone(), source, FactValue::Absent);
        }
        if frame.status == "error" {
            return Fact::failed(probe.clone(), source, error_text(frames, &self.ids[probe]));
        }
        match read {
            Own::Stat(_) => match parse_stat(&frame.text()) {
                Some(stat) => Fact::read(probe.clone(), source, file_record(&stat)),
                None => Fact::failed(
                    probe.clone(),
                    source,
                    format!("unexpected stat output `{}`", frame.text()),
                ),
            },
            Own::Text(_) => {
                if frame.payload.len() as u64 > MAX_FILE_BYTES {
                    return Fact::failed(
                        probe.clone(),
                        source,
                        format!("larger than {} MiB, not read", MAX_FILE_BYTES >> 20),
                    );
                }
                Fact::read(probe.clone(), source, FactValue::Text(frame.text()))
            }
            Own::Names(_) => {
                let mut names: Vec<String> = frame
                    .payload
                    .split(|b| *b == 0)
                    .filter(|name| !name.is_empty())
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect();
                names.sort();
                Fact::read(probe.clone(), source, FactValue::List(names))
            }
            Own::Command(argv) => {
                if frame.status == "timeout" {
                    return Fact::failed(
                        probe.clone(),
                        source,
                        format!(
                            "`{}` did not finish within {} s",
                            argv.join(" "),
                            COMMAND_TIMEOUT.as_secs()
                        ),
                    );
                }
                let status = frame
                    .status
                    .strip_prefix("exit:")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(-1);
                let id = &self.ids[probe];
                let stderr = frames
                    .get(&format!("{id}.err"))
                    .map(Frame::text)
                    .unwrap_or_default();
                Fact::read(
                    probe.clone(),
                    source,
                    command_record(status, &String::from_utf8_lossy(&frame.payload), &stderr),
                )
            }
        }
    }
}

/// The mount table the batch sent.
fn mount_table_of(frames: &BTreeMap<String, Frame>, missing: &str) -> Result<MountTable, String> {
    match frames.get("mountinfo") {
        Some(frame) if frame.status == "ok" => MountTable::parse(&frame.text()),
        Some(frame) if frame.status == "absent" => Err(format!("{MOUNTINFO} is missing")),
        Some(_) => Err(error_text(frames, "mountinfo")),
        None => Err(missing.to_owned()),
    }
}

/// The files and existence tests a batch needs for the facts derived from files: the package
/// databases, dpkg file lists and changelogs of runtime packages and the runtime binaries'
/// places (runtimes), the account and subordinate id files (subid ranges).
fn file_inputs(probes: &ProbeSet) -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    let mut exists = Vec::new();
    if probes
        .iter()
        .any(|p| matches!(p, Probe::Runtime(_) | Probe::Runtimes))
    {
        files.push(DPKG_STATUS.to_owned());
        files.push(APK_INSTALLED.to_owned());
        for package in runtimes::package_names() {
            files.push(runtimes::changelog_path(package));
            files.push(format!("/var/lib/dpkg/info/{package}.list"));
            for arch in [
                "amd64", "arm64", "armhf", "i386", "ppc64el", "s390x", "riscv64",
            ] {
                files.push(format!("/var/lib/dpkg/info/{package}:{arch}.list"));
            }
        }
        for spec in runtimes::SPECS {
            exists.extend(runtimes::binary_paths(spec));
        }
    }
    if wants_package_list(probes) {
        files.push(DPKG_STATUS.to_owned());
        files.push(APK_INSTALLED.to_owned());
    }
    if probes.iter().any(|p| matches!(p, Probe::SubidRanges(_))) {
        files.extend(["/etc/passwd", "/etc/subuid", "/etc/subgid"].map(str::to_owned));
    }
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|path| seen.insert(path.clone()));
    exists.dedup();
    (files, exists)
}

/// Whether a probe needs the whole package list (dpkg's status and apk's database whole, not
/// only the runtime packages' stanzas).
fn wants_package_list(probes: &ProbeSet) -> bool {
    probes
        .iter()
        .any(|p| matches!(p, Probe::Packages | Probe::Package(_)))
}

/// Whether a probe reads the rpm database.
fn wants_rpm_database(probes: &ProbeSet) -> bool {
    probes.iter().any(|p| {
        matches!(
            p,
            Probe::Packages | Probe::Package(_) | Probe::Runtime(_) | Probe::Runtimes
        )
    })
}

/// The files of an rpm database folder the batch sends: each backend's package file, and
/// SQLite's write-ahead log and rollback journal (which hold changes rpm has not yet written
/// back).
const RPM_DATABASE_FILES: &[&str] = &[
    "rpmdb.sqlite",
    "rpmdb.sqlite-wal",
    "rpmdb.sqlite-journal",
    "Packages.db",
    "Packages",
];

/// The most of one rpm database file the batch sends (compressed with gzip when the host has
/// it): about 43 MiB once encoded, so that the rest of the output cap is left for other facts.
pub const MAX_SENT_RPMDB_BYTES: u64 = 32 << 20;

/// The batch's rpm part: the folders and macro files rpm reads its `%_dbpath` and
/// `%_db_backend` from (`rl` listings, `rf` files), then every database file of the standard
/// folders and of each `%_dbpath` the macro files set (expanded here as far as the built-in
/// folder macros go), gzip-compressed when the host has gzip. Which one is rpm's database is
/// decided locally, by the same code that reads a tree ([`crate::targets::packages::rpmdb`]);
/// a database the batch did not send is an error there, never an empty list. Frames are found
/// by path (their source); the `rpm` frame says the part ran to its end.
fn rpm_section() -> String {
    RPM_SECTION
        .replace("MACROPLUS", &((1u64 << 20) + 1).to_string())
        .replace("MAXDB", &MAX_RPMDB_BYTES.to_string())
        .replace("MAXSENT", &MAX_SENT_RPMDB_BYTES.to_string())
        .replace("DIRS", &RPM_DB_DIRS.join(" "))
        .replace("DBFILES", &RPM_DATABASE_FILES.join(" "))
}

/// The script of [`rpm_section`], with its bounds to fill in.
const RPM_SECTION: &str = r#"i=0
GZ=''
command -v gzip >/dev/null 2>&1 && GZ=1
rl() { i=$((i+1)); b "rl$i" "$1"; if [ -d "$1" ]; then if (cd "$1" && for f in * .*; do if [ "$f" != . ] && [ "$f" != .. ] && { [ -e "$f" ] || [ -L "$f" ]; }; then printf '%s\0' "$f"; fi; done) 2> "$T/e"; then e "rl$i" ok; else fail "rl$i" "$1"; fi; else e "rl$i" absent; fi; }
rm1() { i=$((i+1)); b "rf$i" "$1"; if [ ! -e "$1" ]; then e "rf$i" absent; elif [ ! -f "$1" ]; then printf 'not a regular file' > "$T/e"; fail "rf$i" "$1"; elif head -c MACROPLUS "$1" 2> "$T/e"; then e "rf$i" ok; else fail "rf$i" "$1"; fi; }
rdb() { i=$((i+1)); b "rf$i" "$1"; if [ ! -e "$1" ]; then e "rf$i" absent; elif [ ! -f "$1" ]; then printf 'not a regular file' > "$T/e"; fail "rf$i" "$1"; elif ! n=$(wc -c < "$1" 2> "$T/e"); then fail "rf$i" "$1"; elif [ "$n" -gt MAXDB ]; then e "rf$i" "too-large:$n"; elif [ -n "$GZ" ] && gzip -c "$1" > "$T/z" 2> "$T/e"; then if [ "$(wc -c < "$T/z")" -gt MAXSENT ]; then e "rf$i" "too-large:$n"; else cat "$T/z"; e "rf$i" gzip; fi; elif [ "$n" -gt MAXSENT ]; then e "rf$i" "too-large:$n"; elif head -c MAXSENT "$1" 2> "$T/e"; then e "rf$i" ok; else fail "rf$i" "$1"; fi; rm -f "$T/z"; }
rl /usr/lib/rpm; rl /usr/lib/rpm/macros.d; rl /etc/rpm
for f in /usr/lib/rpm/macros /usr/lib/rpm/macros.d/macros.* /usr/lib/rpm/*/macros /etc/rpm/macros.* /etc/rpm/macros; do
  case "$f" in /usr/lib/rpm/macros|/etc/rpm/macros) ;; *) [ -e "$f" ] || continue ;; esac
  rm1 "$f"
done
{ for d in DIRS; do echo "$d"; done
  cat /usr/lib/rpm/macros /usr/lib/rpm/macros.d/macros.* /usr/lib/rpm/*/macros /etc/rpm/macros.* /etc/rpm/macros 2>/dev/null | sed -n 's/^[[:space:]]*%_dbpath[[:space:]][[:space:]]*//p' | sed -e 's/[[:space:]]*$//' -e 's/%{_var}/\/var/g' -e 's/%_var/\/var/g' -e 's/%{_localstatedir}/\/var/g' -e 's/%{_usr}/\/usr/g' -e 's/%_usr/\/usr/g' -e 's/%{_prefix}/\/usr/g' -e 's/%{_sysconfdir}/\/etc/g'
} | awk '!seen[$0]++' | while IFS= read -r d; do
  case "$d" in /*%*) ;; /*) for f in DBFILES; do rdb "$d/$f"; done ;; esac
done
b rpm rpm; e rpm done
"#;

/// The files a batch sent, read as a target's files: a file that was not sent cannot be read
/// (binaries are never sent), and a path whose existence was not tested is an error. The rpm
/// part's files and listings are found by path ([`rpm_section`]).
struct SentFiles<'a> {
    frames: &'a BTreeMap<String, Frame>,
    files: &'a BTreeMap<String, String>,
    exists: &'a BTreeMap<String, String>,
    missing: &'a str,
    /// The rpm part's files (`rf`) and listings (`rl`), by path.
    rpm_files: BTreeMap<&'a str, (&'a str, &'a Frame)>,
    rpm_lists: BTreeMap<&'a str, (&'a str, &'a Frame)>,
    /// Whether the rpm part ran to its end.
    rpm_done: bool,
}

impl<'a> SentFiles<'a> {
    fn new(
        frames: &'a BTreeMap<String, Frame>,
        files: &'a BTreeMap<String, String>,
        exists: &'a BTreeMap<String, String>,
        missing: &'a str,
    ) -> SentFiles<'a> {
        let by_source = |prefix: &str| -> BTreeMap<&'a str, (&'a str, &'a Frame)> {
            frames
                .iter()
                .filter(|(id, _)| {
                    id.strip_prefix(prefix)
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                .map(|(id, frame)| (frame.source.as_str(), (id.as_str(), frame)))
                .collect()
        };
        SentFiles {
            frames,
            files,
            exists,
            missing,
            rpm_files: by_source("rf"),
            rpm_lists: by_source("rl"),
            rpm_done: frames.get("rpm").is_some_and(|f| f.status == "done"),
        }
    }

    /// A file of the rpm part: `None` when the batch sent no frame for it.
    fn rpm_file(&self, path: &str, limit: u64) -> Option<Result<Option<Vec<u8>>, String>> {
        let (id, frame) = *self.rpm_files.get(path)?;
        Some(match frame.status.as_str() {
            "ok" if frame.payload.len() as u64 > limit => {
                Err(format!("{path}: larger than {limit} bytes"))
            }
            "ok" => Ok(Some(frame.payload.clone())),
            "gzip" => {
                use std::io::Read as _;
                let mut bytes = Vec::new();
                flate2::read::GzDecoder::new(frame.payload.as_slice())
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{path}: the compressed copy the host sent: {e}"))
                    .and_then(|_| {
                        if bytes.len() as u64 > limit {
                            Err(format!("{path}: larger than {limit} bytes"))
                        } else {
                            Ok(Some(bytes))
                        }
                    })
            }
            "absent" => Ok(None),
            status if status.starts_with("too-large:") => Err(format!(
                "{path}: {} bytes, more than an SSH batch sends ({} MiB compressed): judge this host's packages with --target host-root:/ run on it, or from an OS tree of its image",
                &status["too-large:".len()..],
                MAX_SENT_RPMDB_BYTES >> 20,
            )),
            _ => Err(format!("{path}: {}", error_text(self.frames, id))),
        })
    }
}

impl TargetFiles for SentFiles<'_> {
    fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let Some(id) = self.files.get(path) else {
            if let Some(sent) = self.rpm_file(path, limit) {
                return sent;
            }
            if self.rpm_done && (path.starts_with("/usr/lib/rpm/") || path.starts_with("/etc/rpm/"))
            {
                // The batch sent every regular macro file there is: this is not one.
                return Ok(None);
            }
            if self.rpm_done {
                return Err(format!(
                    "{path}: not read over SSH (the batch sends the rpm databases of {} and of each %_dbpath it can expand)",
                    RPM_DB_DIRS.join(", ")
                ));
            }
            return Err(format!(
                "{path}: not read over SSH (hostcert does not copy binaries back from a host)"
            ));
        };
        match self.frames.get(id) {
            Some(frame) if frame.status == "ok" => {
                if frame.payload.len() as u64 > limit {
                    return Err(format!("{path}: larger than {limit} bytes"));
                }
                Ok(Some(frame.payload.clone()))
            }
            Some(frame) if frame.status == "absent" => Ok(None),
            Some(_) => Err(format!("{path}: {}", error_text(self.frames, id))),
            None => Err(format!("{path}: {}", self.missing)),
        }
    }

    fn exists(&self, path: &str) -> Result<bool, String> {
        if let Some(id) = self.exists.get(path) {
            return match self.frames.get(id) {
                Some(frame) => Ok(frame.status == "yes"),
                None => Err(format!("{path}: {}", self.missing)),
            };
        }
        Ok(self.read_file(path, u64::MAX)?.is_some())
    }

    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        if let Some(&(id, frame)) = self.rpm_lists.get(path) {
            return match frame.status.as_str() {
                "ok" => Ok(Some(
                    frame
                        .payload
                        .split(|b| *b == 0)
                        .filter(|name| !name.is_empty())
                        .map(|name| String::from_utf8_lossy(name).into_owned())
                        .collect(),
                )),
                "absent" => Ok(None),
                _ => Err(format!("{path}: {}", error_text(self.frames, id))),
            };
        }
        if let Some(vendor) = path.strip_prefix("/usr/lib/rpm/") {
            if self.rpm_done && !vendor.contains('/') {
                // A vendor folder: the batch sent its `macros` when it has one.
                let macros = format!("{path}/macros");
                let has = self
                    .rpm_files
                    .get(macros.as_str())
                    .is_some_and(|(_, f)| f.status != "absent");
                return Ok(has.then(|| vec!["macros".to_owned()]));
            }
        }
        Err(format!(
            "{path}: folders are not listed for this fact over SSH"
        ))
    }
}

/// The `file` frame: `l|` or `-|` (whether the path is a symbolic link), then stat's
/// `%f|%u|%g|%s|%t|%T` (raw mode, uid, gid, size, a device's major and minor, in hex).
fn parse_stat(text: &str) -> Option<FileStat> {
    let fields: Vec<&str> = text.trim().split('|').collect();
    let [link, mode, uid, gid, size, major, minor] = fields.as_slice() else {
        return None;
    };
    Some(FileStat {
        mode: u32::from_str_radix(mode, 16).ok()?,
        uid: uid.parse().ok()?,
        gid: gid.parse().ok()?,
        size: size.parse().ok()?,
        major: u32::from_str_radix(major, 16).ok()?,
        minor: u32::from_str_radix(minor, 16).ok()?,
        symlink: match *link {
            "l" => true,
            "-" => false,
            _ => return None,
        },
    })
}

/// The error text the host gave for frame `id` (its `id.err` frame).
fn error_text(frames: &BTreeMap<String, Frame>, id: &str) -> String {
    frames
        .get(&format!("{id}.err"))
        .map(Frame::text)
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "the host could not read it".to_owned())
}

/// The file a sysctl is read from: `/proc/sys/` and the dotted name with slashes (a name that
/// has slashes already is a path under `/proc/sys`).
fn sysctl_path(name: &str) -> String {
    if name.contains('/') {
        format!("/proc/sys/{name}")
    } else {
        format!("/proc/sys/{}", name.replace('.', "/"))
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    status: String,
    source: String,
    payload: Vec<u8>,
}

impl Frame {
    /// The payload as text, trailing whitespace trimmed.
    fn text(&self) -> String {
        self.text_ref().trim_end().to_owned()
    }

    fn text_ref(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.payload)
    }
}

/// Decodes a batch's output and splits it into frames; `true` when the batch reached its end.
/// Anything outside frames (a login banner, shell noise) is ignored; a frame that is cut off is
/// left out. The error text of a failed frame `X` is in frame `X.err`.
fn parse_frames(decoded: &[u8], nonce: &str) -> (BTreeMap<String, Frame>, bool) {
    let begin = format!("\n@@HC {nonce} BEGIN ");
    let done = format!("\n@@HC {nonce} DONE\n");
    let finished = find(decoded, done.as_bytes(), 0).is_some();
    let mut frames = BTreeMap::new();
    let mut at = 0;
    while let Some(start) = find(decoded, begin.as_bytes(), at) {
        let header_start = start + begin.len();
        let Some(header_end) = find(decoded, b"\n", header_start) else {
            break;
        };
        let header = String::from_utf8_lossy(&decoded[header_start..header_end]).into_owned();
        let (id, source) = header.split_once(' ').unwrap_or((header.as_str(), ""));
        let end_marker = format!("\n@@HC {nonce} END {id} ");
        let Some(end) = find(decoded, end_marker.as_bytes(), header_end) else {
            break;
        };
        let status_start = end + end_marker.len();
        let status_end = find(decoded, b"\n", status_start).unwrap_or(decoded.len());
        let status = String::from_utf8_lossy(&decoded[status_start..status_end]).into_owned();
        let frame = Frame {
            status,
            source: source.to_owned(),
            payload: decoded[(header_end + 1).min(end)..end].to_vec(),
        };
        frames.insert(id.to_owned(), frame);
        at = status_end;
    }
    (frames, finished)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|position| position + from)
}

/// The most of a host's batch output hostcert reads, as sent (base64 or hex): about
/// 48 MiB of facts. A host that sends more is cut off there, and the facts it sent before are
/// kept.
pub const MAX_OUTPUT_BYTES: usize = 64 << 20;

/// The most noise (a login banner, shell output) read before the batch's first line.
const MAX_NOISE_BYTES: usize = 1 << 20;

/// The batch's output, decoded as it arrives so that only the decoded bytes are held: its
/// first line names the encoding (`HC-ENC b` for base64, `HC-ENC x` for hex), the rest is
/// encoded. A cut-off or damaged tail decodes as far as it is whole.
#[derive(Debug, Default)]
pub(super) struct Output {
    /// Bytes before the encoding line, until it is found.
    noise: Vec<u8>,
    /// `b` or `x` once the encoding line was read.
    encoding: Option<u8>,
    /// Encoded characters not yet decoded (fewer than a whole group).
    pending: Vec<u8>,
    decoded: Vec<u8>,
    /// Bytes received in all.
    received: usize,
    /// The encoding broke off (a character that is not base64 or hex): the rest is ignored.
    broken: bool,
}

impl Output {
    /// Takes the next bytes the host sent; refuses (with the reason) once the host has sent
    /// more than [`MAX_OUTPUT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.received += bytes.len();
        if self.received > MAX_OUTPUT_BYTES {
            return Err(format!(
                "the host sent more than {} MiB of output: hostcert stopped reading",
                MAX_OUTPUT_BYTES >> 20
            ));
        }
        if self.encoding.is_none() {
            self.noise.extend_from_slice(bytes);
            let Some(start) = find(&self.noise, b"HC-ENC ", 0) else {
                if self.noise.len() > MAX_NOISE_BYTES {
                    return Err(format!(
                        "the host sent {} KiB before the batch's output: not a batch",
                        MAX_NOISE_BYTES >> 10
                    ));
                }
                return Ok(());
            };
            let Some(end) = find(&self.noise, b"\n", start) else {
                return Ok(());
            };
            let encoding = self.noise[start + "HC-ENC ".len()..end].trim_ascii();
            self.encoding = Some(match encoding {
                b"b" => b'b',
                b"x" => b'x',
                _ => {
                    self.broken = true;
                    b'?'
                }
            });
            let rest = self.noise.split_off(end + 1);
            self.noise = Vec::new();
            return self.decode(&rest);
        }
        self.decode(bytes)
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.broken {
            return Ok(());
        }
        self.pending
            .extend(bytes.iter().filter(|b| !b.is_ascii_whitespace()));
        let group = if self.encoding == Some(b'b') { 4 } else { 2 };
        let whole = self.pending.len() / group * group;
        // Base64 is decoded in large runs, whole groups only; a run that ends in padding
        // ends the output.
        if whole >= 4096 || (whole > 0 && self.pending[..whole].contains(&b'=')) {
            self.decode_run(whole);
        }
        Ok(())
    }

    fn decode_run(&mut self, length: usize) {
        let run: Vec<u8> = self.pending.drain(..length).collect();
        if self.encoding == Some(b'b') {
            match base64::engine::general_purpose::STANDARD.decode_vec(&run, &mut self.decoded) {
                Ok(()) => {}
                Err(_) => self.broken = true,
            }
        } else {
            for pair in run.chunks_exact(2) {
                match std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                {
                    Some(byte) => self.decoded.push(byte),
                    None => {
                        self.broken = true;
                        break;
                    }
                }
            }
        }
        if self.broken {
            self.pending.clear();
        }
    }

    /// The decoded bytes: everything whole that arrived.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.broken && self.encoding.is_some() {
            let group = if self.encoding == Some(b'b') { 4 } else { 2 };
            let whole = self.pending.len() / group * group;
            self.decode_run(whole);
        }
        self.decoded
    }
}

/// Decodes a whole output at once (what [`Output`] gives for the same bytes).
#[cfg(test)]
fn decode_output(output: &[u8]) -> Vec<u8> {
    let mut decoder = Output::default();
    let _ = decoder.push(output);
    decoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: &str, status: &str, source: &str, payload: &[u8]) -> Vec<u8> {
        let mut bytes = format!("\n@@HC n1 BEGIN {id} {source}\n").into_bytes();
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(format!("\n@@HC n1 END {id} {status}\n").as_bytes());
        bytes
    }

    fn encoded(parts: &[Vec<u8>]) -> Vec<u8> {
        let raw: Vec<u8> = parts.concat();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!("Welcome banner\nHC-ENC b\n{}\n", lines.join("\n")).into_bytes()
    }

    #[test]
    fn frames_survive_any_bytes_and_noise_around_them() {
        let hostile = b"@@HC n2 END p0 ok\n\0\xff\nBEGIN \n@@HC n1 ENDING".to_vec();
        let output = encoded(&[
            frame("p0", "ok", "/etc/x y", &hostile),
            b"garbage".to_vec(),
            frame("p1", "absent", "/etc/y", b""),
            b"\n@@HC n1 DONE\n".to_vec(),
        ]);
        let (frames, done) = parse_frames(&decode_output(&output), "n1");
        assert!(done);
        assert_eq!(frames["p0"].payload, hostile);
        assert_eq!(frames["p0"].source, "/etc/x y");
        assert_eq!(frames["p0"].status, "ok");
        assert_eq!(frames["p1"].status, "absent");
    }

    #[test]
    fn a_cut_off_batch_keeps_what_it_reached() {
        let mut output = encoded(&[
            frame("p0", "ok", "/a", b"1"),
            frame("p1", "ok", "/b", b"22222222222222222222"),
        ]);
        output.truncate(output.len() - 20);
        let (frames, done) = parse_frames(&decode_output(&output), "n1");
        assert!(!done);
        assert!(frames.contains_key("p0") && !frames.contains_key("p1"));
    }

    #[test]
    fn hex_encoding_decodes_too() {
        assert_eq!(
            decode_output(b"HC-ENC x\n 41 42 0a\n 00\n"),
            vec![0x41, 0x42, 0x0a, 0x00]
        );
        assert_eq!(decode_output(b"no marker"), Vec::<u8>::new());
    }

    /// The output is decoded the same whatever the chunks it arrives in; hostile bytes never
    /// panic; more than the cap is refused with the reason, keeping what was decoded.
    #[test]
    fn output_decodes_in_any_chunks_and_stops_at_the_cap() {
        let whole = encoded(&[
            frame("p0", "ok", "/a", &[7u8; 10_000]),
            b"\n@@HC n1 DONE\n".to_vec(),
        ]);
        let reference = decode_output(&whole);
        assert_eq!(
            parse_frames(&reference, "n1").0["p0"].payload,
            vec![7u8; 10_000]
        );
        for size in [1, 3, 7, 76, 4096, 5000] {
            let mut output = Output::default();
            for chunk in whole.chunks(size) {
                output.push(chunk).unwrap();
            }
            assert_eq!(output.finish(), reference, "chunks of {size}");
        }
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..500 {
            let mut bytes = whole.clone();
            for _ in 0..(round % 5 + 1) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % bytes.len();
                bytes[at] = (state >> 32) as u8;
            }
            let _ = parse_frames(&decode_output(&bytes), "n1");
        }
        let mut output = Output::default();
        output.push(&whole).unwrap();
        let line = [b'A'; 1 << 20];
        let mut refused = None;
        for _ in 0..(MAX_OUTPUT_BYTES >> 20) + 1 {
            if let Err(reason) = output.push(&line) {
                refused = Some(reason);
                break;
            }
        }
        assert_eq!(
            refused.as_deref(),
            Some("the host sent more than 64 MiB of output: hostcert stopped reading")
        );
        let decoded = output.finish();
        assert_eq!(
            parse_frames(&decoded, "n1").0["p0"].payload,
            vec![7u8; 10_000]
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    /// Runs the generated script with the local `sh` against this machine and compares with
    /// what the local target reads: the batch and the local reader must agree fact for fact.
    #[test]
    fn the_script_run_locally_gives_the_local_targets_facts() {
        // Every file type stat(1) names, made here: device nodes with mknod (as root), a FIFO,
        // a socket, links to them and a dangling link.
        let nodes = tempfile::tempdir().unwrap();
        let node = |name: &str| nodes.path().join(name).display().to_string();
        for args in [
            vec![
                "mknod",
                "-m",
                "0620",
                &node("block") as &str,
                "b",
                "7",
                "200",
            ],
            vec!["mknod", "-m", "0666", &node("char"), "c", "1", "3"],
            vec!["mkfifo", "-m", "0600", &node("fifo")],
        ] {
            let status = std::process::Command::new(args[0])
                .args(&args[1..])
                .status()
                .expect("coreutils runs");
            assert!(status.success(), "{args:?} (needs root)");
        }
        let _socket = std::os::unix::net::UnixListener::bind(node("socket")).unwrap();
        std::os::unix::fs::symlink(node("char"), node("link-to-char")).unwrap();
        std::os::unix::fs::symlink(node("missing"), node("dangling")).unwrap();
        let node_probes = [
            "block",
            "char",
            "fifo",
            "socket",
            "link-to-char",
            "dangling",
        ]
        .map(|name| Probe::File(node(name)));
        let probes: ProbeSet = [
            Probe::KernelRelease,
            Probe::Architecture,
            Probe::OsRelease("ID".to_owned()),
            Probe::KernelConfig("NET_NS".to_owned()),
            Probe::KernelConfig("NO_SUCH_SYMBOL".to_owned()),
            Probe::File("/etc/passwd".to_owned()),
            Probe::File("/no/such/file".to_owned()),
            Probe::FileContent("/proc/filesystems".to_owned()),
            Probe::FileContent("/etc".to_owned()),
            Probe::DirList("/proc/self/ns".to_owned()),
            Probe::DirList("/no/such/dir".to_owned()),
            Probe::Sysctl("kernel.ostype".to_owned()),
            // More than one byte, from a handler that answers only reads at offset 0: guards
            // against reading sysctls with the shell's byte-wise `read`.
            Probe::Sysctl("kernel.pid_max".to_owned()),
            Probe::Command(vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "echo 'it'\"'\"'s'; echo err >&2; exit 3".to_owned(),
            ]),
            Probe::Command(vec!["no-such-program-hostcert".to_owned()]),
            Probe::KernelModule("overlay".to_owned()),
            Probe::Mounts("/".to_owned()),
            Probe::Mounts("/proc".to_owned()),
            Probe::Mounts("/sys/fs/cgroup".to_owned()),
            Probe::Mounts("/no/such/mount".to_owned()),
            Probe::File("/dev/null".to_owned()),
            Probe::File("/dev/ptmx".to_owned()),
            Probe::File("/".to_owned()),
            Probe::Runtime("runc".to_owned()),
            Probe::Runtime("containerd".to_owned()),
            Probe::Runtimes,
            Probe::CgroupMode,
            Probe::SubidRanges("root".to_owned()),
            Probe::SubidRanges("no-such-user".to_owned()),
            Probe::Packages,
            Probe::Package("dpkg".to_owned()),
            Probe::Package("no-such-package".to_owned()),
        ]
        .into_iter()
        .chain(node_probes.iter().cloned())
        .collect();
        let batch = Batch::new(&probes, "t0");
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh runs");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), batch.script.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let (remote, hostname, reached) =
            batch.facts(&probes, &decode_output(&output.stdout), None);
        assert!(reached);
        let local = crate::targets::host::HostFs::live_root().gather(&probes);
        assert_eq!(hostname, local.hostname);
        for probe in &probes {
            let (remote, local) = (remote.get(probe).unwrap(), local.facts.get(probe).unwrap());
            if let Probe::DirList(_) | Probe::FileContent(_) = probe {
                // /proc/self is the reading process: sh there, hostcert here; the names agree.
            }
            assert_eq!(
                remote.value, local.value,
                "{probe}: {remote:?} vs {local:?}"
            );
            assert_eq!(
                remote.error.is_some(),
                local.error.is_some(),
                "{probe}: {remote:?} vs {local:?}"
            );
        }
        let field = |path: &str, name: &str| {
            remote
                .get(&Probe::File(path.to_owned()))
                .and_then(|f| f.value.as_ref())
                .and_then(|v| v.field(name))
                .map(ToString::to_string)
        };
        for (path, file_type, major, minor, symlink) in [
            (node("block"), "block-device", "7", "200", "no"),
            (node("char"), "char-device", "1", "3", "no"),
            (node("link-to-char"), "char-device", "1", "3", "yes"),
            (node("fifo"), "fifo", "0", "0", "no"),
            (node("socket"), "socket", "0", "0", "no"),
            ("/dev/null".to_owned(), "char-device", "1", "3", "no"),
            ("/".to_owned(), "directory", "0", "0", "no"),
        ] {
            assert_eq!(field(&path, "type").as_deref(), Some(file_type), "{path}");
            assert_eq!(field(&path, "major").as_deref(), Some(major), "{path}");
            assert_eq!(field(&path, "minor").as_deref(), Some(minor), "{path}");
            assert_eq!(field(&path, "symlink").as_deref(), Some(symlink), "{path}");
        }
        assert_eq!(field(&node("block"), "mode").as_deref(), Some("0620"));
        assert_eq!(
            remote.get(&Probe::File(node("dangling"))).unwrap().value,
            Some(FactValue::Absent)
        );
        let command = remote
            .get(&Probe::Command(vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "echo 'it'\"'\"'s'; echo err >&2; exit 3".to_owned(),
            ]))
            .unwrap();
        assert_eq!(
            command.value.as_ref().unwrap().field("stdout"),
            Some(&FactValue::Text("it's".to_owned()))
        );
        assert_eq!(
            command.value.as_ref().unwrap().field("exit-status"),
            Some(&FactValue::Text("3".to_owned()))
        );
    }

    /// The rpm part's frames of a host without rpm (nonce `n1`).
    fn no_rpm_frames() -> Vec<Vec<u8>> {
        let mut parts = Vec::new();
        for (n, folder) in ["/usr/lib/rpm", "/usr/lib/rpm/macros.d", "/etc/rpm"]
            .iter()
            .enumerate()
        {
            parts.push(frame(&format!("rl{n}"), "absent", folder, b""));
        }
        let mut files = vec![
            "/usr/lib/rpm/macros".to_owned(),
            "/etc/rpm/macros".to_owned(),
        ];
        for dir in RPM_DB_DIRS {
            files.extend(RPM_DATABASE_FILES.iter().map(|f| format!("{dir}/{f}")));
        }
        for (n, path) in files.iter().enumerate() {
            parts.push(frame(&format!("rf{}", n + 3), "absent", path, b""));
        }
        parts.push(frame("rpm", "done", "rpm", b""));
        parts
    }

    /// An rpm database as a host's batch sends it (gzip-compressed), read by the same reader as
    /// a tree's; a database the batch did not send, or sent too large, is an error, never an
    /// empty list.
    #[test]
    fn the_rpm_database_a_host_sent_is_read_and_what_it_did_not_send_is_an_error() {
        let probes: ProbeSet = [Probe::Packages, Probe::Package("libuuid".to_owned())]
            .into_iter()
            .collect();
        let batch = Batch::new(&probes, "n1");
        assert!(
            batch.script.contains("rpmdb.sqlite-wal"),
            "{}",
            batch.script
        );
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("shared/fixtures/rpmdb/libuuid-bdb/Packages"))
            .find(|path| path.is_file())
            .expect("shared/fixtures/rpmdb");
        let database = std::fs::read(fixture).unwrap();
        let mut gzipped = Vec::new();
        {
            use std::io::Write;
            let mut gz =
                flate2::write::GzEncoder::new(&mut gzipped, flate2::Compression::default());
            gz.write_all(&database).unwrap();
            gz.finish().unwrap();
        }
        let send = |sqlite_status: &str, packages_status: &str, payload: &[u8]| {
            let mut parts: Vec<Vec<u8>> = batch
                .files
                .iter()
                .map(|(path, id)| frame(id, "absent", path, b""))
                .collect();
            for part in no_rpm_frames() {
                let text = String::from_utf8_lossy(&part).into_owned();
                if text.contains(" /var/lib/rpm/Packages\n") {
                    let id = text.split(' ').nth(3).unwrap().to_owned();
                    parts.push(frame(
                        &id,
                        packages_status,
                        "/var/lib/rpm/Packages",
                        payload,
                    ));
                } else if text.contains(" /var/lib/rpm/rpmdb.sqlite\n") {
                    let id = text.split(' ').nth(3).unwrap().to_owned();
                    parts.push(frame(&id, sqlite_status, "/var/lib/rpm/rpmdb.sqlite", b""));
                } else {
                    parts.push(part);
                }
            }
            parts.push(b"\n@@HC n1 DONE\n".to_vec());
            batch
                .facts(&probes, &decode_output(&encoded(&parts)), None)
                .0
        };
        let facts = send("absent", "gzip", &gzipped);
        let packages = facts.get(&Probe::Packages).unwrap();
        assert_eq!(
            packages.value,
            Some(FactValue::List(vec!["libuuid".to_owned()])),
            "{packages:?}"
        );
        assert!(
            packages.source.contains("/var/lib/rpm/Packages"),
            "{packages:?}"
        );
        let libuuid = facts.get(&Probe::Package("libuuid".to_owned())).unwrap();
        let field = |name: &str| libuuid.value.as_ref().and_then(|v| v.field(name)).cloned();
        assert_eq!(field("manager"), Some(FactValue::Text("rpm".to_owned())));
        assert_eq!(
            field("vendor"),
            Some(FactValue::Text("Red Hat, Inc.".to_owned()))
        );
        // The same bytes sent uncompressed.
        let facts = send("absent", "ok", &database);
        assert_eq!(facts.get(&Probe::Packages).unwrap().value, packages.value);
        // Too large to send, or a frame the batch never sent: errors naming the file.
        let facts = send("absent", "too-large:999999999", b"");
        let error = facts.get(&Probe::Packages).unwrap().error.clone().unwrap();
        assert!(
            error.contains("/var/lib/rpm/Packages: 999999999 bytes"),
            "{error}"
        );
        let facts = send("error", "absent", b"");
        assert!(facts.get(&Probe::Packages).unwrap().error.is_some());
        // A damaged compressed copy.
        let facts = send("absent", "gzip", &gzipped[..gzipped.len() / 2]);
        let error = facts.get(&Probe::Packages).unwrap().error.clone().unwrap();
        assert!(error.contains("/var/lib/rpm/Packages"), "{error}");
    }

    /// The runtime inventory from what a host's batch sent: the filtered dpkg stanza, the dpkg
    /// file list, the changelog and the existence of binaries; a binary no package owns is not
    /// copied back, so its version is unknown rather than guessed.
    #[test]
    fn runtimes_are_read_from_the_frames_a_host_sent() {
        let probes: ProbeSet = [
            Probe::Runtime("runc".to_owned()),
            Probe::Runtime("containerd".to_owned()),
            Probe::Runtime("crun".to_owned()),
        ]
        .into_iter()
        .collect();
        let batch = Batch::new(&probes, "n1");
        let id = |path: &str| batch.files[path].clone();
        let mut changelog = Vec::new();
        {
            use std::io::Write;
            let mut gz =
                flate2::write::GzEncoder::new(&mut changelog, flate2::Compression::default());
            gz.write_all(b"runc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high\n  * CVE-2024-21626: leaked fds\n").unwrap();
            gz.finish().unwrap();
        }
        let mut parts = vec![
            frame(
                &id(DPKG_STATUS),
                "ok",
                DPKG_STATUS,
                b"Package: runc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.5+ds1-1+deb12u1\n\n",
            ),
            frame(&id(APK_INSTALLED), "absent", APK_INSTALLED, b""),
            frame(
                &id("/var/lib/dpkg/info/runc.list"),
                "ok",
                "/var/lib/dpkg/info/runc.list",
                b"/.\n/usr\n/usr/sbin\n/usr/sbin/runc\n",
            ),
            frame(
                &id("/usr/share/doc/runc/changelog.Debian.gz"),
                "ok",
                "/usr/share/doc/runc/changelog.Debian.gz",
                &changelog,
            ),
        ];
        for (path, frame_id) in &batch.exists {
            let here = path == "/usr/sbin/runc" || path == "/usr/local/bin/containerd";
            parts.push(frame(frame_id, if here { "yes" } else { "no" }, path, b""));
        }
        for (path, frame_id) in &batch.files {
            if !parts
                .iter()
                .any(|p| String::from_utf8_lossy(p).contains(&format!("BEGIN {frame_id} ")))
            {
                parts.push(frame(frame_id, "absent", path, b""));
            }
        }
        parts.extend(no_rpm_frames());
        parts.push(b"\n@@HC n1 DONE\n".to_vec());
        let (facts, _, _) = batch.facts(&probes, &decode_output(&encoded(&parts)), None);
        let runc = facts.get(&Probe::Runtime("runc".to_owned())).unwrap();
        let field = |fact: &Fact, name: &str| {
            fact.value
                .as_ref()
                .and_then(|v| v.field(name))
                .map(ToString::to_string)
        };
        assert_eq!(field(runc, "version").as_deref(), Some("1.1.5"), "{runc:?}");
        assert_eq!(
            field(runc, "package-version").as_deref(),
            Some("1.1.5+ds1-1+deb12u1")
        );
        assert_eq!(field(runc, "path").as_deref(), Some("/usr/sbin/runc"));
        assert_eq!(field(runc, "fixes").as_deref(), Some("CVE-2024-21626"));
        let containerd = facts.get(&Probe::Runtime("containerd".to_owned())).unwrap();
        assert_eq!(
            field(containerd, "version").as_deref(),
            Some("unknown"),
            "{containerd:?}"
        );
        assert!(field(containerd, "version-source")
            .unwrap()
            .contains("not read over SSH"));
        let crun = facts.get(&Probe::Runtime("crun".to_owned())).unwrap();
        assert_eq!(crun.value, Some(FactValue::Absent));
    }
}
