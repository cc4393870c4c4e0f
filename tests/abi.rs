//! The ssh-dhcp-abi suite end to end: pairs of an OS tree built from Debian's packages
//! (`ci/fixtures`) and this machine (or an SSH host on 127.0.0.1), the broken copies that must
//! each fail their check, a runtime seccomp profile, a host that refuses seccomp filters, and the
//! probe program copied over SFTP.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{code, fixture_trees, stderr, stdout, Client, SshHost, Work};

/// The probe program, a binary of the hostcert package, built beside hostcert.
fn probe_program() -> PathBuf {
    let path = PathBuf::from(support::PROBE_BIN);
    assert!(
        path.is_file(),
        "{} is missing; `cargo build` builds it beside hostcert",
        path.display()
    );
    path
}

fn run(work: &Work, args: &[&str]) -> (i32, Value, String) {
    probe_program();
    let mut all = vec!["run", "--profile", "isv-container", "--report-dir", "out"];
    all.extend_from_slice(args);
    let output = work.hostcert(&all);
    let text = format!("{}{}", stdout(&output), stderr(&output));
    let report = std::fs::read_to_string(work.path("out/report.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_else(|_| panic!("no report: {text}"));
    (code(&output), report, text)
}

/// check id -> (outcome, message) for the `abi.*` checks of one target.
fn outcomes(report: &Value, target: &str) -> BTreeMap<String, (String, String)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == target && r["check"].as_str().unwrap().starts_with("abi."))
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                (
                    r["outcome"].as_str().unwrap().to_owned(),
                    r["message"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

fn tree(name: &str) -> String {
    format!("rootfs:{}", fixture_trees().join(name).display())
}

#[test]
fn the_debian_tree_on_this_machine_passes_every_static_and_probe_check() {
    let work = Work::new();
    let before = host_state();
    let (_, report, text) = run(&work, &["--image", &tree("rootfs"), "--target", "local"]);
    assert_eq!(host_state(), before, "the real run left something behind");
    let results = outcomes(&report, "rootfs@local");
    assert!(results.len() >= 30, "{text}");
    for (check, (outcome, message)) in &results {
        if check == "abi.glibc.clone3-seccomp" {
            assert_eq!(outcome, "skip", "{message}");
            assert!(
                message.contains("no runtime seccomp profile given"),
                "{message}"
            );
        } else {
            assert_eq!(outcome, "pass", "{check}: {message}\n{text}");
        }
    }
    // Both sides are named: the trial, the target and where each fact came from.
    assert!(
        text.contains("test rootfs@local::ssh-dhcp-abi::abi.sshd.kernel-abi"),
        "{text}"
    );
    let target = &report["targets"][0];
    assert_eq!(target["name"], "rootfs@local");
    assert_eq!(target["kind"], "local");
    assert!(
        target["address"]
            .as_str()
            .unwrap()
            .ends_with("/rootfs on local"),
        "{target}"
    );
    let sources = &target["fact-sources"];
    assert!(sources["image elf /usr/sbin/sshd"]
        .as_str()
        .unwrap()
        .ends_with("/rootfs:/usr/sbin/sshd"));
    assert_eq!(sources["kernel-release"], "/proc/sys/kernel/osrelease");
    // The facts are the tree's real ones.
    let (_, message) = &results["abi.sshd.kernel-abi"];
    assert!(message.contains("abi-min-kernel = 3.2.0"), "{message}");
    assert!(
        message.contains("interpreter=/lib64/ld-linux-x86-64.so.2"),
        "{message}"
    );
    let (_, message) = &results["abi.openssh.seccomp-sandbox"];
    assert!(
        message.contains("openssh-version /usr/sbin/sshd = 9.2"),
        "{message}"
    );
    // The real run: the tree's dhclient got a lease from dnsmasq, its sshd let hostcert in.
    let (_, message) = &results["abi.live.dhcp-lease"];
    assert!(message.contains("live-run lease = 10.213."), "{message}");
    let (_, message) = &results["abi.live.sshd-sandbox"];
    assert!(message.contains("seccomp-sandbox = engaged"), "{message}");
    let run = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "abi.live.sshd-login")
        .unwrap();
    assert_eq!(
        run["evidence"][0]["source"],
        format!("real run of {} on local", tree("rootfs"))
    );
}

/// Whether a name is one a real run gives its folder: `hostcert-<pid>-live-<random>`.
fn is_live_folder(name: &str) -> bool {
    name.strip_prefix("hostcert-")
        .and_then(|rest| rest.split_once("-live-"))
        .is_some_and(|(pid, _)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// What a real run could leave behind: network namespaces (`hostcert-<pid>-<n>-srv`, and the
/// `hc…` names of earlier versions), veth interfaces (`hc<pid>s`), its folders in /tmp
/// (`hostcert-<pid>-live-*`), mounts and processes that name them.
fn host_state() -> Vec<String> {
    host_state_in(Path::new("/tmp"))
}

fn host_state_in(tmp: &Path) -> Vec<String> {
    let mut state = Vec::new();
    let netns = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    state.extend(
        stdout(&netns)
            .lines()
            .filter(|l| l.starts_with("hc") || l.starts_with("hostcert-"))
            .map(|l| format!("netns {l}")),
    );
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip runs");
    state.extend(
        stdout(&links)
            .lines()
            .filter(|l| l.contains(": vhc") || l.contains(": hc"))
            .map(|l| format!("link {l}")),
    );
    for entry in std::fs::read_dir(tmp).unwrap().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("hostcert-live.") || is_live_folder(&name) {
            state.push(format!("folder {}", tmp.join(name).display()));
        }
    }
    let is_live_path =
        |text: &str| text.contains("hostcert-live.") || text.split(['/', ' ']).any(is_live_folder);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    state.extend(
        mounts
            .lines()
            .filter(|l| is_live_path(l) || l.contains("hostcert-fixtures"))
            .map(|l| format!("mount {l}")),
    );
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if is_live_path(&cmdline) {
                state.push(format!("process {cmdline}"));
            }
        }
    }
    state.sort();
    state
}

#[test]
fn each_broken_tree_fails_exactly_its_check_with_evidence() {
    let cases = [
        (
            "broken-abi-note",
            vec!["abi.sshd.kernel-abi"],
            "abi-min-kernel = 99.0.0",
        ),
        (
            "broken-arch",
            vec!["abi.busybox.architecture"],
            "machine = aarch64",
        ),
        (
            "broken-interp",
            // The real run fails as the static check predicts: the loader is not there.
            vec![
                "abi.dhclient.interpreter",
                "abi.ip.interpreter",
                "abi.live.dhcp-lease",
                "abi.live.sshd-login",
                "abi.live.sshd-sandbox",
                "abi.ssh.interpreter",
                "abi.sshd.interpreter",
            ],
            "interpreter-present = no",
        ),
        (
            "broken-glibc",
            // The real sshd fails as the static check predicts.
            vec![
                "abi.live.sshd-login",
                "abi.live.sshd-sandbox",
                "abi.sshd.glibc-versions",
            ],
            "version `GLIBC_9.",
        ),
    ];
    for (fixture, failing, evidence) in cases {
        let work = Work::new();
        let before = host_state();
        let (exit, report, text) = run(
            &work,
            &["--image", &tree(fixture), "--target", "local", "abi."],
        );
        assert_eq!(
            host_state(),
            before,
            "{fixture}: the real run left something"
        );
        assert_eq!(exit, 1, "{fixture}: not certified\n{text}");
        let results = outcomes(&report, &format!("{fixture}@local"));
        let failed: Vec<&str> = results
            .iter()
            .filter(|(_, (outcome, _))| outcome == "fail")
            .map(|(check, _)| check.as_str())
            .collect();
        assert_eq!(failed, failing, "{fixture}\n{text}");
        let (_, message) = &results[failing[0]];
        assert!(message.contains(evidence), "{fixture}: {message}");
        if fixture == "broken-glibc" {
            let (_, message) = &results["abi.sshd.glibc-versions"];
            assert!(message.contains("glibc-needed = 9."), "{message}");
        }
        if fixture == "broken-interp" {
            let (_, message) = &results["abi.live.dhcp-lease"];
            assert!(
                message.contains(
                    "chroot: failed to run command ‘dhclient’: No such file or directory"
                ),
                "{message}"
            );
        }
    }
}

#[test]
fn without_an_image_the_pair_checks_are_skipped_not_passed() {
    let work = Work::new();
    // isv-container certifies pairs only: a host alone is refused before anything is read.
    let alone = work.hostcert(&["run", "--profile", "isv-container", "--target", "local"]);
    assert_eq!(code(&alone), 2, "{}", stderr(&alone));
    assert!(
        stderr(&alone).contains("certifies image@local, image@ssh, image@os-tree, os-tree@local, os-tree@ssh, os-tree@os-tree targets only (target-kinds), and `local` is a `local` target"),
        "{}",
        stderr(&alone)
    );
    assert!(!work.path("out").exists());
    // A profile that does not say which kinds it certifies runs there, and the checks that
    // read the image are skipped, never passed.
    probe_program();
    let profile = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/isv-container.yaml"),
    )
    .unwrap();
    let any_kind: String = profile
        .lines()
        .filter(|l| !l.starts_with("target-kinds:"))
        .map(|l| format!("{l}\n"))
        .collect();
    work.write("any-kind.yaml", &any_kind);
    let output = work.hostcert(&[
        "run",
        "--profile",
        "any-kind.yaml",
        "--report-dir",
        "out",
        "--target",
        "local",
        "abi.",
    ]);
    let text = format!("{}{}", stdout(&output), stderr(&output));
    let report = work.json("out/report.json");
    let results = outcomes(&report, "local");
    let (outcome, message) = &results["abi.sshd.architecture"];
    assert_eq!(outcome, "skip", "{text}");
    assert_eq!(
        message,
        "not applicable: image elf /usr/sbin/sshd: no --image given"
    );
    // The host's own probes still run.
    assert_eq!(results["abi.host.openpty"].0, "pass", "{text}");
    // A target that serves no files is refused as an image before anything is read.
    let config = Work::new();
    config.write("k.config", "CONFIG_NET_NS=y\n");
    let output = config.hostcert(&[
        "run",
        "--profile",
        "isv-container",
        "--image",
        "kernel-config:k.config",
    ]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--image needs a target that serves files"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_runtime_seccomp_profile_answering_clone3_with_eperm_breaks_glibc_2_34_images() {
    for (profile, outcome, observed) in [
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
            "fail",
            "seccomp-profile clone3 = errno EPERM (1)",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[{"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
            "pass",
            "seccomp-profile clone3 = errno ENOSYS (38)",
        ),
    ] {
        let work = Work::new();
        work.write("seccomp.json", profile);
        let param = format!("seccomp-profile={}", work.path("seccomp.json").display());
        let (_, report, text) = run(
            &work,
            &["--image", &tree("rootfs"), "--param", &param, "abi.glibc."],
        );
        let results = outcomes(&report, "rootfs@local");
        let (got, message) = &results["abi.glibc.clone3-seccomp"];
        assert_eq!(got, outcome, "{text}");
        assert!(message.contains(observed), "{message}");
        assert!(message.contains("glibc-provided = 2.36"), "{message}");
    }
}

#[test]
fn a_host_refusing_seccomp_filters_fails_the_sandbox_checks() {
    let work = Work::new();
    // As the reference recipe sshd-noseccomp-wrapper.sh does: the probe program runs under a
    // filter that makes prctl(PR_SET_SECCOMP) fail with EINVAL and seccomp(2) with ENOSYS.
    let wrapper = work.path("deny-seccomp-probe");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {probe} deny-seccomp -- {probe} \"$@\"\n",
            probe = probe_program().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let output = std::process::Command::new(support::BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--report-dir",
            "out",
            "--image",
            &tree("rootfs"),
            "abi.",
        ])
        .env("HOSTCERT_PROBE", &wrapper)
        .env("HOSTCERT_LIVE_RUN_DENY_SECCOMP", "1")
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let report = work.json("out/report.json");
    let results = outcomes(&report, "rootfs@local");
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, (outcome, _))| outcome == "fail")
        .map(|(check, _)| check.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "abi.host.sandbox-sequence",
            "abi.host.seccomp-action-errno",
            "abi.live.sshd-sandbox",
            "abi.openssh.seccomp-sandbox",
        ],
        "{}",
        stdout(&output)
    );
    let (_, message) = &results["abi.openssh.seccomp-sandbox"];
    assert!(
        message
            .contains("sandbox-sequence = unsupported: prctl(PR_SET_SECCOMP): errno EINVAL (22)"),
        "{message}"
    );
    // OpenSSH 9.2 only logs the failure: the fatal check holds, and the real login works.
    assert_eq!(results["abi.openssh.seccomp-fatal"].0, "pass");
    assert_eq!(results["abi.live.sshd-login"].0, "pass");
    let (_, message) = &results["abi.live.sshd-sandbox"];
    assert!(
        message.contains(
            "not engaged: debug1: ssh_sandbox_child: prctl(PR_SET_SECCOMP): Invalid argument"
        ),
        "{message}"
    );
}

