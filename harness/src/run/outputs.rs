//! Where reports go, and writing them: each format of the registry
//! ([`hostcert_reports::format::FORMATS`]) streamed into its file through
//! [`crate::fsio::write_output_with`], and the signed bundle beside the JSON report.

use std::path::{Path, PathBuf};

use hostcert_reports::attestation::{self, PAYLOAD_TYPE};
use hostcert_reports::format::{Format, Hashing, FORMATS};
use hostcert_reports::{RenderOptions, ReportView};

use crate::dsse::{Envelope, SigningKey};
use crate::Error;

/// What `-` means where an option does not take it.
const DASH_NOT_TAKEN: &str = "`-` (standard output) is taken only by the JSON report (`run --json`, `report --json`, `report merge --json`) and snapshots (`gather --output`); name a file, or ./- for a file named -";

/// Checks where an output goes before anything is read or gathered: `-` where the option
/// does not take it, a directory, a link to a file. `takes_dash` for the JSON report and
/// snapshots.
pub fn destination(path: &Path, takes_dash: bool) -> Result<crate::fsio::Destination, Error> {
    if !takes_dash && path.as_os_str() == "-" {
        return Err(Error::Usage(DASH_NOT_TAKEN.to_owned()));
    }
    Ok(crate::fsio::destination(path, takes_dash)?)
}

/// Writes a report, bundle or snapshot whole ([`crate::fsio::write_output`]: through an
/// exclusive temporary file renamed over a regular file, directly into a FIFO or a device).
/// `takes_dash` for the JSON report and snapshots, which `-` sends to stdout.
pub fn write_file(path: &Path, bytes: &[u8], takes_dash: bool) -> Result<(), Error> {
    if !takes_dash && path.as_os_str() == "-" {
        return Err(Error::Usage(DASH_NOT_TAKEN.to_owned()));
    }
    Ok(crate::fsio::write_output(path, bytes, takes_dash)?)
}

/// The file name of a path, for naming a report inside a statement.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The signed bundle line for the report `view`, whose JSON file is `name` with digest
/// `digest`.
pub fn sign(
    view: &ReportView<'_>,
    name: &str,
    digest: &str,
    key: &SigningKey,
) -> Result<String, Error> {
    let statement = attestation::statement_of(view, name, digest).map_err(|e| Error::File {
        path: name.to_owned(),
        reason: format!("cannot read the run's results back: {e}"),
    })?;
    Ok(Envelope::sign(PAYLOAD_TYPE, &attestation::to_payload(&statement), key).to_json_line())
}

/// The files a command writes: formats of the registry, each to a file, and the signed bundle.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Each format written, and where.
    pub files: Vec<(&'static Format, PathBuf)>,
    /// The signed bundle, beside the JSON report.
    pub bundle: Option<PathBuf>,
    /// Whether a report goes to stdout (`--json -`, `/dev/stdout`): then what is printed for
    /// people goes to stderr.
    pub to_stdout: bool,
}

