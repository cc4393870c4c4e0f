//! The user's files: reading only regular files, never more than a cap per kind of file, and
//! folders walked without following links out of them or looping; writing reports and snapshots
//! whole, through an exclusive temporary file.
//!
//! Every file hostcert reads on the user's behalf (suites, profiles, waivers, inventories, fact
//! snapshots, reports, keys, bundles, seccomp profiles, kernel configs, files of OS trees) goes
//! through [`read_regular`] or [`read_regular_text`]:
//!
//! - a symbolic link the user names is followed, like `cat` does; what it leads to must be a
//!   regular file;
//! - a FIFO, a socket, a device (`/dev/zero`, `/dev/stdin` when it is a terminal or a pipe) or a
//!   directory is refused before it is opened, and the file is opened with `O_NONBLOCK |
//!   O_NOCTTY` and checked again through its descriptor, so a file swapped for a FIFO in between
//!   cannot block the run either;
//! - at most the cap of its kind is read ([`cap`]); a larger file is refused, never cut;
//! - every failure is one [`FileError`] naming the file: `PATH: cannot read the KIND: REASON`.
//!
//! [`files_under`] walks the folders of `--suites`, `--profiles` and `lint`.
//!
//! [`write_output`] writes every report, bundle and snapshot (see its rules): a regular file
//! is replaced whole through a temporary file created exclusively beside it and renamed over it,
//! so that a reader never sees half a report and no existing file but the destination is ever
//! touched; `/dev/null`, a FIFO, a terminal and `/dev/stdout` are written to directly.

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most hostcert reads of each kind of file. A file larger than its cap is refused with an
/// error naming it; docs/files.md lists the caps.
pub mod cap {
    /// A suite, a profile or a `--waivers` file (the largest built-in suite is about 120 KiB).
    pub const YAML: u64 = 16 << 20;
    /// An `--inventory` file, hostcert's YAML or Ansible's INI or YAML.
    pub const INVENTORY: u64 = 64 << 20;
    /// A JSON report read by `report --from`, `report merge`, `diff`, `attest`, `verify` and
    /// `run --baseline` (about 190 KiB per target of the built-in profile: some 5,000 targets).
    pub const REPORT: u64 = 1 << 30;
    /// A fact snapshot (`run --facts`): one target's facts.
    pub const SNAPSHOT: u64 = 64 << 20;
    /// A PEM key (`--sign`, `attest --key`, `verify --key`).
    pub const KEY: u64 = 64 << 10;
    /// A signed bundle (`verify`): one DSSE envelope.
    pub const BUNDLE: u64 = 64 << 20;
    /// A runtime seccomp profile (`--param seccomp-profile=FILE`).
    pub const SECCOMP_PROFILE: u64 = 4 << 20;
    /// A kernel config (`kernel-config:FILE`, an OS tree's `/boot/config-*`), compressed or not.
    pub const KERNEL_CONFIG: u64 = 16 << 20;
    /// A text file of an OS tree or of this machine read as a fact (`os-release`, `/proc` files).
    pub const FACT_TEXT: u64 = 4 << 20;
    /// An `--images` file: image addresses, one a line.
    pub const IMAGES: u64 = 4 << 20;
    /// An ssh_config file (`--ssh-config`, `~/.ssh/config`).
    pub const SSH_CONFIG: u64 = 1 << 20;
    /// The probe program copied to SSH hosts (`hostcert-probe`).
    pub const PROBE_PROGRAM: u64 = 64 << 20;
}

/// The deepest a folder given to `--suites`, `--profiles` or `lint` is walked.
pub const MAX_WALK_DEPTH: usize = 16;
/// The most entries (files and folders) such a walk visits.
pub const MAX_WALK_ENTRIES: usize = 10_000;

/// A file that could not be read, or a folder that could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FileError {
    /// The file as the user named it.
    pub path: String,
    /// Why, e.g. `cannot read the baseline: a FIFO, not a regular file`.
    pub reason: String,
    /// The reason without the kind of file, e.g. `a FIFO, not a regular file`.
    pub cause: String,
    /// Whether the file does not exist (which some readers take as an answer).
    pub not_found: bool,
}