#[test]
fn over_ssh_the_probe_program_is_copied_run_and_removed() {
    let client = Client::new();
    let host = SshHost::start(&client, "sftp", &["Subsystem=sftp internal-sftp"]);
    let known = client.known_hosts("known_hosts", &[&host]);
    let work = Work::new();
    let before = leftovers();
    let address = host.address();
    let (_, report, text) = run(
        &work,
        &[
            "--image",
            &tree("rootfs"),
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "abi.",
        ],
    );
    let name = format!("rootfs@{}", address.trim_start_matches("ssh://"));
    let results = outcomes(&report, &name);
    assert!(!results.is_empty(), "{text}");
    for (check, (outcome, message)) in &results {
        let expected = if check == "abi.glibc.clone3-seccomp" || check.starts_with("abi.live.") {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(outcome, expected, "{check}: {message}\n{text}");
    }
    assert_eq!(report["targets"][0]["kind"], "ssh");
    let source = report["targets"][0]["fact-sources"]["probe-program"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(source.starts_with("/tmp/hostcert-probe-"), "{source}");
    assert_eq!(leftovers(), before, "the probe program was removed");
    assert!(
        host.log().contains("Starting session: subsystem 'sftp'"),
        "{}",
        host.log()
    );
}

/// Probe programs left in /tmp.
fn leftovers() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/tmp")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hostcert-probe-"))
        .collect();
    names.sort();
    names
}

