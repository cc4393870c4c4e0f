//! The options that name report files, one per format of the registry
//! ([`hostcert_reports::format::FORMATS`]): `--json FILE`, `--junit FILE`, `--html FILE`,
//! `--markdown FILE`. A new format gets its option here without a line of this file.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use hostcert_reports::format::{Format, FORMATS};

/// Which command the options are for, which words their help: `run` (files in the report
/// folder by default), `report` (only the files given), `report merge` (the joined report).
pub const RUN: u8 = 0;
/// See [`RUN`].
pub const REPORT: u8 = 1;
/// See [`RUN`].
pub const MERGE: u8 = 2;

/// The files given for formats, in the registry's order.
#[derive(Debug, Clone, Default)]
pub struct FormatFiles<const FOR: u8> {
    /// Each format given, and its file.
    pub files: Vec<(&'static Format, PathBuf)>,
}

fn help(format: &Format, command: u8) -> String {
    let dash = |tail: &str| {
        if format.takes_dash {
            format!(" (`-`: stdout{tail})")
        } else {
            String::new()
        }
    };
    match command {
        RUN => format!(
            "Write {} here instead of <report-dir>/{}{}.",
            format.what,
            format.file,
            dash(", with libtest's lines and the summary on stderr")
        ),
        REPORT => format!("Write {} here{}.", format.what, dash("")),
        _ => format!(
            "Write the joined report as {} here{}.",
            format.what,
            dash("")
        ),
    }
}

impl<const FOR: u8> FromArgMatches for FormatFiles<FOR> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let files = FORMATS
            .iter()
            .filter_map(|format| {
                matches
                    .get_one::<PathBuf>(format.name)
                    .map(|path| (*format, path.clone()))
            })
            .collect();
        Ok(FormatFiles { files })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = FormatFiles::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<const FOR: u8> Args for FormatFiles<FOR> {
    fn augment_args(command: Command) -> Command {
        FORMATS.iter().fold(command, |command, format| {
            command.arg(
                Arg::new(format.name)
                    .long(format.name)
                    .value_name("FILE")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help(help(format, FOR)),
            )
        })
    }

    fn augment_args_for_update(command: Command) -> Command {
        FormatFiles::<FOR>::augment_args(command)
    }
}
