//! SSH targets against real OpenSSH sshd processes on 127.0.0.1: the same verdicts as the local
//! target, one connection and one session per host, strict host keys, and every way a host can
//! fail, each an error for that host only.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::{Client, SshHost};

const BIN: &str = env!("CARGO_BIN_EXE_hostcert");

fn hostcert(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("-q")
        .current_dir(dir)
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", dir)
        .output()
        .expect("hostcert runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn report(dir: &Path, folder: &str) -> Value {
    let path = dir.join(folder).join("report.json");
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("valid JSON")
}

/// (check, outcome) of one target's results, sorted.
fn outcomes(report: &Value, target: &str) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target"] == target)
        .map(|r| {
            (
                r["check"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

fn target_error(report: &Value, target: &str) -> String {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == target)
        .unwrap_or_else(|| panic!("no target {target} in {report}"))["error"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// The exit code of `hostcert run` on this machine: the SSH hosts are this machine too, so they
/// must give the same.
fn local_code(dir: &Path) -> i32 {
    hostcert(dir, &["run", "--report-dir", "local-code"])
        .status
        .code()
        .expect("exited")
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn an_sshd_host_gives_the_local_verdicts_in_one_connection_and_one_session() {
    let client = Client::new();
    let host = client.host("h1");
    let known = client.known_hosts("known_hosts", &[&host]);
    let dir = client.dir.path();
    let local = hostcert(dir, &["run", "--report-dir", "local"]);
    // The fixture's readiness probe was one TCP connection already.
    let connections_before = count(&host.log(), "Connection from 127.0.0.1");
    let address = host.address();
    let remote = hostcert(
        dir,
        &[
            "run",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--report-dir",
            "ssh",
        ],
    );
    assert_eq!(
        remote.status.code(),
        local.status.code(),
        "{}",
        text(&remote)
    );
    let name = address.trim_start_matches("ssh://");
    let ssh = report(dir, "ssh");
    assert_eq!(
        outcomes(&ssh, name),
        outcomes(&report(dir, "local"), "local")
    );
    assert_eq!(ssh["targets"][0]["kind"], "ssh");
    assert_eq!(
        ssh["targets"][0]["fact-sources"]["kernel-release"],
        "/proc/sys/kernel/osrelease"
    );
    let log = host.log();
    assert_eq!(
        count(&log, "Connection from 127.0.0.1") - connections_before,
        1,
        "{log}"
    );
    assert_eq!(count(&log, "Accepted publickey for root"), 1, "{log}");
    assert_eq!(
        count(&log, "Starting session: command"),
        1,
        "one exec channel: {log}"
    );
}

#[test]
fn twenty_hosts_in_one_run_each_in_one_session() {
    let client = Client::new();
    let hosts: Vec<SshHost> = (0..20).map(|i| client.host(&format!("h{i}"))).collect();
    let known = client.known_hosts("known_hosts", &hosts.iter().collect::<Vec<_>>());
    let dir = client.dir.path();
    let mut args = vec![
        "run".to_owned(),
        "--identity".to_owned(),
        client.key.display().to_string(),
        "--known-hosts".to_owned(),
        known.display().to_string(),
    ];
    for host in &hosts {
        args.push("--target".to_owned());
        args.push(host.address());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = hostcert(dir, &args);
    hostcert(dir, &["run", "--report-dir", "local"]);
    let local = outcomes(&report(dir, "local"), "local");
    let fleet = report(dir, "hostcert-report");
    assert_eq!(
        fleet["targets"].as_array().unwrap().len(),
        20,
        "{}",
        text(&output)
    );
    // Not a terminal: one plain progress line per host on stderr.
    let progress = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        progress.lines().filter(|l| l.starts_with("read ")).count(),
        20,
        "{progress}"
    );
    assert!(progress.contains("read 20/20: "), "{progress}");
    for host in &hosts {
        let name = host.address().trim_start_matches("ssh://").to_owned();
        assert_eq!(outcomes(&fleet, &name), local, "{name}");
        assert_eq!(count(&host.log(), "Starting session: command"), 1);
    }
}

/// Every way a host can fail is an error for that host, with the reason, and the run goes on.
#[test]
fn each_failure_mode_is_an_error_for_that_host_only() {
    let client = Client::new();
    let dir = client.dir.path();
    let good = client.host("good");
    let unknown = client.host("unknown-key");
    let changed = client.host("changed-key");
    let impostor_key = client.path("impostor");
    support::keygen(&impostor_key);
    // A host that accepts only another client's key.
    let other = Client::new();
    let bad_key = SshHost::start(&other, "bad-key", &[]);
    std::fs::copy(
        bad_key.dir.join("host_ed25519.pub"),
        client.path("bad-key.pub"),
    )
    .unwrap();
    let closed_port = support::free_port();
    // A port that accepts TCP and never speaks.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let mut known = client.known_hosts("known_hosts", &[&good, &changed, &bad_key]);
    let changed_line = format!(
        "[127.0.0.1]:{} {}\n",
        changed.port,
        std::fs::read_to_string(impostor_key.with_extension("pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let text_known = std::fs::read_to_string(&known)
        .unwrap()
        .replace(&changed.known_hosts_line(), &changed_line);
    known = client.path("known_hosts");
    std::fs::write(&known, text_known).unwrap();

    let targets = [
        good.address(),
        format!("ssh://root@127.0.0.1:{closed_port}"),
        format!("ssh://root@127.0.0.1:{silent_port}"),
        unknown.address(),
        changed.address(),
        bad_key.address(),
        format!("ssh://no-such-user@127.0.0.1:{}", good.port),
    ];
    let mut args = vec![
        "run".to_owned(),
        "--identity".to_owned(),
        client.key.display().to_string(),
        "--known-hosts".to_owned(),
        known.display().to_string(),
        "--connect-timeout".to_owned(),
        "2".to_owned(),
        "--auth-timeout".to_owned(),
        "2".to_owned(),
    ];
    for target in &targets {
        args.push("--target".to_owned());
        args.push(target.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let output = hostcert(dir, &args);
    assert!(
        started.elapsed().as_secs() < 20,
        "timeouts bound every host"
    );
    // Unreadable hosts make the run incomplete, unless the good host (this machine) fails.
    let expected = if local_code(dir) == 1 { 1 } else { 2 };
    assert_eq!(output.status.code(), Some(expected), "{}", text(&output));
    let run = report(dir, "hostcert-report");
    let name = |address: &str| address.trim_start_matches("ssh://").to_owned();
    assert_eq!(
        target_error(&run, &name(&targets[0])),
        "",
        "the good host is read"
    );
    assert!(outcomes(&run, &name(&targets[0]))
        .iter()
        .all(|(_, o)| o != "error"));
    let expectations = [
        (
            1,
            format!("cannot connect to 127.0.0.1:{closed_port}: Connection refused"),
        ),
        (
            2,
            "no SSH handshake within 2 s (--connect-timeout): the port accepts connections but does not complete SSH's banner and key exchange"
                .to_owned(),
        ),
        (
            3,
            format!(
                "the host key of [127.0.0.1]:{} is not in {}: it offered ssh-ed25519 SHA256:",
                unknown.port,
                known.display()
            ),
        ),
        (
            4,
            format!(
                "the host key of [127.0.0.1]:{} has CHANGED: it offered ssh-ed25519 SHA256:",
                changed.port
            ),
        ),
        (5, "authentication as root failed; tried key ".to_owned()),
        (
            6,
            "authentication as no-such-user failed; tried key ".to_owned(),
        ),
    ];
    for (index, expected) in expectations {
        let error = target_error(&run, &name(&targets[index]));
        assert!(
            error.starts_with(&expected),
            "{}: {error}\nexpected: {expected}",
            targets[index]
        );
        assert!(outcomes(&run, &name(&targets[index]))
            .iter()
            .all(|(_, o)| o == "error"));
    }
    assert!(target_error(&run, &name(&targets[3]))
        .ends_with("; add it (ssh-keyscan), or run with --accept-new-host-keys"));
}

#[test]
fn accept_new_host_keys_records_a_new_key_and_still_refuses_a_changed_one() {
    let client = Client::new();
    let dir = client.dir.path();
    let host = client.host("tofu");
    let known = client.path("known_hosts");
    let address = host.address();
    let key = client.key.display().to_string();
    let known_text = known.display().to_string();
    let base = [
        "run",
        "--target",
        &address,
        "--identity",
        &key,
        "--known-hosts",
        &known_text,
    ];
    let strict = hostcert(dir, &base);
    assert_eq!(
        strict.status.code(),
        Some(2),
        "unknown keys are refused by default"
    );
    let mut tofu = base.to_vec();
    tofu.push("--accept-new-host-keys");
    let first = hostcert(dir, &tofu);
    let local = local_code(dir);
    assert_eq!(first.status.code(), Some(local), "{}", text(&first));
    let recorded = std::fs::read_to_string(&known).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", host.port)),
        "{recorded}"
    );
    let again = hostcert(dir, &base);
    assert_eq!(
        again.status.code(),
        Some(local),
        "the recorded key is trusted: {}",
        text(&again)
    );
    // The host's key changes: refused even with --accept-new-host-keys.
    let port = host.port;
    drop(host);
    let other = Client::new();
    let mut moved = SshHost::start(
        &other,
        "tofu-moved",
        &[&format!("ListenAddress=127.0.0.1:{port}")],
    );
    std::fs::copy(
        client.key.with_extension("pub"),
        moved.dir.join("authorized_keys"),
    )
    .unwrap();
    let changed = hostcert(dir, &tofu);
    assert_eq!(changed.status.code(), Some(2), "{}", text(&changed));
    let run = report(dir, "hostcert-report");
    assert!(target_error(&run, &format!("root@127.0.0.1:{port}")).contains("has CHANGED"));
    moved.stop();
}

/// A host that dies in the middle of the batch keeps the facts it sent; the rest are errors.
#[test]
fn a_host_that_dies_mid_batch_keeps_what_it_sent() {
    let client = Client::new();
    let dir = client.dir.path();
    let host = client.host("dies");
    let known = client.known_hosts("known_hosts", &[&host]);
    let suites = dir.join("suites");
    std::fs::create_dir(&suites).unwrap();
    std::fs::write(
        suites.join("dies.yaml"),
        r#"name: dies
version: 1.0.0
checks:
  - id: dies.before
    version: 1.0.0
    title: A fact read before the host dies
    severity: high
    probes:
      v: {file-content: /proc/version}
    expect: {exists: true}
  - id: dies.killer
    version: 1.0.0
    title: This command kills the host's SSH session
    severity: high
    probes:
      k: {command: [sh, -c, 'kill -9 $(cut -d" " -f4 /proc/$PPID/stat)']}
    expect: {exists: true}
  - id: dies.after
    version: 1.0.0
    title: A fact the host never sends
    severity: high
    probes:
      t: {command: ["true"]}
    expect: {fact: t.exit-status, equals: 0}
"#,
    )
    .unwrap();
    std::fs::write(
        suites.join("profile.yaml"),
        "name: dies\nversion: 1.0.0\nsuites: {dies: ^1}\n",
    )
    .unwrap();
    let address = host.address();
    let output = hostcert(
        dir,
        &[
            "run",
            "--suites",
            "suites",
            "--profile",
            "dies",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let run = report(dir, "hostcert-report");
    let name = address.trim_start_matches("ssh://");
    assert_eq!(
        outcomes(&run, name),
        [
            ("dies.after".to_owned(), "error".to_owned()),
            ("dies.before".to_owned(), "pass".to_owned()),
            ("dies.killer".to_owned(), "error".to_owned())
        ]
    );
    let after = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "dies.after")
        .unwrap();
    assert!(
        after["message"]
            .as_str()
            .unwrap()
            .contains("the host's batch stopped before this fact"),
        "{after}"
    );
}

#[test]
fn sudo_runs_the_whole_batch_under_one_sudo() {
    support::require("sudo", "sudo");
    let client = Client::new();
    let dir = client.dir.path();
    let host = client.host("sudo");
    let known = client.known_hosts("known_hosts", &[&host]);
    let address = host.address();
    let output = hostcert(
        dir,
        &[
            "run",
            "--sudo",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(local_code(dir)),
        "{}",
        text(&output)
    );
    assert_eq!(count(&host.log(), "Starting session: command"), 1);
    let run = report(dir, "hostcert-report");
    assert_eq!(target_error(&run, address.trim_start_matches("ssh://")), "");
}

/// Both Ansible inventory formats and hostcert's own, with `--limit`.
#[test]
fn inventories_in_every_format_with_limit() {
    let client = Client::new();
    let dir = client.dir.path();
    let hosts: Vec<SshHost> = (0..3).map(|i| client.host(&format!("inv{i}"))).collect();
    let known = client.known_hosts("known_hosts", &hosts.iter().collect::<Vec<_>>());
    let key = client.key.display();
    let ini = format!(
        "[web]\nweb-a ansible_host=127.0.0.1 ansible_port={}\nweb-b ansible_host=127.0.0.1 ansible_port={}\n\n[db]\ndb-a ansible_host=127.0.0.1 ansible_port={}\n\n[all:vars]\nansible_user=root\nansible_ssh_private_key_file={key}\n",
        hosts[0].port, hosts[1].port, hosts[2].port
    );
    let yaml = format!(
        "all:\n  vars: {{ansible_user: root, ansible_ssh_private_key_file: {key}}}\n  children:\n    web:\n      hosts:\n        web-a: {{ansible_host: 127.0.0.1, ansible_port: {}}}\n        web-b: {{ansible_host: 127.0.0.1, ansible_port: {}}}\n    db:\n      hosts:\n        db-a: {{ansible_host: 127.0.0.1, ansible_port: {}}}\n",
        hosts[0].port, hosts[1].port, hosts[2].port
    );
    let own = format!(
        "defaults: {{user: root, identity: {key}}}\nhosts:\n  - {{name: web-a, address: 127.0.0.1, port: {}, tags: [web]}}\n  - {{name: web-b, address: 127.0.0.1, port: {}, tags: [web]}}\n  - {{name: db-a, address: 127.0.0.1, port: {}, tags: [db]}}\n",
        hosts[0].port, hosts[1].port, hosts[2].port
    );
    let local = local_code(dir);
    for (file, content) in [
        ("hosts.ini", ini),
        ("inventory.yml", yaml),
        ("fleet.yaml", own),
    ] {
        std::fs::write(dir.join(file), content).unwrap();
        let folder = format!("report-{file}");
        let output = hostcert(
            dir,
            &[
                "run",
                "--inventory",
                file,
                "--limit",
                "web,!web-b",
                "--known-hosts",
                known.to_str().unwrap(),
                "--report-dir",
                &folder,
            ],
        );
        assert_eq!(
            output.status.code(),
            Some(local),
            "{file}: {}",
            text(&output)
        );
        let run = report(dir, &folder);
        let names: Vec<&str> = run["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["web-a"], "{file}");
        assert_eq!(target_error(&run, "web-a"), "", "{file}");
        assert_eq!(
            run["targets"][0]["address"],
            format!("ssh://root@127.0.0.1:{}", hosts[0].port),
            "{file}"
        );
    }
}

/// A fleet split across jobs and joined again gives the report the whole run gives.
#[test]
fn sharded_runs_merged_equal_the_unsharded_run() {
    let client = Client::new();
    let dir = client.dir.path();
    let hosts: Vec<SshHost> = (0..6).map(|i| client.host(&format!("s{i}"))).collect();
    let known = client.known_hosts("known_hosts", &hosts.iter().collect::<Vec<_>>());
    let mut inventory = String::from("hosts:\n");
    for (i, host) in hosts.iter().enumerate() {
        inventory += &format!(
            "  - {{name: host-{i}, address: 127.0.0.1, port: {}, user: root}}\n",
            host.port
        );
    }
    std::fs::write(dir.join("fleet.yaml"), inventory).unwrap();
    let key = client.key.display().to_string();
    let common = [
        "--inventory",
        "fleet.yaml",
        "--identity",
        key.as_str(),
        "--known-hosts",
        known.to_str().unwrap(),
    ];
    let mut whole = vec!["run", "--report-dir", "whole"];
    whole.extend(common);
    hostcert(dir, &whole);
    let mut shard_reports = Vec::new();
    for k in 1..=3 {
        let folder = format!("shard-{k}");
        let share = format!("{k}/3");
        let mut args = vec![
            "run",
            "--shard",
            share.as_str(),
            "--report-dir",
            folder.as_str(),
        ];
        args.extend(common);
        hostcert(dir, &args);
        shard_reports.push(format!("{folder}/report.json"));
    }
    let mut merge = vec!["report", "merge"];
    merge.extend(shard_reports.iter().map(String::as_str));
    merge.extend(["--json", "merged.json", "--junit", "merged.xml"]);
    let merged = Command::new(BIN)
        .args(&merge)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    assert!(String::from_utf8_lossy(&merged.stdout).starts_with("merged 3 reports: 6 targets, "));
    let whole = report(dir, "whole");
    let joined: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("merged.json")).unwrap()).unwrap();
    let all = |r: &Value| {
        let mut rows: Vec<(String, String, String)> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["target"].as_str().unwrap().to_owned(),
                    x["check"].as_str().unwrap().to_owned(),
                    x["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(all(&joined), all(&whole));
    assert_eq!(joined["verdict"], whole["verdict"]);
    assert_eq!(joined["summary"], whole["summary"]);
    // Two overlapping reports are refused.
    let twice = Command::new(BIN)
        .args([
            "report",
            "merge",
            "whole/report.json",
            "whole/report.json",
            "--json",
            "x.json",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        text(&twice).contains("is in more than one report: shards must not overlap"),
        "{}",
        text(&twice)
    );
}

/// ssh_config aliases (HostName, User, Port, IdentityFile) and ProxyJump through one bastion.
#[test]
fn ssh_config_aliases_and_proxyjump_through_a_bastion() {
    let client = Client::new();
    let dir = client.dir.path();
    let bastion = SshHost::start(&client, "bastion", &["LogLevel=DEBUG1"]);
    let inner = client.host("inner");
    let known = client.known_hosts("known_hosts", &[&bastion, &inner]);
    let config = format!(
        "Host inner\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  ProxyJump bastion\n\nHost bastion\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  ForwardAgent no\n",
        inner.port,
        client.key.display(),
        bastion.port,
        client.key.display()
    );
    std::fs::write(dir.join("ssh_config"), config).unwrap();
    let output = hostcert(
        dir,
        &[
            "run",
            "--target",
            "ssh://inner",
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            known.to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(local_code(dir)),
        "{}",
        text(&output)
    );
    let run = report(dir, "hostcert-report");
    assert_eq!(target_error(&run, "inner"), "");
    assert_eq!(run["targets"][0]["name"], "inner");
    let forwarded = bastion.log();
    assert!(
        forwarded.contains(&format!("target 127.0.0.1 port {}", inner.port)),
        "the bastion forwarded the connection: {forwarded}"
    );
    assert_eq!(count(&inner.log(), "Starting session: command"), 1);
    // Without the bastion the alias cannot be reached: the error says which hop failed.
    let port = bastion.port;
    drop(bastion);
    let output = hostcert(
        dir,
        &[
            "run",
            "--target",
            "ssh://inner",
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            known.to_str().unwrap(),
            "--report-dir",
            "down",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let error = target_error(&report(dir, "down"), "inner");
    assert_eq!(error, format!("through the bastion bastion: cannot connect to 127.0.0.1:{port}: Connection refused (os error 111)"));
}

/// The CI examples shipped in ci/examples are valid YAML and shard and merge as documented.
#[test]
fn ci_examples_shard_and_merge() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/examples");
    for name in [
        "github-actions-fleet.yml",
        "gitlab-ci-fleet.yml",
        "kubernetes-indexed-job.yaml",
    ] {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_yaml::from_str::<serde_yaml::Value>(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains("--shard"), "{name} shards the fleet");
        assert!(
            text.contains("hostcert report merge"),
            "{name} says how to merge"
        );
    }
}

/// Without --identity, ssh-agent's keys are tried (and no key file of the user's is needed).
#[test]
fn ssh_agent_keys_log_in_without_an_identity_file() {
    support::require("ssh-agent", "openssh-client");
    let client = Client::new();
    let dir = client.dir.path();
    let host = client.host("agent");
    let known = client.known_hosts("known_hosts", &[&host]);
    let socket = dir.join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(&client.key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .expect("ssh-add runs");
    assert!(added.status.success(), "{}", text(&added));
    let address = host.address();
    let output = Command::new(BIN)
        .args([
            "run",
            "-q",
            "--target",
            &address,
            "--known-hosts",
            known.to_str().unwrap(),
        ])
        .current_dir(dir)
        .env("HOME", dir.join("no-home"))
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .expect("hostcert runs");
    let _ = agent.kill();
    let _ = agent.wait();
    let run = report(dir, "hostcert-report");
    assert_eq!(
        target_error(&run, address.trim_start_matches("ssh://")),
        "",
        "{}",
        text(&output)
    );
    assert_eq!(count(&host.log(), "Accepted publickey for root"), 1);
}

// known_hosts as OpenSSH reads it: `ssh` itself is the judge.

/// Generates a key pair of `kind` (`ed25519`, `ecdsa`, `rsa`) at `path` and returns its public
/// key as known_hosts spells it (`type base64`).
fn keygen_kind(path: &Path, kind: &str) -> String {
    support::require("ssh-keygen", "openssh-client");
    let mut command = Command::new("ssh-keygen");
    command.args(["-q", "-t", kind, "-N", "", "-C", "hostcert-test", "-f"]);
    command.arg(path);
    if kind == "rsa" {
        command.args(["-b", "2048"]);
    }
    assert!(command.status().expect("ssh-keygen runs").success());
    public_key(&path.with_extension("pub"))
}

fn public_key(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ssh -o StrictHostKeyChecking=yes` with only this known_hosts file: whether it connects,
/// and whether a refusal was the host key's.
fn ssh_accepts(client: &Client, known: &Path, host: &str, port: u16) -> (bool, String) {
    support::require("ssh", "openssh-client");
    let output = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null"])
        .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10", "-i"])
        .arg(&client.key)
        .args(["-p", &port.to_string(), &format!("root@{host}"), "true"])
        .env("HOME", client.dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ssh runs");
    (output.status.success(), text(&output))
}

/// A one-check profile, so that a run is mostly the connection.
fn tiny_profile(dir: &Path) -> (String, String) {
    let suites = dir.join("tiny-suites");
    std::fs::create_dir_all(&suites).unwrap();
    std::fs::write(
        suites.join("tiny.yaml"),
        "name: tiny\nversion: 1.0.0\nchecks:\n  - id: tiny.release\n    version: 1.0.0\n    title: The kernel release is read\n    severity: high\n    probes:\n      r: kernel-release\n    expect: {exists: true}\n",
    )
    .unwrap();
    std::fs::write(
        suites.join("profile.yaml"),
        "name: tiny\nversion: 1.0.0\nsuites: {tiny: ^1}\n",
    )
    .unwrap();
    (suites.display().to_string(), "tiny".to_owned())
}

/// hostcert's decision for each host: `Ok(())` when it connected, else its error.
fn hostcert_decisions(
    client: &Client,
    known: &Path,
    hosts: &[&str],
    port: u16,
    extra: &[&str],
    folder: &str,
) -> Vec<Result<(), String>> {
    let dir = client.dir.path();
    let (suites, profile) = tiny_profile(dir);
    let key = client.key.display().to_string();
    let known_text = known.display().to_string();
    let mut args = vec![
        "run",
        "--suites",
        &suites,
        "--profile",
        &profile,
        "--identity",
        &key,
        "--known-hosts",
        &known_text,
        "--report-dir",
        folder,
    ];
    args.extend(extra);
    let targets: Vec<String> = hosts
        .iter()
        .map(|h| format!("ssh://root@{h}:{port}"))
        .collect();
    for target in &targets {
        args.push("--target");
        args.push(target);
    }
    let output = hostcert(dir, &args);
    let run = report(dir, folder);
    hosts
        .iter()
        .map(|host| {
            let error = target_error(&run, &format!("root@{host}:{port}"));
            if error.is_empty() {
                Ok(())
            } else {
                assert!(
                    error.contains("host key") || error.contains("known_hosts"),
                    "{host}: {error}\n{}",
                    text(&output)
                );
                Err(error)
            }
        })
        .collect()
}

/// Many known_hosts files (markers, hashed names, host lists, ports, wildcards, negations,
/// comments, several key types, lines OpenSSH skips) against one sshd with three host keys,
/// reached as three names: hostcert trusts the host exactly when `ssh` does.
#[test]
fn known_hosts_decisions_equal_openssh() {
    let client = Client::new();
    let dir = client.dir.path();
    let keys = dir.join("hostkeys");
    std::fs::create_dir_all(&keys).unwrap();
    let ecdsa = keygen_kind(&keys.join("host_ecdsa"), "ecdsa");
    let rsa = keygen_kind(&keys.join("host_rsa"), "rsa");
    let other_ed25519 = keygen_kind(&keys.join("other_ed25519"), "ed25519");
    let other_ecdsa = keygen_kind(&keys.join("other_ecdsa"), "ecdsa");
    let ca = keygen_kind(&keys.join("ca"), "ed25519");
    let host = SshHost::start(
        &client,
        "multi-key",
        &[
            "MaxStartups=200",
            &format!("HostKey={}", keys.join("host_ecdsa").display()),
            &format!("HostKey={}", keys.join("host_rsa").display()),
        ],
    );
    let ed25519 = public_key(&host.dir.join("host_ed25519.pub"));
    let port = host.port;
    let n = format!("[127.0.0.1]:{port}");
    let l = format!("[localhost]:{port}");
    let blob = |key: &str| key.split(' ').nth(1).unwrap().to_owned();
    let cases: Vec<(&str, String)> = vec![
        ("exact", format!("{n} {ed25519}\n")),
        ("bare name, other port", format!("127.0.0.1 {ed25519}\nlocalhost {ed25519}\n")),
        ("bare name blocked by another key under the port", format!("{n} {other_ed25519}\n127.0.0.1 {ed25519}\n")),
        ("bare name revoked", format!("@revoked 127.0.0.1 {ed25519}\n127.0.0.1 {ed25519}\n")),
        ("revoked after trusted", format!("{n} {ed25519}\n@revoked {n} {ed25519}\n")),
        ("revoked by wildcard", format!("@revoked * {ed25519}\n{n} {ed25519}\n{l} {ed25519}\n")),
        ("revoked for another host", format!("@revoked 10.0.0.1 {ed25519}\n{n} {ed25519}\n")),
        ("revoked ed25519, ecdsa known", format!("@revoked {n} {ed25519}\n{n} {ecdsa}\n")),
        ("revoked ecdsa, ed25519 known", format!("{n} {ecdsa}\n@revoked {n} {ecdsa}\n{n} {ed25519}\n")),
        ("host key only as a CA", format!("@cert-authority {n} {ed25519}\n")),
        ("a CA beside the host key", format!("@cert-authority * {ca}\n{n} {ed25519}\n")),
        ("unknown marker", format!("@trusted {n} {ed25519}\n")),
        ("two markers", format!("@revoked @revoked {n} {ed25519}\n{n} {ed25519}\n")),
        ("marker ended by a tab", format!("@revoked\t{n} {ed25519}\n{n} {ed25519}\n")),
        ("host list", format!("{n},{l} {ed25519}\n")),
        ("wildcards", format!("[127.0.0.*]:* {ed25519}\n")),
        ("question marks", format!("[127.0.0.?]:{port},[local?ost]:{port} {ed25519}\n")),
        ("negation", format!("*,![localhost]:* {ed25519}\n")),
        ("negation of another name", format!("!127.0.0.1,{n} {ed25519}\n")),
        ("upper-case pattern", format!("[LOCALHOST]:{port},[127.0.0.1]:{port} {ed25519}\n")),
        ("comments and blank lines", format!("# {n} {other_ed25519}\n\n   \n\t# x\n{n} {ed25519} # a comment\n  {l}\t{ed25519}\n")),
        ("no trailing newline", format!("{n} {ed25519}")),
        ("CRLF", format!("{n} {ed25519}\r\n{l} {ed25519}\r\n")),
        ("changed", format!("{n} {other_ed25519}\n{l} {ed25519}\n")),
        ("rsa only", format!("{n} {rsa}\n")),
        ("ecdsa only", format!("{n} {ecdsa}\n")),
        ("wrong ecdsa only", format!("{n} {other_ecdsa}\n")),
        ("wrong ecdsa and rsa", format!("{n} {other_ecdsa}\n{n} {rsa}\n")),
        ("rsa and wrong ed25519", format!("{n} {rsa}\n{n} {other_ed25519}\n")),
        ("all three", format!("{n} {rsa}\n{n} {ecdsa}\n{n} {ed25519}\n")),
        ("key type that does not match the key", format!("{n} ssh-rsa {}\n{l} {ed25519}\n", blob(&ed25519))),
        ("damaged key", format!("{n} ssh-ed25519 {}\n", &blob(&ed25519)[2..])),
        ("bad hash salt", format!("|1|c2FsdA==|c2FsdA== {ed25519}\n{l} {ed25519}\n")),
        ("NUL inside a line", format!("{n}\0 {ed25519}\n")),
        ("empty", String::new()),
    ];
    let hosts = ["127.0.0.1", "localhost", "LocalHost"];
    let mut checked = 0;
    let mut disagreements = Vec::new();
    let mut files = Vec::new();
    for (name, content) in &cases {
        let file = dir.join(format!("kh-{}", files.len()));
        std::fs::write(&file, content).unwrap();
        files.push((name.to_string(), file.clone()));
        // The same file with every name hashed by OpenSSH's own tool.
        if !content.is_empty() && !content.contains('\0') {
            let hashed = dir.join(format!("kh-{}-hashed", files.len()));
            std::fs::write(&hashed, content).unwrap();
            let out = Command::new("ssh-keygen")
                .arg("-H")
                .arg("-f")
                .arg(&hashed)
                .output()
                .unwrap();
            // ssh-keygen refuses to hash a file with lines it cannot read, and leaves patterns
            // and marked lines as they are.
            if out.status.success() && std::fs::read_to_string(&hashed).unwrap().contains("|1|") {
                files.push((format!("{name} (hashed)"), hashed));
            }
        }
    }
    // A few files at a time: each is one hostcert run and three ssh runs.
    for (index, chunk) in files.chunks(6).enumerate() {
        let results: Vec<Vec<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(offset, (name, file))| {
                    let client = &client;
                    let hosts = &hosts;
                    scope.spawn(move || {
                        let folder = format!("known-hosts-{index}-{offset}");
                        let ours = hostcert_decisions(client, file, hosts, port, &[], &folder);
                        let mut differ = Vec::new();
                        for (host, ours) in hosts.iter().zip(ours) {
                            let (theirs, log) = ssh_accepts(client, file, host, port);
                            if !theirs {
                                assert!(
                                    log.contains("Host key verification failed"),
                                    "{name} {host}: {log}"
                                );
                            }
                            if ours.is_ok() != theirs {
                                differ.push(format!(
                                    "{name} ({host}): ssh {}, hostcert {:?}\n{}",
                                    if theirs { "connects" } else { "refuses" },
                                    ours,
                                    std::fs::read_to_string(file).unwrap_or_default()
                                ));
                            }
                        }
                        differ
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        checked += chunk.len() * hosts.len();
        disagreements.extend(results.into_iter().flatten());
    }
    assert!(
        disagreements.is_empty(),
        "{} of {checked} decisions differ:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(checked > 150, "{checked}");
}

/// `--accept-new-host-keys` appends one line per new host, as
/// `ssh -o StrictHostKeyChecking=accept-new` does, and never rewrites the file: its bytes
/// before the appended lines (comments, host lists, hashed names, a last line without a
/// newline) stay as they were, and hosts of one run append one after another.
#[test]
fn accept_new_host_keys_appends_and_keeps_every_byte_before() {
    let client = Client::new();
    let dir = client.dir.path();
    let hosts: Vec<SshHost> = (0..3).map(|i| client.host(&format!("new{i}"))).collect();
    let known_host = client.host("known");
    // A hashed entry made by OpenSSH for the known host, then other lines of every kind.
    let hashed = dir.join("hashed");
    std::fs::write(&hashed, known_host.known_hosts_line()).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let hashed_line = std::fs::read_to_string(&hashed).unwrap();
    let original = format!(
        "# fleet keys, kept by hand\n\n{hashed_line}db-1,db-2,10.0.0.5 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOzGdpKDQp1G8fBvD2TMDOqvCRvV1LzGYc6F4CtS8Kn2 comment\n@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOzGdpKDQp1G8fBvD2TMDOqvCRvV1LzGYc6F4CtS8Kn2\n  # indented comment, last line without newline"
    );
    let known = dir.join("known_hosts");
    std::fs::write(&known, &original).unwrap();
    let mut args = vec![
        "run".to_owned(),
        "--accept-new-host-keys".to_owned(),
        "--identity".to_owned(),
        client.key.display().to_string(),
        "--known-hosts".to_owned(),
        known.display().to_string(),
        "--target".to_owned(),
        known_host.address(),
    ];
    for host in &hosts {
        args.push("--target".to_owned());
        args.push(host.address());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = hostcert(dir, &args);
    let run = report(dir, "hostcert-report");
    for host in hosts.iter().chain([&known_host]) {
        let name = host.address().trim_start_matches("ssh://").to_owned();
        assert_eq!(target_error(&run, &name), "", "{}", text(&output));
    }
    let written = std::fs::read_to_string(&known).unwrap();
    let (before, appended) = written.split_at(original.len());
    assert_eq!(
        before, original,
        "the bytes before the appended lines are untouched"
    );
    let mut lines: Vec<&str> = appended
        .strip_prefix('\n')
        .expect("a newline ends the last line first")
        .lines()
        .collect();
    lines.sort();
    let mut expected: Vec<String> = hosts
        .iter()
        .map(|h| h.known_hosts_line().trim_end().to_owned())
        .collect();
    expected.sort();
    assert_eq!(
        lines, expected,
        "one line per new host, in ssh's form:\n{written}"
    );
    assert!(written.ends_with('\n'));
    // OpenSSH finds each appended key, and trusts the hosts with the file as written.
    for host in &hosts {
        let found = Command::new("ssh-keygen")
            .arg("-F")
            .arg(format!("[127.0.0.1]:{}", host.port))
            .arg("-f")
            .arg(&known)
            .output()
            .unwrap();
        assert!(found.status.success(), "{}", text(&found));
        assert!(ssh_accepts(&client, &known, "127.0.0.1", host.port).0);
    }
    // A second run appends nothing.
    hostcert(dir, &args);
    assert_eq!(std::fs::read_to_string(&known).unwrap(), written);
}

/// A known_hosts that is a symbolic link, a FIFO or a folder is never written through: the
/// new host is an error that says why, and nothing changes (a FIFO is not even opened to
/// block on).
#[test]
fn accept_new_host_keys_never_writes_through_a_link_or_a_fifo() {
    let client = Client::new();
    let dir = client.dir.path();
    let host = client.host("tofu-link");
    let target = dir.join("real_known_hosts");
    std::fs::write(&target, "# mine\n").unwrap();
    let link = dir.join("link_known_hosts");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fifo = dir.join("fifo_known_hosts");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let folder = dir.join("folder_known_hosts");
    std::fs::create_dir(&folder).unwrap();
    let address = host.address();
    let name = address.trim_start_matches("ssh://").to_owned();
    for (path, expected) in [
        (&link, "is a symbolic link: hostcert appends host keys only to a regular file, never through a link"),
        (&fifo, "is not a regular file"),
        (&folder, "is not a regular file"),
    ] {
        let started = std::time::Instant::now();
        let output = hostcert(
            dir,
            &[
                "run",
                "--accept-new-host-keys",
                "--identity",
                client.key.to_str().unwrap(),
                "--known-hosts",
                path.to_str().unwrap(),
                "--target",
                &address,
                "--report-dir",
                "tofu",
            ],
        );
        assert!(started.elapsed().as_secs() < 30, "{}", text(&output));
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let error = target_error(&report(dir, "tofu"), &name);
        assert!(error.contains(expected), "{}: {error}", path.display());
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "# mine\n");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

// Bounds: every phase has a deadline, a host's output a cap, and its stderr is drained.

/// A TCP server on 127.0.0.1 that serves every connection with `serve` in its own thread.
fn fake_server(serve: fn(std::net::TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

/// Servers that never finish the banner or the key exchange (one endless banner line, endless
/// lines, silence after accept, a banner and a packet trickled a byte at a time) are each
/// given up after `--connect-timeout`, however long `--auth-timeout` is.
#[test]
fn connect_timeout_bounds_the_banner_and_the_key_exchange() {
    use std::io::Write as _;
    let client = Client::new();
    let dir = client.dir.path();
    let endless_line = fake_server(|mut s| {
        let _ = s.write_all(b"SSH-2.0-");
        while s.write_all(&[b'x'; 512]).is_ok() {}
    });
    let endless_lines = fake_server(|mut s| while s.write_all(b"not yet\r\n").is_ok() {});
    let silent = fake_server(|s| {
        std::thread::sleep(std::time::Duration::from_secs(120));
        drop(s);
    });
    let trickle = fake_server(|mut s| {
        let bytes = [&b"SSH-2.0-OpenSSH_9.2\r\n"[..], &[0, 0, 1, 0], &[0; 2000]].concat();
        for byte in bytes {
            if s.write_all(&[byte]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    });
    let known = dir.join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let ports = [endless_line, endless_lines, silent, trickle];
    let mut args = vec![
        "run".to_owned(),
        "--identity".to_owned(),
        client.key.display().to_string(),
        "--known-hosts".to_owned(),
        known.display().to_string(),
        "--connect-timeout".to_owned(),
        "2".to_owned(),
        "--auth-timeout".to_owned(),
        "300".to_owned(),
        "--gather-timeout".to_owned(),
        "300".to_owned(),
    ];
    for port in ports {
        args.push("--target".to_owned());
        args.push(format!("ssh://root@127.0.0.1:{port}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let output = hostcert(dir, &args);
    let elapsed = started.elapsed();
    assert!(
        elapsed.as_secs() < 15,
        "took {elapsed:?}: {}",
        text(&output)
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let run = report(dir, "hostcert-report");
    for (index, port) in ports.into_iter().enumerate() {
        let error = target_error(&run, &format!("root@127.0.0.1:{port}"));
        assert!(
            error.starts_with("no SSH handshake within 2 s (--connect-timeout)")
                || error.starts_with("SSH handshake failed: "),
            "server {index}: {error}"
        );
    }
    // Silence and a trickle can only end by the deadline.
    for port in [silent, trickle] {
        let error = target_error(&run, &format!("root@127.0.0.1:{port}"));
        assert!(
            error.starts_with("no SSH handshake within 2 s (--connect-timeout)"),
            "{error}"
        );
    }
}

/// A login the host never answers (its AuthorizedKeysCommand hangs) ends after
/// `--auth-timeout`, with that reason.
#[test]
fn auth_timeout_bounds_a_login_that_never_answers() {
    let client = Client::new();
    let dir = client.dir.path();
    let host = SshHost::start(
        &client,
        "auth-hangs",
        &[
            "AuthorizedKeysFile=none",
            "AuthorizedKeysCommand=/usr/bin/sleep 60",
            "AuthorizedKeysCommandUser=root",
        ],
    );
    let known = client.known_hosts("known_hosts", &[&host]);
    let address = host.address();
    let started = std::time::Instant::now();
    let output = hostcert(
        dir,
        &[
            "run",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--auth-timeout",
            "2",
            "--gather-timeout",
            "300",
        ],
    );
    assert!(started.elapsed().as_secs() < 15, "{}", text(&output));
    let error = target_error(
        &report(dir, "hostcert-report"),
        address.trim_start_matches("ssh://"),
    );
    assert_eq!(
        error,
        "authentication as root not finished within 2 s (--auth-timeout)",
        "{}",
        text(&output)
    );
}

/// A host that writes megabytes to stderr before its batch is drained as it writes: the run
/// neither stalls nor loses the facts.
#[test]
fn a_host_flooding_stderr_does_not_stall_the_batch() {
    let client = Client::new();
    let dir = client.dir.path();
    let host = SshHost::start(
        &client,
        "stderr-flood",
        &["ForceCommand=head -c 30000000 /dev/zero >&2; exec sh -s"],
    );
    let known = client.known_hosts("known_hosts", &[&host]);
    let address = host.address();
    let started = std::time::Instant::now();
    let output = hostcert(
        dir,
        &[
            "run",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--gather-timeout",
            "60",
        ],
    );
    let elapsed = started.elapsed();
    let run = report(dir, "hostcert-report");
    let name = address.trim_start_matches("ssh://");
    assert_eq!(target_error(&run, name), "", "{}", text(&output));
    hostcert(dir, &["run", "--report-dir", "local"]);
    assert_eq!(
        outcomes(&run, name),
        outcomes(&report(dir, "local"), "local")
    );
    assert!(elapsed.as_secs() < 45, "took {elapsed:?}");
}

/// A host that sends endless output is cut off at the cap: the facts it sent before are kept
/// and judged, the rest say why they are missing.
#[test]
fn endless_output_is_cut_at_the_cap_and_the_facts_before_are_kept() {
    let client = Client::new();
    let dir = client.dir.path();
    // The real batch's first 4000 bytes (its first frames), then base64 for ever.
    let host = SshHost::start(
        &client,
        "endless",
        &["ForceCommand=sh -s | head -c 4000; yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
    );
    let known = client.known_hosts("known_hosts", &[&host]);
    let suites = dir.join("suites");
    std::fs::create_dir(&suites).unwrap();
    std::fs::write(
        suites.join("endless.yaml"),
        r#"name: endless
version: 1.0.0
checks:
  - id: endless.first
    version: 1.0.0
    title: A fact in the batch's first frames
    severity: high
    probes:
      r: kernel-release
    expect: {exists: true}
  - id: endless.late
    version: 1.0.0
    title: A fact far into the batch
    severity: high
    probes:
      c: {command: [sh, -c, 'head -c 20000 /dev/zero | tr "\0" x']}
    expect: {fact: c.exit-status, equals: 0}
"#,
    )
    .unwrap();
    std::fs::write(
        suites.join("profile.yaml"),
        "name: endless\nversion: 1.0.0\nsuites: {endless: ^1}\n",
    )
    .unwrap();
    let address = host.address();
    let started = std::time::Instant::now();
    let output = hostcert(
        dir,
        &[
            "run",
            "--suites",
            "suites",
            "--profile",
            "endless",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--gather-timeout",
            "120",
        ],
    );
    assert!(started.elapsed().as_secs() < 100, "{}", text(&output));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let run = report(dir, "hostcert-report");
    let name = address.trim_start_matches("ssh://");
    assert_eq!(target_error(&run, name), "", "the first frames came back");
    assert_eq!(
        outcomes(&run, name),
        [
            ("endless.first".to_owned(), "pass".to_owned()),
            ("endless.late".to_owned(), "error".to_owned())
        ]
    );
    let late = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "endless.late")
        .unwrap();
    assert!(
        late["message"]
            .as_str()
            .unwrap()
            .contains("the host sent more than 64 MiB of output: hostcert stopped reading"),
        "{late}"
    );
}

/// ProxyJump loops (a host through itself, two hosts through each other) and chains deeper
/// than the bound are errors that name the hops, found before any connection.
#[test]
fn proxyjump_loops_and_deep_chains_are_errors_naming_the_hops() {
    let client = Client::new();
    let dir = client.dir.path();
    let mut config = String::from(
        "Host self\n  HostName 127.0.0.1\n  ProxyJump self\n\nHost a\n  HostName 127.0.0.1\n  ProxyJump b\n\nHost b\n  HostName 127.0.0.1\n  ProxyJump a\n\nHost list\n  ProxyJump c0,list\n\n",
    );
    for i in 0..20 {
        config += &format!(
            "Host c{i}\n  HostName 127.0.0.1\n  ProxyJump c{}\n\n",
            i + 1
        );
    }
    std::fs::write(dir.join("ssh_config"), config).unwrap();
    std::fs::write(dir.join("known_hosts"), "").unwrap();
    let started = std::time::Instant::now();
    let output = hostcert(
        dir,
        &[
            "run",
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            "known_hosts",
            "--target",
            "ssh://self",
            "--target",
            "ssh://a",
            "--target",
            "ssh://c0",
            "--target",
            "ssh://list",
        ],
    );
    assert!(started.elapsed().as_secs() < 10, "{}", text(&output));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let run = report(dir, "hostcert-report");
    assert_eq!(
        target_error(&run, "ssh://self"),
        "ProxyJump loop: self -> self (fix ProxyJump in ssh_config)"
    );
    assert_eq!(
        target_error(&run, "ssh://a"),
        "ProxyJump loop: a -> b -> a (fix ProxyJump in ssh_config)"
    );
    assert_eq!(
        target_error(&run, "ssh://c0"),
        "ProxyJump chain longer than 8 hops: c0 -> c1 -> c2 -> c3 -> c4 -> c5 -> c6 -> c7 -> c8 -> c9 -> ..."
    );
    assert_eq!(
        target_error(&run, "ssh://list"),
        "ProxyJump loop: list -> list (fix ProxyJump in ssh_config)"
    );
}

/// A chain of two bastions, from ssh_config (each bastion's own ProxyJump) and as one
/// `ProxyJump b1,b2` list, reaches the host.
#[test]
fn proxyjump_chains_through_two_bastions() {
    let client = Client::new();
    let dir = client.dir.path();
    let b1 = SshHost::start(&client, "b1", &["LogLevel=DEBUG1"]);
    let b2 = SshHost::start(&client, "b2", &["LogLevel=DEBUG1"]);
    let inner = client.host("inner2");
    let known = client.known_hosts("known_hosts", &[&b1, &b2, &inner]);
    let key = client.key.display();
    let entry = |name: &str, port: u16, jump: &str| {
        format!("Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {key}\n{jump}\n")
    };
    let config = [
        entry("inner", inner.port, "  ProxyJump b2"),
        entry("b2", b2.port, "  ProxyJump b1"),
        entry("b1", b1.port, ""),
        entry("inner-list", inner.port, "  ProxyJump b1,b2"),
    ]
    .concat();
    std::fs::write(dir.join("ssh_config"), config).unwrap();
    let output = hostcert(
        dir,
        &[
            "run",
            "--ssh-config",
            "ssh_config",
            "--known-hosts",
            known.to_str().unwrap(),
            "--target",
            "ssh://inner",
            "--target",
            "ssh://inner-list",
        ],
    );
    let run = report(dir, "hostcert-report");
    assert_eq!(target_error(&run, "inner"), "", "{}", text(&output));
    assert_eq!(target_error(&run, "inner-list"), "", "{}", text(&output));
    assert_eq!(count(&inner.log(), "Starting session: command"), 2);
    let forwarded = format!("target 127.0.0.1 port {}", b2.port);
    assert_eq!(count(&b1.log(), &forwarded), 2, "{}", b1.log());
    let forwarded = format!("target 127.0.0.1 port {}", inner.port);
    assert_eq!(count(&b2.log(), &forwarded), 2, "{}", b2.log());
}

/// A host known only through `@cert-authority` (its certificate signed by the CA): `ssh`
/// accepts the certificate; hostcert, which negotiates plain host keys and does not verify
/// certificates, refuses it and says so, never trusting the plain key as if it were listed.
#[test]
fn a_host_known_only_through_a_certificate_authority_is_refused_with_the_reason() {
    let client = Client::new();
    let dir = client.dir.path();
    let ca_key = dir.join("host_ca");
    let ca = keygen_kind(&ca_key, "ed25519");
    let host_dir = dir.join("certified");
    std::fs::create_dir_all(&host_dir).unwrap();
    support::keygen(&host_dir.join("host_ed25519"));
    let signed = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca_key)
        .args(["-I", "certified", "-h", "-n", "127.0.0.1"])
        .arg(host_dir.join("host_ed25519.pub"))
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", text(&signed));
    let host = SshHost::start(
        &client,
        "certified",
        &[&format!(
            "HostCertificate={}",
            host_dir.join("host_ed25519-cert.pub").display()
        )],
    );
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("@cert-authority [127.0.0.1]:* {ca}\n")).unwrap();
    let (theirs, log) = ssh_accepts(&client, &known, "127.0.0.1", host.port);
    assert!(theirs, "ssh trusts the certificate: {log}");
    let ours = hostcert_decisions(&client, &known, &["127.0.0.1"], host.port, &[], "ca");
    let error = ours[0].as_ref().expect_err("hostcert refuses");
    assert!(
        error.ends_with(&format!(
            "{}:1 names a certificate authority (@cert-authority) for it, but hostcert does not verify host certificates: list the host's own key (ssh-keyscan)",
            known.display()
        )),
        "{error}"
    );
    // Not even trust on first use records a host that known_hosts means to trust by certificate.
    let ours = hostcert_decisions(
        &client,
        &known,
        &["127.0.0.1"],
        host.port,
        &["--accept-new-host-keys"],
        "ca-tofu",
    );
    assert!(ours[0].is_err());
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        format!("@cert-authority [127.0.0.1]:* {ca}\n")
    );
}
