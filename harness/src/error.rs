//! The error of a command that could not do its job: a setup problem, never a check's outcome
//! (a failing check is data). Every variant exits with 2 (`cli::exit::COULD_NOT_RUN`).

use crate::targets::TargetError;
use crate::yaml::YamlError;

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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

impl From<crate::fsio::FileError> for Error {
    fn from(error: crate::fsio::FileError) -> Error {
        Error::File {
            path: error.path,
            reason: error.reason,
        }
    }
}

impl From<Vec<YamlError>> for Error {
    fn from(errors: Vec<YamlError>) -> Error {
        Error::Invalid(errors)
    }
}

impl From<crate::dsse::KeyError> for Error {
    fn from(error: crate::dsse::KeyError) -> Error {
        Error::File {
            path: error.path,
            reason: error.reason,
        }
    }
}
