//! Package databases read without the package managers' own libraries: the rpm database
//! ([`rpmdb`]: SQLite, Berkeley DB hash and NDB, with the header format rpm stores in each), an
//! installed file checked against its rpm record as `rpm -V` checks it ([`verify`]), and rpm's
//! and dpkg's version comparisons ([`version`]).
//!
//! Every reader sees the target through [`TreeFiles`], a view of files by absolute path, so an OS
//! tree, an unpacked image and the live machine ([`LocalTree`]) read the same way, and a remote
//! host can hand over the bytes it fetched ([`TreeFile::Bytes`]).

pub mod rpmdb;
pub mod verify;
pub mod version;

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use super::host::resolve_in_tree;

/// The files of a target, by absolute path (`/var/lib/rpm/Packages`), as a package database
/// reader needs them: whole files opened for reading, and directory listings.
pub trait TreeFiles {
    /// Opens the regular file at an absolute path of the tree; `Ok(None)` when nothing is there.
    /// Anything else there (a directory, a device, a FIFO) is an error, never opened.
    fn open(&self, path: &str) -> Result<Option<TreeFile>, String>;

    /// The names in the directory at an absolute path of the tree, in any order; `Ok(None)` when
    /// there is no directory there.
    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String>;
}

/// One file opened through [`TreeFiles`]: read at offsets, never written.
#[derive(Debug)]
pub enum TreeFile {
    /// A file on this machine (in an OS tree, an unpacked image, or the live root), read in
    /// place. `path` is the real path on this machine, every link resolved.
    Local {
        /// The file's real path on this machine.
        path: PathBuf,
        /// The open file.
        file: File,
    },
    /// A file's bytes, fetched another way (a remote host's batch).
    Bytes(Vec<u8>),
}

impl TreeFile {
    /// The file's length in bytes.
    pub fn len(&self) -> std::io::Result<u64> {
        match self {
            TreeFile::Local { file, .. } => Ok(file.metadata()?.len()),
            TreeFile::Bytes(bytes) => Ok(bytes.len() as u64),
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Fills `buf` from `offset`; an error when the file ends first.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            TreeFile::Local { file, .. } => file.read_exact_at(buf, offset),
            TreeFile::Bytes(bytes) => {
                let range = usize::try_from(offset)
                    .ok()
                    .and_then(|start| Some(start..start.checked_add(buf.len())?))
                    .filter(|range| range.end <= bytes.len())
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "read past the end of the file",
                        )
                    })?;
                buf.copy_from_slice(&bytes[range]);
                Ok(())
            }
        }
    }

    /// The whole file, when it holds at most `limit` bytes.
    pub fn read_to_end(&self, limit: u64) -> Result<Vec<u8>, String> {
        let len = self.len().map_err(|e| e.to_string())?;
        if len > limit {
            return Err(format!("{len} bytes, more than the {limit} read"));
        }
        match self {
            TreeFile::Local { .. } => {
                let mut bytes = vec![0; usize::try_from(len).map_err(|e| e.to_string())?];
                self.read_exact_at(&mut bytes, 0)
                    .map_err(|e| e.to_string())?;
                Ok(bytes)
            }
            TreeFile::Bytes(bytes) => Ok(bytes.clone()),
        }
    }
}

/// A tree on this machine: an OS tree, an unpacked image, or the live root (`/`). Every path is
/// resolved inside the tree (`..` stops at its root and links are followed within it), so nothing
/// outside it is ever read.
#[derive(Debug, Clone)]
pub struct LocalTree {
    root: PathBuf,
}

impl LocalTree {
    /// The tree rooted at `root` (`/` for the live machine).
    pub fn new(root: impl Into<PathBuf>) -> LocalTree {
        LocalTree { root: root.into() }
    }

    /// The tree's root on this machine.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl TreeFiles for LocalTree {
    fn open(&self, path: &str) -> Result<Option<TreeFile>, String> {
        let Some(resolved) = resolve_in_tree(&self.root, path)? else {
            return Ok(None);
        };
        let metadata = match std::fs::metadata(&resolved) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{path}: {error}")),
        };
        if !metadata.is_file() {
            return Err(format!("{path}: not a regular file"));
        }
        let file = File::open(&resolved).map_err(|e| format!("{path}: {e}"))?;
        Ok(Some(TreeFile::Local {
            path: resolved,
            file,
        }))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let Some(resolved) = resolve_in_tree(&self.root, path)? else {
            return Ok(None);
        };
        let entries = match std::fs::read_dir(&resolved) {
            Ok(entries) => entries,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(format!("{path}: {error}")),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{path}: {e}"))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(Some(names))
    }
}
