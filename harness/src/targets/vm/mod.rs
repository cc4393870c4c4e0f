//! `vm:DISK` and `vm:kernel=FILE,initrd=FILE,disk=FILE,append=ARGS`: an OS build booted under
//! QEMU and certified over SSH exactly like an `ssh://` host (the same batch, the same checks,
//! the probe program, `--image` pairs), then powered off and removed.
//!
//! One gather is one boot: the run's temporary folder (`hostcert-<pid>-vm-*` under `TMPDIR`)
//! gets a qcow2 overlay over the disk (the disk itself is never written), a client key and a
//! host key made for the run ([`keys`]), and the way the OS takes a key ([`seed`]: a cloud-init
//! NoCloud volume; [`ignition`]: an Ignition config through fw_cfg; or nothing, when the image
//! already trusts the user's `--identity`). QEMU ([`qemu`]) runs with KVM when it really works
//! and TCG otherwise, user-mode networking, and the guest's port 22 forwarded to a free loopback
//! port. When SSH answers, the guest is read by an [`SshTarget`] that pins the host key the run
//! gave it (or, without a seed, the key cloud-init printed on the console); then the machine is
//! powered off (ACPI, then QMP `quit`, then SIGKILL) and the folder removed. The serial console
//! is kept, bounded, beside the reports, and a guest that does not boot, panics or never opens
//! SSH is an error that shows the console's last lines.

mod host_root;
mod ignition;
mod keys;
mod qemu;
mod seed;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::ssh::{SshOptions, SshTarget};
use super::{Gathered, Target, TargetError};
use crate::facts::{Fact, FactValue, ProbeSet};
use crate::model::{Probe, TargetKind};
use qemu::{Accel, Arch, Drive, Firmware, Machine, MachineConfig};

/// After the console shows a login prompt, how long SSH still has to open: a build whose boot
/// finished without an SSH server fails then rather than at `--boot-timeout`.
const SSH_AFTER_LOGIN_PROMPT: Duration = Duration::from_secs(45);
/// How long a guest has to power off after ACPI's power button.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Console lines an error or the `boot` fact shows.
const CONSOLE_LINES: usize = 25;

/// How `vm:` targets boot.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// How long a guest has from QEMU's start to an SSH login (`--boot-timeout`).
    pub boot_timeout: Duration,
    /// Memory per VM, MiB (`--vm-memory`), unless the address says `memory=`.
    pub memory_mib: u32,
    /// KVM, TCG, or KVM when it works (`--vm-accel`), unless the address says `accel=`.
    pub accel: AccelChoice,
    /// Where each VM's serial console log is kept (`<name>.console.log`): the report folder.
    pub console_dir: Option<PathBuf>,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            boot_timeout: Duration::from_secs(300),
            memory_mib: 1024,
            accel: AccelChoice::Auto,
            console_dir: None,
        }
    }
}

/// Which accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when /dev/kvm really works (probed once), TCG otherwise; the evidence says which.
    Auto,
    /// KVM, or the target fails with the reason.
    Kvm,
    /// TCG always.
    Tcg,
}

impl AccelChoice {
    /// Parses `auto`, `kvm` or `tcg`.
    pub fn parse(text: &str) -> Result<AccelChoice, String> {
        match text {
            "auto" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            other => Err(format!("`{other}` is not an accelerator (auto, kvm, tcg)")),
        }
    }
}

/// How the run's SSH key reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seed {
    /// A cloud-init NoCloud volume (`cidata`).
    NoCloud,
    /// An Ignition v3 config through fw_cfg (Fedora CoreOS, RHEL CoreOS, Flatcar).
    Ignition,
    /// Nothing: the image trusts the user's `--identity`; the host key is read from the console.
    None,
}

impl Seed {
    fn as_str(self) -> &'static str {
        match self {
            Seed::NoCloud => "nocloud",
            Seed::Ignition => "ignition",
            Seed::None => "none",
        }
    }
}

/// The keys a `vm:` address takes.
const KEYS: [&str; 14] = [
    "disk", "kernel", "initrd", "append", "format", "seed", "user", "memory", "cpus", "arch",
    "cpu", "accel", "firmware", "name",
];

/// A `vm:` address, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    disk: Option<PathBuf>,
    format: Option<&'static str>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<String>,
    seed: Seed,
    user: String,
    memory_mib: Option<u32>,
    cpus: u32,
    arch: Arch,
    cpu: Option<String>,
    accel: Option<AccelChoice>,
    firmware: Firmware,
    name: Option<String>,
}

