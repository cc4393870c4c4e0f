//! Unpacking an image's layers, in order, into a folder of the run's temporary folder: whiteouts
//! applied, so that the folder is the image's merged filesystem. Hostile layers are refused with
//! the layer and the entry named: `..` or absolute names, links that lead outside the tree,
//! device nodes, an entry twice in one layer, a size that lies, a decompression bomb. Nothing
//! is written outside the folder: every parent is resolved inside the tree, and a link is never
//! followed when writing.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::layout::{safe_relative, shorten, Compression, Layer};
use super::verify::{decompressed_limit, MAX_RATIO};
use crate::targets::host::resolve_in_tree;

/// The most entries one layer may have.
const MAX_ENTRIES: usize = 1_000_000;

/// A reader that refuses to give more than `limit` bytes.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} bytes (over {MAX_RATIO} times its size): refused as a decompression bomb",
                self.limit
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A file (or symbolic link) of a lower layer that a later layer replaced or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Modified {
    /// The layer's index (0 is the base).
    pub layer: usize,
    /// The file's absolute path in the image.
    pub path: String,
    /// The mode the layer's entry gives the path (permission bits with setuid, setgid and
    /// sticky, which the unpacked tree does not keep), or `None` when the layer deleted it.
    pub mode: Option<u32>,
}

/// What unpacking found out about the layers.
#[derive(Debug, Default)]
pub(super) struct Unpacked {
    /// The files of lower layers that later layers replaced or deleted, in layer order.
    pub modified: Vec<Modified>,
    /// For each layer that wrote an rpm database file ([`RPMDB_FILES`]), a folder holding that
    /// layer's database as a tree of its own (hard links to the files as the layer left them,
    /// at their real paths in the image): the database as it was after that layer, in layer
    /// order.
    pub rpmdb_states: Vec<(usize, PathBuf)>,
}

/// The files of an rpm database folder whose state after each layer is kept.
const RPMDB_FILES: &[&str] = &[
    "rpmdb.sqlite",
    "rpmdb.sqlite-wal",
    "rpmdb.sqlite-journal",
    "Packages.db",
    "Packages",
];

/// Unpacks every layer into `root`, which must be an empty folder; `history` is an empty folder
/// beside it (on the same filesystem) for the rpm database's states after each layer.
pub(super) fn unpack(layers: &[Layer], root: &Path, history: &Path) -> Result<Unpacked, String> {
    let mut unpacked = Unpacked::default();
    for (index, layer) in layers.iter().enumerate() {
        let mut databases = BTreeSet::new();
        unpack_layer(layer, root, index, &mut unpacked.modified, &mut databases)
            .map_err(|reason| format!("layer {}: {reason}", layer.name))?;
        if !databases.is_empty() {
            let state = history.join(index.to_string());
            keep_databases(root, &databases, &state).map_err(|reason| {
                format!("layer {}: keeping its rpm database: {reason}", layer.name)
            })?;
            unpacked.rpmdb_states.push((index, state));
        }
    }
    Ok(unpacked)
}