#[test]
fn without_root_the_real_run_is_skipped_with_the_reason() {
    support::require("setpriv", "util-linux");
    probe_program();
    let work = Work::new();
    std::fs::set_permissions(
        work.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(support::BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--report-dir",
            "out",
            "--image",
            &tree("rootfs"),
            "abi.live.",
        ])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    let report = work.json("out/report.json");
    let results = outcomes(&report, "rootfs@local");
    assert_eq!(results.len(), 4, "{}", stdout(&output));
    for (check, (outcome, message)) in &results {
        assert_eq!(outcome, "skip", "{check}: {message}");
        assert!(
            message.contains("a real run needs root on the host"),
            "{message}"
        );
    }
}

#[test]
fn a_pair_gathered_into_a_snapshot_is_judged_the_same_later() {
    probe_program();
    let work = Work::new();
    let output = work.hostcert(&[
        "gather",
        "--profile",
        "isv-container",
        "--image",
        &tree("broken-arch"),
        "--output",
        "pair.json",
    ]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let snapshot = work.json("pair.json");
    assert_eq!(snapshot["target"]["name"], "broken-arch@local");
    let facts = snapshot["facts"].as_array().unwrap();
    let program = facts
        .iter()
        .find(|f| f["probe"] == "probe-program")
        .expect("the probe program's facts are in the snapshot");
    assert_eq!(program["value"]["record"]["openpty"]["text"], "ok");
    assert!(facts
        .iter()
        .any(|f| f["probe"] == serde_json::json!({"image": {"elf": "/bin/busybox"}})));
    let (exit, report, text) = run(
        &work,
        &["--facts", "pair.json", "abi.", "--skip", "abi.live."],
    );
    assert_eq!(exit, 1, "{text}");
    let results = outcomes(&report, "broken-arch@local");
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, (outcome, _))| outcome == "fail")
        .map(|(check, _)| check.as_str())
        .collect();
    assert_eq!(failed, ["abi.busybox.architecture"], "{text}");
}