impl FileError {
    fn new(path: &Path, reason: String) -> FileError {
        FileError {
            path: path.display().to_string(),
            cause: reason.clone(),
            reason,
            not_found: false,
        }
    }

    fn writing(path: &Path, cause: String) -> FileError {
        FileError {
            path: path.display().to_string(),
            reason: format!("cannot write: {cause}"),
            cause,
            not_found: false,
        }
    }

    fn reading(path: &Path, what: &str, cause: String) -> FileError {
        FileError {
            path: path.display().to_string(),
            reason: format!("cannot read the {what}: {cause}"),
            cause,
            not_found: false,
        }
    }
}

/// What a file is, for errors: `a FIFO`, `a directory`, `a character device`, ...
pub(crate) fn describe_type(metadata: &Metadata) -> &'static str {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// A size for people: `64 KiB`, `4 MiB`, `1 GiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn too_large(cap: u64) -> String {
    format!(
        "larger than {}, the most hostcert reads of such a file",
        human_size(cap)
    )
}

/// Reads a whole regular file of at most `cap` bytes. `what` names the kind of file in errors
/// (`suite`, `baseline`, `fact snapshot`): `PATH: cannot read the WHAT: REASON`.
pub fn read_regular(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, FileError> {
    let fail = |cause: String| FileError::reading(path, what, cause);
    // What the path leads to (links followed) is looked at before it is opened: opening a device
    // can have effects of its own.
    let metadata = std::fs::metadata(path).map_err(|e| FileError {
        not_found: e.kind() == std::io::ErrorKind::NotFound,
        ..fail(e.to_string())
    })?;
    if !metadata.is_file() {
        return Err(fail(format!(
            "{}, not a regular file",
            describe_type(&metadata)
        )));
    }
    if metadata.len() > cap {
        return Err(fail(too_large(cap)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    // The descriptor is the truth: the path may have been replaced since it was looked at.
    let opened = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !opened.is_file() {
        return Err(fail(format!(
            "{}, not a regular file",
            describe_type(&opened)
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len().min(cap)).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(fail(too_large(cap)));
    }
    Ok(bytes)
}

/// Like [`read_regular`], for a file that must be UTF-8 text.
pub fn read_regular_text(path: &Path, cap: u64, what: &str) -> Result<String, FileError> {
    let bytes = read_regular(path, cap, what)?;
    String::from_utf8(bytes).map_err(|e| {
        FileError::reading(
            path,
            what,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// Every file under `root` that `wanted` accepts, sorted; `root` itself when it is not a folder.
///
/// `root` is followed when it is a symbolic link (the user named it). Inside it, entries whose
/// names start with `.` (`.git`) are skipped, and a symbolic link is followed only when what it
/// leads to is inside `root`: a link out of the folder (to `/`, to `../..`) or a link that
/// loops is an error naming it, and a folder reached twice is walked once. The walk stops with
/// an error beyond [`MAX_WALK_DEPTH`] levels or [`MAX_WALK_ENTRIES`] entries.
pub fn files_under(root: &Path, wanted: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, FileError> {
    let fail = |path: &Path, reason: String| FileError::new(path, reason);
    let metadata = std::fs::metadata(root).map_err(|e| fail(root, format!("cannot read: {e}")))?;
    if !metadata.is_dir() {
        return Ok(vec![root.to_owned()]);
    }
    let canonical_root = root
        .canonicalize()
        .map_err(|e| fail(root, format!("cannot read the folder: {e}")))?;
    let mut seen_dirs = std::collections::HashSet::new();
    let mut files = Vec::new();
    let mut entries_seen = 0usize;
    let mut stack = vec![(root.to_owned(), (metadata.dev(), metadata.ino()), 0usize)];
    while let Some((dir, id, depth)) = stack.pop() {
        if !seen_dirs.insert(id) {
            continue;
        }
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| fail(&dir, format!("cannot read the folder: {e}")))?
        {
            entries.push(entry.map_err(|e| fail(&dir, format!("cannot read the folder: {e}")))?);
            entries_seen += 1;
            if entries_seen > MAX_WALK_ENTRIES {
                return Err(fail(
                    root,
                    format!(
                        "holds more than {MAX_WALK_ENTRIES} files and folders; give the folder of the suites or profiles themselves"
                    ),
                ));
            }
        }
        // In name order, so that a folder reached twice is always walked under the same name.
        entries.sort_by_key(std::fs::DirEntry::file_name);
        let mut subfolders = Vec::new();
        for entry in entries {
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| fail(&path, format!("cannot read: {e}")))?;
            let metadata = if file_type.is_symlink() {
                let target = path.canonicalize().map_err(|e| {
                    fail(
                        &path,
                        format!("a symbolic link that cannot be followed: {e}"),
                    )
                })?;
                if !target.starts_with(&canonical_root) {
                    return Err(fail(
                        &path,
                        format!(
                            "a symbolic link out of {} (to {}); not followed",
                            root.display(),
                            target.display()
                        ),
                    ));
                }
                std::fs::metadata(&target).map_err(|e| fail(&path, format!("cannot read: {e}")))?
            } else {
                std::fs::symlink_metadata(&path)
                    .map_err(|e| fail(&path, format!("cannot read: {e}")))?
            };
            if metadata.is_dir() {
                if depth + 1 > MAX_WALK_DEPTH {
                    return Err(fail(
                        &path,
                        format!(
                            "more than {MAX_WALK_DEPTH} folders deep in {}; not walked",
                            root.display()
                        ),
                    ));
                }
                subfolders.push((path, (metadata.dev(), metadata.ino()), depth + 1));
            } else if wanted(&path) {
                files.push(path);
            }
        }
        stack.extend(subfolders.into_iter().rev());
    }
    files.sort();
    Ok(files)
}

/// Where an output goes, decided before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// hostcert's standard output: `-` (for the options that take it) and `/dev/stdout`.
    Stdout,
    /// A regular file, or nothing yet: replaced whole through a temporary file.
    Replace(PathBuf),
    /// Something that is not a regular file and is written to as it is: a character device
    /// (`/dev/null`, a terminal), a FIFO, or a descriptor of this process (`/dev/stderr`,
    /// `/dev/fd/N`).
    Direct(PathBuf),
}

impl Destination {
    /// Whether the bytes go to hostcert's standard output.
    pub fn is_stdout(&self) -> bool {
        *self == Destination::Stdout
    }
}

/// Decides how `path` is written (see [`write_output`]); `dash_is_stdout` for the options that
/// take `-`.
pub fn destination(path: &Path, dash_is_stdout: bool) -> Result<Destination, FileError> {
    let fail = |cause: String| FileError::writing(path, cause);
    if (dash_is_stdout && path.as_os_str() == "-") || path == Path::new("/dev/stdout") {
        return Ok(Destination::Stdout);
    }
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Destination::Replace(path.to_owned()))
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(Destination::Replace(path.to_owned()));
    }
    if file_type.is_fifo() || file_type.is_char_device() {
        return Ok(Destination::Direct(path.to_owned()));
    }
    if !file_type.is_symlink() {
        return Err(fail(format!(
            "{}; hostcert writes only to a regular file, a FIFO or a character device",
            describe_type(&metadata)
        )));
    }
    // A link in /proc/PID/fd (behind /dev/stderr, /dev/fd/N) is a descriptor of this process:
    // written to as it is, whatever it leads to.
    let in_proc = path
        .parent()
        .and_then(|parent| parent.canonicalize().ok())
        .is_some_and(|parent| parent.starts_with("/proc"));
    let leads_to = std::fs::metadata(path);
    match leads_to {
        _ if in_proc => Ok(Destination::Direct(path.to_owned())),
        Ok(target) if target.file_type().is_fifo() || target.file_type().is_char_device() => {
            Ok(Destination::Direct(path.to_owned()))
        }
        Ok(target) => Err(fail(format!(
            "a symbolic link to {}; hostcert does not replace a file through a link (name the file it leads to)",
            describe_type(&target)
        ))),
        Err(_) => Err(fail(
            "a symbolic link to nothing; hostcert does not create a file through a link"
                .to_owned(),
        )),
    }
}

/// Writes `bytes` whole to `path` for the user. The rules, in order:
///
/// - `-` (when `dash_is_stdout`, for the JSON report and snapshots) and `/dev/stdout` are
///   hostcert's standard output;
/// - a FIFO, a character device (`/dev/null`, a terminal), and a symbolic link to one of them
///   or into `/proc/PID/fd` (`/dev/stderr`, `/dev/fd/N`) are written to directly, never
///   replaced; a FIFO that nobody reads is an error, not a hang;
/// - a regular file, or nothing, is written through a temporary file created exclusively
///   (`O_EXCL`, a random name `.NAME.hostcert-PID-RANDOM.tmp`) in the destination's folder and
///   renamed over the destination, so no existing file, `.tmp` or not, is ever overwritten but
///   the destination itself. The folder is created (with its parents) when it is missing. An
///   existing file's permission bits are kept, and so are its owner and group when hostcert
///   runs as root; otherwise the new file belongs to the user who wrote it (as with `mv`);
/// - a symbolic link to a regular file or to nothing is refused: a link planted where a report
///   goes cannot redirect the write; a directory, a socket and a block device are refused.
pub fn write_output(path: &Path, bytes: &[u8], dash_is_stdout: bool) -> Result<(), FileError> {
    write_output_with(path, dash_is_stdout, |out| out.write_all(bytes))
}

/// Writes to `path` for the user what `write` writes, as it writes it (a report rendered as it
/// is read, never held whole), by the rules of [`write_output`]. An error of `write` is the
/// file's error: a regular file is then left as it was.
pub fn write_output_with(
    path: &Path,
    dash_is_stdout: bool,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), FileError> {
    use std::io::Write;
    match destination(path, dash_is_stdout)? {
        Destination::Stdout => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            write(&mut stdout)
                .and_then(|()| stdout.flush())
                .map_err(|e| FileError::writing(path, e.to_string()))
        }
        Destination::Direct(path) => write_direct(&path, write),
        Destination::Replace(path) => replace(&path, write),
    }
}

fn write_direct(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), FileError> {
    use rustix::fs::OFlags;
    use std::io::Write;
    let fail = |cause: String| FileError::writing(path, cause);
    // Non-blocking to open, so a FIFO without a reader fails (ENXIO) instead of hanging.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == rustix::io::Errno::NXIO.raw_os_error() => {
                fail("a FIFO nobody reads".to_owned())
            }
            _ => fail(e.to_string()),
        })?;
    let opened = file.metadata().map_err(|e| fail(e.to_string()))?;
    if opened.file_type().is_block_device() || opened.is_dir() {
        return Err(fail(format!(
            "{}; hostcert writes only to a regular file, a FIFO or a character device",
            describe_type(&opened)
        )));
    }
    let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| fail(e.to_string()))?;
    rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK).map_err(|e| fail(e.to_string()))?;
    let mut out = std::io::BufWriter::new(file);
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| fail(e.to_string()))
}

