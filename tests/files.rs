//! The files hostcert reads and writes, end to end with the real binary: every file it reads
//! is refused at once when it is a FIFO, a directory, a device or larger than its cap, with one
//! error naming it; folders of suites are walked without following links out or looping; and
//! reports and snapshots are written through an exclusive temporary file, to stdout with `-`,
//! and straight into /dev/null or a FIFO.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{code, fixture, stderr, stdout, Work, BIN};

/// How long a command may take before it counts as hanging: far more than any of these needs.
const HANG: Duration = Duration::from_secs(60);

/// Runs `hostcert ARGS` in the work folder with stdin a pipe the test holds open and never
/// writes (so reading /dev/stdin would block), killing it if it hangs.
fn hostcert(work: &Work, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(work.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hostcert runs");
    let held_stdin = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = err.read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hostcert {} hung", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(held_stdin);
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(status.success());
}

fn openssl(work: &Work, args: &[&str]) {
    support::require("openssl", "openssl");
    let output = Command::new("openssl")
        .args(args)
        .current_dir(work.dir.path())
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A folder with a genuine report, its bundle and the key pair that signed it.
fn signed_run(work: &Work) {
    openssl(
        work,
        &["genpkey", "-algorithm", "ed25519", "-out", "key.pem"],
    );
    openssl(
        work,
        &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
    );
    let healthy = fixture("snapshots/healthy-host.json");
    let output = hostcert(
        work,
        &[
            "run",
            "--profile",
            fixture("profiles/container-host-1.0.yaml")
                .to_str()
                .unwrap(),
            "--facts",
            healthy.to_str().unwrap(),
            "--report-dir",
            "out",
            "--sign",
            "key.pem",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
}

/// Guards "nothing is read unbounded": each file a command reads, replaced by a FIFO nobody
/// writes to, a directory, /dev/zero or /dev/stdin (a pipe that never ends), is refused at once
/// with an error naming it, before anything is written.
#[test]
fn every_file_hostcert_reads_is_refused_unless_it_is_a_regular_file() {
    let work = Work::new();
    signed_run(&work);
    std::fs::create_dir(work.path("a-folder")).unwrap();
    mkfifo(&work.path("fifo"));
    mkfifo(&work.path("fifo.yaml"));
    let profile = fixture("profiles/container-host-1.0.yaml");
    let profile = profile.to_str().unwrap();
    let healthy = fixture("snapshots/healthy-host.json");
    let healthy = healthy.to_str().unwrap();
    // (command with H for the hostile file, what the error calls it)
    let commands: &[(&[&str], &str)] = &[
        (
            &[
                "run",
                "--profile",
                profile,
                "--facts",
                healthy,
                "--waivers",
                "H",
            ],
            "waivers file",
        ),
        (
            &[
                "run",
                "--profile",
                profile,
                "--facts",
                healthy,
                "--baseline",
                "H",
            ],
            "baseline",
        ),
        (
            &[
                "run",
                "--profile",
                profile,
                "--facts",
                healthy,
                "--sign",
                "H",
            ],
            "key",
        ),
        (
            &["run", "--profile", profile, "--inventory", "H"],
            "inventory",
        ),
        (&["report", "--from", "H", "--json", "again.json"], "report"),
        (
            &[
                "report",
                "merge",
                "out/report.json",
                "H",
                "--json",
                "again.json",
            ],
            "report",
        ),
        (&["diff", "out/report.json", "H"], "report"),
        (&["diff", "H", "out/report.json"], "report"),
        (
            &["attest", "--from", "H", "--key", "key.pem", "-o", "b.jsonl"],
            "report",
        ),
        (
            &[
                "attest",
                "--from",
                "out/report.json",
                "--key",
                "H",
                "-o",
                "b.jsonl",
            ],
            "key",
        ),
        (&["verify", "H", "--key", "pub.pem"], "bundle"),
        (&["verify", "out/report.intoto.jsonl", "--key", "H"], "key"),
        (
            &[
                "verify",
                "out/report.intoto.jsonl",
                "--key",
                "pub.pem",
                "--report",
                "H",
            ],
            "report the bundle names",
        ),
    ];
    for hostile in ["fifo", "a-folder", "/dev/zero", "/dev/stdin"] {
        for (args, what) in commands {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "H" { hostile } else { a })
                .collect();
            let output = hostcert(&work, &args);
            let message = stderr(&output);
            assert_eq!(code(&output), 2, "{args:?}: {message}");
            assert!(
                message.contains(&format!("{hostile}: cannot read the {what}: "))
                    && message.contains(", not a regular file"),
                "{args:?}: {message}"
            );
            assert!(!work.path("again.json").exists() && !work.path("b.jsonl").exists());
        }
    }

    // Files named in YAML places: a profile, a file of a suites folder, lint's arguments.
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--profile", "fifo.yaml"],
            "fifo.yaml: cannot read the profile: a FIFO",
        ),
        (
            &["lint", "fifo.yaml"],
            "fifo.yaml: cannot read the file: a FIFO",
        ),
        (
            &["run", "--profile", profile, "--suites", "."],
            "fifo.yaml: cannot read the file: a FIFO",
        ),
        (
            &["explain", "x", "--suites", "."],
            "fifo.yaml: cannot read the file: a FIFO",
        ),
    ];
    for (args, expected) in cases {
        let output = hostcert(&work, args);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    // Targets that read a file: each is reported unreadable, naming the file, and the run ends.
    for (target, expected) in [
        (
            "--facts=fifo",
            "cannot read the fact snapshot: a FIFO, not a regular file",
        ),
        (
            "--target=kernel-config:fifo",
            "cannot read fifo: a FIFO, not a regular file",
        ),
        (
            "--target=kernel-config:/dev/zero",
            "a character device, not a regular file",
        ),
    ] {
        let output = hostcert(
            &work,
            &[
                "run",
                "--profile",
                profile,
                target,
                "--report-dir",
                "unread",
            ],
        );
        assert_eq!(code(&output), 2, "{target}: {}", stderr(&output));
        let report = std::fs::read_to_string(work.path("unread/report.json")).unwrap();
        assert!(report.contains(expected), "{target}: {report}");
    }
}

/// A file larger than its kind's cap is refused, never cut and read in part.
#[test]
fn a_file_over_its_cap_is_refused_with_the_cap_named() {
    let work = Work::new();
    signed_run(&work);
    // A key is at most 64 KiB: a PEM file padded beyond that is not read.
    let mut padded = std::fs::read_to_string(work.path("pub.pem")).unwrap();
    padded.push_str(&"#".repeat(64 << 10));
    std::fs::write(work.path("big.pem"), padded).unwrap();
    let output = hostcert(
        &work,
        &["verify", "out/report.intoto.jsonl", "--key", "big.pem"],
    );
    assert_eq!(code(&output), 2);
    assert_eq!(
        stderr(&output),
        "error: big.pem: cannot read the key: larger than 64 KiB, the most hostcert reads of such a file\n"
    );
}

/// Creates `depth` nested folders named `d` under `root`, each relative to the last: deeper
/// than PATH_MAX allows in one path.
fn deep_tree(root: &Path, depth: usize) {
    use rustix::fs::{mkdirat, openat, Mode, OFlags, CWD};
    std::fs::create_dir_all(root).unwrap();
    let mut dir = openat(CWD, root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    for _ in 0..depth {
        mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(&dir, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    }
}

/// Guards the walk of `--suites`/`--profiles`/`lint` folders: links out of the folder (to /),
/// link loops and a tree deeper than PATH_MAX end in one error naming the path, at once.
#[test]
fn suites_folders_are_walked_without_leaving_them_or_looping() {
    let work = Work::new();
    let suites = work.path("suites");
    std::fs::create_dir_all(suites.join("v1")).unwrap();
    std::fs::copy(
        fixture("suites-versioned/demo-v1.yaml"),
        suites.join("v1/demo-v1.yaml"),
    )
    .unwrap();
    // A link back up and a second name for a folder: read once, no loop.
    std::os::unix::fs::symlink("..", suites.join("v1/up")).unwrap();
    std::os::unix::fs::symlink("v1", suites.join("latest")).unwrap();
    let output = hostcert(&work, &["lint", "suites"]);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), "lint: ok (1 suites, 0 profiles)\n");

    std::os::unix::fs::symlink("/", suites.join("root")).unwrap();
    for args in [
        &["lint", "suites"][..],
        &["run", "--suites", "suites", "--list"][..],
        &["list", "--profiles", "suites"][..],
    ] {
        let output = hostcert(&work, args);
        assert_eq!(code(&output), 2, "{args:?}");
        assert_eq!(
            stderr(&output).lines().last().unwrap_or_default(),
            if args[0] == "lint" {
                "lint: 1 problem"
            } else {
                "error: suites/root: a symbolic link out of suites (to /); not followed"
            },
            "{args:?}: {}",
            stderr(&output)
        );
    }
    std::fs::remove_file(suites.join("root")).unwrap();

    std::os::unix::fs::symlink("loop-b", suites.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", suites.join("loop-b")).unwrap();
    let output = hostcert(&work, &["lint", "suites"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).starts_with("suites/loop-a: a symbolic link that cannot be followed: "),
        "{}",
        stderr(&output)
    );
    std::fs::remove_file(suites.join("loop-a")).unwrap();
    std::fs::remove_file(suites.join("loop-b")).unwrap();

    deep_tree(&suites.join("deep"), 2_500);
    let output = hostcert(&work, &["lint", "suites"]);
    assert_eq!(code(&output), 2);
    assert!(
        stderr(&output).contains(": more than 16 folders deep in suites; not walked"),
        "{}",
        stderr(&output)
    );
    // std's remove_dir_all would do; rm is quicker on a tree this deep.
    let status = Command::new("rm")
        .arg("-rf")
        .arg(suites.join("deep"))
        .status()
        .unwrap();
    assert!(status.success());
}
