//! What the end-to-end tests share: a temporary folder that runs the real binary, fixture
//! paths (the repository's, the fixture trees `ci/fixtures` builds, the shared real fixtures
//! beside the repository), fleets of fact snapshots made from the fixtures, readers of what a
//! run wrote, tools run to succeed (OpenSSL key pairs among them), and hosts: OpenSSH sshd
//! processes on 127.0.0.1 high ports, each with its own host key, key-only login for a
//! generated client key, and a known_hosts file, and silent ones that accept TCP and never
//! speak. A host stops exactly what it started when dropped. `gpg` holds a throwaway GnuPG home
//! for the tests that sign.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_hostcert");
/// The probe program, the hostcert package's second binary: cargo builds it beside `BIN`.
pub const PROBE_BIN: &str = env!("CARGO_BIN_EXE_hostcert-probe");

pub mod gpg;

/// A file or folder of the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

pub fn fixture(path: &str) -> PathBuf {
    repo("tests/fixtures").join(path)
}

/// The fixture trees `ci/fixtures` builds (a Debian tree and its broken copies), cached outside
/// the repository; without them the test fails and says how to build them.
pub fn fixture_trees() -> PathBuf {
    let dir = std::env::var_os("HOSTCERT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hostcert-fixtures"));
    assert!(
        dir.join("stamp").is_file() && dir.join("rootfs/usr/sbin/sshd").is_file(),
        "the fixture trees are missing from {}; build them with `ci/fixtures` as root (ci/test does; it needs mmdebstrap: apt-get install mmdebstrap)",
        dir.display()
    );
    dir
}

/// A file or folder of the shared fixtures (`shared/fixtures/PATH`), beside the repository or a
/// folder above it (the main checkout and its worktrees share one); without it the test fails
/// and says where it looked, never passes.
pub fn shared_fixture(path: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = manifest
        .ancestors()
        .map(|dir| dir.join("shared/fixtures").join(path))
        .find(|candidate| candidate.exists());
    found.unwrap_or_else(|| {
        panic!(
            "shared/fixtures/{path} is missing beside {} and the folders above it: these tests judge hostcert with the shared real fixtures",
            manifest.display()
        )
    })
}

/// A temporary working folder for one test.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `hostcert ARGS` in the folder. `run`, `gather` and `list` are pinned to the profile
    /// `container-host-1-0` (kernel-features 1.0.0), the level the fixture snapshots and the
    /// tests' expectations were made for, unless the test names a profile: the built-in suites
    /// can grow without changing what these tests mean.
    pub fn hostcert<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        let words: Vec<&std::ffi::OsStr> = args.iter().map(AsRef::as_ref).collect();
        let pinned = words
            .first()
            .is_some_and(|w| *w == "run" || *w == "gather" || *w == "list")
            && !words.iter().any(|w| *w == "--profile");
        let mut command = Command::new(BIN);
        command.args(args).current_dir(self.dir.path());
        if pinned {
            command
                .arg("--profile")
                .arg(fixture("profiles/container-host-1.0.yaml"));
        }
        command.output().expect("hostcert runs")
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn json(&self, name: &str) -> Value {
        read_json(&self.path(name))
    }

    /// Writes a text file (creating its folders).
    pub fn write(&self, name: &str, text: &str) {
        self.write_bytes(name, text);
    }

    /// Writes a file of any bytes (creating its folders) and returns its path.
    pub fn write_bytes(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Makes a symbolic link `name` to `target` (creating its folders).
    pub fn symlink(&self, target: &str, name: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    /// Writes a copy of a fixture snapshot whose target is called `name`, with `edit` applied
    /// to its JSON, and returns the file name.
    pub fn snapshot(
        &self,
        fixture_name: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        let file = format!("facts/{}.json", name.replace(['/', '<', '>', '='], "_"));
        self.snapshot_as(&file, fixture_name, name, edit)
    }

    /// Like [`Work::snapshot`], written to `file`.
    pub fn snapshot_as(
        &self,
        file: &str,
        fixture_name: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        let text = std::fs::read_to_string(fixture(&format!("snapshots/{fixture_name}.json")))
            .expect("fixture snapshot");
        let mut snapshot: Value = serde_json::from_str(&text).unwrap();
        snapshot["target"]["name"] = Value::from(name);
        edit(&mut snapshot);
        self.write(file, &serde_json::to_string_pretty(&snapshot).unwrap());
        file.to_owned()
    }
}

/// A JSON file (a report, a snapshot).
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// The result of one check on one target in a JSON report.
pub fn result<'a>(report: &'a Value, target: &str, check: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["target"] == target && r["check"] == check)
        .unwrap_or_else(|| panic!("no result for {target} {check}"))
}

