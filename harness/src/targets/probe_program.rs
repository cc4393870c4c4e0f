//! `hostcert-probe`, the probe program: the only program hostcert itself runs on a host. It is
//! built from this workspace (`probe/`), exercises kernel interfaces in child processes and prints
//! one `NAME=RESULT` line per interface; this module finds it, runs it and reads its output into
//! the `probe-program` fact.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::facts::{Fact, FactValue};
use crate::model::Probe;

/// The program's file name.
pub const PROGRAM: &str = "hostcert-probe";

/// Where the probe program is: `$HOSTCERT_PROBE`, else beside the running `hostcert` (or one
/// folder up, for test binaries under `target/*/deps`).
pub fn locate() -> Result<PathBuf, String> {
    if std::env::var_os("HOSTCERT_PROBE").is_some() {
        return locate_override();
    }
    locate_beside_hostcert()
}

fn locate_override() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("HOSTCERT_PROBE") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "HOSTCERT_PROBE names {}, which is not a file",
                path.display()
            ))
        };
    }
    locate_beside_hostcert()
}

/// The probe program built with hostcert, beside its binary, whatever `$HOSTCERT_PROBE` says.
pub fn locate_beside_hostcert() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find hostcert itself: {e}"))?;
    let mut tried = Vec::new();
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(PROGRAM);
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(format!(
        "{PROGRAM} not found (looked at {}); every build of hostcert (`cargo build`, `cargo install --path harness`) puts it beside hostcert; or set HOSTCERT_PROBE",
        tried.join(", ")
    ))
}

/// Runs the probe program on this machine.
pub(super) fn run_local(probe: &Probe) -> Fact {
    let path = match locate() {
        Ok(path) => path,
        Err(reason) => return Fact::failed(probe.clone(), PROGRAM, reason),
    };
    let source = path.display().to_string();
    match super::command::run_command(std::slice::from_ref(&source)) {
        Ok(Some(output)) if output.status == 0 => match parse(&output.stdout) {
            Ok(record) => Fact::read(probe.clone(), source, record),
            Err(reason) => Fact::failed(probe.clone(), source, reason),
        },
        Ok(Some(output)) => Fact::failed(
            probe.clone(),
            source,
            format!(
                "exited with status {}: {}",
                output.status,
                output.stderr.trim()
            ),
        ),
        Ok(None) => Fact::failed(probe.clone(), source, "the program vanished"),
        Err(reason) => Fact::failed(probe.clone(), source, reason),
    }
}

/// The program's output, `NAME=RESULT` lines, as a record. Lines that are not of that form are
/// refused, so a program that is not the probe program cannot pass for it.
pub fn parse(output: &str) -> Result<FactValue, String> {
    let mut fields = BTreeMap::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("unexpected output line `{line}`"));
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(format!("unexpected output line `{line}`"));
        }
        fields.insert(name.to_owned(), FactValue::Text(value.trim().to_owned()));
    }
    if !fields.contains_key("probe-version") {
        return Err(
            "the output has no probe-version line: not hostcert's probe program".to_owned(),
        );
    }
    Ok(FactValue::Record(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_parsed_and_garbage_refused() {
        let record = parse("probe-version=1\ngetrandom=ok\nunshare-net=errno EPERM (1)\n").unwrap();
        assert_eq!(
            record.field("unshare-net"),
            Some(&FactValue::Text("errno EPERM (1)".to_owned()))
        );
        assert!(parse("getrandom=ok\n").is_err());
        assert!(parse("probe-version=1\nHello world\n").is_err());
    }
}