/// Links the rpm database files of each folder (real folders of the tree) into `state`, at the
/// same paths; a copy where a link cannot be made.
fn keep_databases(root: &Path, folders: &BTreeSet<PathBuf>, state: &Path) -> Result<(), String> {
    for folder in folders {
        let Ok(relative) = folder.strip_prefix(root) else {
            continue;
        };
        let target = state.join(relative);
        std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        for name in RPMDB_FILES {
            let file = folder.join(name);
            if std::fs::symlink_metadata(&file).is_ok_and(|m| m.is_file()) {
                let link = target.join(name);
                if std::fs::hard_link(&file, &link).is_err() {
                    std::fs::copy(&file, &link).map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Records a file or link of a lower layer at `path` as modified by layer `index`; every file
/// and link under it when it is a folder (a whiteout or an entry that replaces a folder removes
/// them all).
fn note(modified: &mut Vec<Modified>, index: usize, root: &Path, path: &Path, mode: Option<u32>) {
    if index == 0 {
        return;
    }
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return;
    };
    if metadata.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            note(modified, index, root, &child, None);
        }
        return;
    }
    if !(metadata.is_file() || metadata.file_type().is_symlink()) {
        return;
    }
    if let Ok(relative) = path.strip_prefix(root) {
        modified.push(Modified {
            layer: index,
            path: format!("/{}", relative.display()),
            mode,
        });
    }
}

fn unpack_layer(
    layer: &Layer,
    root: &Path,
    index: usize,
    modified: &mut Vec<Modified>,
    databases: &mut BTreeSet<PathBuf>,
) -> Result<(), String> {
    let file =
        std::fs::File::open(&layer.path).map_err(|e| format!("cannot open the blob: {e}"))?;
    let compressed = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = std::io::BufReader::with_capacity(1 << 20, crate::interrupt::Stopping(file));
    let reader: Box<dyn Read> = match layer.compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => {
            let limit = decompressed_limit(compressed);
            Box::new(Bounded {
                inner: flate2::read::MultiGzDecoder::new(reader),
                left: limit,
                limit,
            })
        }
        Compression::Zstd => {
            let limit = decompressed_limit(compressed);
            Box::new(Bounded {
                inner: super::verify::ZstdFrames::new(reader),
                left: limit,
                limit,
            })
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let entries = archive.entries().map_err(|e| format!("not a tar: {e}"))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let mut entry = match entry {
            Ok(entry) => entry,
            // Some writers (umoci) end a layer without padding the last entry or writing the
            // two zero blocks; the last entry was read whole, so this is the end.
            Err(e) if count > 0 && e.to_string() == "unexpected EOF during skip" => break,
            Err(e) => return Err(format!("damaged tar: {e}")),
        };
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let fail = |reason: String| format!("entry `{}`: {reason}", shorten(&raw));
        if raw == "/" || raw == "./" || raw == "." {
            continue; // the root folder itself, as some writers (umoci) record it
        }
        let relative = safe_relative(&raw).map_err(|r| fail(format!("{r} is not allowed")))?;
        let Some(name) = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue; // the root folder itself
        };
        if !seen.insert(relative.clone()) {
            return Err(fail("appears twice in the layer".to_owned()));
        }
        let parent_relative = relative.parent().unwrap_or(Path::new(""));
        let parent = ensure_dir(root, parent_relative).map_err(&fail)?;
        // Whiteouts: `.wh..wh..opq` empties the folder of lower layers' files; `.wh.NAME`
        // deletes NAME.
        if name == ".wh..wh..opq" {
            clear_dir(&parent, &seen, root, index, modified).map_err(&fail)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                return Err(fail("an invalid whiteout".to_owned()));
            }
            let target = parent.join(hidden);
            if !seen.contains(&parent_relative.join(hidden)) {
                note(modified, index, root, &target, None);
            }
            if RPMDB_FILES.contains(&hidden) {
                databases.insert(parent.clone());
            }
            remove(&target).map_err(&fail)?;
            continue;
        }
        if RPMDB_FILES.contains(&name.as_str()) {
            databases.insert(parent.clone());
        }
        let dest = parent.join(&name);
        let kind = entry.header().entry_type();
        let full_mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mode = full_mode & 0o777;
        let existing = std::fs::symlink_metadata(&dest).ok();
        if kind.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    note(modified, index, root, &dest, Some(full_mode));
                    remove(&dest).map_err(&fail)?;
                    std::fs::create_dir(&dest).map_err(|e| fail(e.to_string()))?;
                }
                None => std::fs::create_dir(&dest).map_err(|e| fail(e.to_string()))?,
            }
            let _ = std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode | 0o700));
            continue;
        }
        if existing.is_some() {
            note(modified, index, root, &dest, Some(full_mode));
            remove(&dest).map_err(&fail)?;
        }
        if kind.is_file() || kind == tar::EntryType::Continuous {
            let declared = entry.header().size().map_err(|e| fail(e.to_string()))?;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)
                .map_err(|e| fail(e.to_string()))?;
            let copied = std::io::copy(&mut (&mut entry).take(declared), &mut out)
                .map_err(|e| fail(e.to_string()))?;
            if copied != declared {
                return Err(fail(format!(
                    "cut short: {copied} of the {declared} bytes its header says"
                )));
            }
            let _ = out.set_permissions(std::fs::Permissions::from_mode(mode | 0o600));
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("a symbolic link without a target".to_owned()))?
                .into_owned();
            if escapes(parent_relative, &target) {
                return Err(fail(format!(
                    "a symbolic link to `{}`, outside the image",
                    shorten(&target.to_string_lossy())
                )));
            }
            std::os::unix::fs::symlink(&target, &dest).map_err(|e| fail(e.to_string()))?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| fail(e.to_string()))?
                .ok_or_else(|| fail("a hard link without a target".to_owned()))?
                .into_owned();
            let target_text = target.to_string_lossy().into_owned();
            let target_relative =
                safe_relative(target_text.trim_start_matches('/')).map_err(|_| {
                    fail(format!(
                        "a hard link to `{}`, outside the image",
                        shorten(&target_text)
                    ))
                })?;
            let source = resolve_in_tree(root, &format!("/{}", target_relative.display()))
                .map_err(&fail)?
                .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
                .ok_or_else(|| {
                    fail(format!(
                        "a hard link to `{}`, which is not a file of the image",
                        shorten(&target_text)
                    ))
                })?;
            std::fs::hard_link(&source, &dest).map_err(|e| fail(e.to_string()))?;
        } else if kind.is_character_special() || kind.is_block_special() {
            return Err(fail(
                "a device node, which an image may not carry".to_owned(),
            ));
        } else if kind.is_fifo() {
            return Err(fail("a FIFO, which an image may not carry".to_owned()));
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        } else {
            return Err(fail(format!(
                "an entry of unknown type {:?}",
                kind.as_byte()
            )));
        }
    }
    Ok(())
}

