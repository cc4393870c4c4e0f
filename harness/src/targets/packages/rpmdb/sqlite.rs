//! The SQLite backend: `rpmdb.sqlite`, its `Packages` table of `hnum INTEGER PRIMARY KEY` and
//! `blob BLOB` (rpm's `lib/backend/sqlite.c`).

use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::header::HEADER_MAX_BYTES;
use super::{RpmdbError, Visit};
use crate::targets::packages::{TreeFile, TreeFiles};

/// The largest database copied into a temporary folder (one with a pending write-ahead log, or
/// one that came as bytes).
const MAX_COPY_BYTES: u64 = 4 << 30;

/// Reads every row of the `Packages` table.
///
/// A database on this machine with no pending log or journal opens in place with SQLite's
/// `immutable` URI parameter and read-only flags: SQLite then takes no lock and creates no
/// `-wal` or `-shm` file beside it. `immutable` also means SQLite ignores a write-ahead log, so a
/// database whose `-wal` (or `-journal`) holds data, and a database that came as bytes, is copied
/// with its log into a private temporary folder and opened there, where SQLite applies the log as
/// rpm would see it.
pub(super) fn read(
    tree: &dyn TreeFiles,
    database: &str,
    file: TreeFile,
    visit: &mut Visit<'_>,
) -> Result<(), RpmdbError> {
    let error = |reason: String| RpmdbError::database(database, reason);
    let mut logs = Vec::new();
    for suffix in ["-wal", "-journal"] {
        let path = format!("{database}{suffix}");
        if let Some(log) = tree.open(&path).map_err(&error)? {
            if log.len().map_err(|e| error(format!("{path}: {e}")))? > 0 {
                logs.push((suffix, log));
            }
        }
    }
    if logs.is_empty() {
        check_length(&file).map_err(error)?;
    }
    match &file {
        TreeFile::Local { path, .. } if logs.is_empty() => {
            let connection = open_immutable(path).map_err(|e| error(e.to_string()))?;
            rows(database, &connection, visit)
        }
        _ => {
            let folder = tempfile::Builder::new()
                .prefix("hostcert-rpmdb.")
                .tempdir()
                .map_err(|e| error(format!("cannot make a temporary folder: {e}")))?;
            let copy = folder.path().join("rpmdb.sqlite");
            copy_file(&file, &copy).map_err(|e| error(format!("copying it: {e}")))?;
            for (suffix, log) in &logs {
                let target = folder.path().join(format!("rpmdb.sqlite{suffix}"));
                copy_file(log, &target)
                    .map_err(|e| error(format!("copying its {suffix} file: {e}")))?;
            }
            let connection = Connection::open_with_flags(
                &copy,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| error(e.to_string()))?;
            let result = rows(database, &connection, visit);
            drop(connection);
            drop(folder);
            result
        }
    }
}

/// Checks a database file against the size its header gives, so that a truncated file is an
/// error rather than pages SQLite would read as zeros. The header's size is trusted only when
/// it is valid (its "version valid for" equals its change counter), as SQLite trusts it.
fn check_length(file: &TreeFile) -> Result<(), String> {
    let len = file.len().map_err(|e| e.to_string())?;
    if len < 100 {
        return Err(format!(
            "{len} bytes, shorter than an SQLite database's header"
        ));
    }
    let mut header = [0u8; 100];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| e.to_string())?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err("not an SQLite database (no SQLite format 3 magic)".to_owned());
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        size => u64::from(size),
    };
    let pages = u64::from(be32(28));
    if pages > 0 && be32(24) == be32(92) && len < pages * page_size {
        return Err(format!(
            "truncated: its header says {pages} pages of {page_size} bytes, but the file has {len} bytes"
        ));
    }
    Ok(())
}

/// Opens a database file read-only and `immutable`: no lock, no file created beside it.
fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

fn rows(database: &str, connection: &Connection, visit: &mut Visit<'_>) -> Result<(), RpmdbError> {
    let error = |e: rusqlite::Error| RpmdbError::database(database, e.to_string());
    // Check every cell's size against its page as it is read, so that damage is an error.
    connection
        .pragma_update(None, "cell_size_check", "ON")
        .map_err(error)?;
    let mut statement = connection
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| {
            let reason = e.to_string();
            if reason.contains("no such table") {
                RpmdbError::database(database, format!("not an rpm database: {reason}"))
            } else {
                RpmdbError::database(database, reason)
            }
        })?;
    let mut rows = statement.query([]).map_err(error)?;
    while let Some(row) = rows.next().map_err(error)? {
        let record = match row.get_ref(0).map_err(error)? {
            ValueRef::Integer(hnum) => u32::try_from(hnum)
                .ok()
                .filter(|&hnum| hnum != 0)
                .ok_or_else(|| {
                    RpmdbError::database(database, format!("hnum {hnum} out of range"))
                })?,
            other => {
                return Err(RpmdbError::database(
                    database,
                    format!("an hnum of type {}, not an integer", other.data_type()),
                ))
            }
        };
        let blob = match row.get_ref(1).map_err(error)? {
            ValueRef::Blob(blob) if blob.len() < HEADER_MAX_BYTES => blob,
            ValueRef::Blob(blob) => {
                return Err(RpmdbError::record(
                    database,
                    record,
                    format!("header of {} bytes, more than rpm reads", blob.len()),
                ))
            }
            other => {
                return Err(RpmdbError::record(
                    database,
                    record,
                    format!("a blob of type {}, not a blob", other.data_type()),
                ))
            }
        };
        visit(record, blob).map_err(|reason| RpmdbError::record(database, record, reason))?;
    }
    Ok(())
}

/// Copies a tree file to a new file, in fixed chunks.
fn copy_file(file: &TreeFile, target: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let len = file.len()?;
    if len > MAX_COPY_BYTES {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than the {MAX_COPY_BYTES} copied"
        )));
    }
    let mut out = std::fs::File::create_new(target)?;
    let mut buffer = vec![0; 256 << 10];
    let mut offset = 0;
    while offset < len {
        let chunk = (len - offset).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..chunk], offset)?;
        out.write_all(&buffer[..chunk])?;
        offset += chunk as u64;
    }
    out.flush()
}