/// The start of the names of temporary files for `file_name` made by this process.
fn temporary_prefix(file_name: &str) -> String {
    format!(".{file_name}.{}", crate::temp::own_prefix())
}

fn replace(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), FileError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let fail = |cause: String| FileError::writing(path, cause);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| fail("names no file".to_owned()))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder).map_err(|e| {
        fail(format!(
            "cannot create the folder {}: {e}",
            folder.display()
        ))
    })?;
    remove_stale_temporaries(&folder, &file_name);
    let existing = std::fs::symlink_metadata(path)
        .ok()
        .filter(Metadata::is_file);
    let mut temporary = tempfile::Builder::new()
        .prefix(&temporary_prefix(&file_name))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(&folder)
        .map_err(|e| {
            // tempfile adds ` at path "…"` with the temporary file's name; the system's reason
            // is enough.
            let text = e.to_string();
            let cause = text
                .split(" at path ")
                .next()
                .unwrap_or_default()
                .to_owned();
            fail(format!(
                "cannot create a temporary file in {}: {cause}",
                folder.display()
            ))
        })?;
    // Removed even if a second Ctrl-C stops the process before the rename.
    let _removed_if_stopped = crate::interrupt::RemoveOnExit::register(temporary.path());
    let shown = temporary.path().display().to_string();
    let mut out = std::io::BufWriter::with_capacity(256 << 10, temporary.as_file_mut());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| fail(format!("{shown}: {e}")))?;
    drop(out);
    let file = temporary.as_file();
    if let Some(existing) = &existing {
        file.set_permissions(std::fs::Permissions::from_mode(existing.mode() & 0o7777))
            .map_err(|e| fail(format!("cannot keep the file's permissions: {e}")))?;
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::fchown(file, Some(existing.uid()), Some(existing.gid()))
                .map_err(|e| fail(format!("cannot keep the file's owner: {e}")))?;
            // chown clears set-id bits; set them again.
            file.set_permissions(std::fs::Permissions::from_mode(existing.mode() & 0o7777))
                .map_err(|e| fail(format!("cannot keep the file's permissions: {e}")))?;
        }
    }
    file.sync_all().map_err(|e| fail(e.to_string()))?;
    temporary
        .persist(path)
        .map(drop)
        .map_err(|e| fail(e.error.to_string()))
}

