//! `vm:` targets, on the bootable Debian 12 disk `ci/fixtures-vm` builds from Debian's packages
//! (cached in `$HOSTCERT_FIXTURES/vm`, default `/var/cache/hostcert-fixtures/vm`): booted under
//! QEMU (TCG on this machine, where nested KVM fails) and certified like an `ssh://` host.
//!
//! - the build is certified by the os-build profile, and the same disk booted with a kernel
//!   command line that falls back to cgroup v1 is refused for it, in one run of two VMs;
//! - a build whose sshd is masked never opens SSH: an error with the console's last lines;
//!   the same build with `seed=none` prints no host key: refused, never trusted blindly;
//! - a kernel that cannot mount its root panics: an error showing the panic;
//! - a disk with nothing to boot, and a build given too little `--boot-timeout`: errors with
//!   the console's last lines, before or right at the timeout;
//! - an Ignition config reaches the guest through fw_cfg, where it matches the Ignition v3.3
//!   schema and gives the login; with `--image`, the pair's image answers `image` probes;
//! - Ctrl-C in the middle of a boot leaves nothing behind.
//!
//! After every run nothing is left: no QEMU process naming the test's temporary folder, no
//! folder in it, the forwarded port closed, the disk unchanged. The tests boot VMs one at a time
//! (`.config/nextest.toml`): the machine has two cores.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::BIN;

/// The cached disk, kernel and initrd; the test fails with the hint when they are missing.
fn fixtures() -> PathBuf {
    let dir = std::env::var_os("HOSTCERT_FIXTURES")
        .map_or_else(
            || PathBuf::from("/var/cache/hostcert-fixtures"),
            PathBuf::from,
        )
        .join("vm");
    assert!(
        dir.join("debian12.qcow2").is_file(),
        "{} has no debian12.qcow2: build it with `ci/fixtures-vm` as root (ci/test does)",
        dir.display()
    );
    support::require("qemu-system-x86_64", "qemu-system-x86");
    support::require("qemu-img", "qemu-utils");
    dir
}

/// The kernel command line the disk's SYSLINUX boots with, for direct kernel boot.
fn cmdline(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cmdline"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A direct-kernel-boot address of the fixture, with extra kernel arguments. The `qemu64` CPU
/// boots it about a quarter faster than QEMU's `max` under TCG (the plain `vm:DISK` of the first
/// test keeps the default).
fn direct(dir: &Path, name: &str, append: &str) -> String {
    format!(
        "vm:name={name},cpu=qemu64,kernel={},initrd={},disk={},append={append}",
        dir.join("vmlinuz").display(),
        dir.join("initrd.img").display(),
        dir.join("debian12.qcow2").display(),
    )
}

/// A folder for one test, with its own TMPDIR: everything a VM run makes goes there.
struct Run {
    work: support::Work,
    /// The most QEMU processes the last `hostcert` call ran at once.
    most_at_once: std::cell::Cell<usize>,
}

impl Run {
    fn new() -> Run {
        let run = Run {
            work: support::Work::new(),
            most_at_once: std::cell::Cell::new(0),
        };
        std::fs::create_dir(run.tmp()).unwrap();
        run
    }

    fn tmp(&self) -> PathBuf {
        self.work.path("tmp")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.work.dir.path())
            .env("TMPDIR", self.tmp())
            .stdin(Stdio::null());
        command
    }

    /// Runs hostcert to its end, and returns with its output the loopback ports its QEMU
    /// processes forwarded (read from their command lines while they ran).
    fn hostcert(&self, args: &[&str]) -> (Output, Vec<u16>) {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hostcert runs");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let done = std::sync::Arc::clone(&done);
            let tmp = self.tmp();
            std::thread::spawn(move || {
                let mut ports = std::collections::BTreeSet::new();
                let mut most = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let running = qemu_command_lines(&tmp);
                    most = most.max(running.len());
                    for cmdline in running {
                        let mark = "hostfwd=tcp:127.0.0.1:";
                        if let Some(at) = cmdline.find(mark) {
                            let digits: String = cmdline[at + mark.len()..]
                                .chars()
                                .take_while(char::is_ascii_digit)
                                .collect();
                            ports.extend(digits.parse::<u16>());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                (ports.into_iter().collect::<Vec<u16>>(), most)
            })
        };
        let output = child.wait_with_output().expect("hostcert ends");
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let (ports, most) = watcher.join().unwrap();
        self.most_at_once.set(most);
        (output, ports)
    }

    /// Runs the os-build profile on the VM `target` (named `name`) with `--boot-timeout`, which
    /// must fail to boot: returns the target's error, how long the run took and its QEMU's
    /// ports, having checked that the run is an error (exit 2) and not certified.
    fn boot_error(
        &self,
        boot_timeout: &str,
        target_address: &str,
        name: &str,
    ) -> (String, Duration, Vec<u16>) {
        let started = Instant::now();
        let (output, ports) = self.hostcert(&[
            "run",
            "--profile",
            "os-build",
            "--boot-timeout",
            boot_timeout,
            "--target",
            target_address,
            "--report-dir",
            "reports",
            "-q",
        ]);
        let took = started.elapsed();
        let report = self.work.json("reports/report.json");
        let error = target(&report, name)["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {}", support::stdout(&output)))
            .to_owned();
        assert_eq!(support::code(&output), 2, "{error}");
        assert_ne!(report["verdict"], "certified");
        (error, took, ports)
    }

    /// The QEMU processes whose command line names this test's TMPDIR.
    fn qemu_processes(&self) -> Vec<String> {
        qemu_command_lines(&self.tmp())
    }

    /// Asserts the run left nothing: no process naming TMPDIR (QEMU, the folder's guardian),
    /// nothing in TMPDIR, the ports closed.
    fn assert_nothing_left(&self, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let processes = command_lines_naming(&self.tmp());
            let files: Vec<_> = std::fs::read_dir(self.tmp())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            if processes.is_empty() && files.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: processes {processes:?}, files {files:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // A port QEMU forwarded is free again, or taken since by another program on this
        // shared machine (a free port is reused): never by a QEMU.
        for port in ports {
            if std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                continue;
            }
            let owner = Command::new("ss")
                .args(["-H", "-ltnp", &format!("sport = :{port}")])
                .output()
                .map(|o| support::stdout(&o))
                .unwrap_or_default();
            assert!(
                !owner.contains("qemu"),
                "QEMU still listens on 127.0.0.1:{port}: {owner}"
            );
        }
    }
}

