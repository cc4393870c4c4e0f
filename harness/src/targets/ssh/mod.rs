//! `ssh://[user@]host[:port]`: a host reached over SSH (ssh2), read in one round-trip.
//!
//! One TCP connection, one authenticated session, one exec channel running one generated
//! script ([`batch`]) that prints every fact the host's checks need; the facts are then
//! evaluated locally. Host keys are checked against known_hosts as OpenSSH checks them
//! ([`known_hosts`]): an unknown, changed or revoked key is an error for that host, naming the
//! key's fingerprint.
//!
//! Every phase is bounded ([`io`]): `--connect-timeout` bounds the TCP connection, the banner and
//! the key exchange together, `--auth-timeout` the login, `--gather-timeout` the probe program
//! and the batch; a host's output is read up to [`MAX_OUTPUT_BYTES`] and its stderr is drained as
//! it comes. ProxyJump chains (ssh_config's, hop by hop) are at most [`MAX_JUMPS`] long, and a
//! loop is an error naming it.

mod batch;
mod io;
mod known_hosts;

pub use batch::MAX_OUTPUT_BYTES;
pub use io::MAX_STDERR_BYTES;
pub use known_hosts::MAX_KNOWN_HOSTS_BYTES;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use io::{Socket, Watchdog};
use known_hosts::{Known, Status};

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
    /// Record unknown host keys (trust on first use), appending one line as
    /// `ssh -o StrictHostKeyChecking=accept-new` does; changed and revoked keys are still
    /// refused.
    pub accept_new_host_keys: bool,
    /// Run the batch under one `sudo -n`.
    pub sudo: bool,
    /// Bound on the TCP connection, the banner and the key exchange, together.
    pub connect_timeout: Duration,
    /// Bound on authentication.
    pub auth_timeout: Duration,
    /// Bound on running the probe program and the batch and reading their output.
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

/// The longest ProxyJump chain hostcert follows, in hops.
pub const MAX_JUMPS: usize = 8;

impl SshTarget {
    /// Parses `ssh://[user@]host[:port]` (IPv6 as `[::1]`). The user defaults to `$USER`, the
    /// port to 22. ssh_config's entry for the host applies, and its ProxyJump bastions (each
    /// with its own entry) are reached first.
    pub fn parse(address: &str, options: SshOptions) -> Result<SshTarget, TargetError> {
        SshTarget::parse_hop(address, options, &mut Vec::new(), None)
    }

