//! Bounds on what an SSH host can make hostcert wait for or hold: a watchdog that ends a
//! connection whose phase (connect and key exchange, authentication, gathering) overruns its
//! deadline, whatever libssh2 is blocked in, and a reader that drains a channel's stdout and
//! stderr together, up to a deadline and a cap.

use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The most of a channel's stderr kept (the rest is read and dropped).
pub const MAX_STDERR_BYTES: usize = 64 * 1024;

/// The socket an SSH session runs over: TCP, or one end of the socket pair a ProxyJump pump
/// carries.
#[derive(Debug)]
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    /// Another handle on the same socket.
    pub fn try_clone(&self) -> std::io::Result<Socket> {
        Ok(match self {
            Socket::Tcp(tcp) => Socket::Tcp(tcp.try_clone()?),
            Socket::Unix(unix) => Socket::Unix(unix.try_clone()?),
        })
    }

    fn shutdown(&self) {
        let _ = match self {
            Socket::Tcp(tcp) => tcp.shutdown(Shutdown::Both),
            Socket::Unix(unix) => unix.shutdown(Shutdown::Both),
        };
    }
}

impl std::os::fd::AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(tcp) => tcp.as_fd(),
            Socket::Unix(unix) => unix.as_fd(),
        }
    }
}

#[derive(Default)]
struct WatchState {
    deadline: Option<Instant>,
    fired: bool,
    done: bool,
}

/// Shuts a session's socket down when the armed deadline passes, so that any libssh2 call
/// blocked on it (a banner that never ends, a key exchange that trickles, an authentication
/// that never answers) returns at once.
pub struct Watchdog {
    state: Arc<(Mutex<WatchState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watchdog")
    }
}

impl Watchdog {
    /// Watches `socket` (a handle of its own), armed with `deadline`.
    pub fn new(socket: Socket, deadline: Instant) -> Watchdog {
        let state = Arc::new((
            Mutex::new(WatchState {
                deadline: Some(deadline),
                ..WatchState::default()
            }),
            Condvar::new(),
        ));
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let (lock, wake) = &*shared;
            let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !state.done {
                match state.deadline {
                    Some(deadline) if Instant::now() >= deadline => {
                        socket.shutdown();
                        state.fired = true;
                        state.deadline = None;
                    }
                    Some(deadline) => {
                        let wait = deadline.saturating_duration_since(Instant::now());
                        state = wake
                            .wait_timeout(state, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    None => state = wake.wait(state).unwrap_or_else(|e| e.into_inner()),
                }
            }
        });
        Watchdog {
            state,
            thread: Some(thread),
        }
    }

    /// Sets the deadline of the next phase.
    pub fn arm(&self, deadline: Instant) {
        let (lock, wake) = &*self.state;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !state.fired {
            state.deadline = Some(deadline);
        }
        wake.notify_all();
    }

    /// Lets the session live on without a deadline.
    pub fn disarm(&self) {
        let (lock, wake) = &*self.state;
        lock.lock().unwrap_or_else(|e| e.into_inner()).deadline = None;
        wake.notify_all();
    }

    /// Whether a deadline passed and the socket was shut down.
    pub fn fired(&self) -> bool {
        self.state.0.lock().map(|s| s.fired).unwrap_or(true)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        {
            let (lock, wake) = &*self.state;
            let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
            state.done = true;
            wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until the session's socket is ready in the directions libssh2 is blocked on, or the
/// deadline passes (`false`).
fn wait_socket(session: &ssh2::Session, socket: &Socket, deadline: Instant) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return false;
    }
    let mut flags = PollFlags::empty();
    let directions = session.block_directions();
    if matches!(
        directions,
        ssh2::BlockDirections::Inbound | ssh2::BlockDirections::Both
    ) {
        flags |= PollFlags::IN;
    }
    if matches!(
        directions,
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    ) {
        flags |= PollFlags::OUT;
    }
    if flags.is_empty() {
        flags = PollFlags::IN;
    }
    // Short waits, so that a session that has data buffered is read again soon.
    let wait = remaining.min(Duration::from_millis(200));
    let timeout = rustix::event::Timespec::try_from(wait).ok();
    let mut fds = [PollFd::new(socket, flags)];
    let _ = rustix::event::poll(&mut fds, timeout.as_ref());
    true
}

/// What a channel gave back.
#[derive(Debug, Default)]
pub struct Drained {
    /// The first [`MAX_STDERR_BYTES`] of stderr.
    pub stderr: String,
    /// The exit status, when the channel closed.
    pub status: Option<i32>,
    /// Why reading stopped early (the deadline, the cap, a lost connection), when it did.
    pub ended: Option<String>,
}

/// Reads a channel's stdout (into `sink`, which refuses more than it holds by returning the
/// reason) and its stderr together until both end, the deadline passes or the sink is full,
/// then its exit status. Neither stream can stall the other: a host writing megabytes to
/// stderr is drained as it writes. `timeout` names the option that set the deadline.
pub fn drain(
    session: &ssh2::Session,
    socket: &Socket,
    channel: &mut ssh2::Channel,
    deadline: Instant,
    timeout: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Drained {
    let mut drained = Drained::default();
    let mut stderr = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut out_done, mut err_done) = (false, false);
    session.set_blocking(false);
    let lost = |error: std::io::Error| format!("the connection was lost: {error}");
    while !(out_done && err_done) {
        // A signal ends the wait (within one short poll), so that what the run left on the host
        // can still be removed before it exits.
        if let Some(reason) = crate::interrupt::reason() {
            drained.ended = Some(reason);
            break;
        }
        let mut progressed = false;
        if !out_done {
            match channel.read(&mut buffer) {
                Ok(0) => out_done = true,
                Ok(n) => {
                    progressed = true;
                    if let Err(reason) = sink(&buffer[..n]) {
                        drained.ended = Some(reason);
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    drained.ended = Some(lost(e));
                    break;
                }
            }
        }
        if !err_done {
            match channel.stderr().read(&mut buffer) {
                Ok(0) => err_done = true,
                Ok(n) => {
                    progressed = true;
                    let room = MAX_STDERR_BYTES.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&buffer[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    drained.ended = Some(lost(e));
                    break;
                }
            }
        }
        if !progressed && !wait_socket(session, socket, deadline) {
            drained.ended = Some(timeout.to_owned());
            break;
        }
    }
    if drained.ended.is_none() {
        // The streams ended: wait for the channel to close, to read the exit status.
        loop {
            match channel.wait_close() {
                Ok(()) => {
                    drained.status = channel.exit_status().ok();
                    break;
                }
                Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {
                    if !wait_socket(session, socket, deadline) {
                        drained.ended = Some(timeout.to_owned());
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    }
    session.set_blocking(true);
    drained.stderr = String::from_utf8_lossy(&stderr).into_owned();
    drained
}
