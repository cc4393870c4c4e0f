//! What the end-to-end tests share: a temporary folder that runs the real binary, fixture
//! paths, fleets of fact snapshots made from the fixtures, and real hosts: OpenSSH sshd
//! processes on 127.0.0.1 high ports, each with its own host key, key-only login for a
//! generated client key, and a known_hosts file. A host stops exactly the process it started
//! when dropped.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_hostcert");

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path)
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
        serde_json::from_str(&self.read(name)).expect("valid JSON")
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
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

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
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
            let mut command = Command::new(SSHD);
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
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

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub mod image;
pub mod registry;