/// The command lines of the QEMU processes that name `tmp`.
fn qemu_command_lines(tmp: &Path) -> Vec<String> {
    command_lines_naming(tmp)
        .into_iter()
        .filter(|line| line.contains("qemu-system"))
        .collect()
}

/// The command lines of the processes that name `tmp`, whatever they are.
fn command_lines_naming(tmp: &Path) -> Vec<String> {
    let tmp = tmp.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&tmp) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// `MemAvailable` of /proc/meminfo, MiB.
fn available_mib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The results of one target, by check id.
fn results<'a>(report: &'a Value, target: &str) -> BTreeMap<String, &'a Value> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == target)
        .map(|r| (r["check"].as_str().unwrap().to_owned(), r))
        .collect()
}

fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

/// The `boot` fact's record of a target, from a check that read it.
fn boot_record(report: &Value, name: &str) -> BTreeMap<String, String> {
    let results = results(report, name);
    let evidence = results["os.boot.time"]["evidence"].as_array().unwrap();
    let boot = evidence
        .iter()
        .find(|e| e["fact"] == "boot")
        .unwrap_or_else(|| panic!("{name}: no boot evidence in {evidence:?}"));
    // The record as the evidence shows it: `key=value, key=value`.
    let observed = boot["observed"].as_str().unwrap();
    let mut record = BTreeMap::new();
    let mut key = String::new();
    for part in observed.split(", ") {
        match part.split_once('=') {
            Some((k, v)) if !k.contains(' ') => {
                key = k.to_owned();
                record.insert(key.clone(), v.to_owned());
            }
            _ => {
                if let Some(value) = record.get_mut(&key) {
                    value.push_str(", ");
                    value.push_str(part);
                }
            }
        }
    }
    record
}