/// Whether a relative link target, read from the folder `dir` (relative to the root), climbs
/// above the root. Absolute targets are read inside the tree, so they never escape.
fn escapes(dir: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = dir.components().count() as i64;
    for component in target.components() {
        match component {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// The real folder for a relative folder of the tree, created as needed; links on the way are
/// resolved inside the tree, so the folder is always inside `root`.
fn ensure_dir(root: &Path, relative: &Path) -> Result<PathBuf, String> {
    let mut current = root.to_owned();
    for component in relative.components() {
        let Component::Normal(part) = component else {
            return Err("an invalid path".to_owned());
        };
        let next = current.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.is_dir() => current = next,
            Ok(m) if m.file_type().is_symlink() => {
                let inside = next
                    .strip_prefix(root)
                    .map_err(|_| "a path outside the tree".to_owned())?;
                let resolved = resolve_in_tree(root, &format!("/{}", inside.display()))?
                    .filter(|p| p.is_dir())
                    .ok_or_else(|| {
                        format!(
                            "its folder `{}` is a link to no folder of the image",
                            inside.display()
                        )
                    })?;
                current = resolved;
            }
            Ok(_) => {
                std::fs::remove_file(&next).map_err(|e| e.to_string())?;
                std::fs::create_dir(&next).map_err(|e| e.to_string())?;
                current = next;
            }
            Err(_) => {
                std::fs::create_dir(&next).map_err(|e| e.to_string())?;
                current = next;
            }
        }
    }
    if !current.starts_with(root) {
        return Err("a path outside the tree".to_owned());
    }
    Ok(current)
}

/// Removes a file, a link (not what it points to) or a whole folder of the tree.
fn remove(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(|e| e.to_string()),
        Ok(_) => std::fs::remove_file(path).map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    }
}

/// Empties a folder of what lower layers put there (an opaque whiteout); entries of this layer
/// seen so far stay. What it removes is recorded as modified by this layer.
fn clear_dir(
    dir: &Path,
    seen: &BTreeSet<PathBuf>,
    root: &Path,
    index: usize,
    modified: &mut Vec<Modified>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let relative = path
            .strip_prefix(root)
            .map(Path::to_owned)
            .unwrap_or_default();
        if !seen.contains(&relative) {
            note(modified, index, root, &path, None);
            remove(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_that_climb_above_the_root_escape() {
        assert!(escapes(Path::new(""), Path::new("../etc/passwd")));
        assert!(escapes(Path::new("a"), Path::new("../../x")));
        assert!(!escapes(Path::new("a/b"), Path::new("../../x")));
        assert!(!escapes(Path::new("bin"), Path::new("busybox")));
        assert!(!escapes(Path::new(""), Path::new("/etc/passwd")));
    }
}
