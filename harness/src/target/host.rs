//! Reading probes from a filesystem root and, for live hosts, commands. Shared by every target
//! that can see a filesystem directly (the local machine now; OS trees later).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Gathered;
use crate::facts::{Fact, FactSet, FactValue, ProbeSet};
use crate::model::Probe;

/// The largest file a probe reads, so a huge or endless file cannot exhaust memory.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// How long a command probe may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A host seen through a filesystem root (`/` for the live machine).
#[derive(Debug, Clone)]
pub(super) struct HostFs {
    root: PathBuf,
    live: bool,
}

impl Default for HostFs {
    fn default() -> Self {
        HostFs::live_root()
    }
}

/// A kernel config read once per gather: symbol to value, and the file it came from.
struct KernelConfig {
    source: String,
    symbols: BTreeMap<String, String>,
}

impl HostFs {
    /// The running machine.
    pub(super) fn live_root() -> HostFs {
        HostFs {
            root: PathBuf::from("/"),
            live: true,
        }
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    /// Reads every probe; facts that cannot be read carry the reason.
    pub(super) fn gather(&self, probes: &ProbeSet) -> Gathered {
        let release = self.kernel_release();
        let mut kernel_config: Option<Result<KernelConfig, String>> = None;
        let mut facts = FactSet::default();
        for probe in probes {
            let fact = match probe {
                Probe::KernelConfig(symbol) => {
                    let config = kernel_config
                        .get_or_insert_with(|| self.kernel_config(release.as_ref().ok()));
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
                Probe::KernelRelease => match &release {
                    Ok((source, value)) => Fact::read(
                        probe.clone(),
                        source.clone(),
                        FactValue::Text(value.clone()),
                    ),
                    Err(reason) => {
                        Fact::failed(probe.clone(), "/proc/sys/kernel/osrelease", reason.clone())
                    }
                },
                Probe::Architecture => self.architecture(probe),
                Probe::OsRelease(key) => self.os_release(probe, key),
                Probe::File(path) => self.file(probe, path),
                Probe::FileContent(path) => match self.read_text(path) {
                    Ok(value) => Fact::read(probe.clone(), path.clone(), value),
                    Err(reason) => Fact::failed(probe.clone(), path.clone(), reason),
                },
                Probe::DirList(path) => self.dir_list(probe, path),
                Probe::Sysctl(name) => {
                    let path = format!(
                        "/proc/sys/{}",
                        if name.contains('/') {
                            name.clone()
                        } else {
                            name.replace('.', "/")
                        }
                    );
                    match self.read_text(&path) {
                        Ok(value) => Fact::read(probe.clone(), path, value),
                        Err(reason) => Fact::failed(probe.clone(), path, reason),
                    }
                }
                Probe::Command(argv) => self.command(probe, argv),
            };
            facts.insert(fact);
        }
        let hostname = match self.read_text("/proc/sys/kernel/hostname") {
            Ok(FactValue::Text(name)) if !name.is_empty() => Some(name),
            _ => None,
        };
        Gathered { hostname, facts }
    }

    fn kernel_release(&self) -> Result<(String, String), String> {
        let path = "/proc/sys/kernel/osrelease";
        match self.read_text(path)? {
            FactValue::Text(release) if !release.is_empty() => Ok((path.to_owned(), release)),
            _ => Err(format!("{path} is missing or empty")),
        }
    }

    /// Finds the running kernel's config the way moby's check-config.sh does, and records which
    /// file it was.
    fn kernel_config(&self, release: Option<&(String, String)>) -> Result<KernelConfig, String> {
        let mut candidates = vec!["/proc/config.gz".to_owned()];
        if let Some((_, release)) = release {
            candidates.push(format!("/boot/config-{release}"));
            candidates.push(format!("/lib/modules/{release}/build/.config"));
        }
        for candidate in &candidates {
            let path = self.path(candidate);
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let mut text = String::new();
            let limited = file.take(MAX_FILE_BYTES);
            let read = if candidate.ends_with(".gz") {
                flate2::read::GzDecoder::new(limited).read_to_string(&mut text)
            } else {
                { limited }.read_to_string(&mut text)
            };
            read.map_err(|e| format!("cannot read the kernel config {candidate}: {e}"))?;
            return Ok(KernelConfig {
                source: candidate.clone(),
                symbols: parse_kernel_config(&text),
            });
        }
        Err(format!(
            "no kernel config found (tried {}); enable CONFIG_IKCONFIG_PROC or install the kernel's config file",
            candidates.join(", ")
        ))
    }

    fn architecture(&self, probe: &Probe) -> Fact {
        if !self.live {
            return Fact::failed(probe.clone(), "uname -m", "not a live host");
        }
        match run_command(&["uname".to_owned(), "-m".to_owned()]) {
            Ok(Some(output)) if output.status == 0 => Fact::read(
                probe.clone(),
                "uname -m",
                FactValue::Text(output.stdout.trim().to_owned()),
            ),
            Ok(_) => Fact::failed(probe.clone(), "uname -m", "uname -m failed"),
            Err(reason) => Fact::failed(probe.clone(), "uname -m", reason),
        }
    }

    fn os_release(&self, probe: &Probe, key: &str) -> Fact {
        for candidate in ["/etc/os-release", "/usr/lib/os-release"] {
            match self.read_text(candidate) {
                Ok(FactValue::Text(text)) => {
                    let value = parse_os_release(&text)
                        .remove(key)
                        .map_or(FactValue::Absent, FactValue::Text);
                    return Fact::read(probe.clone(), candidate, value);
                }
                Ok(_) => continue,
                Err(reason) => return Fact::failed(probe.clone(), candidate, reason),
            }
        }
        Fact::read(probe.clone(), "/etc/os-release", FactValue::Absent)
    }

    fn file(&self, probe: &Probe, path: &str) -> Fact {
        match std::fs::metadata(self.path(path)) {
            Ok(metadata) => {
                let kind = if metadata.is_dir() {
                    "directory"
                } else if metadata.is_file() {
                    "file"
                } else {
                    "other"
                };
                let fields = [
                    ("kind", kind.to_owned()),
                    ("mode", format!("{:04o}", metadata.mode() & 0o7777)),
                    ("uid", metadata.uid().to_string()),
                    ("gid", metadata.gid().to_string()),
                    ("size", metadata.len().to_string()),
                ];
                let record = fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
                    .collect();
                Fact::read(probe.clone(), path, FactValue::Record(record))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Fact::read(probe.clone(), path, FactValue::Absent)
            }
            Err(error) => Fact::failed(probe.clone(), path, error.to_string()),
        }
    }

    fn dir_list(&self, probe: &Probe, path: &str) -> Fact {
        match std::fs::read_dir(self.path(path)) {
            Ok(entries) => {
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                Fact::read(probe.clone(), path, FactValue::List(names))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Fact::read(probe.clone(), path, FactValue::Absent)
            }
            Err(error) => Fact::failed(probe.clone(), path, error.to_string()),
        }
    }

    /// A file's text with trailing whitespace trimmed; `Absent` when it does not exist.
    fn read_text(&self, path: &str) -> Result<FactValue, String> {
        let file = match std::fs::File::open(self.path(path)) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FactValue::Absent)
            }
            Err(error) => return Err(error.to_string()),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!(
                "larger than {} MiB, not read",
                MAX_FILE_BYTES >> 20
            ));
        }
        Ok(FactValue::Text(
            String::from_utf8_lossy(&bytes).trim_end().to_owned(),
        ))
    }

    fn command(&self, probe: &Probe, argv: &[String]) -> Fact {
        let source = argv.join(" ");
        if !self.live {
            return Fact::failed(probe.clone(), source, "commands run only on live hosts");
        }
        match run_command(argv) {
            Ok(None) => Fact::read(probe.clone(), source, FactValue::Absent),
            Ok(Some(output)) => {
                let record = [
                    ("exit-status", output.status.to_string()),
                    ("stdout", output.stdout.trim_end().to_owned()),
                    ("stderr", output.stderr.trim_end().to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
                .collect();
                Fact::read(probe.clone(), source, FactValue::Record(record))
            }
            Err(reason) => Fact::failed(probe.clone(), source, reason),
        }
    }
}

struct CommandOutput {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command with a time bound and bounded output. `Ok(None)` when the program does not
/// exist.
fn run_command(argv: &[String]) -> Result<Option<CommandOutput>, String> {
    let mut child = match Command::new(&argv[0])
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot run `{}`: {error}", argv[0])),
    };
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(MAX_FILE_BYTES).read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{}` did not finish within {} s",
                    argv.join(" "),
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(error) => return Err(error.to_string()),
        }
    };
    Ok(Some(CommandOutput {
        status: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }))
}

/// `CONFIG_X=y` lines to `X -> y`; string values lose their quotes; `# CONFIG_X is not set`
/// lines are left out (absent).
pub(crate) fn parse_kernel_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("CONFIG_"))
        .filter_map(|line| line.split_once('='))
        .map(|(symbol, value)| {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map_or_else(
                    || value.to_owned(),
                    |v| v.replace("\\\"", "\"").replace("\\\\", "\\"),
                );
            (symbol.to_owned(), value)
        })
        .collect()
}