#[test]
fn os_build_certifies_the_debian_build_and_refuses_its_cgroup_v1_command_line() {
    let dir = fixtures();
    let disk = dir.join("debian12.qcow2");
    let before = sha256(&disk);
    let run = Run::new();
    let good = format!("vm:{}", disk.display());
    let cgroup_v1 = direct(
        &dir,
        "cgroup-v1",
        &format!("{} systemd.unified_cgroup_hierarchy=0", cmdline(&dir)),
    );
    let roomy = available_mib() >= 6 << 10;
    let (output, ports) = run.hostcert(&[
        "run",
        "--profile",
        "os-build",
        "--jobs",
        "2",
        "--boot-timeout",
        "400",
        "--target",
        &good,
        "--target",
        &cgroup_v1,
        "--report-dir",
        "reports",
        "-q",
    ]);
    let stdout = support::stdout(&output);
    assert_eq!(
        support::code(&output),
        1,
        "{stdout}\n{}",
        support::stderr(&output)
    );
    let report = run.work.json("reports/report.json");
    for name in ["debian12", "cgroup-v1"] {
        let entry = target(&report, name);
        assert_eq!(entry["kind"], "vm");
        assert!(entry["error"].is_null(), "{name}: {}", entry["error"]);
        // The config read where the build keeps it: the batch's new places.
        let release = results(&report, name)["kernel.version.minimum"]["evidence"][0]["observed"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            entry["fact-sources"]["CONFIG_NET_NS"],
            format!("/usr/lib/modules/{release}/config"),
            "{name}"
        );
    }

    // The build itself: every gating check passes; the module the kernel ships but has not
    // loaded is found (guards the batch's modules.dep frame).
    let debian = results(&report, "debian12");
    let gating_failures: Vec<&String> = debian
        .iter()
        .filter(|(_, r)| r["gating"] == true && r["outcome"] != "pass" && r["outcome"] != "skip")
        .map(|(id, _)| id)
        .collect();
    assert!(gating_failures.is_empty(), "{gating_failures:?}\n{stdout}");
    for check in [
        "os.boot.sshd",
        "os.boot.dhcp-lease",
        "os.boot.console-clean",
        "os.boot.time",
        "os.cgroups.unified",
        "kernel.modules.overlay",
        "abi.host.sandbox-sequence",
        "abi.sshd.glibc-versions",
        "abi.sshd.interpreter",
        "abi.dhclient.kernel-abi",
        "abi.openssh.seccomp-fatal",
    ] {
        assert_eq!(
            debian[check]["outcome"], "pass",
            "{check}: {}",
            debian[check]
        );
    }
    // Without --image, the build's own binaries are the image: read from the guest (host-root)
    // and judged against its own kernel.
    let sshd = &debian["abi.sshd.kernel-abi"]["evidence"];
    assert!(
        sshd.as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "host-root:/usr/sbin/sshd"),
        "{sshd}"
    );
    let record = boot_record(&report, "debian12");
    assert!(
        ["tcg", "kvm"].contains(&record["accelerator"].as_str()),
        "{record:?}"
    );
    let boot_secs = debian["os.boot.time"]["message"].as_str().unwrap();
    assert!(boot_secs.contains("boot-secs = "), "{boot_secs}");
    assert_eq!(
        debian["os.boot.sshd"]["message"].as_str().unwrap(),
        "observed boot login = ok"
    );
    let log = run.work.read("reports/debian12.console.log");
    assert!(
        log.contains("Linux version"),
        "the console log lacks the kernel's banner"
    );
    assert!(
        log.len() < 2 << 20,
        "the console log is {} bytes",
        log.len()
    );

    // The cgroup v1 command line: the layout checks fail, the rest holds.
    let v1 = results(&report, "cgroup-v1");
    assert_eq!(v1["os.cgroups.unified"]["outcome"], "fail");
    assert_eq!(v1["host.cgroups.v2-unified"]["outcome"], "fail");
    let differ: Vec<&String> = v1
        .iter()
        .filter(|(id, r)| {
            debian
                .get(*id)
                .is_some_and(|d| d["outcome"] != r["outcome"])
        })
        .map(|(id, _)| id)
        .collect();
    assert!(
        differ
            .iter()
            .all(|id| id.contains("cgroup") || id.starts_with("os.systemd")),
        "{}",
        differ
            .iter()
            .map(|id| format!(
                "{id}: debian12 {} ({}), cgroup-v1 {} ({})",
                debian[*id]["outcome"],
                debian[*id]["message"],
                v1[*id]["outcome"],
                v1[*id]["message"]
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stdout.contains("cgroup-v1::os-build::os.cgroups.unified"),
        "{stdout}"
    );

    assert_eq!(ports.len(), 2, "{ports:?}");
    // Within --jobs 2 the two VMs booted side by side (when half the available memory, the
    // VMs' budget, holds both).
    if roomy {
        assert_eq!(run.most_at_once.get(), 2, "the two VMs did not run at once");
    }
    run.assert_nothing_left(&ports);
    assert_eq!(sha256(&disk), before, "the disk was written");
}

/// In one run of two VMs (they boot side by side within `--jobs 2`):
/// - a build whose sshd is masked never opens SSH: an error with the console's last lines,
///   given when the console showed the login prompt, well before `--boot-timeout`;
/// - the build booted with `seed=none` and a key of the user's: without cloud-init's host keys
///   on the console hostcert has no host key to pin, and never logs in trusting one blindly.
#[test]
fn a_build_whose_sshd_never_starts_is_an_error_showing_its_console() {
    let dir = fixtures();
    let run = Run::new();
    let masked = direct(
        &dir,
        "no-sshd",
        &format!("{} systemd.mask=ssh.service", cmdline(&dir)),
    );
    let no_seed = direct(&dir, "no-seed", &cmdline(&dir)).replacen(
        "vm:name=no-seed,",
        "vm:name=no-seed,seed=none,",
        1,
    );
    let key = run.work.path("user_key");
    support::keygen(&key);
    let started = Instant::now();
    let (output, ports) = run.hostcert(&[
        "run",
        "--profile",
        "os-build",
        "--jobs",
        "2",
        "--boot-timeout",
        "400",
        "--identity",
        key.to_str().unwrap(),
        "--target",
        &masked,
        "--target",
        &no_seed,
        "--report-dir",
        "reports",
        "-q",
    ]);
    let report = run.work.json("reports/report.json");
    let error = |name: &str| {
        target(&report, name)["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error: {}", support::stdout(&output)))
            .to_owned()
    };
    let masked = error("no-sshd");
    assert_eq!(support::code(&output), 2, "{masked}");
    assert!(masked.contains("its SSH server did not open"), "{masked}");
    assert!(masked.contains("the console's last lines"), "{masked}");
    assert!(masked.contains("login:"), "{masked}");
    assert!(report["verdict"] != "certified");
    // Refused when the console showed the login prompt, well before --boot-timeout.
    assert!(started.elapsed() < Duration::from_secs(400));
    assert!(run.work.path("reports/no-sshd.console.log").is_file());

    let no_seed = error("no-seed");
    assert!(
        no_seed.contains("the console printed no host key"),
        "{no_seed}"
    );
    assert!(no_seed.contains("never trusts a key blindly"), "{no_seed}");
    assert_eq!(ports.len(), 2, "{ports:?}");
    run.assert_nothing_left(&ports);
}

