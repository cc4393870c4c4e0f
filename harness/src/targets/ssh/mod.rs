//! `ssh://[user@]host[:port]`: a host reached over SSH (ssh2), read in one round-trip.
//!
//! One TCP connection, one authenticated session, one exec channel running one generated
//! script ([`batch`]) that prints every fact the host's checks need; the facts are then
//! evaluated locally. Host keys are checked against known_hosts strictly: an unknown or changed
//! key is an error for that host, naming the key's fingerprint.

mod batch;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::Digest;

use super::{Gathered, Target, TargetError};
use crate::facts::ProbeSet;
use crate::model::TargetKind;

/// The environment variable a password is read from, for hosts that take only passwords. It is
/// never taken from the command line and never written anywhere.
pub const PASSWORD_ENV: &str = "HOSTCERT_SSH_PASSWORD";

/// How SSH targets connect, authenticate and gather.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// A private key file (`--identity`); otherwise ssh-agent, then the default key files.
    pub identity: Option<PathBuf>,
    /// The known_hosts file (`--known-hosts`); default `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// Record unknown host keys (trust on first use); changed keys are still refused.
    pub accept_new_host_keys: bool,
    /// Run the batch under one `sudo -n`.
    pub sudo: bool,
    /// Bound on opening the TCP connection.
    pub connect_timeout: Duration,
    /// Bound on the SSH handshake and authentication.
    pub auth_timeout: Duration,
    /// Bound on running the batch and reading its output.
    pub gather_timeout: Duration,
    /// The ssh_config file (`--ssh-config`); default `~/.ssh/config` when it exists.
    pub ssh_config: Option<PathBuf>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            identity: None,
            known_hosts: None,
            accept_new_host_keys: false,
            sudo: false,
            connect_timeout: Duration::from_secs(10),
            auth_timeout: Duration::from_secs(15),
            gather_timeout: Duration::from_secs(60),
            ssh_config: None,
        }
    }
}

/// A host reached over SSH.
#[derive(Debug)]
pub struct SshTarget {
    name: String,
    address: String,
    user: String,
    host: String,
    port: u16,
    options: SshOptions,
    /// The bastion reached first (ssh_config's ProxyJump), when there is one.
    jump: Option<Box<SshTarget>>,
}

impl SshTarget {
    /// Parses `ssh://[user@]host[:port]` (IPv6 as `[::1]`). The user defaults to `$USER`, the
    /// port to 22.
    pub fn parse(address: &str, options: SshOptions) -> Result<SshTarget, TargetError> {
        let fail = |reason: &str| TargetError {
            target: address.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = address
            .strip_prefix("ssh://")
            .ok_or_else(|| fail("not an ssh:// address"))?
            .trim_end_matches('/');
        let (user, host_port) = match rest.rsplit_once('@') {
            Some((user, host_port)) if !user.is_empty() => (Some(user.to_owned()), host_port),
            Some(_) => return Err(fail("empty user name before `@`")),
            None => (None, rest),
        };
        let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
            let (host, after) = inner
                .split_once(']')
                .ok_or_else(|| fail("unclosed `[` in the address"))?;
            (host.to_owned(), after.strip_prefix(':'))
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (host_port.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(fail("no host name"));
        }
        let port = match port {
            Some(port) => Some(
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| fail(&format!("`{port}` is not a port number")))?,
            ),
            None => None,
        };
        let mut options = options;
        let config = load_ssh_config(&options).map_err(|reason| fail(&reason))?;
        let params = config.as_ref().map(|c| c.query(&host));
        let user = user
            .or_else(|| params.as_ref().and_then(|p| p.user.clone()))
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".to_owned());
        let port = port
            .or_else(|| params.as_ref().and_then(|p| p.port))
            .unwrap_or(22);
        if options.identity.is_none() {
            options.identity = params
                .as_ref()
                .and_then(|p| p.identity_file.as_ref())
                .and_then(|files| files.first().cloned());
        }
        let jump = match params
            .as_ref()
            .and_then(|p| p.proxy_jump.as_ref())
            .and_then(|j| j.first())
        {
            Some(jump) if jump != "none" => {
                // The bastion is reached directly, with its own ssh_config entry.
                let bastion = SshTarget::parse(
                    &format!("ssh://{jump}"),
                    SshOptions {
                        identity: None,
                        ..options.clone()
                    },
                )
                .map_err(|e| fail(&format!("ProxyJump {jump}: {}", e.reason)))?;
                Some(Box::new(SshTarget {
                    jump: None,
                    ..bastion
                }))
            }
            _ => None,
        };
        let real_host = params
            .as_ref()
            .and_then(|p| p.host_name.clone())
            .unwrap_or_else(|| host.clone());
        Ok(SshTarget {
            name: rest.to_owned(),
            address: address.to_owned(),
            user,
            host: real_host,
            port,
            options,
            jump,
        })
    }