impl Spec {
    /// Parses what follows `vm:`: a disk path, or `KEY=VALUE` pairs separated by commas, where
    /// `append=` takes the rest of the address (spaces and commas included).
    fn parse(rest: &str) -> Result<Spec, String> {
        let mut spec = Spec {
            disk: None,
            format: None,
            kernel: None,
            initrd: None,
            append: None,
            seed: Seed::NoCloud,
            user: "root".to_owned(),
            memory_mib: None,
            cpus: 1,
            arch: Arch::host().unwrap_or(Arch::X86_64),
            cpu: None,
            accel: None,
            firmware: Firmware::Bios,
            name: None,
        };
        let keyed = rest
            .split_once('=')
            .is_some_and(|(key, _)| KEYS.contains(&key));
        if !keyed {
            if rest.is_empty() {
                return Err("no disk: give vm:DISK or vm:kernel=FILE,...".to_owned());
            }
            spec.disk = Some(PathBuf::from(rest));
            return Ok(spec);
        }
        let mut seen = Vec::new();
        let mut remaining = rest;
        while !remaining.is_empty() {
            let (key, after) = remaining
                .split_once('=')
                .ok_or_else(|| format!("`{remaining}` is not KEY=VALUE"))?;
            if !KEYS.contains(&key) {
                return Err(format!(
                    "unknown key `{key}` (known: {}; append= comes last)",
                    KEYS.join(", ")
                ));
            }
            if seen.contains(&key) {
                return Err(format!("`{key}=` is given twice"));
            }
            seen.push(key);
            let value = if key == "append" {
                remaining = "";
                after
            } else {
                let (value, next) = after.split_once(',').unwrap_or((after, ""));
                remaining = next;
                value
            };
            if value.is_empty() && key != "append" {
                return Err(format!("`{key}=` has no value"));
            }
            let number = |low: u32, high: u32| {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (low..=high).contains(n))
                    .ok_or_else(|| {
                        format!("`{key}={value}`: expected a number from {low} to {high}")
                    })
            };
            match key {
                "disk" => spec.disk = Some(PathBuf::from(value)),
                "kernel" => spec.kernel = Some(PathBuf::from(value)),
                "initrd" => spec.initrd = Some(PathBuf::from(value)),
                "append" => spec.append = Some(value.to_owned()),
                "format" => {
                    spec.format = Some(match value {
                        "raw" => "raw",
                        "qcow2" => "qcow2",
                        _ => return Err(format!("`format={value}`: expected raw or qcow2")),
                    })
                }
                "seed" => {
                    spec.seed = match value {
                        "nocloud" => Seed::NoCloud,
                        "ignition" => Seed::Ignition,
                        "none" => Seed::None,
                        _ => {
                            return Err(format!(
                                "`seed={value}`: expected nocloud, ignition or none"
                            ))
                        }
                    }
                }
                "user" => {
                    if !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    {
                        return Err(format!("`user={value}` is not a user name"));
                    }
                    spec.user = value.to_owned();
                }
                "memory" => spec.memory_mib = Some(number(128, 1 << 20)?),
                "cpus" => spec.cpus = number(1, 64)?,
                "arch" => {
                    spec.arch = Arch::parse(value)
                        .ok_or_else(|| format!("`arch={value}`: expected x86_64 or aarch64"))?
                }
                "cpu" => {
                    if !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    {
                        return Err(format!("`cpu={value}` is not a CPU model name"));
                    }
                    spec.cpu = Some(value.to_owned());
                }
                "accel" => spec.accel = Some(AccelChoice::parse(value)?),
                "firmware" => {
                    spec.firmware = match value {
                        "bios" => Firmware::Bios,
                        "uefi" => Firmware::Uefi,
                        _ => return Err(format!("`firmware={value}`: expected bios or uefi")),
                    }
                }
                "name" => {
                    if !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    {
                        return Err(format!(
                            "`name={value}`: use letters, digits, `.`, `_` and `-`"
                        ));
                    }
                    spec.name = Some(value.to_owned());
                }
                _ => unreachable!("every key in KEYS is handled"),
            }
        }
        if spec.kernel.is_none() {
            if spec.disk.is_none() {
                return Err("no disk and no kernel: give disk=FILE or kernel=FILE".to_owned());
            }
            for (key, given) in [
                ("initrd", spec.initrd.is_some()),
                ("append", spec.append.is_some()),
            ] {
                if given {
                    return Err(format!("`{key}=` needs `kernel=` (direct kernel boot)"));
                }
            }
        }
        Ok(spec)
    }

    /// The target's name: `name=`, else the disk's (or kernel's) file name without its
    /// extension.
    fn default_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let file = self.disk.as_ref().or(self.kernel.as_ref());
        file.and_then(|path| path.file_name())
            .map(|name| {
                let name = name.to_string_lossy();
                match name.split_once('.') {
                    Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
                    _ => name.into_owned(),
                }
            })
            .unwrap_or_else(|| "vm".to_owned())
    }
}

