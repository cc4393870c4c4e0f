//! Interruption: what SIGINT and SIGTERM do to a run.
//!
//! [`install`] (called by `run` and `gather`) turns the first SIGINT or SIGTERM into a request
//! that the run stop: no target is started after it ([`requested`] is what targets and the
//! engine poll), targets in flight tear down what they made outside the process (a real run's
//! namespaces and processes hold a [`Teardown`] while they do), and the run writes the report
//! of what was read, the other targets being `error: interrupted`, then exits with
//! 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
//!
//! A second signal stops at once: the process groups registered with [`ProcessGroup`] are sent
//! SIGTERM (a real run's script tears itself down on it), the files registered with
//! [`RemoveOnExit`] (temporary report files) and this process's temporary folders
//! ([`crate::temp`]) are removed, and the process exits with the second signal's code.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A signal that interrupts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit code 130.
    Interrupt,
    /// SIGTERM: exit code 143.
    Terminate,
}

impl Signal {
    /// Its name: `SIGINT`, `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// 128 + its number, as shells report a process it ended: [`crate::cli::exit::INTERRUPTED`]
    /// or [`crate::cli::exit::TERMINATED`].
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => crate::cli::exit::INTERRUPTED,
            Signal::Terminate => crate::cli::exit::TERMINATED,
        }
    }

    fn number(self) -> i32 {
        match self {
            Signal::Interrupt => signal_hook::consts::SIGINT,
            Signal::Terminate => signal_hook::consts::SIGTERM,
        }
    }

    fn from_number(number: i32) -> Option<Signal> {
        [Signal::Interrupt, Signal::Terminate]
            .into_iter()
            .find(|s| s.number() == number)
    }
}

/// The first signal received, by number; 0 before any.
static REQUESTED: AtomicI32 = AtomicI32::new(0);
/// How many teardowns are in flight.
static TEARDOWNS: AtomicUsize = AtomicUsize::new(0);
/// Process groups to end on a second signal.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Files to remove on a second signal.
static FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<Signal> {
    Signal::from_number(REQUESTED.load(Ordering::SeqCst))
}

/// Asks the run to stop, as the first signal does (the first request stays).
pub fn request(signal: Signal) {
    let _ = REQUESTED.compare_exchange(0, signal.number(), Ordering::SeqCst, Ordering::SeqCst);
}

/// `interrupted by SIGINT`, when a signal asked the run to stop.
pub fn reason() -> Option<String> {
    requested().map(|signal| format!("interrupted by {}", signal.name()))
}

/// Starts listening for SIGINT and SIGTERM (once per process): the first asks the run to stop,
/// the second stops it at once.
pub fn install() -> std::io::Result<()> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let mut signals = signal_hook::iterator::Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
            ])
            .map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("hostcert-signals".to_owned())
                .spawn(move || {
                    for number in signals.forever() {
                        let Some(signal) = Signal::from_number(number) else {
                            continue;
                        };
                        if requested().is_some() {
                            stop_now(signal);
                        }
                        request(signal);
                        eprintln!(
                            "\nhostcert: {}: stopping; the report will hold what was read (again to stop at once)",
                            signal.name()
                        );
                    }
                })
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(std::io::Error::other)
}

/// What a run stopped by a first signal removes as it exits, after writing its report: the
/// files still registered ([`RemoveOnExit`]: a blob that was being fetched into the cache) and
/// this process's temporary folders (those of targets abandoned in flight). Returns what could
/// not be removed.
pub fn remove_what_was_abandoned() -> Vec<String> {
    let mut left = Vec::new();
    for file in lock(&FILES).drain(..) {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                left.push(format!("{}: {e}", file.display()));
            }
            _ => {}
        }
    }
    left.extend(crate::temp::remove_own_folders());
    left
}

/// The second signal: end registered process groups, remove registered files and this
/// process's temporary folders, exit.
fn stop_now(signal: Signal) -> ! {
    for group in lock(&GROUPS).iter() {
        send(*group, rustix::process::Signal::TERM, true);
    }
    for file in lock(&FILES).iter() {
        let _ = std::fs::remove_file(file);
    }
    let _ = crate::temp::remove_own_folders();
    eprintln!("hostcert: {} again: stopped at once", signal.name());
    std::process::exit(i32::from(signal.exit_code()))
}

/// Sends `signal` to the process `pid`, or to the process group it leads when `group`; a
/// process that is gone is not an error.
pub(crate) fn send(pid: u32, signal: rustix::process::Signal, group: bool) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = if group {
            rustix::process::kill_process_group(pid, signal)
        } else {
            rustix::process::kill_process(pid, signal)
        };
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held while something outside the process is being made or torn down (a real run's
/// namespaces): an interrupted run waits for it, a bounded time, before it writes its report.
#[derive(Debug)]
#[must_use = "the teardown is in flight only while the guard lives"]
pub struct Teardown(());

impl Teardown {
    /// Starts one.
    pub fn start() -> Teardown {
        TEARDOWNS.fetch_add(1, Ordering::SeqCst);
        Teardown(())
    }

    /// How many are in flight.
    pub fn in_flight() -> usize {
        TEARDOWNS.load(Ordering::SeqCst)
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        TEARDOWNS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A process group sent SIGTERM if a second signal stops the run at once.
#[derive(Debug)]
#[must_use = "the group is registered only while the guard lives"]
pub struct ProcessGroup(u32);

impl ProcessGroup {
    /// Registers the group led by `pid`.
    pub fn register(pid: u32) -> ProcessGroup {
        lock(&GROUPS).push(pid);
        ProcessGroup(pid)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        lock(&GROUPS).retain(|group| *group != self.0);
    }
}

/// A reader that fails once a signal has asked the run to stop, so that a long read (a layer
/// being verified, unpacked or fetched) ends within one chunk of the signal instead of writing
/// on while the run removes its folders and exits.
#[derive(Debug)]
pub struct Stopping<R>(pub R);

impl<R: std::io::Read> std::io::Read for Stopping<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match reason() {
            Some(reason) => Err(std::io::Error::other(reason)),
            None => self.0.read(buf),
        }
    }
}

/// A file removed if a second signal stops the run at once (a temporary report file).
#[derive(Debug)]
#[must_use = "the file is registered only while the guard lives"]
pub struct RemoveOnExit(PathBuf);

impl RemoveOnExit {
    /// Registers `path`.
    pub fn register(path: &Path) -> RemoveOnExit {
        lock(&FILES).push(path.to_owned());
        RemoveOnExit(path.to_owned())
    }
}

impl Drop for RemoveOnExit {
    fn drop(&mut self) {
        lock(&FILES).retain(|file| *file != self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_the_shell_s_exit_codes() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::from_number(15), Some(Signal::Terminate));
        assert_eq!(Signal::from_number(9), None);
    }

    #[test]
    fn guards_register_while_they_live() {
        let before = Teardown::in_flight();
        let teardown = Teardown::start();
        assert_eq!(Teardown::in_flight(), before + 1);
        drop(teardown);
        let file = RemoveOnExit::register(Path::new("/nonexistent/x"));
        assert!(lock(&FILES).contains(&PathBuf::from("/nonexistent/x")));
        drop(file);
        assert!(!lock(&FILES).contains(&PathBuf::from("/nonexistent/x")));
    }
}