    /// Renames the target (an inventory's host name).
    pub fn named(mut self, name: &str) -> SshTarget {
        self.name = name.to_owned();
        self
    }

    fn error(&self, reason: impl Into<String>) -> TargetError {
        TargetError {
            target: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// `host:port` as known_hosts and messages spell it.
    fn host_port(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// Connects, checks the host key and logs in: one authenticated session.
    pub(crate) fn connect(&self) -> Result<ssh2::Session, TargetError> {
        let mut session = ssh2::Session::new()
            .map_err(|e| self.error(format!("cannot start an SSH session: {e}")))?;
        match &self.jump {
            None => session.set_tcp_stream(self.tcp_connect()?),
            Some(bastion) => session.set_tcp_stream(self.tunnel_through(bastion)?),
        }
        session.set_timeout(millis(self.options.auth_timeout));
        session.handshake().map_err(|e| {
            self.error(if is_timeout(&e) {
                format!(
                    "no SSH handshake within {} s: the port accepts connections but does not speak SSH",
                    self.options.auth_timeout.as_secs()
                )
            } else {
                format!("SSH handshake failed: {}", e.message())
            })
        })?;
        self.verify_host_key(&session)?;
        self.authenticate(&session)?;
        Ok(session)
    }

    fn tcp_connect(&self) -> Result<TcpStream, TargetError> {
        let addresses: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.error(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last_error = None;
        for address in &addresses {
            match TcpStream::connect_timeout(address, self.options.connect_timeout) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(error) => last_error = Some(error),
            }
        }
        let reason = last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        Err(self.error(format!(
            "cannot connect to {}:{}: {reason}",
            self.host, self.port
        )))
    }

    /// Logs in to the bastion and opens a `direct-tcpip` channel from it to this host; the
    /// channel is carried to this host's session over a socket pair by a pump thread, which
    /// ends when either side closes.
    fn tunnel_through(&self, bastion: &SshTarget) -> Result<UnixStream, TargetError> {
        let through = |e: TargetError| {
            self.error(format!(
                "through the bastion {}: {}",
                bastion.name, e.reason
            ))
        };
        let bastion_session = bastion.connect().map_err(through)?;
        let channel = bastion_session
            .channel_direct_tcpip(&self.host, self.port, None)
            .map_err(|e| {
                self.error(format!(
                    "the bastion {} cannot reach {}:{}: {}",
                    bastion.name,
                    self.host,
                    self.port,
                    e.message()
                ))
            })?;
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| self.error(format!("cannot make a socket pair: {e}")))?;
        std::thread::spawn(move || pump(bastion_session, channel, theirs));
        Ok(ours)
    }

    fn verify_host_key(&self, session: &ssh2::Session) -> Result<(), TargetError> {
        let (key, key_type) = session
            .host_key()
            .ok_or_else(|| self.error("the host offered no host key"))?;
        let fingerprint = format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(key))
        );
        let kind = key_type_name(key_type);
        let path = match &self.options.known_hosts {
            Some(path) => path.clone(),
            None => default_known_hosts().ok_or_else(|| {
                self.error("no known_hosts file: HOME is not set; give one with --known-hosts FILE")
            })?,
        };
        // Reading, checking and (with --accept-new-host-keys) writing known_hosts is one step
        // for all hosts of a run, so that parallel hosts do not overwrite each other's keys.
        static KNOWN_HOSTS: Mutex<()> = Mutex::new(());
        let _guard = KNOWN_HOSTS.lock().unwrap_or_else(|e| e.into_inner());
        let mut known = session
            .known_hosts()
            .map_err(|e| self.error(format!("cannot check host keys: {}", e.message())))?;
        if path.exists() {
            known
                .read_file(&path, ssh2::KnownHostFileKind::OpenSSH)
                .map_err(|e| {
                    self.error(format!(
                        "cannot read known_hosts {}: {}",
                        path.display(),
                        e.message()
                    ))
                })?;
        }
        match known.check_port(&self.host, self.port, key) {
            ssh2::CheckResult::Match => Ok(()),
            ssh2::CheckResult::Mismatch => Err(self.error(format!(
                "the host key of {} has CHANGED: it offered {kind} {fingerprint}, which does not match {}; this may be an attack (fix known_hosts only if the key changed on purpose)",
                self.host_port(),
                path.display()
            ))),
            ssh2::CheckResult::NotFound if self.options.accept_new_host_keys => {
                known
                    .add(&self.host_port(), key, "added by hostcert", key_type.into())
                    .and_then(|()| known.write_file(&path, ssh2::KnownHostFileKind::OpenSSH))
                    .map_err(|e| {
                        self.error(format!(
                            "cannot record the host key in {}: {}",
                            path.display(),
                            e.message()
                        ))
                    })
            }
            ssh2::CheckResult::NotFound => Err(self.error(format!(
                "the host key of {} is not in {}: it offered {kind} {fingerprint}; add it (ssh-keyscan), or run with --accept-new-host-keys",
                self.host_port(),
                path.display()
            ))),
            ssh2::CheckResult::Failure => Err(self.error(format!(
                "cannot check the host key of {} against {}",
                self.host_port(),
                path.display()
            ))),
        }
    }

