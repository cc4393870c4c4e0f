//! QEMU: the emulator for an architecture, whether KVM really works, the command line, the
//! running machine with its serial console, and its teardown.
//!
//! The machine runs under `setpriv --pdeathsig KILL`, so that it dies with the thread that
//! started it even when hostcert itself is killed; it is stopped by ACPI (QMP
//! `system_powerdown`), then QMP `quit`, then SIGKILL by pid, each after a grace period.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bytes of the console's first lines kept (the firmware's and the kernel's).
const HEAD_BYTES: usize = 64 << 10;
/// The bytes of the console's last lines kept.
const TAIL_BYTES: usize = 1 << 20;
/// The longest console line kept whole; a longer one is split.
const MAX_LINE: usize = 4 << 10;
/// The most problems (oopses, BUGs, warnings) the console's record lists.
const MAX_PROBLEMS: usize = 20;
/// What QEMU's own error output keeps.
const MAX_STDERR: usize = 64 << 10;

/// The guest's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `qemu-system-x86_64`, machine `q35`.
    X86_64,
    /// `qemu-system-aarch64`, machine `virt`.
    Aarch64,
}

impl Arch {
    /// As `uname -m` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Parses `x86_64` (or `amd64`) and `aarch64` (or `arm64`).
    pub fn parse(text: &str) -> Option<Arch> {
        match text {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The emulator's program name.
    pub fn emulator(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The Debian package that has the emulator.
    pub fn package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Aarch64 => "qemu-system-arm",
        }
    }

    fn machine(self) -> &'static str {
        match self {
            Arch::X86_64 => "q35",
            Arch::Aarch64 => "virt",
        }
    }

    /// The architecture hostcert runs on.
    pub fn host() -> Option<Arch> {
        Arch::parse(std::env::consts::ARCH)
    }
}

/// How the guest's CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// The host's CPU, through /dev/kvm.
    Kvm,
    /// QEMU's translator: slower, works everywhere.
    Tcg,
}

impl Accel {
    /// `kvm` or `tcg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// How the firmware boots a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS on x86_64 (the disk's MBR boot code); UEFI on aarch64, which has no BIOS.
    Bios,
    /// UEFI (OVMF on x86_64, AAVMF on aarch64).
    Uefi,
}

/// A program found in `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether KVM really runs a guest of `arch` here: /dev/kvm opens, and QEMU starts a machine with
/// it (nested KVM can have /dev/kvm and still fail, e.g. "failed to set MSR 0x10a"). Probed once
/// per process and architecture, by starting the machine paused and quitting it through QMP.
pub fn kvm_usable(arch: Arch) -> Result<(), String> {
    static X86_64: OnceLock<Result<(), String>> = OnceLock::new();
    static AARCH64: OnceLock<Result<(), String>> = OnceLock::new();
    let cell = match arch {
        Arch::X86_64 => &X86_64,
        Arch::Aarch64 => &AARCH64,
    };
    cell.get_or_init(|| probe_kvm(arch)).clone()
}

fn probe_kvm(arch: Arch) -> Result<(), String> {
    if Arch::host() != Some(arch) {
        return Err(format!(
            "KVM runs guests of the host's own architecture only (this host is {})",
            std::env::consts::ARCH
        ));
    }
    if let Err(error) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return Err(format!("/dev/kvm: {error}"));
    }
    let Some(emulator) = which(arch.emulator()) else {
        return Err(format!("{} is not installed", arch.emulator()));
    };
    let mut child = Command::new(emulator)
        .args(["-machine", arch.machine(), "-accel", "kvm", "-cpu", "host"])
        .args([
            "-m",
            "64",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(["-S", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", arch.emulator()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n");
    }
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(MAX_STDERR as u64).read_to_string(&mut text);
        }
        text
    });
    let status = wait_for_exit(&mut child, Duration::from_secs(20));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = reader.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(()),
        Some(_) => Err(first_error_line(&stderr)),
        None => Err("QEMU with KVM did not start within 20 s".to_owned()),
    }
}

/// The most telling line of QEMU's error output.
fn first_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .find(|l| l.contains("error"))
        .or(lines.first())
        .map_or_else(
            || "QEMU failed without a message".to_owned(),
            |l| l.to_string(),
        )
}

