//! The one batch an SSH host runs: a POSIX `sh` script, generated from the probes, that prints
//! every fact in its own frame, and the parser that turns the frames back into facts.
//!
//! The script reads what the local target would read (the same kernel config candidates, the
//! same os-release fallback, the same module lists) and sends the raw bytes; the meaning is
//! decided here, with the same code the local target uses. Every payload is base64 (or hex
//! where `base64` is missing), so no byte a fact contains can break the framing, and every
//! probe argument is shell-quoted. Nothing the host sends is ever executed locally.
//!
//! A frame:
//!
//! ```text
//! @@HC <nonce> BEGIN <id> <status> <encoding> <source, encoded>
//! <payload, encoded, any number of lines>
//! @@HC <nonce> END <id>
//! ```

use std::collections::BTreeMap;

use base64::Engine;

use crate::facts::{Fact, FactSet, FactValue, ProbeSet};
use crate::model::Probe;
use crate::target::host::{
    command_record, file_record, parse_os_release, ModuleIndex, COMMAND_TIMEOUT, MAX_FILE_BYTES,
};
use crate::target::kconfig::KernelConfig;

/// The script for a set of probes, and what is needed to read its output.
pub(super) struct Batch {
    /// The script, fed to `sh -s` on the host.
    pub script: String,
    nonce: String,
    /// Probe to frame id, for the probes that have their own frame.
    ids: BTreeMap<Probe, String>,
}

/// Quotes a string for POSIX sh.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

const PRELUDE: &str = r#"set -u
export LC_ALL=C
T=$(mktemp -d 2>/dev/null) || T="/tmp/hostcert.$$"
mkdir -p "$T" 2>/dev/null
trap 'rm -rf "$T"' EXIT
if command -v base64 >/dev/null 2>&1; then ENC=b; else ENC=x; fi
enc() { if [ "$ENC" = b ]; then base64; else od -An -v -tx1 | tr -d ' \n'; echo; fi; }
emit() { printf '\n@@HC %s BEGIN %s %s %s ' "$N" "$1" "$2" "$ENC"; printf '%s' "$3" | enc | tr -d '\n'; printf '\n'; enc; printf '\n@@HC %s END %s\n' "$N" "$1"; }
rd() { if [ ! -e "$2" ]; then : | emit "$1" absent "$2"; elif [ -d "$2" ]; then printf 'Is a directory' | emit "$1" error "$2"; elif head -c MAXPLUS "$2" > "$T/d" 2> "$T/e"; then emit "$1" ok "$2" < "$T/d"; else emit "$1" error "$2" < "$T/e"; fi; }
TO=''
command -v timeout >/dev/null 2>&1 && TO="timeout TIMEOUT"
r=$(cat /proc/sys/kernel/osrelease 2>/dev/null)
printf '%s' "$r" | emit release ok /proc/sys/kernel/osrelease
uname -m | emit arch ok 'uname -m'
rd hostname /proc/sys/kernel/hostname
"#;