#[test]
fn without_dhclient_the_real_run_uses_busybox_udhcpc() {
    let work = Work::new();
    let before = host_state();
    let (exit, report, text) = run(
        &work,
        &[
            "--image",
            &tree("udhcpc-only"),
            "--target",
            "local",
            "abi.live.",
        ],
    );
    assert_eq!(host_state(), before, "the real run left something behind");
    assert_eq!(exit, 0, "{text}");
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "abi.live.dhcp-lease")
        .unwrap();
    let observed = result["evidence"][0]["observed"].as_str().unwrap();
    assert!(observed.contains("dhcp-client=udhcpc"), "{observed}");
    let message = result["message"].as_str().unwrap();
    assert!(
        message.contains("live-run dhcp-log = dnsmasq: DHCPDISCOVER"),
        "dnsmasq's log is evidence: {message}"
    );
    assert!(message.contains("DHCPACK"), "{message}");
}

#[test]
fn a_host_s_own_userspace_is_judged_against_its_own_kernel() {
    support::require("/usr/sbin/sshd", "openssh-server");
    let work = Work::new();
    let (exit, report, text) = run(
        &work,
        &["--image", "rootfs:/", "--target", "local", "abi.ss"],
    );
    assert_eq!(exit, 0, "{text}");
    let results = outcomes(&report, "host-root@local");
    assert_eq!(results.len(), 8, "{text}");
    assert!(
        results.values().all(|(outcome, _)| outcome == "pass"),
        "{text}"
    );
    assert_eq!(report["targets"][0]["address"], "rootfs:/ on local");
}