/// The names of a JSON report's targets, in its order.
pub fn target_names(report: &Value) -> Vec<&str> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// The outcome of one check on one target in a JSON report.
pub fn outcome(report: &Value, target: &str, check: &str) -> String {
    result(report, target, check)["outcome"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sets the value of the fact read by `probe` (e.g. `{"kernel-config": "NET_NS"}`) in a
/// snapshot's JSON.
pub fn set_fact(snapshot: &mut Value, probe: Value, value: Value) {
    let facts = snapshot["facts"].as_array_mut().unwrap();
    let fact = facts
        .iter_mut()
        .find(|f| f["probe"] == probe)
        .unwrap_or_else(|| panic!("no fact {probe}"));
    fact["value"] = value;
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Everything a command printed: its stdout, then its stderr.
pub fn stdout_and_stderr(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// Runs a tool that must succeed, failing the test with what it printed when it does not;
/// returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} cannot start: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Runs `openssl ARGS` in `dir` (it fails the test with the install hint when OpenSSL is
/// missing), whatever its exit status.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl is needed to make and check keys ({e}); install it: apt-get install openssl")
        })
}

/// Makes a key pair with OpenSSL in the work folder: `NAME.pem` (PKCS#8) and `NAME.pub`
/// (SubjectPublicKeyInfo), with `genpkey`'s algorithm options (`-algorithm ed25519`).
pub fn keypair(work: &Work, name: &str, genpkey: &[&str]) {
    let private = format!("{name}.pem");
    let public = format!("{name}.pub");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey);
    args.extend_from_slice(&["-out", &private]);
    for args in [
        args,
        vec!["pkey", "-in", &private, "-pubout", "-out", &public],
    ] {
        let made = openssl(work.dir.path(), &args);
        assert!(made.status.success(), "openssl {args:?}: {}", stderr(&made));
    }
}

/// `--facts FILE` for every file.
pub fn facts_args(files: &[String]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| ["--facts".to_owned(), f.clone()])
        .collect()
}

pub fn xmllint_validates(junit: &Path) {
    // Jenkins' xunit-plugin schema (MIT), kept beside the fixtures so a clone validates alone.
    let xsd = fixture("junit-10.xsd");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(junit)
        .output()
        .unwrap_or_else(|e| panic!("xmllint is needed to validate JUnit ({e}); install it: apt-get install libxml2-utils"));
    assert!(
        output.status.success(),
        "JUnit does not validate against {}:\n{}",
        xsd.display(),
        stderr(&output)
    );
}

/// Today's date (UTC) plus `days`, as `YYYY-MM-DD`.
pub fn date_in(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    let (year, month, day) = date.to_calendar_date();
    format!("{year:04}-{:02}-{day:02}", month as u8)
}

/// Builds the package(s) of a spec with rpmbuild; returns the rpm files.
pub fn rpmbuild(work: &Path, name: &str, spec: &str, defines: &[&str]) -> Vec<PathBuf> {
    require("rpmbuild", "rpm");
    let top = work.join(format!("top-{name}"));
    let spec_file = work.join(format!("{name}.spec"));
    std::fs::write(&spec_file, spec).unwrap();
    let mut command = Command::new("rpmbuild");
    command
        .arg("-bb")
        .args(["--define", &format!("_topdir {}", top.display())]);
    for define in defines {
        command.args(["--define", define]);
    }
    run_ok(command.arg(&spec_file));
    let mut built: Vec<PathBuf> = std::fs::read_dir(top.join("RPMS"))
        .unwrap()
        .flat_map(|arch| std::fs::read_dir(arch.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().path())
        .collect();
    built.sort();
    built
}

// Real SSH hosts.

const SSHD: &str = "/usr/sbin/sshd";

/// Fails the test with the install hint when a tool is missing.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found || Path::new(program).is_file(),
        "{program} is needed by this test; install it: apt-get install {package} (ci/test does)"
    );
}

/// Generates an ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) {
    require("ssh-keygen", "openssh-client");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "hostcert-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

/// A client: a key pair and the folder the hosts' files live in.
pub struct Client {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
}