/// os-release's `KEY=value` lines, with shell quoting removed.
pub(crate) fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .unwrap_or(value);
            let mut out = String::new();
            let mut chars = unquoted.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            (key.trim().to_owned(), out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_config_values_and_unset_symbols() {
        let text = "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_NET_NS=y\nCONFIG_VETH=m\n# CONFIG_AUFS_FS is not set\nCONFIG_LSM=\"landlock,lockdown\"\nCONFIG_NR_CPUS=64\n";
        let symbols = parse_kernel_config(text);
        assert_eq!(symbols.get("NET_NS").map(String::as_str), Some("y"));
        assert_eq!(symbols.get("VETH").map(String::as_str), Some("m"));
        assert_eq!(
            symbols.get("LSM").map(String::as_str),
            Some("landlock,lockdown")
        );
        assert_eq!(symbols.get("NR_CPUS").map(String::as_str), Some("64"));
        assert_eq!(symbols.get("AUFS_FS"), None);
    }

    #[test]
    fn os_release_unquotes_values() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\n# comment\nNAME=\"a \\\"b\\\"\"\n";
        let map = parse_os_release(text);
        assert_eq!(map["ID"], "debian");
        assert_eq!(map["VERSION_ID"], "12");
        assert_eq!(map["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(map["NAME"], "a \"b\"");
    }
}