/// An OS build booted in a VM.
#[derive(Debug)]
pub struct VmTarget {
    name: String,
    address: String,
    spec: Spec,
    options: VmOptions,
    ssh: SshOptions,
}

impl VmTarget {
    /// Parses a `vm:` address. Opening reads nothing: the disk and kernel are read when the
    /// target is gathered.
    pub fn parse(
        address: &str,
        options: &VmOptions,
        ssh: &SshOptions,
    ) -> Result<VmTarget, TargetError> {
        let fail = |reason: String| TargetError {
            target: address.to_owned(),
            reason,
        };
        let rest = address
            .strip_prefix("vm:")
            .ok_or_else(|| fail("not a vm: address".to_owned()))?;
        let spec = Spec::parse(rest).map_err(&fail)?;
        if spec.seed == Seed::None && ssh.identity.is_none() {
            return Err(fail(
                "seed=none needs --identity KEY, the key the image already trusts".to_owned(),
            ));
        }
        Ok(VmTarget {
            name: spec.default_name(),
            address: address.to_owned(),
            spec,
            options: options.clone(),
            ssh: ssh.clone(),
        })
    }

    fn error(&self, reason: impl Into<String>) -> TargetError {
        TargetError {
            target: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn memory_mib(&self) -> u32 {
        self.spec.memory_mib.unwrap_or(self.options.memory_mib)
    }
}

impl Target for VmTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        TargetKind::Vm
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let _memory = MemoryBudget::acquire(u64::from(self.memory_mib()));
        if let Some(reason) = crate::interrupt::reason() {
            return Err(self.error(reason));
        }
        // An interrupted run waits for this VM's teardown before it writes its report.
        let _teardown = crate::interrupt::Teardown::start();
        let mut run = Run::prepare(self).map_err(|e| self.error(e))?;
        let result = run.boot_and_read(self, probes);
        // Interrupted, or a boot that failed (nothing in its throwaway overlay is worth an
        // orderly shutdown, and the error is due within --boot-timeout): no time to power off.
        let grace = if crate::interrupt::requested().is_some() || result.is_err() {
            Duration::ZERO
        } else {
            SHUTDOWN_GRACE
        };
        // The guest powers itself off when asked over SSH (a minimal build may ignore ACPI's
        // power button: no logind); ACPI, QMP `quit` and SIGKILL follow if it does not.
        let asked = match &run.ssh {
            Some(ssh) if grace > Duration::ZERO => poweroff(ssh, run.ssh_options.sudo)
                .ok()
                .map(|()| "`systemctl poweroff` over SSH"),
            _ => None,
        };
        let stopped = run.machine.as_mut().map(|m| m.stop(grace, asked));
        let console = run.console_text();
        let console_log = self.keep_console(&console);
        let tail = run.console_tail();
        let removed = run.remove();
        let teardown = match (&stopped, removed) {
            (Some(stopped), _) if !stopped.gone => format!(
                "QEMU (pid {}) is still running",
                run.machine.as_ref().map_or(0, Machine::pid)
            ),
            (_, Err(reason)) => reason,
            _ => "ok".to_owned(),
        };
        let shown_log = match &console_log {
            Ok(Some(path)) => path.display().to_string(),
            Ok(None) => "not kept (no report folder)".to_owned(),
            Err(reason) => format!("not kept: {reason}"),
        };
        match result {
            Err(reason) => Err(self.error(format!(
                "{reason}\nthe console's last lines (log: {shown_log}):\n{}",
                indent(&tail)
            ))),
            Ok(mut gathered) => {
                if teardown != "ok" {
                    return Err(
                        self.error(format!("the VM was read, but not torn down: {teardown}"))
                    );
                }
                let mut record = std::mem::take(&mut run.record);
                record.insert("console-log", shown_log);
                record.insert("console-tail", tail.join("\n"));
                record.insert(
                    "shutdown",
                    stopped.map_or_else(|| "not started".to_owned(), |s| s.how),
                );
                record.insert("teardown", teardown);
                if let Some(after) = run.machine.as_ref().and_then(Machine::login_prompt_after) {
                    record.insert(
                        "console-login-prompt-secs",
                        format!("{:.1}", after.as_secs_f64()),
                    );
                }
                if probes.contains(&Probe::Boot) {
                    gathered.facts.insert(Fact::read(
                        Probe::Boot,
                        run.source.clone(),
                        record.into_value(),
                    ));
                }
                Ok(gathered)
            }
        }
    }
}

impl VmTarget {
    /// Writes the console log beside the reports, when there is a report folder.
    fn keep_console(&self, text: &str) -> Result<Option<PathBuf>, String> {
        let Some(dir) = &self.options.console_dir else {
            return Ok(None);
        };
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.console.log", self.name));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(path))
    }
}