#[test]
fn a_kernel_that_panics_is_an_error_showing_the_panic() {
    let dir = fixtures();
    let run = Run::new();
    // No initrd: the kernel cannot reach a root device and panics.
    let address = format!(
        "vm:name=panics,kernel={},disk={},append=root=/dev/vdz9 console=ttyS0 panic=-1",
        dir.join("vmlinuz").display(),
        dir.join("debian12.qcow2").display()
    );
    let (output, ports) = run.hostcert(&[
        "run",
        "--profile",
        "os-build",
        "--target",
        &address,
        "--boot-timeout",
        "300",
        "--report-dir",
        "reports",
        "-q",
    ]);
    assert_eq!(support::code(&output), 2);
    let report = run.work.json("reports/report.json");
    let error = target(&report, "panics")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("the kernel panicked: "), "{error}");
    assert!(error.contains("Kernel panic - not syncing"), "{error}");
    assert!(error.contains("VFS"), "{error}");
    run.assert_nothing_left(&ports);
}

/// A build that never gives SSH never certifies, and says why within `--boot-timeout`:
/// - a disk with nothing to boot (zeros): SeaBIOS's "No bootable device" is on the console and
///   the error names it, long before the timeout (the BIOS does not retry forever);
/// - the Debian build given too little time: the timeout's error with the console's last
///   lines, right after the timeout (no wait for a guest that never booted to power off).
#[test]
fn a_build_that_never_opens_ssh_is_an_error_within_the_boot_timeout() {
    let dir = fixtures();
    let run = Run::new();
    let zeros = run.work.path("zeros.raw");
    std::fs::write(&zeros, vec![0u8; 4 << 20]).unwrap();
    let (error, took, ports) = run.boot_error("120", &format!("vm:{}", zeros.display()), "zeros");
    assert!(
        error.contains("the firmware found nothing to boot"),
        "{error}"
    );
    assert!(error.contains("the console's last lines"), "{error}");
    assert!(error.contains("No bootable device"), "{error}");
    assert!(
        took < Duration::from_secs(120),
        "the error came after {took:?}, not before --boot-timeout"
    );
    run.assert_nothing_left(&ports);

    let (error, took, ports) =
        run.boot_error("4", &direct(&dir, "too-slow", &cmdline(&dir)), "too-slow");
    assert!(
        error.contains("SSH did not open within 4 s (--boot-timeout)"),
        "{error}"
    );
    assert!(error.contains("the console's last lines"), "{error}");
    assert!(!error.contains("(the console printed nothing)"), "{error}");
    // The guest never booted: it is stopped at once, not given the 30 s a booted guest has to
    // power off.
    assert!(
        took < Duration::from_secs(4 + 20),
        "the error came {took:?} after the start, with --boot-timeout 4"
    );
    assert!(run.work.path("reports/too-slow.console.log").is_file());
    run.assert_nothing_left(&ports);
}

