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

use support::{code, fixture, keypair, stderr, stdout, Work, BIN};

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

/// A folder with a genuine report, its bundle and the key pair that signed it.
fn signed_run(work: &Work) {
    keypair(work, "key", &["-algorithm", "ed25519"]);
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
        (&["verify", "H", "--key", "key.pub"], "bundle"),
        (&["verify", "out/report.intoto.jsonl", "--key", "H"], "key"),
        (
            &[
                "verify",
                "out/report.intoto.jsonl",
                "--key",
                "key.pub",
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
    let mut padded = std::fs::read_to_string(work.path("key.pub")).unwrap();
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

/// A report to render again and the folder it is in.
fn a_report(work: &Work) -> String {
    let output = hostcert(
        work,
        &[
            "run",
            "--profile",
            fixture("profiles/container-host-1.0.yaml")
                .to_str()
                .unwrap(),
            "--facts",
            fixture("snapshots/healthy-host.json").to_str().unwrap(),
            "--report-dir",
            "out",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    work.read("out/report.json")
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn file_type(path: &Path) -> std::fs::FileType {
    std::fs::symlink_metadata(path).unwrap().file_type()
}

/// Guards "nothing is written but through an exclusive temporary file": a device and a FIFO
/// are written to, never replaced; a link and a directory are refused; a file's mode and owner
/// are kept; another file of the folder, however it is named, is never touched.
#[test]
fn reports_replace_regular_files_only_and_write_devices_and_fifos_directly() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    let work = Work::new();
    let json = a_report(&work);
    let render = |to: &str| {
        hostcert(
            &work,
            &["report", "--from", "out/report.json", "--json", to],
        )
    };

    // A character device (a copy of /dev/null, made here so that nothing can replace the
    // machine's own) is written to and stays a device.
    let status = Command::new("mknod")
        .arg(work.path("null"))
        .args(["c", "1", "3"])
        .status()
        .expect("mknod (coreutils) runs");
    assert!(status.success(), "mknod needs root (the tests run as root)");
    let output = render("null");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(file_type(&work.path("null")).is_char_device());
    let output = render("/dev/null");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(file_type(Path::new("/dev/null")).is_char_device());

    // A FIFO with a reader gets the report; without one it is an error, not a hang. The reader
    // opens it before hostcert starts (without blocking, then blocking reads), and the test
    // holds a write end of its own until hostcert has exited, so that the reader sees the end
    // of the file only after all hostcert wrote, and never before hostcert opened it.
    mkfifo(&work.path("fifo"));
    let mut read_end = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(work.path("fifo"))
        .unwrap();
    let held_writer = std::fs::OpenOptions::new()
        .write(true)
        .open(work.path("fifo"))
        .unwrap();
    rustix::fs::fcntl_setfl(&read_end, rustix::fs::OFlags::empty()).unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        read_end.read_to_string(&mut text).unwrap();
        text
    });
    let output = render("fifo");
    drop(held_writer);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(reader.join().unwrap(), json);
    assert!(file_type(&work.path("fifo")).is_fifo());
    let output = render("fifo");
    assert_eq!(code(&output), 2);
    assert_eq!(
        stderr(&output),
        "error: fifo: cannot write: a FIFO nobody reads\n"
    );

    // A link to a file, a link to nothing and a directory are refused, and nothing is written.
    work.write("victim.json", "victim\n");
    std::os::unix::fs::symlink("victim.json", work.path("link.json")).unwrap();
    std::os::unix::fs::symlink("nothing.json", work.path("dangling.json")).unwrap();
    std::fs::create_dir(work.path("folder.json")).unwrap();
    for (to, expected) in [
        ("link.json", "error: link.json: cannot write: a symbolic link to a regular file; hostcert does not replace a file through a link (name the file it leads to)\n"),
        ("dangling.json", "error: dangling.json: cannot write: a symbolic link to nothing; hostcert does not create a file through a link\n"),
        ("folder.json", "error: folder.json: cannot write: a directory; hostcert writes only to a regular file, a FIFO or a character device\n"),
    ] {
        let output = render(to);
        assert_eq!(code(&output), 2, "{to}");
        assert_eq!(stderr(&output), expected);
    }
    assert_eq!(work.read("victim.json"), "victim\n");
    assert!(!work.path("nothing.json").exists());
    // A link to a device is followed, as /dev/stdout is.
    std::os::unix::fs::symlink("null", work.path("to-null")).unwrap();
    assert_eq!(code(&render("to-null")), 0);
    assert!(file_type(&work.path("null")).is_char_device());

    // An existing file keeps its mode, owner and group (hostcert runs as root here).
    work.write("kept.json", "old\n");
    std::fs::set_permissions(
        work.path("kept.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::chown(work.path("kept.json"), Some(65534), Some(65534)).unwrap();
    let output = render("kept.json");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(work.read("kept.json"), json);
    let metadata = std::fs::metadata(work.path("kept.json")).unwrap();
    assert_eq!(
        (metadata.mode() & 0o7777, metadata.uid(), metadata.gid()),
        (0o640, 65534, 65534)
    );

    // A missing folder is made, with its parents.
    let output = render("new/deeper/report.json");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(work.read("new/deeper/report.json"), json);
    let output = hostcert(
        &work,
        &["report", "--from", "out/report.json", "--junit", "-"],
    );
    assert_eq!(code(&output), 2);
    assert!(stderr(&output)
        .starts_with("error: `-` (standard output) is taken only by the JSON report"));
}

/// The temporary file is created exclusively under a random name: files already in the folder
/// (the name hostcert used to use, `.report.json.PID.tmp`, included) are never overwritten or
/// moved, and temporary files of writers that are gone are removed.
#[test]
fn a_report_never_clobbers_a_file_named_like_its_temporary_file() {
    let work = Work::new();
    let json = a_report(&work);
    std::fs::create_dir(work.path("dest")).unwrap();
    // A pid that just ended.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    work.write(
        &format!("dest/.report.json.hostcert-{gone_pid}-AbCdEf.tmp"),
        "stale",
    );
    work.write("dest/.report.json.hostcert-1-AbCdEf.tmp", "pid 1 is alive");
    // `exec` keeps the shell's pid, so the shell knows the name hostcert would pick for it.
    let output = Command::new("sh")
        .args([
            "-c",
            r#"echo mine > "dest/.report.json.$$.tmp" && echo mine > "dest/.report.json.hostcert-$$.tmp" && exec "$0" report --from out/report.json --json dest/report.json"#,
            BIN,
        ])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(work.read("dest/report.json"), json);
    let pid = output_pid_files(&work.path("dest"));
    assert_eq!(pid.len(), 2, "{pid:?}");
    for name in &pid {
        assert_eq!(work.read(&format!("dest/{name}")), "mine\n", "{name}");
    }
    assert_eq!(names(&work.path("dest")), {
        let mut expected = vec![
            ".report.json.hostcert-1-AbCdEf.tmp".to_owned(),
            "report.json".to_owned(),
        ];
        expected.extend(pid);
        expected.sort();
        expected
    });
}

/// The files the shell made for hostcert's pid in `dest`.
fn output_pid_files(dest: &Path) -> Vec<String> {
    names(dest)
        .into_iter()
        .filter(|n| n.ends_with(".tmp") && !n.contains("AbCdEf"))
        .collect()
}

/// `-` sends the JSON report (`run --json`, `report --json`, `report merge --json`) and a
/// snapshot (`gather --output`) to stdout, alone: libtest's lines and the summary go to stderr.
#[test]
fn a_dash_sends_the_json_report_and_snapshots_to_stdout_alone() {
    let work = Work::new();
    let json = a_report(&work);
    let profile = fixture("profiles/container-host-1.0.yaml");
    let healthy = fixture("snapshots/healthy-host.json");
    let output = hostcert(
        &work,
        &[
            "run",
            "--profile",
            profile.to_str().unwrap(),
            "--facts",
            healthy.to_str().unwrap(),
            "--report-dir",
            "again",
            "--json",
            "-",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("only JSON on stdout");
    assert_eq!(report["verdict"], "certified");
    assert!(stderr(&output).contains("test healthy-host::kernel-features::"));
    assert!(stderr(&output).contains("reports: stdout, again/junit.xml"));
    assert!(!work.path("again/report.json").exists() && work.path("again/junit.xml").is_file());

    let output = hostcert(
        &work,
        &["report", "--from", "out/report.json", "--json", "-"],
    );
    assert_eq!((code(&output), stdout(&output)), (0, json.clone()));
    let output = hostcert(
        &work,
        &["report", "merge", "out/report.json", "--json", "-"],
    );
    assert_eq!(code(&output), 0);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()["verdict"],
        "certified"
    );
    assert!(stderr(&output).starts_with("merged 1 reports"));

    let output = hostcert(
        &work,
        &[
            "gather",
            "--profile",
            profile.to_str().unwrap(),
            "--output",
            "-",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let snapshot: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(snapshot["target"]["kind"], "local");
    assert!(
        stderr(&output).contains("into stdout"),
        "{}",
        stderr(&output)
    );

    // Other outputs do not take `-`, and a signed run needs its report in a file.
    let output = hostcert(
        &work,
        &["run", "--facts", healthy.to_str().unwrap(), "--junit", "-"],
    );
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).starts_with("error: `-` (standard output) is taken only by"));
    let output = hostcert(
        &work,
        &[
            "run",
            "--facts",
            healthy.to_str().unwrap(),
            "--json",
            "-",
            "--sign",
            "key.pem",
        ],
    );
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).starts_with("error: --sign needs the JSON report in a file"));
    assert!(output.stdout.is_empty());
}

/// A folder hostcert cannot write in (a read-only mount: root ignores permission bits) is an
/// error naming the file, and the file already there is left as it was.
#[test]
fn a_read_only_folder_is_an_error_and_its_file_is_left_alone() {
    support::require("unshare", "util-linux");
    let work = Work::new();
    a_report(&work);
    work.write("ro/report.json", "old\n");
    let output = Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            r#"mount --make-rprivate / && mount --bind ro ro && mount -o remount,bind,ro ro && exec "$0" report --from out/report.json --json ro/report.json"#,
            BIN,
        ])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "error: ro/report.json: cannot write: cannot create a temporary file in ro: Read-only file system (os error 30)\n"
    );
    assert_eq!(work.read("ro/report.json"), "old\n");
    assert_eq!(names(&work.path("ro")), vec!["report.json"]);
}