impl Batch {
    /// The script that reads every probe, with a fresh nonce.
    pub fn new(probes: &ProbeSet, nonce: &str) -> Batch {
        let mut script = format!("N={}\n", shell_quote(nonce));
        script += &PRELUDE
            .replace("MAXPLUS", &(MAX_FILE_BYTES + 1).to_string())
            .replace("TIMEOUT", &COMMAND_TIMEOUT.as_secs().to_string());
        let mut ids = BTreeMap::new();
        if probes.iter().any(|p| matches!(p, Probe::KernelConfig(_))) {
            script += r#"kc=''
for f in /proc/config.gz "/boot/config-$r" "/lib/modules/$r/build/.config"; do
  if [ -e "$f" ]; then kc=$f; break; fi
done
if [ -n "$kc" ]; then
  if head -c 16777217 "$kc" > "$T/d" 2> "$T/e"; then emit kconfig ok "$kc" < "$T/d"; else emit kconfig error "$kc" < "$T/e"; fi
else
  : | emit kconfig absent "/proc/config.gz, /boot/config-$r, /lib/modules/$r/build/.config"
fi
"#;
        }
        if probes.iter().any(|p| matches!(p, Probe::OsRelease(_))) {
            script += "if [ -e /etc/os-release ]; then rd osr /etc/os-release; else rd osr /usr/lib/os-release; fi\n";
        }
        let modules: Vec<&str> = probes
            .iter()
            .filter_map(|p| match p {
                Probe::KernelModule(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
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
                r#"if [ -e /proc/modules ]; then cut -d' ' -f1 /proc/modules | emit modules.loaded ok /proc/modules; else : | emit modules.loaded absent /proc/modules; fi
for f in modules.builtin modules.dep; do
  p="/lib/modules/$r/$f"
  if [ -e "$p" ]; then grep -E {pattern} "$p" | cut -d: -f1 | emit "modules.$f" ok "$p"; else : | emit "modules.$f" absent "$p"; fi
done
if [ ! -e "/lib/modules/$r/modules.dep" ] && [ -d "/lib/modules/$r" ]; then find "/lib/modules/$r" -type f \( {} \) 2>/dev/null | emit modules.files ok "/lib/modules/$r"; fi
"#,
                find_names.join(" -o ")
            );
        }
        for (index, probe) in probes.iter().enumerate() {
            let id = format!("p{index}");
            let snippet = match probe {
                Probe::File(path) => {
                    let path = shell_quote(path);
                    format!(
                        "if [ -e {path} ]; then if stat -L -c '%f|%u|%g|%s' {path} > \"$T/d\" 2> \"$T/e\"; then emit {id} ok {path} < \"$T/d\"; else emit {id} error {path} < \"$T/e\"; fi; else : | emit {id} absent {path}; fi\n"
                    )
                }
                Probe::FileContent(path) => format!("rd {id} {}\n", shell_quote(path)),
                Probe::Sysctl(_) => format!("rd {id} {}\n", shell_quote(&sysctl_path(probe))),
                Probe::DirList(path) => {
                    let path = shell_quote(path);
                    format!(
                        "if [ -d {path} ]; then (cd {path} && for f in * .*; do if [ \"$f\" != . ] && [ \"$f\" != .. ] && {{ [ -e \"$f\" ] || [ -L \"$f\" ]; }}; then printf '%s\\0' \"$f\"; fi; done) > \"$T/d\" 2> \"$T/e\" && emit {id} ok {path} < \"$T/d\" || emit {id} error {path} < \"$T/e\"; elif [ -e {path} ]; then printf 'Not a directory' | emit {id} error {path}; else : | emit {id} absent {path}; fi\n"
                    )
                }
                Probe::Command(argv) => {
                    let program = shell_quote(&argv[0]);
                    let command: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
                    let command = command.join(" ");
                    let source = shell_quote(&argv.join(" "));
                    format!(
                        "if command -v {program} >/dev/null 2>&1; then $TO {command} > \"$T/o\" 2> \"$T/e\" < /dev/null; s=$?; if [ -n \"$TO\" ] && [ $s = 124 ]; then : | emit {id} timeout {source}; else head -c {max} \"$T/o\" | emit {id} \"exit:$s\" {source}; head -c {max} \"$T/e\" | emit {id}.err ok {source}; fi; else : | emit {id} absent {source}; fi\n",
                        max = MAX_FILE_BYTES
                    )
                }
                _ => continue,
            };
            ids.insert(probe.clone(), id);
            script += &snippet;
        }
        script += "printf '\\n@@HC %s DONE\\n' \"$N\"\n";
        Batch {
            script,
            nonce: nonce.to_owned(),
            ids,
        }
    }

    /// Turns the host's output into one fact per probe. `ended` says why the batch stopped when
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
        let mut facts = FactSet::default();
        for probe in probes {
            let fact = match probe {
                Probe::KernelRelease => match &release {
                    Some(release) => Fact::read(
                        probe.clone(),
                        "/proc/sys/kernel/osrelease",
                        FactValue::Text(release.clone()),
                    ),
                    None => {
                        Fact::failed(probe.clone(), "/proc/sys/kernel/osrelease", missing.clone())
                    }
                },
                Probe::Architecture => match frames.get("arch") {
                    Some(frame) if frame.status == "ok" => {
                        Fact::read(probe.clone(), "uname -m", FactValue::Text(frame.text()))
                    }
                    _ => Fact::failed(probe.clone(), "uname -m", missing.clone()),
                },
                Probe::KernelConfig(symbol) => {
                    let config = kernel_config.get_or_insert_with(|| match frames.get("kconfig") {
                        Some(frame) if frame.status == "ok" => KernelConfig::from_bytes(&frame.payload, &frame.source),
                        Some(frame) if frame.status == "absent" => Err(format!(
                            "no kernel config found (tried {}); enable CONFIG_IKCONFIG_PROC or install the kernel's config file",
                            frame.source
                        )),
                        Some(frame) => Err(format!("cannot read the kernel config {}: {}", frame.source, frame.text())),
                        None => Err(missing.clone()),
                    });
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
                Probe::OsRelease(key) => match frames.get("osr") {
                    Some(frame) if frame.status == "ok" => {
                        let value = parse_os_release(&frame.text())
                            .remove(key)
                            .map_or(FactValue::Absent, FactValue::Text);
                        Fact::read(probe.clone(), frame.source.clone(), value)
                    }
                    Some(frame) if frame.status == "absent" => {
                        Fact::read(probe.clone(), "/etc/os-release", FactValue::Absent)
                    }
                    Some(frame) => Fact::failed(probe.clone(), frame.source.clone(), frame.text()),
                    None => Fact::failed(probe.clone(), "/etc/os-release", missing.clone()),
                },
                Probe::KernelModule(name) => {
                    let index = modules.get_or_insert_with(|| {
                        let Some(release) = &release else {
                            return Err(missing.clone());
                        };
                        let ok =
                            |id: &str| frames.get(id).filter(|f| f.status == "ok").map(Frame::text);
                        let files = ok("modules.files").map(|text| {
                            text.lines().map(crate::target::host::module_name).collect()
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
                _ => {
                    let Some(frame) = self.ids.get(probe).and_then(|id| frames.get(id)) else {
                        facts.insert(Fact::failed(
                            probe.clone(),
                            probe_source(probe),
                            missing.clone(),
                        ));
                        continue;
                    };
                    self.own_frame_fact(probe, frame, &frames)
                }
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
        frame: &Frame,
        frames: &BTreeMap<String, Frame>,
    ) -> Fact {
        let source = frame.source.clone();
        if frame.status == "absent" {
            return Fact::read(probe.clone(), source, FactValue::Absent);
        }
        if frame.status == "error" {
            return Fact::failed(probe.clone(), source, frame.text());
        }
        match probe {
            Probe::File(_) => {
                let text = frame.text_ref();
                let fields: Vec<&str> = text.trim().split('|').collect();
                let parsed = match fields.as_slice() {
                    [mode, uid, gid, size] => (|| {
                        Some(file_record(
                            u32::from_str_radix(mode, 16).ok()?,
                            uid.parse().ok()?,
                            gid.parse().ok()?,
                            size.parse().ok()?,
                        ))
                    })(),
                    _ => None,
                };
                match parsed {
                    Some(record) => Fact::read(probe.clone(), source, record),
                    None => Fact::failed(
                        probe.clone(),
                        source,
                        format!("unexpected stat output `{}`", frame.text()),
                    ),
                }
            }
            Probe::FileContent(_) | Probe::Sysctl(_) => {
                if frame.payload.len() as u64 > MAX_FILE_BYTES {
                    return Fact::failed(
                        probe.clone(),
                        source,
                        format!("larger than {} MiB, not read", MAX_FILE_BYTES >> 20),
                    );
                }
                Fact::read(probe.clone(), source, FactValue::Text(frame.text()))
            }
            Probe::DirList(_) => {
                let mut names: Vec<String> = frame
                    .payload
                    .split(|b| *b == 0)
                    .filter(|name| !name.is_empty())
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect();
                names.sort();
                Fact::read(probe.clone(), source, FactValue::List(names))
            }
            Probe::Command(argv) => {
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
            _ => Fact::failed(probe.clone(), source, "not read over SSH"),
        }
    }
}

/// Where a probe reads, for facts the batch never reached.
fn probe_source(probe: &Probe) -> String {
    match probe {
        Probe::File(path) | Probe::FileContent(path) | Probe::DirList(path) => path.clone(),
        Probe::Sysctl(_) => sysctl_path(probe),
        Probe::Command(argv) => argv.join(" "),
        other => other.to_string(),
    }
}

fn sysctl_path(probe: &Probe) -> String {
    match probe {
        Probe::Sysctl(name) if name.contains('/') => format!("/proc/sys/{name}"),
        Probe::Sysctl(name) => format!("/proc/sys/{}", name.replace('.', "/")),
        _ => String::new(),
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

/// Decodes the frames in a batch's output; `true` when the batch reached its end. Anything
/// outside frames (a login banner, shell noise) is ignored, and a frame that is cut off or
/// badly encoded is left out.
fn parse_frames(output: &[u8], nonce: &str) -> (BTreeMap<String, Frame>, bool) {
    let begin = format!("@@HC {nonce} BEGIN ");
    let end_prefix = format!("@@HC {nonce} END ");
    let done = format!("@@HC {nonce} DONE");
    let mut frames = BTreeMap::new();
    let mut finished = false;
    let mut open: Option<(String, String, String, String, String)> = None;
    for raw_line in output.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(raw_line);
        let line = line.trim_end_matches('\r');
        if line == done {
            finished = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix(&begin) {
            let fields: Vec<&str> = rest.splitn(4, ' ').collect();
            if let [id, status, encoding, source] = fields.as_slice() {
                open = Some((
                    id.to_string(),
                    status.to_string(),
                    encoding.to_string(),
                    source.to_string(),
                    String::new(),
                ));
            } else if let [id, status, encoding] = fields.as_slice() {
                open = Some((
                    id.to_string(),
                    status.to_string(),
                    encoding.to_string(),
                    String::new(),
                    String::new(),
                ));
            }
            continue;
        }
        if let Some(id) = line.strip_prefix(&end_prefix) {
            if let Some((open_id, status, encoding, source, body)) = open.take() {
                if open_id == id {
                    if let (Some(source), Some(payload)) =
                        (decode(&encoding, &source), decode(&encoding, &body))
                    {
                        let frame = Frame {
                            status,
                            source: String::from_utf8_lossy(&source).into_owned(),
                            payload,
                        };
                        frames.insert(open_id, frame);
                    }
                }
            }
            continue;
        }
        if let Some((_, _, _, _, body)) = open.as_mut() {
            body.push_str(line.trim());
        }
    }
    (frames, finished)
}

fn decode(encoding: &str, text: &str) -> Option<Vec<u8>> {
    match encoding {
        "b" => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        "x" => (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: &str, status: &str, source: &str, payload: &[u8]) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        format!(
            "\n@@HC n1 BEGIN {id} {status} b {}\n{}\n@@HC n1 END {id}\n",
            b64(source.as_bytes()),
            b64(payload)
        )
    }

    #[test]
    fn frames_survive_any_bytes_and_noise_around_them() {
        let hostile = b"@@HC n1 END x\n\0\xff\nBEGIN";
        let output = format!(
            "Welcome banner\n{}garbage{}\n@@HC n1 DONE\n",
            frame("p0", "ok", "/etc/x", hostile),
            frame("p1", "absent", "/etc/y", b"")
        );
        let (frames, done) = parse_frames(output.as_bytes(), "n1");
        assert!(done);
        assert_eq!(frames["p0"].payload, hostile);
        assert_eq!(frames["p0"].source, "/etc/x");
        assert_eq!(frames["p1"].status, "absent");
    }

    #[test]
    fn a_cut_off_batch_keeps_what_it_reached() {
        let output = format!(
            "{}\n@@HC n1 BEGIN p1 ok b AAAA\nAAA",
            frame("p0", "ok", "/a", b"1")
        );
        let (frames, done) = parse_frames(output.as_bytes(), "n1");
        assert!(!done);
        assert!(frames.contains_key("p0") && !frames.contains_key("p1"));
    }

    #[test]
    fn hex_encoding_decodes_too() {
        assert_eq!(decode("x", "41420a00"), Some(vec![0x41, 0x42, 0x0a, 0x00]));
        assert_eq!(decode("x", "4"), None);
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
            Probe::Command(vec![
                "sh".to_owned(),
                "-c".to_owned(),
                "echo 'it'\"'\"'s'; echo err >&2; exit 3".to_owned(),
            ]),
            Probe::Command(vec!["no-such-program-hostcert".to_owned()]),
            Probe::KernelModule("overlay".to_owned()),
        ]
        .into_iter()
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
        let (remote, hostname, reached) = batch.facts(&probes, &output.stdout, None);
        assert!(reached);
        let local = crate::target::host::HostFs::live_root().gather(&probes);
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
}