    fn authenticate(&self, session: &ssh2::Session) -> Result<(), TargetError> {
        let user = &self.user;
        let mut tried = Vec::new();
        if let Some(identity) = &self.options.identity {
            if !identity.is_file() {
                return Err(self.error(format!(
                    "identity file {} does not exist",
                    identity.display()
                )));
            }
            match session.userauth_pubkey_file(user, None, identity, None) {
                Ok(()) => return Ok(()),
                Err(e) => tried.push(format!("key {} ({})", identity.display(), e.message())),
            }
        } else {
            if std::env::var_os("SSH_AUTH_SOCK").is_some() {
                match session.userauth_agent(user) {
                    Ok(()) => return Ok(()),
                    Err(e) => tried.push(format!("ssh-agent ({})", e.message())),
                }
            }
            for key in default_identities() {
                match session.userauth_pubkey_file(user, None, &key, None) {
                    Ok(()) => return Ok(()),
                    Err(e) => tried.push(format!("key {} ({})", key.display(), e.message())),
                }
            }
        }
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            match session.userauth_password(user, &password) {
                Ok(()) => return Ok(()),
                Err(e) => tried.push(format!("password from ${PASSWORD_ENV} ({})", e.message())),
            }
        }
        if tried.is_empty() {
            tried.push("nothing: no --identity, no ssh-agent, no key in ~/.ssh".to_owned());
        }
        Err(self.error(format!(
            "authentication as {user} failed; tried {}",
            tried.join(", ")
        )))
    }

    /// Runs the batch over one exec channel.
    fn run_batch(&self, session: &ssh2::Session, script: &str) -> Result<BatchRun, TargetError> {
        let deadline = Instant::now() + self.options.gather_timeout;
        session.set_timeout(millis(self.options.gather_timeout));
        let mut channel = session
            .channel_session()
            .map_err(|e| self.error(format!("cannot open a session channel: {}", e.message())))?;
        let command = if self.options.sudo {
            "sudo -n sh -s"
        } else {
            "sh -s"
        };
        channel
            .exec(command)
            .map_err(|e| self.error(format!("cannot run `{command}`: {}", e.message())))?;
        channel
            .write_all(script.as_bytes())
            .and_then(|()| channel.send_eof().map_err(std::io::Error::from))
            .map_err(|e| self.error(format!("cannot send the batch: {e}")))?;
        let mut stdout = Vec::new();
        let mut buffer = [0u8; 32 * 1024];
        let mut ended = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                ended = Some(format!(
                    "no complete answer within {} s (--gather-timeout)",
                    self.options.gather_timeout.as_secs()
                ));
                break;
            }
            session.set_timeout(millis(remaining).max(1));
            match channel.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => stdout.extend_from_slice(&buffer[..n]),
                Err(error) => {
                    ended = Some(if error.kind() == std::io::ErrorKind::TimedOut {
                        format!(
                            "no complete answer within {} s (--gather-timeout)",
                            self.options.gather_timeout.as_secs()
                        )
                    } else {
                        format!("the connection was lost: {error}")
                    });
                    break;
                }
            }
        }
        let mut stderr = String::new();
        let mut status = None;
        if ended.is_none() {
            let _ = channel.stderr().take(64 * 1024).read_to_string(&mut stderr);
            let _ = channel.wait_close();
            status = channel.exit_status().ok();
        }
        let _ = session.disconnect(None, "hostcert done", None);
        Ok(BatchRun {
            stdout,
            stderr,
            status,
            ended,
        })
    }
}