/// A `hostcert run` of the Debian tree's real run on this machine, started in a session of its
/// own (so that the test can kill it with everything it started), with TMPDIR in `tmp`.
fn start_real_run(work: &Work, tmp: &Path, report_dir: &str) -> std::process::Child {
    probe_program();
    support::require("setsid", "util-linux");
    std::process::Command::new("setsid")
        .arg(support::BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--report-dir",
            report_dir,
        ])
        .args(["--image", &tree("rootfs"), "--target", "local", "abi.live."])
        .current_dir(work.dir.path())
        .env("TMPDIR", tmp)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hostcert runs")
}

/// The network namespaces named for the hostcert process `pid`.
fn namespaces_of(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("hostcert-{pid}-")))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Waits until the real run of `child` has its namespaces and its DHCP exchange is under way.
fn wait_for_the_real_run(child: &mut std::process::Child) {
    let started = std::time::Instant::now();
    while namespaces_of(child.id()).len() < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "hostcert ended before its real run began"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no namespaces"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // In the middle of it: the image's DHCP client and sshd are starting.
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// Waits for a child to exit (a minute at most) and returns its code and output.
fn finish(mut child: std::process::Child) -> (i32, String, String) {
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("hostcert did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (code(&output), stdout(&output), stderr(&output))
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Guards "everything a real run creates is torn down" when the run is interrupted: SIGINT in
/// the middle of the real sshd/DHCP run tears it down before hostcert exits (130), and the
/// report says the pair was interrupted.
#[test]
fn sigint_during_the_real_run_tears_it_down_and_reports_the_pair_interrupted() {
    let work = Work::new();
    let tmp = work.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let before = host_state();
    let mut child = start_real_run(&work, &tmp, "out");
    wait_for_the_real_run(&mut child);
    signal(child.id(), rustix::process::Signal::INT);
    let (code, out, err) = finish(child);
    assert_eq!(code, 130, "{out}{err}");
    assert_eq!(host_state(), before, "the real run left something behind");
    assert_eq!(host_state_in(&tmp), Vec::<String>::new());
    assert!(
        std::fs::read_dir(&tmp).unwrap().next().is_none(),
        "TMPDIR is not empty"
    );
    let report: Value = serde_json::from_str(&work.read("out/report.json")).unwrap();
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(
        report["targets"][0]["error"],
        "interrupted by SIGINT while this target was read"
    );
}

/// A second SIGINT stops hostcert at once; the real run's script, sent SIGTERM, still tears
/// everything down on its own.
#[test]
fn a_second_sigint_during_the_real_run_exits_at_once_and_still_leaves_nothing() {
    let work = Work::new();
    let tmp = work.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let before = host_state();
    let mut child = start_real_run(&work, &tmp, "out");
    // hostcert's stderr as it comes: the second signal goes as soon as the first is seen.
    let stderr = {
        use std::io::Read;
        let mut pipe = child.stderr.take().unwrap();
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&text);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        text
    };
    wait_for_the_real_run(&mut child);
    signal(child.id(), rustix::process::Signal::INT);
    let started = std::time::Instant::now();
    while !stderr.lock().unwrap().contains("SIGINT: stopping") {
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    signal(child.id(), rustix::process::Signal::INT);
    let (code, out, _) = finish(child);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let err = stderr.lock().unwrap().clone();
    assert_eq!(code, 130, "{out}{err}");
    assert!(err.contains("SIGINT again: stopped at once"), "{err}");
    assert!(
        !work.path("out").exists(),
        "no report after a second signal"
    );
    // The script tears down after hostcert has gone; its folder goes last. Then the state must
    // hold still.
    let started = std::time::Instant::now();
    let settled = || host_state_in(&tmp).is_empty() && host_state() == before;
    while !(settled() && {
        std::thread::sleep(std::time::Duration::from_millis(300));
        settled()
    }) && started.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(host_state(), before, "the real run left something behind");
    assert_eq!(host_state_in(&tmp), Vec::<String>::new());
}

/// Kills every process of the session `sid` (a hostcert started with setsid, and all it
/// started), as a machine's shutdown or a cgroup kill would.
fn kill_session(sid: u32) {
    loop {
        let mut found = false;
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((_, after_name)) = stat.rsplit_once(") ") else {
                continue;
            };
            // state ppid pgrp session ...; a zombie is dead already (its parent reaps it).
            let fields: Vec<&str> = after_name.split(' ').collect();
            if fields.first() == Some(&"Z") {
                continue;
            }
            let session: Option<u32> = fields.get(3).and_then(|s| s.parse().ok());
            let pid: Option<i32> = entry.file_name().to_str().and_then(|p| p.parse().ok());
            if let (Some(session), Some(pid)) = (session, pid) {
                if session == sid {
                    found = true;
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Guards "every temporary object is named for its owner": a run SIGKILLed in the middle of
/// the real run leaves its namespaces, veth pair and folder; `hostcert clean` removes them, the
/// next run does too, and neither touches those of a run still going.
#[test]
fn clean_and_the_next_run_remove_what_a_killed_real_run_left_and_never_a_live_one() {
    let work = Work::new();
    let tmp = work.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let before = host_state();

    // Killed, then cleaned by `hostcert clean`.
    let mut killed = start_real_run(&work, &tmp, "killed");
    wait_for_the_real_run(&mut killed);
    let pid = killed.id();
    kill_session(pid);
    let _ = killed.wait();
    assert_eq!(
        namespaces_of(pid),
        vec![
            format!("hostcert-{pid}-0-img"),
            format!("hostcert-{pid}-0-srv")
        ],
        "SIGKILL left nothing to clean"
    );
    let folders: Vec<String> = host_state_in(&tmp)
        .into_iter()
        .filter(|s| s.starts_with("folder "))
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let output = std::process::Command::new(support::BIN)
        .arg("clean")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let text = stdout(&output);
    for name in [
        format!("hostcert-{pid}-0-srv"),
        format!("hostcert-{pid}-0-img"),
    ] {
        assert!(
            text.contains(&format!(
                "removed network namespace {name} (hostcert {pid} is gone)"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains(&format!(
            "removed folder {}/hostcert-{pid}-live-",
            tmp.display()
        )),
        "{text}"
    );
    assert_eq!(host_state(), before, "{text}");
    assert_eq!(host_state_in(&tmp), Vec::<String>::new());

    // Killed again; the next run removes what it left, and `hostcert clean` during that run
    // leaves the run's own objects alone.
    let mut killed = start_real_run(&work, &tmp, "killed");
    wait_for_the_real_run(&mut killed);
    let dead = killed.id();
    kill_session(dead);
    let _ = killed.wait();
    assert_eq!(namespaces_of(dead).len(), 2);
    let mut next = start_real_run(&work, &tmp, "next");
    wait_for_the_real_run(&mut next);
    let live = next.id();
    assert_eq!(
        namespaces_of(dead),
        Vec::<String>::new(),
        "the next run removed them"
    );
    let output = std::process::Command::new(support::BIN)
        .arg("clean")
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        !stdout(&output).contains(&format!("hostcert-{live}-")),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        namespaces_of(live).len(),
        2,
        "clean removed a live run's namespaces"
    );
    let (code, out, err) = finish(next);
    assert!(
        err.contains(&format!(
            "note: removed network namespace hostcert-{dead}-0-srv"
        )),
        "{err}"
    );
    let report: Value = serde_json::from_str(&work.read("next/report.json")).unwrap();
    let results = outcomes(&report, "rootfs@local");
    assert_eq!(results["abi.live.sshd-login"].0, "pass", "{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(host_state(), before);
    assert_eq!(host_state_in(&tmp), Vec::<String>::new());
}

/// An `oci:` image is unpacked once for the run, and its files serve the real run as an OS
/// tree's do: the Debian fixture tree made an OCI image with umoci (without its device nodes,
/// which an image may not carry) gets its lease and its sshd login on this machine, and the
/// unpacked files are gone afterwards, with everything else the real run made.
#[test]
fn an_oci_image_makes_the_real_run_from_its_files_unpacked_once() {
    support::require("umoci", "umoci");
    let work = Work::new();
    let staging = work.path("staging");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture_trees().join("rootfs"))
        .arg(&staging)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    for entry in std::fs::read_dir(staging.join("dev")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let umoci = |args: &[&str]| {
        let output = std::process::Command::new("umoci")
            .args(args)
            .current_dir(work.dir.path())
            .output()
            .expect("umoci runs");
        assert!(
            output.status.success(),
            "umoci {args:?}: {}",
            stderr(&output)
        );
    };
    umoci(&["init", "--layout", "debian"]);
    umoci(&["new", "--image", "debian:12"]);
    umoci(&[
        "insert",
        "--image",
        "debian:12",
        staging.to_str().unwrap(),
        "/",
    ]);
    std::fs::remove_dir_all(&staging).unwrap();
    probe_program();
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let before = host_state();
    let output = std::process::Command::new(support::BIN)
        .args(["run", "--profile", "isv-container", "--report-dir", "out"])
        .args(["--image", "oci:debian:12", "--target", "local"])
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .output()
        .expect("hostcert runs");
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(host_state(), before, "the real run left something behind");
    let report: Value = serde_json::from_str(&work.read("out/report.json")).unwrap();
    let results = outcomes(&report, "debian:12@local");
    for check in [
        "abi.live.dhcp-lease",
        "abi.live.sshd-login",
        "abi.live.sshd-sandbox",
    ] {
        let (outcome, message) = &results[check];
        assert_eq!(outcome, "pass", "{check}: {message}\n{text}");
    }
    let (_, message) = &results["abi.live.dhcp-lease"];
    assert!(message.contains("live-run lease = 10.213."), "{message}");
    let run = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "abi.live.sshd-login")
        .unwrap();
    assert_eq!(
        run["evidence"][0]["source"],
        "real run of oci:debian:12 on local"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "the unpacked image stayed: {left:?}");
}