/// The `boot` fact's fields, in the order they are set.
#[derive(Debug, Default)]
struct Record(BTreeMap<String, FactValue>);

impl Record {
    fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_owned(), FactValue::Text(value.into()));
    }

    fn into_value(self) -> FactValue {
        FactValue::Record(self.0)
    }
}

/// One boot: its folder, keys, machine and what it has learned.
struct Run {
    folder: Option<tempfile::TempDir>,
    /// A `sh` that removes the folder when its input closes: when hostcert ends, however it
    /// ends (Ctrl-C, SIGKILL), the folder goes with it.
    guardian: Option<Guardian>,
    keys: keys::RunKeys,
    machine: Option<Machine>,
    record: Record,
    /// The `boot` fact's source: the emulator and accelerator.
    source: String,
    config: MachineConfig,
    known_hosts: PathBuf,
    ssh_options: SshOptions,
    /// The guest as an SSH host, once it answered.
    ssh: Option<SshTarget>,
}

/// Why a boot did not reach SSH.
enum BootFailure {
    /// QEMU could not bind the forwarded port (another program took it): try another.
    PortTaken,
    Failed(String),
}

impl Run {
    /// The folder, the keys, the overlay, the seed and the accelerator; nothing is started.
    fn prepare(target: &VmTarget) -> Result<Run, String> {
        let spec = &target.spec;
        let folder = crate::temp::folder("vm")
            .map_err(|e| format!("cannot make the run's temporary folder: {e}"))?;
        let work = folder.path().to_owned();
        let guardian = guard(&work)?;
        let keys = keys::RunKeys::generate()?;
        let mut record = Record::default();
        let mut drives = Vec::new();
        let mut described = Vec::new();
        if let Some(kernel) = &spec.kernel {
            described.push(format!("kernel {}", readable_file(kernel)?.display()));
        }
        if let Some(initrd) = &spec.initrd {
            described.push(format!("initrd {}", readable_file(initrd)?.display()));
        }
        if let Some(disk) = &spec.disk {
            let disk = readable_file(disk)?;
            let format = match spec.format {
                Some(format) => format,
                None => disk_format(&disk)?,
            };
            let overlay = work.join("overlay.qcow2");
            create_overlay(&disk, format, &overlay)?;
            drives.push(Drive {
                path: overlay,
                format: "qcow2",
                read_only: false,
            });
            described.push(format!(
                "disk {} ({format}) through a qcow2 overlay in the run's folder; the disk is not written",
                disk.display()
            ));
        }
        if let Some(append) = &spec.append {
            described.push(format!("append `{append}`"));
        }
        let mut fw_cfg = Vec::new();
        let ssh_key = match spec.seed {
            Seed::NoCloud => {
                let path = work.join("seed.img");
                let instance = format!("hostcert-{}", nonce());
                seed::write(
                    &path,
                    &seed::user_data(&spec.user, &keys),
                    &seed::meta_data(&instance, &target.name),
                )?;
                drives.push(Drive {
                    path,
                    format: "raw",
                    read_only: true,
                });
                let path = work.join("id_ed25519");
                keys::write_private(&path, &keys.client_private)?;
                path
            }
            Seed::Ignition => {
                let path = work.join("config.ign");
                let config = ignition::config(&spec.user, &keys);
                std::fs::write(&path, format!("{config:#}\n"))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                fw_cfg.push((ignition::FW_CFG_NAME.to_owned(), path));
                let path = work.join("id_ed25519");
                keys::write_private(&path, &keys.client_private)?;
                path
            }
            Seed::None => target
                .ssh
                .identity
                .clone()
                .ok_or("seed=none needs --identity KEY")?,
        };
        let (accel, note) = choose_accel(spec.arch, spec.accel.unwrap_or(target.options.accel))?;
        let cpu = match (&spec.cpu, accel) {
            (Some(cpu), _) => cpu.clone(),
            (None, Accel::Kvm) => "host".to_owned(),
            (None, Accel::Tcg) => "max".to_owned(),
        };
        let config = MachineConfig {
            arch: spec.arch,
            accel,
            cpu,
            memory_mib: target.memory_mib(),
            cpus: spec.cpus,
            firmware: spec.firmware,
            drives,
            kernel: spec.kernel.clone(),
            initrd: spec.initrd.clone(),
            append: spec.append.clone(),
            fw_cfg,
            ssh_port: 0,
            qmp: work.join("qmp.sock"),
        };
        record.insert("accelerator", accel.as_str());
        record.insert("accelerator-note", note);
        record.insert("key-injection", spec.seed.as_str());
        record.insert(
            "machine",
            format!(
                "{} ({}) {}, cpu {}, {} MiB, {} vCPU",
                spec.arch.emulator(),
                spec.arch.as_str(),
                if spec.arch == Arch::X86_64 {
                    "q35"
                } else {
                    "virt"
                },
                config.cpu,
                config.memory_mib,
                config.cpus
            ),
        );
        record.insert("disk", described.join("; "));
        let known_hosts = work.join("known_hosts");
        let ssh_config = work.join("ssh_config");
        std::fs::write(&ssh_config, "")
            .map_err(|e| format!("cannot write {}: {e}", ssh_config.display()))?;
        let ssh_options = SshOptions {
            identity: Some(ssh_key),
            known_hosts: Some(known_hosts.clone()),
            accept_new_host_keys: false,
            sudo: target.ssh.sudo || spec.user != "root",
            ssh_config: Some(ssh_config),
            ..target.ssh.clone()
        };
        Ok(Run {
            source: format!("{} ({})", spec.arch.emulator(), accel.as_str()),
            folder: Some(folder),
            guardian: Some(guardian),
            keys,
            machine: None,
            record,
            config,
            known_hosts,
            ssh_options,
            ssh: None,
        })
    }