/// The Ignition config a guest received, read inside it, is a valid Ignition v3.3 config (the
/// spec's JSON schema, and no key the schema does not declare); the login it gave worked, and
/// OpenSSH agrees that the host key it carries is the one the guest offered. Given `--image`,
/// the run is the pair `IMAGE@VM`: the guest answers host probes, the image `image` probes.
#[test]
fn an_ignition_config_reaches_the_guest_through_fw_cfg() {
    support::require("python3", "python3");
    let check = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .unwrap();
    assert!(
        check.success(),
        "python3-jsonschema is needed; install it: apt-get install python3-jsonschema (ci/test does)"
    );
    let dir = fixtures();
    let run = Run::new();
    let raw = "/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw";
    run.work.write(
        "suites/ignition/v1.yaml",
        &format!(
            r#"name: ignition-seen
version: 1.0.0
checks:
  - id: ignition.fw-cfg.config
    version: 1.0.0
    title: the guest sees an Ignition config through fw_cfg
    severity: high
    probes:
      config: {{file-content: {raw}}}
    expect: {{fact: config, contains: '"ignition"'}}
  - id: pair.image.os-release
    version: 1.0.0
    title: with --image, image probes read the image, not the guest
    severity: high
    probes:
      release: {{image: {{file-content: /etc/os-release}}}}
    expect: {{fact: release, contains: 'ID=pairtest'}}
"#
        ),
    );
    run.work
        .write("tree/etc/os-release", "ID=pairtest\nNAME=\"pair test\"\n");
    let tree = format!("rootfs:{}", run.work.path("tree").display());
    run.work.write(
        "profiles/ignition.yaml",
        "name: ignition-seen\nversion: 1.0.0\nsuites:\n  ignition-seen: ^1\n",
    );
    let address = format!(
        "vm:name=ignition,cpu=qemu64,disk={},seed=ignition",
        dir.join("debian12.qcow2").display()
    );
    let (output, ports) = run.hostcert(&[
        "gather",
        "--suites",
        "suites",
        "--profiles",
        "profiles",
        "--profile",
        "ignition-seen",
        "--image",
        &tree,
        "--target",
        &address,
        "--boot-timeout",
        "400",
        "-o",
        "facts.json",
    ]);
    assert!(
        output.status.success(),
        "{}{}",
        support::stdout(&output),
        support::stderr(&output)
    );
    let snapshot = run.work.json("facts.json");
    let fact = snapshot["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["probe"]["file-content"] == raw)
        .unwrap_or_else(|| panic!("no fw_cfg fact in {snapshot}"));
    let text = fact["value"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("the guest did not see the config: {fact}"));
    // The pair `tree@ignition`: host probes answered by the guest, image probes by the image
    // (not by the guest's own files, as without --image).
    assert_eq!(
        snapshot["target"]["name"], "tree@ignition",
        "{}",
        snapshot["target"]
    );
    assert_eq!(snapshot["target"]["kind"], "vm");
    let release = snapshot["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["probe"]["image"]["file-content"] == "/etc/os-release")
        .unwrap_or_else(|| panic!("no image fact in {snapshot}"));
    assert_eq!(
        release["value"]["text"], "ID=pairtest\nNAME=\"pair test\"",
        "{release}"
    );
    assert!(
        release["source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{tree}:")),
        "{release}"
    );
    run.work.write("config.ign", text);
    let schema = support::fixture("ignition/v3_3-schema.json");
    let validate = Command::new("python3")
        .arg("-c")
        .arg(
            r##"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
config = json.load(open(sys.argv[2]))
jsonschema.validate(config, schema)
def resolve(node):
    while "$ref" in node:
        target = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node
def declared_of(node):
    node = resolve(node)
    declared = dict(node.get("properties", {}))
    for part in node.get("allOf", []):
        declared.update(declared_of(part))
    return declared
def walk(value, node, where):
    node = resolve(node)
    if isinstance(value, dict):
        declared = declared_of(node)
        for key, inner in value.items():
            if key not in declared:
                sys.exit(f"{where}.{key}: not in the Ignition v3.3 schema")
            walk(inner, declared[key], f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            walk(inner, node.get("items", {}), f"{where}[{i}]")
walk(config, schema, "config")
assert config["ignition"]["version"] == "3.3.0", config["ignition"]
print("valid")
"##,
        )
        .arg(&schema)
        .arg(run.work.path("config.ign"))
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "{}{}",
        support::stdout(&validate),
        support::stderr(&validate)
    );
    // The host key it carries: OpenSSH derives the public key the config also carries.
    let config: Value = serde_json::from_str(text).unwrap();
    let decode = |path: &str| -> Vec<u8> {
        let file = config["storage"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap();
        let source = file["contents"]["source"].as_str().unwrap();
        let data = source.strip_prefix("data:;base64,").unwrap();
        let out = Command::new("base64")
            .arg("-d")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                std::io::Write::write_all(child.stdin.as_mut().unwrap(), data.as_bytes())?;
                drop(child.stdin.take());
                child.wait_with_output()
            })
            .unwrap();
        out.stdout
    };
    let private = run.work.path("host_key");
    std::fs::write(&private, decode("/etc/ssh/ssh_host_ed25519_key")).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let derived = Command::new("ssh-keygen")
        .args(["-y", "-f"])
        .arg(&private)
        .output()
        .unwrap();
    let public = String::from_utf8(decode("/etc/ssh/ssh_host_ed25519_key.pub")).unwrap();
    assert_eq!(
        support::stdout(&derived).trim(),
        public.trim(),
        "{}",
        support::stderr(&derived)
    );
    run.assert_nothing_left(&ports);
}

