//! Temporary objects named for their owner.
//!
//! Everything a run creates for a while (folders under `TMPDIR`, temporary report files beside
//! their destination, the real run's network namespaces and veth interfaces) carries the id of
//! the hostcert process that made it, so that leftovers of a run that was killed can be told
//! from those of a run still going: an object is stale only when its owner is gone.
//!
//! | object | name |
//! | --- | --- |
//! | folder under `TMPDIR` | `hostcert-<pid>-<kind>-<random>` (`image`, `live`) |
//! | report or snapshot being written | `.<file name>.hostcert-<pid>-<random>.tmp`, beside it |
//! | network namespace of a real run | `hostcert-<pid>-<n>-srv`, `hostcert-<pid>-<n>-img` |
//! | veth interface of a real run | `hc<pid>s`, `hc<pid>c` (`hc<pid>s<n>`, `hc<pid>c<n>` for the process's later runs) |
//! | a run's results (`run/spool.rs`) | none: an unnamed file under `TMPDIR` (`O_TMPFILE`), gone with its process |
//! | blob being fetched into the registry cache | `$XDG_CACHE_HOME/hostcert/tmp/hostcert-<pid>-blob-<random>` (removed by the next `docker://` run once its owner is gone) |
//!
//! A process id is reused once its process is gone, so "gone" is decided conservatively: a pid
//! that names any living process keeps its objects.

use std::path::{Path, PathBuf};

/// The prefix of every temporary object: `hostcert-`.
pub const PREFIX: &str = "hostcert-";

/// `hostcert-<pid>-`: the start of the names of this process's temporary objects.
pub fn own_prefix() -> String {
    format!("{PREFIX}{}-", std::process::id())
}

/// The owner's pid in a name that starts with `prefix` followed by `<pid>-`.
pub fn owner_after(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?;
    let (pid, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid.starts_with('0') {
        return None;
    }
    pid.parse().ok()
}

/// The owner of a `hostcert-<pid>-...` name.
pub fn owner(name: &str) -> Option<u32> {
    owner_after(name, PREFIX)
}

/// Whether a process with this id exists (any process: a reused pid keeps the objects).
pub fn is_alive(pid: u32) -> bool {
    match i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // EPERM means it exists but belongs to someone else.
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// Whether `pid` owned an object and is gone (never this process).
pub fn is_stale(pid: u32) -> bool {
    pid != std::process::id() && !is_alive(pid)
}

/// A new folder under `TMPDIR` (std's `temp_dir`), named `hostcert-<pid>-<kind>-<random>`, mode
/// 0700, removed when dropped.
pub fn folder(kind: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{}{kind}-", own_prefix()))
        .tempdir()
}

/// The folders under `TMPDIR` named for an owner and made by this user: `(path, owner)`.
pub fn folders() -> Vec<(PathBuf, u32)> {
    folders_in(&std::env::temp_dir())
}

fn folders_in(dir: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let uid = rustix::process::geteuid().as_raw();
    let mut found: Vec<(PathBuf, u32)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let owner = owner(&entry.file_name().to_string_lossy())?;
            // Not followed: a link named like a folder of ours is not ours.
            let metadata = std::fs::symlink_metadata(entry.path()).ok()?;
            (metadata.is_dir() && metadata.uid() == uid).then(|| (entry.path(), owner))
        })
        .collect();
    found.sort();
    found
}

/// The most of /proc/self/mountinfo read (a table of thousands of mounts is far less).
const MOUNT_TABLE_CAP: u64 = 16 << 20;

/// Removes a temporary folder and everything in it, unless something is mounted under it
/// (a real run's image tree, had its mount namespace leaked): removing would reach into the
/// mount. A folder that is already gone is fine.
pub fn remove_folder(path: &Path) -> Result<(), String> {
    let Ok(canonical) = path.canonicalize() else {
        return Ok(());
    };
    // The kernel's own table, not a user's file: read as it is (bounded), so this module,
    // which `fsio` names its temporary files by, does not depend on `fsio`.
    let mut mounts = String::new();
    if let Ok(table) = std::fs::File::open("/proc/self/mountinfo") {
        use std::io::Read;
        let _ = table.take(MOUNT_TABLE_CAP + 1).read_to_string(&mut mounts);
        if mounts.len() as u64 > MOUNT_TABLE_CAP {
            return Err(format!(
                "{}: the mount table is too long to tell whether something is mounted under it; not removed",
                path.display()
            ));
        }
    }
    // The fifth field is the mount point, with spaces and the like escaped as \ooo.
    let mounted = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| Path::new(point).starts_with(&canonical));
    if mounted {
        return Err(format!(
            "{}: something is mounted under it; not removed",
            path.display()
        ));
    }
    match std::fs::remove_dir_all(&canonical) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Removes this process's own folders under `TMPDIR` (those of targets whose gathers were
/// abandoned when the run was interrupted). Returns what could not be removed.
pub fn remove_own_folders() -> Vec<String> {
    let me = std::process::id();
    folders()
        .into_iter()
        .filter(|(_, owner)| *owner == me)
        .filter_map(|(path, _)| remove_folder(&path).err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_names_and_nothing_else() {
        assert_eq!(owner("hostcert-1234-image-AbC"), Some(1234));
        assert_eq!(owner("hostcert-1234-"), Some(1234));
        assert_eq!(owner("hostcert-live.XyZ"), None);
        assert_eq!(owner("hostcert-0123-x"), None);
        assert_eq!(owner("hostcert--x"), None);
        assert_eq!(owner("other-1234-x"), None);
        assert_eq!(
            owner_after(".report.json.hostcert-77-a.tmp", ".report.json.hostcert-"),
            Some(77)
        );
        assert!(is_alive(std::process::id()));
        assert!(!is_stale(std::process::id()));
        // Process 1 always exists (even when it is not ours to signal).
        assert!(is_alive(1));
    }

    #[test]
    fn folders_are_named_for_their_owner_under_tmpdir() {
        let folder = folder("image").unwrap();
        let name = folder
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&format!("hostcert-{}-image-", std::process::id())),
            "{name}"
        );
        assert_eq!(folder.path().parent(), Some(std::env::temp_dir().as_path()));
        assert!(folders().contains(&(folder.path().to_owned(), std::process::id())));
    }
}
