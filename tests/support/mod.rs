//! Real hosts for the tests: OpenSSH sshd processes on 127.0.0.1 high ports, each with its own
//! host key, key-only login for a generated client key, and a known_hosts file. A host stops
//! exactly the process it started when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