/// Ctrl-C (SIGINT to hostcert) while the guest boots: hostcert stops the VM, writes its report
/// and exits 130; SIGKILL: QEMU dies with hostcert (`setpriv --pdeathsig`) and the folder's
/// guardian removes the folder. Either way QEMU, the run's folder and the forwarded port go.
#[test]
fn ctrl_c_or_a_kill_during_a_boot_leaves_nothing_behind() {
    interrupt_during_boot("INT");
    interrupt_during_boot("KILL");
}

fn interrupt_during_boot(signal: &str) {
    let dir = fixtures();
    let run = Run::new();
    let address = format!("vm:{}", dir.join("debian12.qcow2").display());
    let mut child = run
        .command(&[
            "run",
            "--profile",
            "os-build",
            "--target",
            &address,
            "--report-dir",
            "reports",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.qemu_processes().is_empty() {
        assert!(Instant::now() < deadline, "QEMU never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cmdline = run.qemu_processes().remove(0);
    let mark = "hostfwd=tcp:127.0.0.1:";
    let at = cmdline.find(mark).expect("a forwarded port") + mark.len();
    let port: u16 = cmdline[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    // Let it boot a little: the kernel and the seed are in use.
    std::thread::sleep(Duration::from_secs(3));
    let pid = i32::try_from(child.id()).unwrap();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "hostcert did not end on SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    if signal == "INT" {
        // It stopped the VM, wrote the report of what it had, and exited as SIGINT asks.
        assert_eq!(status.code(), Some(130));
        let report = run.work.json("reports/report.json");
        let error = report["targets"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains("interrupted by SIGINT"), "{error}");
    }
    run.assert_nothing_left(&[port]);
}