    /// Boots, waits for SSH, and reads the guest as an SSH host.
    fn boot_and_read(&mut self, target: &VmTarget, probes: &ProbeSet) -> Result<Gathered, String> {
        let deadline = Instant::now() + target.options.boot_timeout;
        let seed = target.spec.seed;
        let mut attempts = 0;
        let (ssh, boot) = loop {
            attempts += 1;
            let port = free_port()?;
            self.config.ssh_port = port;
            if seed != Seed::None {
                std::fs::write(
                    &self.known_hosts,
                    format!("[127.0.0.1]:{port} {}\n", self.keys.host_public),
                )
                .map_err(|e| format!("cannot write {}: {e}", self.known_hosts.display()))?;
                self.record.insert(
                    "host-key",
                    format!(
                        "{} {}: made for this run and given to the guest through {}; pinned",
                        self.keys.host_public.split(' ').next().unwrap_or_default(),
                        self.keys.host_fingerprint,
                        if seed == Seed::NoCloud {
                            "the NoCloud seed"
                        } else {
                            "the Ignition config"
                        }
                    ),
                );
            }
            let ssh = SshTarget::parse(
                &format!("ssh://{}@127.0.0.1:{port}", target.spec.user),
                self.ssh_options.clone(),
            )
            .map_err(|e| e.reason)?
            .named(&target.name);
            self.machine = Some(Machine::start(&self.config)?);
            match self.wait_for_ssh(&ssh, seed, deadline, target.options.boot_timeout) {
                Ok(boot) => break (ssh, boot),
                Err(BootFailure::PortTaken) if attempts < 5 => {
                    if let Some(mut machine) = self.machine.take() {
                        machine.stop(Duration::ZERO, None);
                    }
                }
                Err(BootFailure::PortTaken) => {
                    return Err("QEMU could not forward a loopback port five times".to_owned())
                }
                Err(BootFailure::Failed(reason)) => return Err(reason),
            }
        };
        self.record
            .insert("boot-secs", format!("{:.1}", boot.as_secs_f64()));
        self.record.insert("login", "ok");
        self.record.insert("user", target.spec.user.clone());
        self.record
            .insert("ssh-port", format!("127.0.0.1:{}", self.config.ssh_port));
        let problems = self
            .machine
            .as_ref()
            .map(|m| m.console(|c| c.problems.clone()))
            .unwrap_or_default();
        self.record.insert(
            "console-problems",
            if problems.is_empty() {
                "none".to_owned()
            } else {
                problems.join("\n")
            },
        );
        let mut asked = probes.clone();
        asked.remove(&Probe::Boot);
        // `image` probes: the guest's own files (host-root), read after the batch.
        let own: ProbeSet = probes
            .iter()
            .filter_map(|p| match p {
                Probe::Image(inner) => Some((**inner).clone()),
                _ => None,
            })
            .collect();
        asked.retain(|p| !matches!(p, Probe::Image(_)));
        let gathered = ssh.gather(&asked).map_err(|e| e.reason);
        self.ssh = Some(ssh);
        let Some(ssh) = self.ssh.as_ref() else {
            return Err("the guest's SSH target is gone".to_owned());
        };
        let mut gathered = gathered?;
        if !own.is_empty() {
            let mirror = self
                .folder
                .as_ref()
                .map(|f| f.path().join("host-root"))
                .ok_or("the run's folder is gone")?;
            std::fs::create_dir(&mirror)
                .map_err(|e| format!("cannot make {}: {e}", mirror.display()))?;
            let facts = match ssh.connect() {
                Ok(connection) => host_root::facts(connection.session(), &own, &mirror),
                Err(error) => own
                    .iter()
                    .map(|p| {
                        Fact::failed(
                            Probe::Image(Box::new(p.clone())),
                            "host-root",
                            format!(
                                "cannot log in again to read the guest's files: {}",
                                error.reason
                            ),
                        )
                    })
                    .collect(),
            };
            for fact in facts.iter() {
                gathered.facts.insert(fact.clone());
            }
        }
        Ok(gathered)
    }