/// Regression (issue 11, formats rendered at once): two reports given one regular file would
/// leave only the one renamed last, so the run is refused before anything is read, naming both
/// options; devices such as /dev/null may still take several.
#[test]
fn two_reports_naming_one_file_are_refused_before_anything_is_read() {
    let work = Work::new();
    let json = a_report(&work);
    let healthy = fixture("snapshots/healthy-host.json");
    let output = hostcert(
        &work,
        &[
            "run",
            "--facts",
            healthy.to_str().unwrap(),
            "--json",
            "same.json",
            "--junit",
            "./same.json",
        ],
    );
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "error: --json same.json and --junit ./same.json are one file: each report needs its own\n"
    );
    assert!(!work.path("same.json").exists() && !work.path("hostcert-report").exists());

    let output = hostcert(
        &work,
        &[
            "report",
            "--from",
            "out/report.json",
            "--html",
            "r",
            "--markdown",
            "out/../r",
        ],
    );
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("error: --html r and --markdown out/../r are one file"),
        "{}",
        stderr(&output)
    );
    assert!(!work.path("r").exists());

    let output = hostcert(
        &work,
        &[
            "report",
            "--from",
            "out/report.json",
            "--json",
            "/dev/null",
            "--junit",
            "/dev/null",
            "--html",
            "/dev/null",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(work.read("out/report.json"), json);

    // `--json -` is standard output, not a file named `-`: `--junit ./-` is another report.
    let output = hostcert(
        &work,
        &[
            "report",
            "--from",
            "out/report.json",
            "--json",
            "-",
            "--junit",
            "./-",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(stdout(&output), json);
    assert!(work.read("-").starts_with("<?xml"));
}