impl Client {
    pub fn new() -> Client {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let key = dir.path().join("client_ed25519");
        keygen(&key);
        Client { dir, key }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a host that accepts this client's key.
    pub fn host(&self, name: &str) -> SshHost {
        SshHost::start(self, name, &[])
    }

    /// Writes a known_hosts file with these hosts' keys.
    pub fn known_hosts(&self, name: &str, hosts: &[&SshHost]) -> PathBuf {
        let path = self.path(name);
        let text: String = hosts.iter().map(|h| h.known_hosts_line()).collect();
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// One real sshd on 127.0.0.1.
pub struct SshHost {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl SshHost {
    /// Starts sshd with extra `-o` options.
    pub fn start(client: &Client, name: &str, options: &[&str]) -> SshHost {
        SshHost::start_wrapped(client, name, options, &[])
    }

    /// Starts sshd through a wrapper that ends by running its arguments (`unshare ... sh -c
    /// '...; exec "$0" "$@"'`), so that it keeps sshd's pid and the host stops it.
    pub fn start_wrapped(
        client: &Client,
        name: &str,
        options: &[&str],
        wrapper: &[String],
    ) -> SshHost {
        require(SSHD, "openssh-server");
        // sshd refuses to start without its privilege-separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = client.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let host_key = dir.join("host_ed25519");
        if !host_key.exists() {
            keygen(&host_key);
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(client.key.with_extension("pub"), &authorized).unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
            let mut command = match wrapper.split_first() {
                Some((program, args)) => {
                    let mut command = Command::new(program);
                    command.args(args).arg(SSHD);
                    command
                }
                None => Command::new(SSHD),
            };
            command.args(["-D", "-e", "-f", "/dev/null"]);
            // sshd keeps the first value of an option: the caller's come first.
            for option in options.iter().map(|o| (*o).to_owned()).chain([
                format!("ListenAddress=127.0.0.1:{port}"),
                format!("HostKey={}", host_key.display()),
                format!("AuthorizedKeysFile={}", authorized.display()),
                "PubkeyAuthentication=yes".to_owned(),
                "PasswordAuthentication=no".to_owned(),
                "KbdInteractiveAuthentication=no".to_owned(),
                "UsePAM=no".to_owned(),
                "PermitRootLogin=prohibit-password".to_owned(),
                "StrictModes=no".to_owned(),
                format!("PidFile={}", dir.join("sshd.pid").display()),
                "LogLevel=VERBOSE".to_owned(),
            ]) {
                command.arg("-o").arg(option);
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("sshd starts");
            let mut host = SshHost {
                port,
                dir: dir.clone(),
                child: Some(child),
            };
            if host.wait_listening() {
                return host;
            }
            host.stop();
        }
        panic!("sshd did not start; see {}", dir.join("sshd.log").display());
    }

    fn wait_listening(&mut self) -> bool {
        wait_listening(self.child.as_mut(), self.port)
    }

    /// `ssh://root@127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// This host's line for known_hosts.
    pub fn known_hosts_line(&self) -> String {
        let public = std::fs::read_to_string(self.dir.join("host_ed25519.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}\n", self.port, key.join(" "))
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Stops the sshd this fixture started (its listener; sessions end with their clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections and never says a word (an SSH host
/// stuck before its banner), holds them and counts them.
pub struct SilentHost {
    pub port: u16,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentHost {
    pub fn start() -> SilentHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                kept.lock().unwrap().push(stream);
            }
        });
        SilentHost { port, accepted }
    }

    /// `ssh://root@127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    /// How many connections it accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

/// Waits up to 10 s for a server started as `child` to accept connections on 127.0.0.1:PORT;
/// false when it exited or never listened.
pub fn wait_listening(mut child: Option<&mut Child>, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(child) = child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Header blobs by record number, exported from an rpm SQLite database with the sqlite3 tool.
pub fn sqlite_blobs(database: &Path) -> Vec<(u32, Vec<u8>)> {
    require("sqlite3", "sqlite3");
    let listing = run_ok(
        Command::new("sqlite3")
            .arg(database)
            .arg("SELECT hnum, hex(blob) FROM Packages ORDER BY hnum"),
    );
    listing
        .lines()
        .map(|line| {
            let (hnum, hex) = line.split_once('|').expect("hnum|hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (hnum.parse().unwrap(), bytes)
        })
        .collect()
}

/// A Berkeley DB hash `Packages` made of header blobs by db5.3_load, in a byte order
/// (1234 little-endian, 4321 big-endian) and page size.
pub fn berkeley_db(dir: &Path, blobs: &[(u32, Vec<u8>)], order: u32, page_size: u32) -> PathBuf {
    require("db5.3_load", "db5.3-util");
    std::fs::create_dir_all(dir).unwrap();
    let mut dump =
        format!("VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize={page_size}\nHEADER=END\n");
    for (record, blob) in blobs {
        let key = if order == 4321 {
            record.to_be_bytes()
        } else {
            record.to_le_bytes()
        };
        dump.push_str(&format!(
            " {}\n {}\n",
            hostcert::dsse::hex(&key),
            hostcert::dsse::hex(blob)
        ));
    }
    dump.push_str("DATA=END\n");
    let dump_file = dir.join("dump");
    std::fs::write(&dump_file, dump).unwrap();
    let packages = dir.join("Packages");
    run_ok(
        Command::new("db5.3_load")
            .args(["-c", &format!("db_lorder={order}"), "-f"])
            .arg(&dump_file)
            .arg(&packages),
    );
    std::fs::remove_file(dump_file).unwrap();
    packages
}
pub mod image;
pub mod registry;
