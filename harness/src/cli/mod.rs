//! The outside: command-line arguments mapped to library calls ([`crate::run`],
//! [`crate::lint`], ...), the libtest-style front end, the terminal and exit codes.
//!
//! Only this module (and libtest-mimic's printer) writes to the terminal; the library returns
//! values and events.

mod args;
mod commands;
pub mod exit;
mod outputs;
mod progress;
mod run;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

/// Why a command could not do its job ([`crate::Error`]). Each maps to
/// [`exit::COULD_NOT_RUN`].
pub type CliError = crate::Error;

/// Parses the process arguments, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // An error can quote a target (a host's answer, a snapshot's text): escaped, so that
            // no escape sequence reaches the terminal.
            eprintln!(
                "error: {}",
                hostcert_reports::escape::visible_lines(&error.to_string())
            );
            ExitCode::from(exit::COULD_NOT_RUN)
        }
    }
}

/// Prints a line for people: on stdout, or on stderr when an output goes to stdout.
fn say(stdout_taken: bool, line: &str) {
    if stdout_taken {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Prints the catalog's warnings.
fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// Removes what killed runs left (at the start of `run` and `gather`), saying so on stderr: the
/// folders, and the network namespaces and interfaces of real runs when this one may make one
/// (`with_image`).
fn remove_leftovers(with_image: bool) {
    let (removed, failed) = crate::targets::leftovers::remove_stale(with_image);
    for leftover in removed {
        eprintln!("note: removed {leftover}");
    }
    for (leftover, reason) in failed {
        eprintln!("warning: could not remove {leftover}: {reason}");
    }
}