/// Waits for a child to exit, at most `limit`.
pub fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

/// A disk given to the guest.
#[derive(Debug, Clone)]
pub struct Drive {
    /// The image file.
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: &'static str,
    /// Whether the guest may not write it.
    pub read_only: bool,
}

/// Everything QEMU is started with.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub arch: Arch,
    pub accel: Accel,
    /// `-cpu`: `host` under KVM, `max` under TCG unless the address names a model.
    pub cpu: String,
    pub memory_mib: u32,
    pub cpus: u32,
    pub firmware: Firmware,
    /// The disks, in order (the first is `vda`).
    pub drives: Vec<Drive>,
    /// Direct kernel boot.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: Option<String>,
    /// `-fw_cfg name=NAME,file=PATH` entries.
    pub fw_cfg: Vec<(String, PathBuf)>,
    /// The loopback port forwarded to the guest's port 22.
    pub ssh_port: u16,
    /// The QMP socket.
    pub qmp: PathBuf,
}

impl MachineConfig {
    /// QEMU's arguments.
    pub fn args(&self) -> Result<Vec<OsString>, String> {
        let mut args: Vec<OsString> = Vec::new();
        let push = |args: &mut Vec<OsString>, items: &[&str]| {
            args.extend(items.iter().map(OsString::from))
        };
        push(
            &mut args,
            &[
                "-machine",
                self.arch.machine(),
                "-accel",
                self.accel.as_str(),
            ],
        );
        push(&mut args, &["-cpu", &self.cpu]);
        push(
            &mut args,
            &[
                "-m",
                &self.memory_mib.to_string(),
                "-smp",
                &self.cpus.to_string(),
            ],
        );
        push(
            &mut args,
            &[
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
            ],
        );
        // The serial console on QEMU's stdout, read by hostcert; stdin is a pipe nothing writes to.
        // Under SeaBIOS the firmware's own messages (its debug port, 0x402) join it, so that a
        // disk with nothing to boot says so ("No bootable device."), and SeaBIOS resets at once
        // instead of retrying every minute: with -no-reboot, QEMU then exits.
        let seabios = self.arch == Arch::X86_64 && self.firmware == Firmware::Bios;
        push(
            &mut args,
            &[
                "-chardev",
                if seabios {
                    "stdio,id=console,signal=off,mux=on"
                } else {
                    "stdio,id=console,signal=off"
                },
                "-serial",
                "chardev:console",
            ],
        );
        if seabios {
            push(
                &mut args,
                &[
                    "-device",
                    "isa-debugcon,iobase=0x402,chardev=console",
                    "-boot",
                    "reboot-timeout=0",
                ],
            );
        }
        push(&mut args, &["-device", "virtio-rng-pci"]);
        push(
            &mut args,
            &[
                "-netdev",
                &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22", self.ssh_port),
                "-device",
                // No network boot ROM: a disk with nothing to boot must not fall back to PXE.
                "virtio-net-pci,netdev=net0,romfile=",
            ],
        );
        args.push("-qmp".into());
        args.push(option_with_path("unix:", &self.qmp, ",server=on,wait=off")?);
        for drive in &self.drives {
            args.push("-drive".into());
            args.push(option_with_path(
                "file=",
                &drive.path,
                &format!(
                    ",format={},if=virtio,cache=unsafe{}",
                    drive.format,
                    if drive.read_only { ",readonly=on" } else { "" }
                ),
            )?);
        }
        if let Some(firmware) = self.firmware_file()? {
            args.push("-bios".into());
            args.push(firmware.into());
        }
        if let Some(kernel) = &self.kernel {
            args.push("-kernel".into());
            args.push(kernel.into());
        }
        if let Some(initrd) = &self.initrd {
            args.push("-initrd".into());
            args.push(initrd.into());
        }
        if let Some(append) = &self.append {
            args.push("-append".into());
            args.push(append.into());
        }
        for (name, file) in &self.fw_cfg {
            args.push("-fw_cfg".into());
            args.push(option_with_path(&format!("name={name},file="), file, "")?);
        }
        Ok(args)
    }