impl SshTarget {
    /// Copies hostcert's probe program to the host over SFTP (`/tmp/hostcert-probe-NONCE`, mode
    /// 0700, created exclusively), runs it (under `sudo -n` with `--sudo`), and removes it
    /// whatever happened.
    fn run_probe_program(&self, session: &ssh2::Session, nonce: &str) -> crate::facts::Fact {
        use crate::facts::Fact;
        use crate::model::Probe;
        use crate::targets::probe_program;
        let remote = format!("/tmp/{}-{nonce}", probe_program::PROGRAM);
        let failed = |reason: String| Fact::failed(Probe::ProbeProgram, remote.clone(), reason);
        let local = match probe_program::locate() {
            Ok(local) => local,
            Err(reason) => {
                return Fact::failed(Probe::ProbeProgram, probe_program::PROGRAM, reason)
            }
        };
        let bytes = match std::fs::read(&local) {
            Ok(bytes) => bytes,
            Err(error) => return failed(format!("cannot read {}: {error}", local.display())),
        };
        session.set_timeout(millis(self.options.gather_timeout));
        let sftp = match session.sftp() {
            Ok(sftp) => sftp,
            Err(error) => return failed(format!("cannot start SFTP: {}", error.message())),
        };
        let mut created = false;
        let upload = sftp
            .open_mode(
                Path::new(&remote),
                ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::EXCLUSIVE,
                0o700,
                ssh2::OpenType::File,
            )
            .map_err(|e| format!("cannot create {remote}: {}", e.message()))
            .and_then(|mut file| {
                created = true;
                file.write_all(&bytes)
                    .map_err(|e| format!("cannot write {remote}: {e}"))
            });
        let result = upload.and_then(|()| {
            let mut channel = session
                .channel_session()
                .map_err(|e| format!("cannot open a session channel: {}", e.message()))?;
            let command = if self.options.sudo {
                format!("sudo -n {remote}")
            } else {
                remote.clone()
            };
            channel
                .exec(&command)
                .map_err(|e| format!("cannot run {remote}: {}", e.message()))?;
            let mut stdout = String::new();
            Read::by_ref(&mut channel)
                .take(1 << 20)
                .read_to_string(&mut stdout)
                .map_err(|e| format!("no complete answer from {remote}: {e}"))?;
            let mut stderr = String::new();
            let _ = channel.stderr().take(64 * 1024).read_to_string(&mut stderr);
            let _ = channel.wait_close();
            match channel.exit_status() {
                Ok(0) => probe_program::parse(&stdout),
                Ok(status) => Err(format!(
                    "{remote} exited with status {status}: {}",
                    stderr.trim()
                )),
                Err(error) => Err(error.message().to_owned()),
            }
        });
        // Only a file this run created is removed (an existing one made the exclusive create fail).
        let removed = if created {
            sftp.unlink(Path::new(&remote))
        } else {
            Ok(())
        };
        let source = format!("{} (copied from {})", remote, local.display());
        match (result, removed) {
            (Ok(value), Ok(())) => Fact::read(Probe::ProbeProgram, source, value),
            (Ok(_), Err(error)) => failed(format!(
                "ran, but could not be removed: {}",
                error.message()
            )),
            (Err(reason), _) => failed(reason),
        }
    }
}

impl Target for SshTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> TargetKind {
        TargetKind::Ssh
    }

    fn address(&self) -> &str {
        &self.address
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let session = self.connect()?;
        let nonce = nonce(&self.address);
        // The probe program runs first, on the same session: copied over SFTP, run, removed.
        let probe_program = probes
            .contains(&crate::model::Probe::ProbeProgram)
            .then(|| self.run_probe_program(&session, &nonce));
        let batch = batch::Batch::new(probes, &nonce);
        let BatchRun {
            stdout,
            stderr,
            status,
            ended,
        } = self.run_batch(&session, &batch.script)?;
        let (mut facts, hostname, reached) = batch.facts(probes, &stdout, ended.as_deref());
        if let Some(fact) = probe_program {
            facts.insert(fact);
        }
        if !reached {
            // Not one frame came back: the batch never ran (sudo refused, no sh).
            let why = ended.unwrap_or_else(|| {
                let stderr = stderr.trim();
                format!(
                    "the batch did not run (exit status {}){}",
                    status.map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                )
            });
            return Err(self.error(why));
        }
        Ok(Gathered { hostname, facts })
    }
}