/// Removes the temporary files for `file_name` in `folder` whose writer is gone (a run killed
/// while writing its reports).
fn remove_stale_temporaries(folder: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.{}", crate::temp::PREFIX);
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.ends_with(".tmp")
            && crate::temp::owner_after(&name, &prefix).is_some_and(crate::temp::is_stale)
            && entry.file_type().is_ok_and(|t| t.is_file());
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo runs");
        assert!(status.success());
    }

    /// Guards "nothing is read unbounded": a FIFO nobody writes to, a directory, /dev/zero and
    /// /dev/stdin are refused at once, with the file named.
    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("suite.yaml");
        mkfifo(&fifo);
        let error = read_regular(&fifo, cap::YAML, "suite").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: cannot read the suite: a FIFO, not a regular file",
                fifo.display()
            )
        );
        let error = read_regular(dir.path(), cap::YAML, "suite").unwrap_err();
        assert!(
            error.reason.ends_with("a directory, not a regular file"),
            "{error}"
        );
        let error = read_regular(Path::new("/dev/zero"), cap::YAML, "baseline").unwrap_err();
        assert_eq!(
            error.reason,
            "cannot read the baseline: a character device, not a regular file"
        );
        // /dev/stdin is a link to whatever fd 0 is; under the test runner it is not a file.
        if std::fs::metadata("/dev/stdin").is_ok_and(|m| !m.is_file()) {
            assert!(read_regular(Path::new("/dev/stdin"), cap::KEY, "key").is_err());
        }
    }

    #[test]
    fn a_link_to_a_regular_file_is_followed_and_a_file_over_its_cap_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("real.yaml");
        std::fs::write(&file, "x: 1\n").unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_regular_text(&link, 5, "suite").unwrap(), "x: 1\n");
        let error = read_regular(&link, 4, "suite").unwrap_err();
        assert_eq!(
            error.reason,
            "cannot read the suite: larger than 4 bytes, the most hostcert reads of such a file"
        );
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        let error = read_regular_text(&file, 5, "suite").unwrap_err();
        assert_eq!(
            error.reason,
            "cannot read the suite: not UTF-8 text (byte 0)"
        );
    }

    #[test]
    fn destinations_are_told_apart_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.json");
        assert_eq!(
            destination(&file, false),
            Ok(Destination::Replace(file.clone()))
        );
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            destination(&file, false),
            Ok(Destination::Replace(file.clone()))
        );
        assert_eq!(destination(Path::new("-"), true), Ok(Destination::Stdout));
        assert_eq!(
            destination(Path::new("-"), false),
            Ok(Destination::Replace(PathBuf::from("-")))
        );
        assert_eq!(
            destination(Path::new("/dev/stdout"), false),
            Ok(Destination::Stdout)
        );
        assert_eq!(
            destination(Path::new("/dev/null"), false),
            Ok(Destination::Direct(PathBuf::from("/dev/null")))
        );
        // /dev/stderr leads into /proc/self/fd: a descriptor, written as it is.
        assert_eq!(
            destination(Path::new("/dev/stderr"), false),
            Ok(Destination::Direct(PathBuf::from("/dev/stderr")))
        );
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(destination(&link, false)
            .unwrap_err()
            .reason
            .starts_with("cannot write: a symbolic link to a regular file"));
        assert!(destination(dir.path(), false)
            .unwrap_err()
            .reason
            .starts_with("cannot write: a directory"));
    }

    #[test]
    fn a_new_file_gets_the_umask_s_mode_and_no_temporary_file_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/report.json");
        write_output(&file, b"{}\n", false).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"{}\n");
        let umask = {
            let probe = dir.path().join("probe");
            std::fs::write(&probe, "").unwrap();
            std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            umask
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(cap::KEY), "64 KiB");
        assert_eq!(human_size(cap::YAML), "16 MiB");
        assert_eq!(human_size(cap::REPORT), "1 GiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    fn yaml(path: &Path) -> bool {
        path.extension().is_some_and(|e| e == "yaml")
    }

    #[test]
    fn a_walk_follows_links_inside_the_folder_only_and_never_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("suites");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/one.yaml"), "").unwrap();
        std::fs::write(root.join("two.yaml"), "").unwrap();
        std::fs::write(root.join("notes.txt"), "").unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/three.yaml"), "").unwrap();
        // A loop back to the root and a second way into a folder: each folder is walked once.
        std::os::unix::fs::symlink("..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("a/b", root.join("b-again")).unwrap();
        let found = files_under(&root, yaml).unwrap();
        assert_eq!(
            found,
            vec![root.join("a/b/one.yaml"), root.join("two.yaml")]
        );

        // A link out of the folder is refused by name, whatever it leads to.
        std::os::unix::fs::symlink("/", root.join("everything")).unwrap();
        let error = files_under(&root, yaml).unwrap_err();
        assert_eq!(error.path, root.join("everything").display().to_string());
        assert!(
            error.reason.starts_with("a symbolic link out of "),
            "{error}"
        );
        std::fs::remove_file(root.join("everything")).unwrap();

        // A link to itself cannot be followed.
        std::os::unix::fs::symlink("self.yaml", root.join("self.yaml")).unwrap();
        let error = files_under(&root, yaml).unwrap_err();
        assert!(
            error
                .reason
                .starts_with("a symbolic link that cannot be followed"),
            "{error}"
        );
    }

    #[test]
    fn a_walk_stops_at_its_depth_and_entry_caps() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().join("deep");
        for _ in 0..=MAX_WALK_DEPTH + 1 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let error = files_under(&dir.path().join("deep"), yaml).unwrap_err();
        assert!(
            error.reason.starts_with("more than 16 folders deep"),
            "{error}"
        );

        let wide = dir.path().join("wide");
        std::fs::create_dir(&wide).unwrap();
        for index in 0..=MAX_WALK_ENTRIES {
            std::fs::write(wide.join(format!("{index}.txt")), "").unwrap();
        }
        let error = files_under(&wide, yaml).unwrap_err();
        assert!(error.reason.starts_with("holds more than 10000"), "{error}");
    }
}