    /// Waits until the guest accepts an SSH login, or why it never will.
    fn wait_for_ssh(
        &mut self,
        ssh: &SshTarget,
        seed: Seed,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Duration, BootFailure> {
        let port = self.config.ssh_port;
        let mut last_error: Option<String> = None;
        let mut learned = seed != Seed::None;
        loop {
            let Some(machine) = self.machine.as_mut() else {
                return Err(BootFailure::Failed("QEMU did not start".to_owned()));
            };
            if let Some(status) = machine.exited() {
                let stderr = machine.stderr();
                if stderr.contains("hostfwd") || stderr.contains("host forwarding") {
                    return Err(BootFailure::PortTaken);
                }
                let panic = machine.console(|c| c.panic.clone());
                let nothing_to_boot = machine.console(|c| {
                    c.last_lines(CONSOLE_LINES)
                        .iter()
                        .any(|line| line.contains("No bootable device"))
                });
                let stderr = if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                };
                return Err(BootFailure::Failed(match panic {
                    Some(panic) => format!("the kernel panicked: {panic}"),
                    None if nothing_to_boot => format!(
                        "the firmware found nothing to boot (SeaBIOS: No bootable device): the disk has no boot loader the BIOS can start; QEMU exited ({status}){stderr}"
                    ),
                    None => format!(
                        "QEMU exited ({status}) before SSH opened: the guest powered off or reset (QEMU runs with -no-reboot){stderr}"
                    ),
                }));
            }
            if let Some(reason) = crate::interrupt::reason() {
                return Err(BootFailure::Failed(reason));
            }
            if let Some(panic) = machine.console(|c| c.panic.clone()) {
                // The panic's own lines (the cause, the call trace) follow it.
                std::thread::sleep(Duration::from_secs(2));
                return Err(BootFailure::Failed(format!("the kernel panicked: {panic}")));
            }
            let why_not = last_error
                .as_ref()
                .map_or_else(String::new, |e| format!("; the last SSH attempt: {e}"));
            let now = Instant::now();
            if now >= deadline {
                return Err(BootFailure::Failed(format!(
                    "SSH did not open within {} s (--boot-timeout){why_not}",
                    timeout.as_secs()
                )));
            }
            if let Some(at) = machine.console(|c| c.login_prompt_at) {
                if at.elapsed() >= SSH_AFTER_LOGIN_PROMPT {
                    return Err(BootFailure::Failed(format!(
                        "the guest finished booting (its console shows a login prompt) but its SSH server did not open within {} s of it{why_not}",
                        SSH_AFTER_LOGIN_PROMPT.as_secs()
                    )));
                }
            }
            if !learned {
                let host_keys = machine.console(|c| c.host_keys.clone());
                if !host_keys.is_empty() {
                    let lines: String = host_keys
                        .iter()
                        .map(|key| format!("[127.0.0.1]:{port} {key}\n"))
                        .collect();
                    std::fs::write(&self.known_hosts, lines).map_err(|e| {
                        BootFailure::Failed(format!(
                            "cannot write {}: {e}",
                            self.known_hosts.display()
                        ))
                    })?;
                    self.record.insert(
                        "host-key",
                        format!(
                            "{}: printed on the console by cloud-init (SSH HOST KEY KEYS); pinned",
                            host_keys.join(", ")
                        ),
                    );
                    learned = true;
                } else if machine.console(|c| c.login_prompt_at.is_some()) {
                    last_error = Some(
                        "the console printed no host key (cloud-init's SSH HOST KEY KEYS block); without a seed hostcert cannot pin one, and never trusts a key blindly".to_owned(),
                    );
                }
            }
            if learned && speaks_ssh(port) {
                match ssh.connect() {
                    Ok(connection) => {
                        drop(connection);
                        return Ok(machine.elapsed());
                    }
                    Err(error) => last_error = Some(error.reason),
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn console_text(&self) -> String {
        self.machine
            .as_ref()
            .map(|m| m.console(|c| c.text()))
            .unwrap_or_default()
    }

    fn console_tail(&self) -> Vec<String> {
        self.machine
            .as_ref()
            .map(|m| m.console(|c| c.last_lines(CONSOLE_LINES)))
            .unwrap_or_default()
    }

    /// Removes the run's folder; the error names what is left.
    fn remove(&mut self) -> Result<(), String> {
        let Some(folder) = self.folder.take() else {
            return Ok(());
        };
        let path = folder.path().to_owned();
        let closed = folder
            .close()
            .map_err(|e| format!("cannot remove {}: {e}", path.display()));
        drop(self.guardian.take());
        closed?;
        if path.exists() {
            return Err(format!("{} is still there", path.display()));
        }
        Ok(())
    }
}

/// Asks the guest to power off over SSH (`systemctl poweroff`, else `poweroff`, under `sudo -n`
/// for a user other than root), and waits (at most 15 s) for the command to return: sshd would
/// end it with the session otherwise.
fn poweroff(ssh: &SshTarget, sudo: bool) -> Result<(), String> {
    let connection = ssh.connect().map_err(|e| e.reason)?;
    let session = connection.session();
    session.set_timeout(15_000);
    let mut channel = session
        .channel_session()
        .map_err(|e| e.message().to_owned())?;
    let command = if sudo {
        "sudo -n systemctl poweroff || sudo -n poweroff"
    } else {
        "systemctl poweroff || poweroff"
    };
    channel.exec(command).map_err(|e| e.message().to_owned())?;
    let _ = channel.send_eof();
    let mut output = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut std::io::Read::take(&mut channel, 64 << 10),
        &mut output,
    );
    let _ = channel.wait_close();
    Ok(())
}

/// Starts the folder's guardian: `sh` waits for its input to close (hostcert closes it when the
/// run is over, and the kernel closes it when hostcert dies), then removes the folder. It ignores
/// SIGINT and SIGHUP, so that a Ctrl-C that ends hostcert does not end it first.
fn guard(folder: &Path) -> Result<Guardian, String> {
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "trap '' INT HUP; cat >/dev/null; rm -rf -- \"$1\"",
            "hostcert-vm-cleanup",
        ])
        .arg(folder)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sh to guard {}: {e}", folder.display()))?;
    let input = child.stdin.take();
    Ok(Guardian { child, input })
}

/// The folder's guardian; dropping it closes its input and reaps it.
struct Guardian {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
}

impl Drop for Guardian {
    fn drop(&mut self) {
        drop(self.input.take());
        if qemu::wait_for_exit(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether something on the forwarded port sends an SSH banner: QEMU accepts the connection
/// itself, before the guest listens, so an accepted connection alone proves nothing.
fn speaks_ssh(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

/// A loopback port nobody listens on now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}

/// KVM or TCG, and why.
fn choose_accel(arch: Arch, choice: AccelChoice) -> Result<(Accel, String), String> {
    match choice {
        AccelChoice::Tcg => Ok((Accel::Tcg, "tcg asked for".to_owned())),
        AccelChoice::Kvm => qemu::kvm_usable(arch)
            .map(|()| (Accel::Kvm, "kvm asked for; it works here".to_owned()))
            .map_err(|reason| {
                format!("KVM was asked for (accel=kvm) but does not work here: {reason}")
            }),
        AccelChoice::Auto => Ok(match qemu::kvm_usable(arch) {
            Ok(()) => (Accel::Kvm, "kvm works here".to_owned()),
            Err(reason) => (
                Accel::Tcg,
                format!("kvm does not work here ({reason}); tcg instead"),
            ),
        }),
    }
}

/// The absolute path of a file that exists and is a regular file.
fn readable_file(path: &Path) -> Result<PathBuf, String> {
    let absolute = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !absolute.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(absolute)
}

/// A disk's format as `qemu-img info` reads it: `raw` or `qcow2`, anything else refused.
fn disk_format(disk: &Path) -> Result<&'static str, String> {
    let qemu_img = qemu::which("qemu-img")
        .ok_or("qemu-img not found; install it: apt-get install qemu-utils")?;
    let output = std::process::Command::new(qemu_img)
        .args(["info", "--output=json", "-U", "--"])
        .arg(disk)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run qemu-img: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "qemu-img cannot read {}: {}",
            disk.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("qemu-img info on {}: {e}", disk.display()))?;
    match info.get("format").and_then(|f| f.as_str()) {
        Some("raw") => Ok("raw"),
        Some("qcow2") => Ok("qcow2"),
        Some(other) => Err(format!(
            "{} is a {other} disk; vm: boots raw and qcow2 disks (convert it: qemu-img convert -O qcow2)",
            disk.display()
        )),
        None => Err(format!("qemu-img did not name the format of {}", disk.display())),
    }
}

/// A qcow2 overlay whose backing file is the disk, so the guest's writes never reach it.
fn create_overlay(disk: &Path, format: &str, overlay: &Path) -> Result<(), String> {
    let qemu_img = qemu::which("qemu-img")
        .ok_or("qemu-img not found; install it: apt-get install qemu-utils")?;
    let output = std::process::Command::new(qemu_img)
        .args(["create", "-q", "-f", "qcow2", "-F", format, "-b"])
        .arg(disk)
        .arg(overlay)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run qemu-img: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "qemu-img cannot make an overlay over {}: {}",
            disk.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Lines indented for an error message.
fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (the console printed nothing)".to_owned();
    }
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A value the guest cannot have seen, for the seed's instance id.
fn nonce() -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    hasher.update(
        COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes(),
    );
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The memory VMs of one run may use together: half of what the machine has available when the
/// first VM starts. A VM waits until its memory fits; one VM always runs, whatever its size.
struct MemoryBudget {
    mib: u64,
}

impl MemoryBudget {
    fn state() -> &'static (Mutex<u64>, Condvar, u64) {
        static STATE: OnceLock<(Mutex<u64>, Condvar, u64)> = OnceLock::new();
        STATE.get_or_init(|| (Mutex::new(0), Condvar::new(), available_mib() / 2))
    }

    fn acquire(mib: u64) -> MemoryBudget {
        let (used, freed, total) = Self::state();
        let mut used = used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + mib > *total {
            used = freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += mib;
        MemoryBudget { mib }
    }
}

impl Drop for MemoryBudget {
    fn drop(&mut self) {
        let (used, freed, _) = Self::state();
        let mut used = used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(self.mib);
        freed.notify_all();
    }
}

/// `MemAvailable` of /proc/meminfo, MiB (4 GiB when it cannot be read).
fn available_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let rest = line.strip_prefix("MemAvailable:")?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .map_or(4096, |kib| kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let spec = Spec::parse("/images/build-42.qcow2").unwrap();
        assert_eq!(spec.disk, Some(PathBuf::from("/images/build-42.qcow2")));
        assert_eq!(spec.default_name(), "build-42");
        assert_eq!(spec.seed, Seed::NoCloud);

        let spec = Spec::parse(
            "kernel=k/vmlinuz,initrd=k/initrd.img,disk=d.raw,seed=ignition,user=core,memory=2048,append=root=/dev/vda2 console=ttyS0,115200 a=b,c",
        )
        .unwrap();
        assert_eq!(spec.kernel, Some(PathBuf::from("k/vmlinuz")));
        assert_eq!(spec.disk, Some(PathBuf::from("d.raw")));
        assert_eq!(spec.seed, Seed::Ignition);
        assert_eq!(spec.user, "core");
        assert_eq!(spec.memory_mib, Some(2048));
        // append= takes the rest: spaces, commas and `=` included.
        assert_eq!(
            spec.append.as_deref(),
            Some("root=/dev/vda2 console=ttyS0,115200 a=b,c")
        );
        assert_eq!(spec.default_name(), "d");
        assert_eq!(
            Spec::parse("disk=a.qcow2,name=good-build")
                .unwrap()
                .default_name(),
            "good-build"
        );
        // A path with `=` that does not start with a key is a disk.
        assert_eq!(
            Spec::parse("/x/y=z.qcow2").unwrap().disk,
            Some(PathBuf::from("/x/y=z.qcow2"))
        );

        for (address, error) in [
            ("", "no disk"),
            ("disk=a,disk=b", "given twice"),
            ("disk=a,size=3", "unknown key `size`"),
            ("disk=a,initrd=i", "needs `kernel=`"),
            ("append=quiet", "no disk and no kernel"),
            ("disk=a,memory=lots", "expected a number"),
            ("disk=a,seed=cloud", "expected nocloud, ignition or none"),
            ("disk=a,accel=hvf", "not an accelerator"),
            ("disk=a,user=a;b", "not a user name"),
            ("disk=a,format=vmdk", "expected raw or qcow2"),
            ("disk=", "has no value"),
        ] {
            let got = Spec::parse(address).unwrap_err();
            assert!(got.contains(error), "{address}: {got}");
        }
        // seed=none needs the user's key.
        let error = VmTarget::parse(
            "vm:disk=a.qcow2,seed=none",
            &VmOptions::default(),
            &SshOptions::default(),
        )
        .unwrap_err();
        assert!(error.reason.contains("--identity"), "{}", error.reason);
    }

    #[test]
    fn the_budget_lets_one_vm_run_whatever_its_size() {
        let big = MemoryBudget::acquire(u64::MAX / 4);
        drop(big);
        let a = MemoryBudget::acquire(1);
        let b = MemoryBudget::acquire(1);
        drop((a, b));
    }
}