    /// The firmware file `-bios` names, when the default (SeaBIOS on x86_64) does not do.
    fn firmware_file(&self) -> Result<Option<PathBuf>, String> {
        let (candidates, package): (&[&str], &str) = match (self.arch, self.firmware) {
            (Arch::X86_64, Firmware::Bios) => return Ok(None),
            // Direct kernel boot on aarch64 needs no firmware.
            (Arch::Aarch64, _) if self.kernel.is_some() => return Ok(None),
            (Arch::X86_64, Firmware::Uefi) => (&["/usr/share/ovmf/OVMF.fd"], "ovmf"),
            (Arch::Aarch64, _) => (
                &[
                    "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd",
                    "/usr/share/AAVMF/AAVMF_CODE.fd",
                ],
                "qemu-efi-aarch64",
            ),
        };
        candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "UEFI firmware not found ({}); install it: apt-get install {package}",
                    candidates.join(", ")
                )
            })
    }
}

/// `PREFIX` + path + `SUFFIX` as one QEMU option value; a path with a comma is refused, since
/// QEMU would read it as the next option.
fn option_with_path(prefix: &str, path: &Path, suffix: &str) -> Result<OsString, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8; QEMU cannot be given it", path.display()))?;
    if text.contains(',') {
        return Err(format!(
            "{text} contains a comma, which QEMU's options cannot carry"
        ));
    }
    Ok(format!("{prefix}{text}{suffix}").into())
}

/// What the serial console showed, bounded: the first lines, the last lines, and what hostcert
/// looks for in it.
#[derive(Debug, Default)]
pub struct Console {
    head: Vec<String>,
    head_bytes: usize,
    tail: VecDeque<String>,
    tail_bytes: usize,
    /// Lines dropped between the head and the tail.
    cut_lines: u64,
    cut_bytes: u64,
    partial: Vec<u8>,
    /// The kernel's panic line, once seen.
    pub panic: Option<String>,
    /// When a login prompt (`login: ` at the end of the output) first showed.
    pub login_prompt_at: Option<Instant>,
    /// Oopses, BUGs, warnings, in order (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<String>,
    /// Public host keys from cloud-init's `BEGIN SSH HOST KEY KEYS` block.
    pub host_keys: Vec<String>,
    in_key_block: bool,
}

impl Console {
    fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut self.partial);
                self.line(clean(&line));
            } else {
                self.partial.push(byte);
                if self.partial.len() >= MAX_LINE {
                    let line = std::mem::take(&mut self.partial);
                    self.line(clean(&line));
                }
            }
        }
        if self.login_prompt_at.is_none() {
            let partial = clean(&self.partial);
            if partial.trim_end().ends_with("login:") {
                self.login_prompt_at = Some(Instant::now());
            }
        }
    }

    fn line(&mut self, line: String) {
        self.watch(&line);
        if self.head_bytes + line.len() <= HEAD_BYTES && self.tail.is_empty() {
            self.head_bytes += line.len() + 1;
            self.head.push(line);
            return;
        }
        self.tail_bytes += line.len() + 1;
        self.tail.push_back(line);
        while self.tail_bytes > TAIL_BYTES {
            let Some(dropped) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= dropped.len() + 1;
            self.cut_lines += 1;
            self.cut_bytes += dropped.len() as u64 + 1;
        }
    }

    fn watch(&mut self, line: &str) {
        if line.contains("-----BEGIN SSH HOST KEY KEYS-----") {
            self.in_key_block = true;
            return;
        }
        if self.in_key_block {
            // cloud-init's last key and the END marker can share a line.
            let (keys, end) = match line.split_once("-----END SSH HOST KEY KEYS-----") {
                Some((keys, _)) => (keys, true),
                None => (line, false),
            };
            if let Some(key) = public_key_in(keys) {
                self.host_keys.push(key);
            }
            self.in_key_block = !end;
            return;
        }
        if self.panic.is_none() && line.contains("Kernel panic - not syncing") {
            self.panic = Some(line.to_owned());
        }
        if self.problems.len() < MAX_PROBLEMS && is_problem(line) {
            self.problems.push(line.to_owned());
        }
    }

    /// The last `n` lines (the partial line included).
    pub fn last_lines(&self, n: usize) -> Vec<String> {
        let partial = clean(&self.partial);
        let mut lines: Vec<String> = self
            .head
            .iter()
            .chain(self.tail.iter())
            .cloned()
            .chain((!partial.trim().is_empty()).then_some(partial))
            .filter(|l| !l.trim().is_empty())
            .collect();
        let start = lines.len().saturating_sub(n);
        lines.drain(..start);
        lines
    }

    /// The whole kept log: the head, a note of what was cut, the tail.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for line in &self.head {
            text += line;
            text.push('\n');
        }
        if self.cut_lines > 0 {
            text += &format!(
                "[hostcert: {} lines ({} bytes) of the console cut here; the first {} KiB and the last {} KiB are kept]\n",
                self.cut_lines,
                self.cut_bytes,
                HEAD_BYTES >> 10,
                TAIL_BYTES >> 10
            );
        }
        for line in &self.tail {
            text += line;
            text.push('\n');
        }
        text += &clean(&self.partial);
        text
    }
}

