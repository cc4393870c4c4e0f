//! Commands run on this machine for facts: with a time bound and bounded output, never through
//! a shell. The local target's `command` probes, `uname -m`, and the probe program run through
//! [`run_command`].

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::facts::FactValue;

/// How long a command probe may run.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a command's stdout and of its stderr that is read.
const MAX_OUTPUT_BYTES: u64 = crate::fsio::cap::FACT_TEXT;

/// The record of a `command` fact: `exit-status`, `stdout` and `stderr` (trailing whitespace
/// trimmed).
pub(super) fn command_record(status: i32, stdout: &str, stderr: &str) -> FactValue {
    FactValue::Record(
        [
            ("exit-status", status.to_string()),
            ("stdout", stdout.trim_end().to_owned()),
            ("stderr", stderr.trim_end().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
        .collect(),
    )
}

/// What a command printed, and how it ended.
pub(super) struct CommandOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with a time bound and bounded output. `Ok(None)` when the program does not
/// exist.
pub(super) fn run_command(argv: &[String]) -> Result<Option<CommandOutput>, String> {
    let mut child = match Command::new(&argv[0])
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot run `{}`: {error}", argv[0])),
    };
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(MAX_OUTPUT_BYTES).read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{}` did not finish within {} s",
                    argv.join(" "),
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(error) => return Err(error.to_string()),
        }
    };
    Ok(Some(CommandOutput {
        status: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }))
}
