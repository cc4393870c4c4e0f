//! The content-addressed blob cache shared by runs: `$XDG_CACHE_HOME/hostcert/blobs/sha256/HEX`
//! (`~/.cache/hostcert/…` by default), laid out as an OCI layout's blobs so the layout reader
//! reads from it unchanged.
//!
//! Only verified blobs enter it: a blob is written to an exclusive temporary file in the
//! cache's `tmp/` folder while it is checked, and renamed to its digest's name only when its
//! size and sha256 are those its descriptor names; otherwise the temporary file is removed.
//! Concurrent runs are safe: a rename is atomic and two runs write the same bytes. A cached blob
//! is verified again before a run uses it (once per run), and fetched again if it no longer
//! matches its digest. Inside a
//! run, a blob is fetched once: its digest's lock is held while it is fetched, so a second
//! gather of the same image (a fleet's `--image`) waits and then finds it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::super::layout::{blob_path, Sha256Digest};
use super::super::verify::Measured;

/// The cache folder: the layout root whose `blobs/sha256` holds the blobs.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

/// The cache folder this run uses.
pub(crate) fn default_root() -> Result<PathBuf, String> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or("neither XDG_CACHE_HOME nor HOME is set: no folder for the blob cache")?,
        )
        .join(".cache"),
    };
    Ok(base.join("hostcert"))
}

impl Cache {
    /// Opens (creating it, owner-only) the cache at `root`.
    pub(crate) fn open(root: &Path) -> Result<Cache, String> {
        use std::os::unix::fs::DirBuilderExt as _;
        for dir in [root.to_owned(), root.join("blobs/sha256"), root.join("tmp")] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("blob cache {}: {e}", dir.display()))?;
        }
        let cache = Cache {
            root: root.to_owned(),
        };
        cache.remove_stale_temporaries();
        Ok(cache)
    }

    /// Removes the temporary files runs that were killed left in `tmp/` (a layer cut off
    /// halfway can be a gigabyte): those named for an owner that is gone. Files of runs still
    /// going are kept.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let owner = crate::temp::owner(&name.to_string_lossy());
            if owner.is_some_and(crate::temp::is_stale) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The folder to use as an OCI layout's root: its `blobs` are the cache's.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob is (or would be).
    pub(crate) fn path(&self, digest: &Sha256Digest) -> PathBuf {
        blob_path(&self.root, digest)
    }

    /// Whether the cache holds a blob.
    pub(crate) fn has(&self, digest: &Sha256Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores a small blob whose bytes are in memory, if they are the digest's.
    pub(crate) fn store(&self, digest: &Sha256Digest, bytes: &[u8]) -> Result<(), String> {
        if Sha256Digest::of(bytes) != *digest {
            return Err(format!("blob {digest}: its bytes are not the digest's"));
        }
        let mut file = self.temporary()?;
        file.write_all(bytes)
            .map_err(|e| format!("blob cache: cannot write {digest}: {e}"))?;
        self.commit(file, digest)
    }

    /// An exclusive temporary file in the cache (`tmp/hostcert-<pid>-blob-<random>`), removed
    /// unless committed; a killed run's are removed by the next run.
    pub(crate) fn temporary(&self) -> Result<tempfile::NamedTempFile, String> {
        tempfile::Builder::new()
            .prefix(&format!("{}blob-", crate::temp::own_prefix()))
            .tempfile_in(self.root.join("tmp"))
            .map_err(|e| format!("blob cache {}: {e}", self.root.display()))
    }

    /// Renames a verified temporary file to its digest's name.
    pub(crate) fn commit(
        &self,
        file: tempfile::NamedTempFile,
        digest: &Sha256Digest,
    ) -> Result<(), String> {
        file.persist(self.path(digest))
            .map(drop)
            .map_err(|e| format!("blob cache: cannot store {digest}: {}", e.error))
    }
}

/// The lock of one digest: held while the blob is fetched or verified, so that a run fetches
/// each blob once.
pub(crate) fn lock(digest: &Sha256Digest) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    locks.entry(digest.0.clone()).or_default().clone()
}

/// What this run measured of a cached blob (by digest and compression), so that a blob read
/// once is not read again by the next gather of the same image.
pub(crate) fn measured(key: &str) -> Option<Measured> {
    memo()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .cloned()
}

/// Remembers what was measured of a blob now in the cache.
pub(crate) fn remember(key: String, measured: Measured) {
    memo()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, measured);
}

fn memo() -> &'static Mutex<HashMap<String, Measured>> {
    static MEMO: OnceLock<Mutex<HashMap<String, Measured>>> = OnceLock::new();
    MEMO.get_or_init(Default::default)
}