/// A console line as text: carriage returns, ANSI escape sequences and other control characters
/// removed.
fn clean(bytes: &[u8]) -> String {
    static ESCAPES: OnceLock<regex::Regex> = OnceLock::new();
    let escapes = ESCAPES.get_or_init(|| {
        regex::Regex::new(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")
            .unwrap_or_else(|_| unreachable!("a fixed pattern"))
    });
    let text = String::from_utf8_lossy(bytes);
    escapes
        .replace_all(&text, "")
        .chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}

/// Whether a kernel console line reports a problem: an oops, a BUG, a warning with a backtrace,
/// a general protection fault, a hung task, a panic.
fn is_problem(line: &str) -> bool {
    const MARKS: [&str; 8] = [
        "Oops: ",
        "BUG: ",
        "WARNING: CPU: ",
        "general protection fault",
        "Kernel panic - not syncing",
        "blocked for more than",
        "Call Trace:",
        "segfault at ",
    ];
    MARKS.iter().any(|mark| line.contains(mark))
}

/// A public key (`TYPE BASE64`) within a line, whatever precedes it.
fn public_key_in(line: &str) -> Option<String> {
    const TYPES: [&str; 5] = [
        "ssh-ed25519 ",
        "ecdsa-sha2-nistp256 ",
        "ecdsa-sha2-nistp384 ",
        "ecdsa-sha2-nistp521 ",
        "ssh-rsa ",
    ];
    let start = TYPES.iter().filter_map(|t| line.find(t)).min()?;
    let mut fields = line[start..].split_whitespace();
    let (kind, blob) = (fields.next()?, fields.next()?);
    blob.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .then(|| format!("{kind} {blob}"))
}

/// A running machine.
pub struct Machine {
    child: Child,
    pid: u32,
    started: Instant,
    console: Arc<Mutex<Console>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    /// Held open so that QEMU's console input never ends; nothing is written to it.
    stdin: Option<ChildStdin>,
    qmp: PathBuf,
    /// Registered while QEMU runs: a second signal ends it.
    _group: crate::interrupt::ProcessGroup,
}

/// How the machine stopped.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// `powered off (ACPI) in 3.1 s`, `quit through QMP`, `killed (SIGKILL) after ...`, or
    /// `had exited (status ...)`.
    pub how: String,
    /// Whether the process is gone.
    pub gone: bool,
}

