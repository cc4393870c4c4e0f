//! The outside: command-line arguments, the libtest-style runner, files and exit codes.
//!
//! Only this module (and libtest-mimic's printer) writes to the terminal; the engine returns
//! values.

mod args;
mod commands;
pub mod exit;
mod progress;
mod run;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;

use crate::catalog::LoadedProfile;
use crate::targets::TargetError;
use crate::yaml::YamlError;

/// Why a command could not do its job. Each maps to [`exit::COULD_NOT_RUN`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Suites or profiles are invalid.
    #[error("{}", render_yaml_errors(.0))]
    Invalid(Vec<YamlError>),
    /// A target could not be opened or read.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
}

fn render_yaml_errors(errors: &[YamlError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<crate::fsio::FileError> for CliError {
    fn from(error: crate::fsio::FileError) -> CliError {
        CliError::File {
            path: error.path,
            reason: error.reason,
        }
    }
}

impl From<Vec<YamlError>> for CliError {
    fn from(errors: Vec<YamlError>) -> CliError {
        CliError::Invalid(errors)
    }
}

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

/// The chosen profile: by path when the argument names a file, else by name.
fn choose_profile(
    catalog: &mut crate::catalog::Catalog,
    profile: Option<&str>,
) -> Result<std::sync::Arc<LoadedProfile>, CliError> {
    let wanted = profile.unwrap_or(crate::builtin::DEFAULT_PROFILE);
    let as_path = std::path::Path::new(wanted);
    if wanted.ends_with(".yaml") || wanted.ends_with(".yml") || wanted.contains('/') {
        let text = crate::yaml::read_file(as_path, crate::fsio::cap::YAML, "profile")
            .map_err(|e| vec![e])?;
        let source = as_path.display().to_string();
        match crate::catalog::parse_data_file(&source, &text)? {
            crate::catalog::DataFile::Profile(loaded) => {
                let loaded = std::sync::Arc::new(loaded);
                catalog
                    .profiles
                    .retain(|p| p.profile.name != loaded.profile.name);
                catalog.profiles.push(std::sync::Arc::clone(&loaded));
                Ok(loaded)
            }
            crate::catalog::DataFile::Suite(_) => Err(CliError::Usage(format!(
                "{source} is a suite, not a profile"
            ))),
        }
    } else {
        catalog.profile(wanted).cloned().ok_or_else(|| {
            let known: Vec<&str> = catalog
                .profiles
                .iter()
                .map(|p| p.profile.name.as_str())
                .collect();
            CliError::Usage(format!(
                "no profile named `{wanted}` (known: {}; or give a path to a profile file)",
                known.join(", ")
            ))
        })
    }
}
