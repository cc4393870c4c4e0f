//! SIGINT and SIGTERM sent to a real `hostcert run` while a target is in flight (an SSH host on
//! loopback that accepts the connection and never answers): gathering stops, the report of
//! what was read is written with the other targets as `error: interrupted`, nothing is left
//! in TMPDIR, and the exit code is 130 or 143; a second signal stops at once. And `hostcert
//! clean` (and the next run) removing the folders of runs that were killed, never those of a
//! run still going.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{fixture, SilentHost, Work, BIN};

/// Far more than any of these runs needs once signalled.
const HANG: Duration = Duration::from_secs(60);

/// A running hostcert whose output is collected as it comes.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bytes);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
    });
    bytes
}

impl Running {
    fn start(work: &Work, tmpdir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(work.dir.path())
            .env("TMPDIR", tmpdir)
            .env("HOME", work.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hostcert runs");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("the run is there to signal");
    }

    /// Waits until `done` holds, failing the test after [`HANG`].
    fn wait_until(&mut self, what: &str, done: impl Fn(&Running) -> bool) {
        let started = Instant::now();
        while !done(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "hostcert ended ({status}) before {what}:\n{}{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(started.elapsed() < HANG, "no {what}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit code, failing the test if it hangs.
    fn code(&mut self) -> i32 {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                return status
                    .code()
                    .expect("hostcert exits with a code, it is not killed by the signal");
            }
            if started.elapsed() > HANG {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("hostcert did not stop:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
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

/// A run of a snapshot and two silent SSH hosts, one at a time, signalled while the first host
/// is in flight.
fn interrupted_run(signal: rustix::process::Signal, expected_code: i32, name: &str) {
    let work = Work::new();
    std::fs::create_dir(work.path("tmp")).unwrap();
    let (first, second) = (SilentHost::start(), SilentHost::start());
    let healthy = fixture("snapshots/healthy-host.json");
    let mut run = Running::start(
        &work,
        &work.path("tmp"),
        &[
            "run",
            "--profile",
            fixture("profiles/container-host-1.0.yaml")
                .to_str()
                .unwrap(),
            "--facts",
            healthy.to_str().unwrap(),
            "--target",
            &first.address(),
            "--target",
            &second.address(),
            "--jobs",
            "1",
            "--auth-timeout",
            "600",
            "--connect-timeout",
            "600",
            "--report-dir",
            "out",
        ],
    );
    run.wait_until("a connection to the first host", |_| {
        first.connections() > 0
    });
    run.signal(signal);
    assert_eq!(run.code(), expected_code, "{}", run.stderr());
    assert_eq!(
        second.connections(),
        0,
        "a target was started after the signal"
    );
    let report: Value = serde_json::from_str(&work.read("out/report.json")).unwrap();
    assert_eq!(report["verdict"], "incomplete");
    // What was read before the signal is in the report, judged.
    assert_eq!(target(&report, "healthy-host")["error"], Value::Null);
    assert!(report["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["target"] == "healthy-host" && r["outcome"] == "pass"));
    // The host in flight and the one never started are errors, `interrupted`.
    let in_flight = format!("127.0.0.1:{}", first.port);
    let never = format!("127.0.0.1:{}", second.port);
    for (host, when) in [(&in_flight, "while"), (&never, "before")] {
        let entry = report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["address"].as_str().unwrap().contains(host.as_str()))
            .unwrap();
        assert_eq!(
            entry["error"],
            format!("interrupted by {name} {when} this target was read"),
            "{entry}"
        );
        let results: Vec<&Value> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["target"] == entry["name"])
            .collect();
        assert!(!results.is_empty());
        assert!(results.iter().all(|r| r["outcome"] == "error"
            && r["message"].as_str().unwrap().contains("interrupted by")));
    }
    assert!(
        run.stdout().contains(&format!(
            "interrupted by {name}: 2 of 3 targets were not read"
        )),
        "{}",
        run.stdout()
    );
    assert_eq!(entries(&work.path("tmp")), Vec::<String>::new());
    assert_eq!(
        {
            let mut names = entries(&work.path("out"));
            names.sort();
            names
        },
        ["junit.xml", "report.html", "report.json", "report.md"]
    );
}

#[test]
fn sigint_stops_gathering_and_writes_the_report_of_what_was_read_with_exit_130() {
    interrupted_run(rustix::process::Signal::INT, 130, "SIGINT");
}

#[test]
fn sigterm_stops_gathering_and_writes_the_report_of_what_was_read_with_exit_143() {
    interrupted_run(rustix::process::Signal::TERM, 143, "SIGTERM");
}

/// A second Ctrl-C does not wait for the targets in flight nor write a report.
#[test]
fn a_second_sigint_stops_at_once() {
    let work = Work::new();
    std::fs::create_dir(work.path("tmp")).unwrap();
    let host = SilentHost::start();
    let mut run = Running::start(
        &work,
        &work.path("tmp"),
        &[
            "run",
            "--target",
            &host.address(),
            "--auth-timeout",
            "600",
            "--report-dir",
            "out",
        ],
    );
    run.wait_until("a connection to the host", |_| host.connections() > 0);
    run.signal(rustix::process::Signal::INT);
    run.wait_until("the first signal seen", |run| {
        run.stderr().contains("SIGINT: stopping")
    });
    run.signal(rustix::process::Signal::INT);
    assert_eq!(run.code(), 130, "{}", run.stderr());
    assert!(
        run.stderr().contains("SIGINT again: stopped at once"),
        "{}",
        run.stderr()
    );
    assert!(
        !work.path("out").exists(),
        "{:?}",
        entries(&work.path("out"))
    );
    assert_eq!(entries(&work.path("tmp")), Vec::<String>::new());
}

/// `gather` stops too, and writes no snapshot of a target it did not finish reading.
#[test]
fn an_interrupted_gather_writes_no_snapshot() {
    let work = Work::new();
    std::fs::create_dir(work.path("tmp")).unwrap();
    let host = SilentHost::start();
    let mut run = Running::start(
        &work,
        &work.path("tmp"),
        &[
            "gather",
            "--target",
            &host.address(),
            "--auth-timeout",
            "600",
            "--output",
            "snapshot.json",
        ],
    );
    run.wait_until("a connection to the host", |_| host.connections() > 0);
    run.signal(rustix::process::Signal::TERM);
    assert_eq!(run.code(), 143, "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("interrupted by SIGTERM; no snapshot written"),
        "{}",
        run.stderr()
    );
    assert!(!work.path("snapshot.json").exists());
    assert_eq!(entries(&work.path("tmp")), Vec::<String>::new());
}

/// A pid that just ended.
fn gone_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The folders a killed run left under TMPDIR are removed by `hostcert clean` and by the next
/// run; a folder of a process still alive is never touched, whatever is in it.
#[test]
fn clean_and_the_next_run_remove_the_folders_of_killed_runs_only() {
    let work = Work::new();
    let tmp = work.path("tmp");
    let killed = tmp.join(format!("hostcert-{}-image-AbCdEf", gone_pid()));
    // Pid 1 lives as long as the machine.
    let living = tmp.join("hostcert-1-live-AbCdEf");
    let not_ours = tmp.join("hostcert-live.AbCdEf");
    for dir in [&killed, &living, &not_ours] {
        std::fs::create_dir_all(dir.join("rootfs/etc")).unwrap();
        std::fs::write(dir.join("rootfs/etc/os-release"), "ID=x\n").unwrap();
    }
    let clean = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("TMPDIR", &tmp)
            .output()
            .unwrap()
    };
    let output = clean(&["clean", "--dry-run"]);
    assert_eq!(support::code(&output), 0);
    assert!(support::stdout(&output).contains(&format!(
        "would remove folder {} (hostcert ",
        killed.display()
    )));
    assert!(killed.exists());

    let output = clean(&["clean"]);
    assert_eq!(support::code(&output), 0, "{}", support::stderr(&output));
    assert!(support::stdout(&output).contains(&format!("removed folder {}", killed.display())));
    assert!(!killed.exists() && living.exists() && not_ours.exists());
    let output = clean(&["clean"]);
    assert!(support::stdout(&output).starts_with("clean: nothing left by earlier runs"));

    // The next run removes them too, and says so.
    let again = tmp.join(format!("hostcert-{}-live-XyZ", gone_pid()));
    std::fs::create_dir_all(&again).unwrap();
    let output = Command::new(BIN)
        .args(["run", "--report-dir"])
        .arg(work.path("out"))
        .arg("--facts")
        .arg(fixture("snapshots/healthy-host.json"))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(support::stderr(&output).contains(&format!("note: removed folder {}", again.display())));
    assert!(!again.exists() && living.exists());
}

/// Regression: a signal while an image's layer is being unpacked ends the unpacking within one
/// read (it used to write on until the process exited, racing the removal of its folder, which
/// could then be left behind half-removed), and nothing is left in TMPDIR.
#[test]
fn sigint_while_a_layer_is_unpacked_stops_it_and_leaves_nothing_behind() {
    let work = Work::new();
    std::fs::create_dir(work.path("tmp")).unwrap();
    // An image of one uncompressed layer of 12,000 files of 16 KiB (190 MiB): long enough to
    // unpack that the signal lands while it goes on.
    let made = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
blobs = os.path.join(root, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)
layer = io.BytesIO()
noise = os.urandom(16384 + 12000)
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for index in range(12000):
        info = tarfile.TarInfo(f"data/file-{index:05}")
        info.size = 16384
        tar.addfile(info, io.BytesIO(noise[index:index + 16384]))
ld, ls = put(layer.getvalue())
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "1000"},
                     "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
cd, cs = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}).encode()
md, ms = put(manifest)
with open(os.path.join(root, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "big"}}]}, f)
with open(os.path.join(root, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
"#,
        )
        .arg(work.path("big"))
        .status()
        .expect("python3 runs (apt-get install python3)");
    assert!(made.success());
    let target = format!("oci:{}:big", work.path("big").display());
    let mut run = Running::start(
        &work,
        &work.path("tmp"),
        &[
            "run",
            "--profile",
            "isv-image",
            "--target",
            &target,
            "--report-dir",
            "out",
        ],
    );
    // Files of the layer appear in the run's folder under TMPDIR: the unpacking is under way.
    let unpacked = |tmp: &Path| -> usize {
        let mut count = 0;
        let mut stack = vec![tmp.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == "data") && path.is_dir() {
                    count += std::fs::read_dir(&path).map(|d| d.count()).unwrap_or(0);
                } else if path.is_dir() && !path.is_symlink() {
                    stack.push(path);
                }
            }
        }
        count
    };
    let tmp = work.path("tmp");
    run.wait_until("files of the layer unpacked", |_| unpacked(&tmp) > 200);
    run.signal(rustix::process::Signal::INT);
    assert_eq!(run.code(), 130, "{}", run.stderr());
    assert!(
        !run.stderr().contains("could not remove"),
        "{}",
        run.stderr()
    );
    assert_eq!(entries(&tmp), Vec::<String>::new());
    // Nothing goes on writing there after the run ended.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(entries(&tmp), Vec::<String>::new());
    one_target_interrupted_while_read(&work);
}