impl Machine {
    /// Starts QEMU for `config`.
    pub fn start(config: &MachineConfig) -> Result<Machine, String> {
        let emulator = which(config.arch.emulator()).ok_or_else(|| {
            format!(
                "{} not found; install it: apt-get install {}",
                config.arch.emulator(),
                config.arch.package()
            )
        })?;
        let args = config.args()?;
        // setpriv (util-linux) makes the kernel kill QEMU when the thread that started it ends,
        // so that a killed hostcert leaves no machine running.
        let mut command = match which("setpriv") {
            Some(setpriv) => {
                let mut command = Command::new(setpriv);
                command.args(["--pdeathsig", "KILL", "--"]).arg(&emulator);
                command
            }
            None => Command::new(&emulator),
        };
        // Its own process group: a Ctrl-C at the terminal reaches hostcert, which stops the
        // machine; a second signal ends the group at once.
        let mut child = command
            .args(&args)
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", emulator.display()))?;
        let pid = child.id();
        let group = crate::interrupt::ProcessGroup::register(pid);
        let console = Arc::new(Mutex::new(Console::default()));
        let stderr_text = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            let console = Arc::clone(&console);
            readers.push(std::thread::spawn(move || {
                let mut buffer = [0u8; 16 << 10];
                while let Ok(n) = stdout.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    console
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .feed(&buffer[..n]);
                }
            }));
        }
        if let Some(mut stderr) = child.stderr.take() {
            let kept = Arc::clone(&stderr_text);
            readers.push(std::thread::spawn(move || {
                let mut buffer = [0u8; 4 << 10];
                while let Ok(n) = stderr.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    let room = MAX_STDERR.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..n.min(room)]);
                }
            }));
        }
        Ok(Machine {
            stdin: child.stdin.take(),
            child,
            pid,
            started: Instant::now(),
            console,
            stderr: stderr_text,
            readers,
            qmp: config.qmp.clone(),
            _group: group,
        })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How long ago it was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the console first showed a login prompt, counted from QEMU's start.
    pub fn login_prompt_after(&self) -> Option<Duration> {
        self.console(|c| c.login_prompt_at)
            .map(|at| at.saturating_duration_since(self.started))
    }

    /// The exit status, once QEMU has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Runs `f` on the console.
    pub fn console<T>(&self, f: impl FnOnce(&Console) -> T) -> T {
        f(&self.console.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// QEMU's own error output so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()))
            .trim()
            .to_owned()
    }

    /// Stops the machine: when the guest was `asked` to power off (`poweroff` over SSH), up to
    /// `grace` for it to; else ACPI power-off and up to `grace`; then QMP `quit`, then SIGKILL by
    /// pid. Waits for the console's readers to finish.
    pub fn stop(&mut self, grace: Duration, asked: Option<&str>) -> Stopped {
        let began = Instant::now();
        let how = if let Some(status) = self.exited() {
            format!("had exited ({status})")
        } else if let Some(asked) =
            asked.filter(|_| wait_for_exit(&mut self.child, grace).is_some())
        {
            format!(
                "powered off ({asked}) in {:.1} s",
                began.elapsed().as_secs_f64()
            )
        } else if qmp(&self.qmp, "system_powerdown").is_ok()
            && wait_for_exit(&mut self.child, grace).is_some()
        {
            format!(
                "powered off (ACPI) in {:.1} s",
                began.elapsed().as_secs_f64()
            )
        } else if qmp(&self.qmp, "quit").is_ok()
            && wait_for_exit(&mut self.child, Duration::from_secs(5)).is_some()
        {
            format!(
                "quit through QMP after {:.1} s (the guest did not power off within {} s)",
                began.elapsed().as_secs_f64(),
                grace.as_secs()
            )
        } else {
            let _ = self.child.kill();
            let _ = wait_for_exit(&mut self.child, Duration::from_secs(10));
            format!(
                "killed (SIGKILL to pid {}) after {:.1} s",
                self.pid,
                began.elapsed().as_secs_f64()
            )
        };
        let gone = self.exited().is_some();
        self.stdin = None;
        if gone {
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        }
        Stopped { how, gone }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends one QMP command and waits for its answer.
fn qmp(socket: &Path, command: &str) -> Result<(), String> {
    let stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.take(1 << 20));
    let answer = |reader: &mut dyn BufRead| -> Result<(), String> {
        for _ in 0..64 {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("QMP closed".to_owned());
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| e.to_string())?;
            if value.get("return").is_some() || value.get("QMP").is_some() {
                return Ok(());
            }
            if let Some(error) = value.get("error") {
                return Err(error.to_string());
            }
        }
        Err("no QMP answer".to_owned())
    };
    answer(&mut reader)?;
    for execute in ["qmp_capabilities", command] {
        writer
            .write_all(format!("{{\"execute\":\"{execute}\"}}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        answer(&mut reader)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_cleaned_bounded_and_watched() {
        let mut console = Console::default();
        console.feed(b"\x1b[0;32m  OK  \x1b[0m] Reached target\r\n");
        console.feed(b"ci-info: -----BEGIN SSH HOST KEY KEYS-----\n");
        console.feed(b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB root@vm\n");
        console.feed(b"<14>Nov 20 ec2: ecdsa-sha2-nistp256 AAAAE2Vj= root@vm\n");
        console.feed(b"ssh-rsa AAAAB3NzaC1yc2E-----END SSH HOST KEY KEYS-----\n");
        console.feed(b"ssh-rsa AAAAB3 outside the block\n");
        console.feed(b"[    2.5] Kernel panic - not syncing: VFS: Unable to mount root fs\n");
        console.feed(b"\r\ndebian login: ");
        assert_eq!(
            console.host_keys,
            [
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB",
                "ecdsa-sha2-nistp256 AAAAE2Vj=",
                "ssh-rsa AAAAB3NzaC1yc2E"
            ]
        );
        assert!(console
            .panic
            .as_deref()
            .unwrap()
            .contains("Unable to mount"));
        assert_eq!(console.problems.len(), 1);
        assert!(console.login_prompt_at.is_some());
        let last = console.last_lines(2);
        assert_eq!(last[1], "debian login: ");
        assert!(console.text().starts_with("  OK  ] Reached target\n"));

        // Bounded: the first and last lines are kept, the middle is counted.
        let mut console = Console::default();
        for i in 0..100_000 {
            console.feed(format!("line {i} {}\n", "x".repeat(40)).as_bytes());
        }
        let text = console.text();
        assert!(
            text.len() < HEAD_BYTES + TAIL_BYTES + 1024,
            "{}",
            text.len()
        );
        assert!(text.starts_with("line 0 "));
        assert!(text.contains("lines ("));
        assert!(text
            .trim_end()
            .ends_with(&format!("line 99999 {}", "x".repeat(40))));
        // An endless line is split, never held whole.
        let mut console = Console::default();
        console.feed(&vec![b'y'; 3 * MAX_LINE]);
        assert!(console.partial.len() < MAX_LINE);
    }

    #[test]
    fn the_command_line_keeps_the_disk_read_only_and_refuses_commas() {
        let config = MachineConfig {
            arch: Arch::X86_64,
            accel: Accel::Tcg,
            cpu: "max".to_owned(),
            memory_mib: 1024,
            cpus: 1,
            firmware: Firmware::Bios,
            drives: vec![
                Drive {
                    path: "/tmp/w/overlay.qcow2".into(),
                    format: "qcow2",
                    read_only: false,
                },
                Drive {
                    path: "/tmp/w/seed.img".into(),
                    format: "raw",
                    read_only: true,
                },
            ],
            kernel: Some("/k/vmlinuz".into()),
            initrd: None,
            append: Some("root=/dev/vda2 console=ttyS0 quiet".to_owned()),
            fw_cfg: vec![("opt/com.coreos/config".to_owned(), "/tmp/w/c.ign".into())],
            ssh_port: 40022,
            qmp: "/tmp/w/qmp.sock".into(),
        };
        let args: Vec<String> = config
            .args()
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22"));
        assert!(line
            .contains("-drive file=/tmp/w/seed.img,format=raw,if=virtio,cache=unsafe,readonly=on"));
        assert!(line.contains("-fw_cfg name=opt/com.coreos/config,file=/tmp/w/c.ign"));
        assert!(line.contains("-no-reboot"));
        // SeaBIOS's messages on the console, its endless retry turned into a reset, no PXE.
        assert!(line.contains("-chardev stdio,id=console,signal=off,mux=on"));
        assert!(line.contains("-device isa-debugcon,iobase=0x402,chardev=console"));
        assert!(line.contains("-boot reboot-timeout=0"));
        assert!(line.contains("virtio-net-pci,netdev=net0,romfile= "));
        // The append text is one argument, spaces included.
        let at = args.iter().position(|a| a == "-append").unwrap();
        assert_eq!(args[at + 1], "root=/dev/vda2 console=ttyS0 quiet");
        let mut bad = config.clone();
        bad.drives[0].path = "/tmp/a,b/overlay.qcow2".into();
        assert!(bad.args().unwrap_err().contains("comma"));
    }
}