    /// One hop of a route: `route` holds the hosts already on it (the target first), `jumps`
    /// the bastions a ProxyJump list before this host named for it (which replace its own
    /// ProxyJump, as `ssh -J` does).
    fn parse_hop(
        address: &str,
        options: SshOptions,
        route: &mut Vec<String>,
        jumps: Option<Vec<String>>,
    ) -> Result<SshTarget, TargetError> {
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
        let hop = host.to_ascii_lowercase();
        if route.contains(&hop) {
            let mut names = route.clone();
            names.push(hop);
            return Err(fail(&format!(
                "ProxyJump loop: {} (fix ProxyJump in ssh_config)",
                names.join(" -> ")
            )));
        }
        route.push(hop);
        if route.len() > MAX_JUMPS + 1 {
            return Err(fail(&format!(
                "ProxyJump chain longer than {MAX_JUMPS} hops: {} -> ...",
                route.join(" -> ")
            )));
        }
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
        let mut jumps = jumps
            .or_else(|| params.as_ref().and_then(|p| p.proxy_jump.clone()))
            .unwrap_or_default();
        jumps.retain(|j| !j.trim().is_empty());
        if jumps
            .first()
            .is_some_and(|j| j.eq_ignore_ascii_case("none"))
        {
            jumps.clear();
        }
        // `ProxyJump a,b`: this host is reached through b, and b through a.
        let jump = match jumps.pop() {
            Some(last) => {
                let spec = last.trim();
                let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
                let bastion = SshTarget::parse_hop(
                    &format!("ssh://{spec}"),
                    SshOptions {
                        identity: None,
                        ..options.clone()
                    },
                    route,
                    (!jumps.is_empty()).then_some(jumps),
                )
                .map_err(|e| {
                    if e.reason.starts_with("ProxyJump ") {
                        fail(&e.reason)
                    } else {
                        fail(&format!("ProxyJump {spec}: {}", e.reason))
                    }
                })?;
                Some(Box::new(bastion))
            }
            None => None,
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

    fn known_hosts_path(&self) -> Result<PathBuf, TargetError> {
        match &self.options.known_hosts {
            Some(path) => Ok(path.clone()),
            None => default_known_hosts().ok_or_else(|| {
                self.error("no known_hosts file: HOME is not set; give one with --known-hosts FILE")
            }),
        }
    }

    /// Connects, checks the host key and logs in, each phase within its deadline.
    pub(crate) fn connect(&self) -> Result<Connection, TargetError> {
        let known_hosts = self.known_hosts_path()?;
        // Read before the handshake: the host key algorithms are negotiated from it.
        let known = Known::read(&known_hosts, &self.host, self.port).map_err(|r| self.error(r))?;
        let connect_timeout = self.options.connect_timeout;
        let (socket, deadline) = match &self.jump {
            None => {
                let deadline = Instant::now() + connect_timeout;
                (Socket::Tcp(self.tcp_connect(deadline)?), deadline)
            }
            Some(bastion) => {
                let socket = Socket::Unix(self.tunnel_through(bastion)?);
                (socket, Instant::now() + connect_timeout)
            }
        };
        let clone = |socket: &Socket| {
            socket
                .try_clone()
                .map_err(|e| self.error(format!("cannot watch the connection: {e}")))
        };
        let watchdog = Watchdog::new(clone(&socket)?, deadline);
        let handle = clone(&socket)?;
        let mut session = ssh2::Session::new()
            .map_err(|e| self.error(format!("cannot start an SSH session: {e}")))?;
        session
            .method_pref(ssh2::MethodType::HostKey, &known.algorithms())
            .map_err(|e| {
                self.error(format!(
                    "cannot choose host key algorithms: {}",
                    e.message()
                ))
            })?;
        session.set_tcp_stream(socket);
        session.set_timeout(millis(remaining(deadline)).max(1));
        session.handshake().map_err(|e| {
            self.error(if watchdog.fired() || is_timeout(&e) {
                format!(
                    "no SSH handshake within {} s (--connect-timeout): the port accepts connections but does not complete SSH's banner and key exchange",
                    connect_timeout.as_secs()
                )
            } else {
                format!("SSH handshake failed: {}", e.message())
            })
        })?;
        self.verify_host_key(&session, &known_hosts)?;
        let auth_timeout = self.options.auth_timeout;
        let auth_deadline = Instant::now() + auth_timeout;
        watchdog.arm(auth_deadline);
        session.set_timeout(millis(auth_timeout).max(1));
        self.authenticate(&session).map_err(|e| {
            // libssh2's own timeout and the watchdog are set to the same deadline: whichever
            // ends the login first, the reason is the deadline.
            if watchdog.fired() || remaining(auth_deadline).is_zero() {
                self.error(format!(
                    "authentication as {} not finished within {} s (--auth-timeout)",
                    self.user,
                    auth_timeout.as_secs()
                ))
            } else {
                e
            }
        })?;
        Ok(Connection {
            session,
            socket: handle,
            watchdog,
        })
    }

    fn tcp_connect(&self, deadline: Instant) -> Result<TcpStream, TargetError> {
        let addresses: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.error(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last_error = None;
        for address in &addresses {
            let left = remaining(deadline);
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(address, left) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(error) => last_error = Some(error),
            }
        }
        let reason = last_error.map_or_else(
            || {
                if addresses.is_empty() {
                    "no address".to_owned()
                } else {
                    format!(
                        "not within {} s (--connect-timeout)",
                        self.options.connect_timeout.as_secs()
                    )
                }
            },
            |e| e.to_string(),
        );
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
        let connection = bastion.connect().map_err(through)?;
        let timeout = self.options.connect_timeout;
        connection.watchdog.arm(Instant::now() + timeout);
        connection.session.set_timeout(millis(timeout).max(1));
        let channel = connection
            .session
            .channel_direct_tcpip(&self.host, self.port, None)
            .map_err(|e| {
                self.error(format!(
                    "the bastion {} cannot reach {}:{}: {}",
                    bastion.name,
                    self.host,
                    self.port,
                    if connection.watchdog.fired() {
                        format!(
                            "no answer within {} s (--connect-timeout)",
                            timeout.as_secs()
                        )
                    } else {
                        e.message().to_owned()
                    }
                ))
            })?;
        // The tunnel lives as long as this host's session; a bastion that stalls stalls that
        // session, whose own deadlines then end it.
        connection.watchdog.disarm();
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| self.error(format!("cannot make a socket pair: {e}")))?;
        std::thread::spawn(move || pump(connection, channel, theirs));
        Ok(ours)
    }

    /// Checks the host's key against known_hosts as `ssh -o StrictHostKeyChecking=yes` does,
    /// and with `--accept-new-host-keys` appends an unknown one as
    /// `StrictHostKeyChecking=accept-new` does.
    fn verify_host_key(&self, session: &ssh2::Session, path: &Path) -> Result<(), TargetError> {
        let (key, key_type) = session
            .host_key()
            .ok_or_else(|| self.error("the host offered no host key"))?;
        let fingerprint = format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(key))
        );
        let kind = key_type_name(key_type);
        let host = self.host_port();
        let file = path.display();
        // Reading, checking and (with --accept-new-host-keys) appending is one step for all
        // hosts of a run, so that each host sees the keys the others added.
        static KNOWN_HOSTS: Mutex<()> = Mutex::new(());
        let _guard = KNOWN_HOSTS.lock().unwrap_or_else(|e| e.into_inner());
        let known = Known::read(path, &self.host, self.port).map_err(|r| self.error(r))?;
        match known.check(key) {
            Status::Trusted(_) => Ok(()),
            Status::Revoked(line) => Err(self.error(format!(
                "the host key of {host} is REVOKED: it offered {kind} {fingerprint}, which {file}:{line} marks @revoked; refused"
            ))),
            Status::Changed(line) => Err(self.error(format!(
                "the host key of {host} has CHANGED: it offered {kind} {fingerprint}, which does not match {file}:{line}; this may be an attack (fix known_hosts only if the key changed on purpose)"
            ))),
            Status::Unknown { ca_line: Some(line) } => Err(self.error(format!(
                "the host key of {host} is not in {file}: it offered {kind} {fingerprint}; {file}:{line} names a certificate authority (@cert-authority) for it, but hostcert does not verify host certificates: list the host's own key (ssh-keyscan)"
            ))),
            Status::Unknown { ca_line: None } if self.options.accept_new_host_keys => {
                known_hosts::append(path, &self.host, self.port, key).map_err(|reason| {
                    self.error(format!("cannot record the host key of {host}: {reason}"))
                })
            }
            Status::Unknown { ca_line: None } => Err(self.error(format!(
                "the host key of {host} is not in {file}: it offered {kind} {fingerprint}; add it (ssh-keyscan), or run with --accept-new-host-keys"
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
                match agent_login(session, user) {
                    Ok(()) => return Ok(()),
                    Err(e) => tried.push(format!("ssh-agent ({e})")),
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

    /// Runs the batch over one exec channel, reading its output (decoded as it comes, up to
    /// [`MAX_OUTPUT_BYTES`]) and its stderr together until `deadline`.
    fn run_batch(
        &self,
        connection: &Connection,
        script: &str,
        deadline: Instant,
    ) -> Result<BatchRun, TargetError> {
        let session = &connection.session;
        let timeout = format!(
            "no complete answer within {} s (--gather-timeout)",
            self.options.gather_timeout.as_secs()
        );
        let failed = |what: String| {
            self.error(if connection.watchdog.fired() {
                timeout.clone()
            } else {
                what
            })
        };
        session.set_timeout(millis(remaining(deadline)).max(1));
        let mut channel = session
            .channel_session()
            .map_err(|e| failed(format!("cannot open a session channel: {}", e.message())))?;
        let command = if self.options.sudo {
            "sudo -n sh -s"
        } else {
            "sh -s"
        };
        channel
            .exec(command)
            .map_err(|e| failed(format!("cannot run `{command}`: {}", e.message())))?;
        channel
            .write_all(script.as_bytes())
            .and_then(|()| channel.send_eof().map_err(std::io::Error::from))
            .map_err(|e| failed(format!("cannot send the batch: {e}")))?;
        let mut output = batch::Output::default();
        let mut drained = io::drain(
            session,
            &connection.socket,
            &mut channel,
            deadline,
            &timeout,
            &mut |bytes| output.push(bytes),
        );
        if connection.watchdog.fired() {
            drained.ended = Some(timeout);
        }
        let _ = session.disconnect(None, "hostcert done", None);
        Ok(BatchRun {
            decoded: output.finish(),
            stderr: drained.stderr,
            status: drained.status,
            ended: drained.ended,
        })
    }
}

/// How long the probe program's removal may take after a signal stopped the run.
const REMOVE_AFTER_SIGNAL: Duration = Duration::from_secs(5);

/// The most output hostcert reads from its probe program.
const MAX_PROBE_PROGRAM_OUTPUT: usize = 1 << 20;

impl SshTarget {
    /// Copies hostcert's probe program to the host over SFTP (`/tmp/hostcert-probe-NONCE`, mode
    /// 0700, created exclusively), runs it (under `sudo -n` with `--sudo`), and removes it
    /// whatever happened.
    fn run_probe_program(
        &self,
        connection: &Connection,
        nonce: &str,
        deadline: Instant,
    ) -> crate::facts::Fact {
        use crate::facts::Fact;
        use crate::model::Probe;
        use crate::targets::probe_program;
        let session = &connection.session;
        let remote = format!("/tmp/{}-{nonce}", probe_program::PROGRAM);
        let failed = |reason: String| Fact::failed(Probe::ProbeProgram, remote.clone(), reason);
        let local = match probe_program::locate() {
            Ok(local) => local,
            Err(reason) => {
                return Fact::failed(Probe::ProbeProgram, probe_program::PROGRAM, reason)
            }
        };
        let bytes = match crate::fsio::read_regular(
            &local,
            crate::fsio::cap::PROBE_PROGRAM,
            "probe program",
        ) {
            Ok(bytes) => bytes,
            Err(error) => return failed(error.to_string()),
        };
        let timeout = format!(
            "no complete answer within {} s (--gather-timeout)",
            self.options.gather_timeout.as_secs()
        );
        session.set_timeout(millis(remaining(deadline)).max(1));
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
        // The program's channel outlives the closure: after a signal, closing it waits for the
        // host, so the program is removed first.
        let mut kept: Option<ssh2::Channel> = None;
        let result = upload.and_then(|()| {
            let channel = kept.insert(
                session
                    .channel_session()
                    .map_err(|e| format!("cannot open a session channel: {}", e.message()))?,
            );
            let command = if self.options.sudo {
                format!("sudo -n {remote}")
            } else {
                remote.clone()
            };
            channel
                .exec(&command)
                .map_err(|e| format!("cannot run {remote}: {}", e.message()))?;
            let mut stdout = Vec::new();
            let drained = io::drain(
                session,
                &connection.socket,
                channel,
                deadline,
                &timeout,
                &mut |bytes| {
                    if stdout.len() + bytes.len() > MAX_PROBE_PROGRAM_OUTPUT {
                        return Err(format!(
                            "{remote} wrote more than {} MiB",
                            MAX_PROBE_PROGRAM_OUTPUT >> 20
                        ));
                    }
                    stdout.extend_from_slice(bytes);
                    Ok(())
                },
            );
            if let Some(reason) = drained.ended {
                return Err(reason);
            }
            match drained.status {
                Some(0) => probe_program::parse(&String::from_utf8_lossy(&stdout)),
                Some(status) => Err(format!(
                    "{remote} exited with status {status}: {}",
                    drained.stderr.trim()
                )),
                None => Err(format!("{remote} gave no exit status")),
            }
        });
        // Only a file this run created is removed (an existing one made the exclusive create fail).
        // After a signal the run waits for this removal (a teardown), for at most a few seconds.
        let interrupted = crate::interrupt::requested().is_some();
        let _teardown = interrupted.then(crate::interrupt::Teardown::start);
        let removed = if created && !connection.watchdog.fired() {
            let wait = if interrupted {
                REMOVE_AFTER_SIGNAL
            } else {
                remaining(deadline)
            };
            session.set_timeout(millis(wait).max(1000));
            sftp.unlink(Path::new(&remote))
                .map_err(|e| e.message().to_owned())
        } else if created {
            Err(timeout.clone())
        } else {
            Ok(())
        };
        if interrupted {
            // Closing a channel whose program still runs waits for the host: briefly.
            session.set_timeout(1000);
        }
        drop(kept);
        let source = format!("{} (copied from {})", remote, local.display());
        match (result, removed) {
            (Ok(value), Ok(())) => Fact::read(Probe::ProbeProgram, source, value),
            (Ok(_), Err(error)) => failed(format!("ran, but could not be removed: {error}")),
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
        let connection = self.connect()?;
        let deadline = Instant::now() + self.options.gather_timeout;
        // The reads below stop at the deadline themselves; the watchdog ends whatever else
        // blocks (SFTP, a host that does not read its script) a moment later.
        connection.watchdog.arm(deadline + Duration::from_secs(1));
        let nonce = nonce(&self.address);
        // The probe program runs first, on the same session: copied over SFTP, run, removed.
        let probe_program = probes
            .contains(&crate::model::Probe::ProbeProgram)
            .then(|| self.run_probe_program(&connection, &nonce, deadline));
        let batch = batch::Batch::new(probes, &nonce);
        let BatchRun {
            decoded,
            stderr,
            status,
            ended,
        } = self.run_batch(&connection, &batch.script, deadline)?;
        let (mut facts, hostname, reached) = batch.facts(probes, &decoded, ended.as_deref());
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
        // Stopped mid-batch (a timeout, a lost connection): what came back is kept and judged.
        Ok(Gathered {
            hostname,
            facts,
            gather_error: ended.map(|reason| format!("the host's batch stopped: {reason}")),
        })
    }
}

/// A logged-in session and what bounds it.
pub(crate) struct Connection {
    session: ssh2::Session,
    /// A handle on the session's socket, to wait on it.
    socket: Socket,
    watchdog: Watchdog,
}

impl Connection {
    /// The authenticated session (a `vm:` target reads the guest's own files over SFTP in it).
    pub(crate) fn session(&self) -> &ssh2::Session {
        &self.session
    }
}

/// What one batch gave back.
struct BatchRun {
    /// The output, decoded.
    decoded: Vec<u8>,
    stderr: String,
    /// The batch's exit status, when it finished.
    status: Option<i32>,
    /// Why it stopped early (a timeout, a lost connection, too much output), when it did.
    ended: Option<String>,
}

/// Logs in with each of ssh-agent's keys in turn, as `ssh` does.
fn agent_login(session: &ssh2::Session, user: &str) -> Result<(), String> {
    let mut agent = session.agent().map_err(|e| e.message().to_owned())?;
    agent.connect().map_err(|e| e.message().to_owned())?;
    agent
        .list_identities()
        .map_err(|e| e.message().to_owned())?;
    let identities = agent.identities().map_err(|e| e.message().to_owned())?;
    let mut last = "no identities found in the ssh agent".to_owned();
    for identity in &identities {
        match agent.userauth(user, identity) {
            Ok(()) => return Ok(()),
            Err(e) => last = e.message().to_owned(),
        }
    }
    Err(last)
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Copies bytes both ways between a bastion's channel and a local socket until either side
/// closes. The bastion's session is non-blocking, so one thread serves both directions.
fn pump(connection: Connection, mut channel: ssh2::Channel, mut socket: UnixStream) {
    connection.session.set_blocking(false);
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
    let bytes = crate::fsio::read_regular(&path, crate::fsio::cap::SSH_CONFIG, "ssh_config")
        .map_err(|e| e.to_string())?;
    let rules = ssh2_config::ParseRule::ALLOW_UNKNOWN_FIELDS
        | ssh2_config::ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    ssh2_config::SshConfig::default()
        .parse(&mut std::io::Cursor::new(bytes), rules)
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

/// The batch script for `probes` with `nonce`; for the fuzz target `batch_output`
/// ([`crate::fuzz`]).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_batch_script(probes: &ProbeSet, nonce: &str) -> String {
    batch::Batch::new(probes, nonce).script
}

/// Reads a host's output for a batch of `probes` made with `nonce` as a gather does: decoded
/// as it arrives, in pieces of `piece` bytes, then turned into facts; for the fuzz target
/// `batch_output` ([`crate::fuzz`]).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_batch_output(
    probes: &ProbeSet,
    nonce: &str,
    output: &[u8],
    piece: usize,
    ended: Option<&str>,
) -> crate::facts::FactSet {
    let mut decoder = batch::Output::default();
    let mut ended = ended.map(str::to_owned);
    for bytes in output.chunks(piece.max(1)) {
        if let Err(reason) = decoder.push(bytes) {
            ended = Some(reason);
            break;
        }
    }
    batch::Batch::new(probes, nonce)
        .facts(probes, &decoder.finish(), ended.as_deref())
        .0
}

/// Reads the known_hosts file `path` for `host` and `port` as a connection does, and checks
/// each key blob against it; then appends `new_key` as `--accept-new-host-keys` does, and the
/// file read again must know it. For the fuzz target `known_hosts` ([`crate::fuzz`]).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_known_hosts(
    path: &Path,
    host: &str,
    port: u16,
    blobs: &[&[u8]],
    new_key: &[u8],
) {
    if let Ok(known) = Known::read(path, host, port) {
        let _ = known.algorithms();
        for blob in blobs {
            let _ = known.check(blob);
        }
    }
    if known_hosts::append(path, host, port, new_key).is_ok() {
        let known = Known::read(path, host, port).expect("known_hosts hostcert appended to reads");
        let status = known.check(new_key);
        assert!(
            matches!(status, Status::Trusted(_) | Status::Revoked(_)),
            "a key appended for {host}:{port} reads back as {status:?}"
        );
    }
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