/// Regression: a signal while the probe program runs on an SSH host ends the wait and removes
/// the program from the host's /tmp before hostcert exits (it was left there: the host was
/// abandoned with its copy). The host here runs every command but hangs in the probe program,
/// through a `ForceCommand` that records the program's path.
#[test]
fn sigint_while_the_probe_program_runs_on_a_host_removes_it() {
    let client = support::Client::new();
    let script = client.path("force.sh");
    let seen = client.path("probe-path");
    let sleeper = client.path("sleeper.pid");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n  *sftp-server*) exec /usr/lib/openssh/sftp-server ;;\n  /tmp/hostcert-probe-*) echo \"$SSH_ORIGINAL_COMMAND\" > {seen}; echo $$ > {sleeper}; exec sleep 60 ;;\n  *) exec sh -c \"$SSH_ORIGINAL_COMMAND\" ;;\nesac\n",
            seen = seen.display(),
            sleeper = sleeper.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let force = format!("ForceCommand={}", script.display());
    let host = support::SshHost::start(
        &client,
        "hang",
        &[&force, "Subsystem=sftp /usr/lib/openssh/sftp-server"],
    );
    let known = client.known_hosts("known_hosts", &[&host]);
    let work = Work::new();
    std::fs::create_dir(work.path("tmp")).unwrap();
    work.write(
        "suites/program.yaml",
        "name: program\nversion: 1.0.0\nchecks:\n  - id: program.ran\n    version: 1.0.0\n    title: the probe program ran\n    severity: high\n    probes:\n      p: probe-program\n    expect: {fact: p, exists: true}\n",
    );
    work.write(
        "program-profile.yaml",
        "name: program-profile\nversion: 1.0.0\nsuites: {program: ^1}\ngate: [high]\n",
    );
    let address = host.address();
    let mut run = Running::start(
        &work,
        &work.path("tmp"),
        &[
            "run",
            "--suites",
            "suites",
            "--profile",
            "program-profile.yaml",
            "--target",
            &address,
            "--identity",
            client.key.to_str().unwrap(),
            "--known-hosts",
            known.to_str().unwrap(),
            "--report-dir",
            "out",
        ],
    );
    run.wait_until("the probe program started on the host", |_| {
        std::fs::read_to_string(&sleeper).is_ok_and(|pid| !pid.trim().is_empty())
    });
    let program = std::fs::read_to_string(&seen).unwrap().trim().to_owned();
    assert!(Path::new(&program).exists(), "{program} was copied");
    run.signal(rustix::process::Signal::INT);
    let code = run.code();
    // Stop the hanging "program" this test's host started.
    if let Ok(pid) = std::fs::read_to_string(&sleeper)
        .unwrap()
        .trim()
        .parse::<i32>()
    {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    assert_eq!(code, 130, "{}", run.stderr());
    assert!(
        !Path::new(&program).exists(),
        "{program} was left on the host:\n{}",
        run.stderr()
    );
    one_target_interrupted_while_read(&work);
}

/// The report in `out/` of a run of one target stopped by SIGINT while that target was read.
fn one_target_interrupted_while_read(work: &Work) {
    let report: Value = serde_json::from_str(&work.read("out/report.json")).unwrap();
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(
        report["targets"][0]["error"],
        "interrupted by SIGINT while this target was read"
    );
}