/// What one batch gave back.
struct BatchRun {
    stdout: Vec<u8>,
    stderr: String,
    /// The batch's exit status, when it finished.
    status: Option<i32>,
    /// Why it stopped early (a timeout, a lost connection), when it did.
    ended: Option<String>,
}

/// Copies bytes both ways between a bastion's channel and a local socket until either side
/// closes. The bastion's session is non-blocking, so one thread serves both directions.
fn pump(session: ssh2::Session, mut channel: ssh2::Channel, mut socket: UnixStream) {
    session.set_blocking(false);
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let mut buffer = [0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut progressed = false;
        match channel.read(&mut buffer) {
            Ok(0) if channel.eof() => break,
            Ok(0) => {}
            Ok(n) => {
                progressed = true;
                if write_fully(&mut socket, &buffer[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if pending.is_empty() {
            match socket.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => pending.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !pending.is_empty() {
            match channel.write(&pending) {
                Ok(n) => {
                    progressed = progressed || n > 0;
                    pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let _ = channel.close();
}

fn write_fully(socket: &mut UnixStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match socket.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The ssh_config in force: `--ssh-config`, else `~/.ssh/config` when it exists, else none.
fn load_ssh_config(options: &SshOptions) -> Result<Option<ssh2_config::SshConfig>, String> {
    let path = match &options.ssh_config {
        Some(path) => path.clone(),
        None => match home().map(|h| h.join(".ssh/config")) {
            Some(path) if path.is_file() => path,
            _ => return Ok(None),
        },
    };
    let file = std::fs::File::open(&path)
        .map_err(|e| format!("cannot read ssh_config {}: {e}", path.display()))?;
    let rules = ssh2_config::ParseRule::ALLOW_UNKNOWN_FIELDS
        | ssh2_config::ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    ssh2_config::SshConfig::default()
        .parse(&mut std::io::BufReader::new(file), rules)
        .map(Some)
        .map_err(|e| format!("ssh_config {}: {e}", path.display()))
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn is_timeout(error: &ssh2::Error) -> bool {
    matches!(
        error.code(),
        ssh2::ErrorCode::Session(-9) | ssh2::ErrorCode::Session(-37)
    ) || error.message().to_lowercase().contains("timed out")
}

fn key_type_name(key_type: ssh2::HostKeyType) -> &'static str {
    match key_type {
        ssh2::HostKeyType::Rsa => "ssh-rsa",
        ssh2::HostKeyType::Dss => "ssh-dss",
        ssh2::HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        ssh2::HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        ssh2::HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        ssh2::HostKeyType::Ed25519 => "ssh-ed25519",
        ssh2::HostKeyType::Unknown => "unknown key type",
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn default_known_hosts() -> Option<PathBuf> {
    home().map(|h| h.join(".ssh/known_hosts"))
}

fn default_identities() -> Vec<PathBuf> {
    let Some(home) = home() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| home.join(".ssh").join(name))
        .filter(|path| Path::new(path).is_file())
        .collect()
}

/// A value the host's output cannot guess, so that no text a fact contains can pose as a frame
/// marker.
fn nonce(address: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = sha2::Sha256::new();
    hasher.update(address.as_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(
        COUNTER
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .to_le_bytes(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(now.as_nanos().to_le_bytes());
    hasher.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(address: &str) -> Result<(String, String, u16, String), String> {
        SshTarget::parse(address, SshOptions::default())
            .map(|t| (t.user, t.host, t.port, t.name))
            .map_err(|e| e.reason)
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse("ssh://root@127.0.0.1:2222"),
            Ok((
                "root".into(),
                "127.0.0.1".into(),
                2222,
                "root@127.0.0.1:2222".into()
            ))
        );
        assert_eq!(
            parse("ssh://admin@[::1]:22"),
            Ok(("admin".into(), "::1".into(), 22, "admin@[::1]:22".into()))
        );
        assert_eq!(parse("ssh://me@db-1").map(|t| t.2), Ok(22));
        assert_eq!(parse("ssh://@h"), Err("empty user name before `@`".into()));
        assert_eq!(
            parse("ssh://h:99999"),
            Err("`99999` is not a port number".into())
        );
        assert_eq!(parse("ssh://"), Err("no host name".into()));
    }
}