impl Outputs {
    /// The files of `run`: every format, to the file given for it (`chosen`) or to its default
    /// file in `dir`, and with `sign` the bundle beside the JSON report. Each is checked before
    /// anything is gathered: `-` only for a format that takes it, no directory, no link to a
    /// file (see [`crate::fsio::write_output`]).
    pub fn for_run(
        dir: &Path,
        chosen: &[(&'static Format, PathBuf)],
        sign: bool,
    ) -> Result<Outputs, Error> {
        let files: Vec<(&'static Format, PathBuf)> = FORMATS
            .iter()
            .map(|format| {
                let path = chosen
                    .iter()
                    .rev()
                    .find(|(f, _)| f.name == format.name)
                    .map_or_else(|| dir.join(format.file), |(_, p)| p.clone());
                (*format, path)
            })
            .collect();
        Outputs::checked(files, sign)
    }

    /// The files of `report`: the formats given, each to its file.
    pub fn chosen(chosen: &[(&'static Format, PathBuf)]) -> Result<Outputs, Error> {
        if chosen.is_empty() {
            let mut options: Vec<String> = FORMATS
                .iter()
                .map(|f| format!("--{} FILE", f.name))
                .collect();
            let last = options.pop().unwrap_or_default();
            return Err(Error::Usage(format!(
                "nothing to write: give {} and/or {last}",
                options.join(", ")
            )));
        }
        Outputs::checked(chosen.to_vec(), false)
    }

    fn checked(files: Vec<(&'static Format, PathBuf)>, sign: bool) -> Result<Outputs, Error> {
        let json = files
            .iter()
            .find(|(f, _)| f.name == hostcert_reports::json::FORMAT.name)
            .map(|(_, p)| p.clone());
        let mut to_stdout = false;
        for (format, path) in &files {
            to_stdout |= destination(path, format.takes_dash)?.is_stdout();
        }
        let bundle = match (sign, &json) {
            (false, _) => None,
            (true, Some(json)) if !destination(json, true)?.is_stdout() => {
                Some(bundle_beside(json))
            }
            (true, _) => {
                return Err(Error::Usage(
                    "--sign needs the JSON report in a file (the signed bundle names it): give --json FILE"
                        .to_owned(),
                ))
            }
        };
        if let Some(bundle) = &bundle {
            to_stdout |= destination(bundle, false)?.is_stdout();
        }
        // Two reports into one regular file would leave only the one written last.
        // (the option, its path): the reports that replace a regular file (or make one), as
        // each option reads its path (`-` is standard output only where it is taken).
        let named: Vec<(String, &Path)> = files
            .iter()
            .map(|(format, path)| {
                (
                    format!("--{}", format.name),
                    path.as_path(),
                    format.takes_dash,
                )
            })
            .chain(
                bundle
                    .as_deref()
                    .map(|b| ("the signed bundle".to_owned(), b, false)),
            )
            .filter(|(_, path, takes_dash)| {
                matches!(
                    crate::fsio::destination(path, *takes_dash),
                    Ok(crate::fsio::Destination::Replace(_))
                )
            })
            .map(|(option, path, _)| (option, path))
            .collect();
        for (index, (first, path)) in named.iter().enumerate() {
            let same = |other: &Path| same_file(path, other);
            if let Some((second, other)) = named[index + 1..].iter().find(|(_, other)| same(other))
            {
                return Err(Error::Usage(format!(
                    "{first} {} and {second} {} are one file: each report needs its own",
                    path.display(),
                    other.display()
                )));
            }
        }
        Ok(Outputs {
            files,
            bundle,
            to_stdout,
        })
    }

    /// Writes every file from `view`, each streamed as it is rendered and each format on its own
    /// thread (they read the same view; none waits for another), and the bundle signed with
    /// `key` when there is one; the first failure, in format order, is returned after the others
    /// were tried.
    pub fn write(
        &self,
        view: &ReportView<'_>,
        options: &RenderOptions,
        key: Option<&SigningKey>,
    ) -> Result<(), Error> {
        // A regular file (or none yet) that no other format names is rendered on its own
        // thread; the others (standard output, a terminal, a FIFO, a file named twice) one after
        // the other here, in format order, as their bytes must not interleave.
        let alone = |index: usize| {
            let (format, path) = &self.files[index];
            let regular = matches!(
                crate::fsio::destination(path, format.takes_dash),
                Ok(crate::fsio::Destination::Replace(_))
            );
            regular && self.files.iter().filter(|(_, p)| p == path).count() == 1
        };
        let written: Vec<(Result<(), Error>, Option<String>)> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..self.files.len())
                .map(|index| {
                    let (format, path) = &self.files[index];
                    alone(index)
                        .then(|| scope.spawn(move || render_file(view, options, format, path)))
                })
                .collect();
            threads
                .into_iter()
                .enumerate()
                .map(|(index, thread)| match thread {
                    Some(thread) => thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    None => {
                        let (format, path) = &self.files[index];
                        render_file(view, options, format, path)
                    }
                })
                .collect()
        });
        let json =
            self.files
                .iter()
                .zip(&written)
                .find_map(|((format, path), (result, digest))| {
                    let is_json = format.name == hostcert_reports::json::FORMAT.name;
                    match (is_json, result, digest) {
                        (true, Ok(()), Some(digest)) => Some((path.clone(), digest.clone())),
                        _ => None,
                    }
                });
        let mut results: Vec<Result<(), Error>> =
            written.into_iter().map(|(result, _)| result).collect();
        if let (Some(key), Some(bundle)) = (key, &self.bundle) {
            match &json {
                Some((path, digest)) => {
                    results.push(
                        sign(view, &file_name(path), digest, key)
                            .and_then(|line| write_file(bundle, line.as_bytes(), false)),
                    );
                }
                None => results.push(Err(Error::File {
                    path: bundle.display().to_string(),
                    reason: "not signed: the JSON report it names could not be written".to_owned(),
                })),
            }
        }
        results.into_iter().collect()
    }

    /// The files as the summary names them (`stdout` for `-`).
    pub fn names(&self) -> Vec<String> {
        let show = |path: &Path| {
            if path.as_os_str() == "-" {
                "stdout".to_owned()
            } else {
                path.display().to_string()
            }
        };
        self.files
            .iter()
            .map(|(_, path)| show(path))
            .chain(self.bundle.as_deref().map(show))
            .collect()
    }
}

/// Whether two outputs that are regular files (or nothing yet) are the same file: their folders
/// resolved, then their names compared.
fn same_file(one: &Path, other: &Path) -> bool {
    let resolved = |path: &Path| {
        let absolute = std::path::absolute(path).ok()?;
        let folder = absolute.parent().map_or_else(
            || absolute.clone(),
            |folder| std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf()),
        );
        Some(folder.join(absolute.file_name()?))
    };
    one == other || matches!((resolved(one), resolved(other)), (Some(a), Some(b)) if a == b)
}

/// Writes `format` of `view` to `path`, streamed; the JSON report's digest (which a signed bundle
/// names) is taken as it is written.
fn render_file(
    view: &ReportView<'_>,
    options: &RenderOptions,
    format: &Format,
    path: &Path,
) -> (Result<(), Error>, Option<String>) {
    let mut digest = None;
    let written = crate::fsio::write_output_with(path, format.takes_dash, |out| {
        if format.name == hostcert_reports::json::FORMAT.name {
            let mut hashing = Hashing::new(out);
            format.renderer.render(view, options, &mut hashing)?;
            digest = Some(hashing.digest());
            Ok(())
        } else {
            format.renderer.render(view, options, out)
        }
    });
    (written.map_err(Error::from), digest)
}

/// The signed bundle's path beside a JSON report: `report.json` gives `report.intoto.jsonl`.
fn bundle_beside(json: &Path) -> PathBuf {
    let name = json
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report.json".to_owned());
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    json.with_file_name(format!("{stem}.intoto.jsonl"))
}
