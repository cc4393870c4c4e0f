//! The `modified-package-files` fact: files a package installed in a lower layer that a higher
//! layer changed outside the package manager, as Red Hat's preflight judges them
//! (`HasModifiedFiles`, internal/policy/container/has_modified_files.go), with rpm's own record
//! of each file as the reference.
//!
//! For rpm packages, a file counts when a layer above the base wrote or deleted it ([`Modified`]),
//! the rpm database as it was before that layer already listed it (a file of a package installed
//! in the same layer is new, not modified: preflight passes it), and it now differs from what the
//! database (as the image ends) records for it: its type, link target, size and digest (in the
//! package's digest algorithm), or its permission bits (removing setuid or setgid alone is
//! allowed, as preflight allows it). A package upgraded in that layer (another NEVRA owns the file
//! than before) may change it, unless the new package is built for another architecture or, where
//! os-release names the platform (`PLATFORM_ID="platform:el9"`), the old package's release was
//! built for it (`el9`) and the new one's is not: both as preflight refuses them.
//!
//! Left out as preflight leaves them out: files rpm flags `%config`, `%doc`, `%license`,
//! `%readme`, `%ghost`, `%artifact` or `missingok`; directories; files rpm did not install
//! (another package's, another architecture's, excluded); and paths under `etc`, `var`, `run`,
//! `usr/lib/.build-id`, `usr/tmp`, `usr/share/openstack-dashboard` (preflight matches these as
//! prefixes of the path without its leading `/`, so `/etcd/x` is left out too) and `usr/**.cache`.
//!
//! Where hostcert is stricter than preflight: a file preflight sees in a layer is modified
//! whatever its content, but hostcert compares content, so a layer that rewrites a file with the
//! bytes rpm recorded modifies nothing; preflight passes files of packages whose vendor is not
//! "Red Hat, Inc." or whose release lacks the platform's dist tag (it only warns), files of
//! packages reinstalled in the layer, and files whose layer entry carries file capabilities;
//! hostcert fails them all when their content differs from rpm's record: the package database
//! then lies about what is installed, whoever built the package.
//!
//! dpkg's (`info/*.list`) and apk's (installed database) packages record no digests hostcert
//! reads here: a file of theirs replaced or deleted by a later layer counts unless that layer
//! also rewrote the package's file list (an upgrade), with the same paths left out.

use std::collections::BTreeMap;
use std::path::Path;

use super::unpack::{Modified, Unpacked};
use super::{read_tree_text, read_tree_text_large};
use crate::facts::FactValue;
use crate::targets::host::{parse_os_release, resolve_in_tree};
use crate::targets::packages::rpmdb::{self, FileFlags, FileState, Location, Package, RpmDatabase};
use crate::targets::packages::verify::verify_file;
use crate::targets::packages::{LocalTree, TreeFile, TreeFiles as _};

/// The folders preflight's `directoryIsExcluded` leaves out, matched as prefixes of the path
/// without its leading `/`.
const EXCLUDED_PREFIXES: &[&str] = &[
    "etc",
    "var",
    "run",
    "usr/lib/.build-id",
    "usr/tmp",
    "usr/share/openstack-dashboard",
];

/// rpm's file flags preflight leaves out (`okFlags`).
const EXCLUDED_FLAGS: u32 = FileFlags::CONFIG
    | FileFlags::DOC
    | FileFlags::LICENSE
    | FileFlags::MISSINGOK
    | FileFlags::README
    | FileFlags::ARTIFACT
    | FileFlags::GHOST;

/// Whether preflight leaves a path out of `HasModifiedFiles`: its excluded folders (as string
/// prefixes, as preflight matches them), `etc/resolv.conf` and `etc/hostname`, and files under
/// `usr/` that end in `.cache`.
pub(super) fn excluded_path(path: &str) -> bool {
    let relative = path.trim_start_matches('/');
    EXCLUDED_PREFIXES
        .iter()
        .any(|prefix| relative.starts_with(prefix))
        || (relative.starts_with("usr/") && relative.ends_with(".cache"))
}

/// The fact's value: `none`, or one item per file, `PATH (package NAME[, NEVRA], layer N): WHAT`,
/// joined by `, `; and its source. An rpm database (the image's, or its state after a layer) that
/// cannot be read is an error naming it, never a pass.
pub(super) fn modified_package_files(
    root: &Path,
    unpacked: &Unpacked,
) -> Result<(String, FactValue), String> {
    // Every package database must read, as for the package list: one that does not is an
    // error here too, never a pass.
    crate::targets::package_list::PackageList::read(&crate::targets::host::HostFs::tree(
        root.to_owned(),
        None,
    ))?;
    // The last change of each path: what the image ends with came from it.
    let mut last: BTreeMap<&str, &Modified> = BTreeMap::new();
    for change in &unpacked.modified {
        last.insert(change.path.as_str(), change);
    }
    let mut items = Vec::new();
    let mut sources = Vec::new();
    if let Some(source) = rpm_items(root, unpacked, &last, &mut items)? {
        sources.push(source);
    }
    sources.extend(listed_items(root, &unpacked.modified, &last, &mut items)?);
    if sources.is_empty() {
        return Ok((
            "rpm database, dpkg and apk file lists (none present)".to_owned(),
            FactValue::Text("none".to_owned()),
        ));
    }
    Ok((
        sources.join(", "),
        FactValue::Text(if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }),
    ))
}

/// Why the image's packages cannot be listed, when a layer wrote an rpm database (kept in
/// [`Unpacked::rpmdb_states`]) that the image no longer has because a later layer removed it:
/// the packages' files are still there, `rpm -qa` in the image lists none, and preflight, which
/// cannot open the database, does not pass it. `None` when the image has a database or no layer
/// ever wrote one.
pub(super) fn removed_rpm_database(root: &Path, unpacked: &Unpacked) -> Option<String> {
    let (layer, file) = unpacked
        .rpmdb_states
        .iter()
        .rev()
        .find_map(|(layer, folder)| database_file(folder, folder).map(|file| (*layer, file)))?;
    match rpmdb::locate(&LocalTree::new(root)) {
        // A database that is there (or cannot be located) is read, and reported, by the readers.
        Ok(Some(_)) | Err(_) => None,
        Ok(None) => {
            let by = unpacked
                .modified
                .iter()
                .find(|change| change.layer > layer && change.path == file)
                .map_or_else(
                    || "a later layer".to_owned(),
                    |change| format!("layer {}", change.layer),
                );
            Some(format!(
                "the rpm database {file} that layer {layer} left is not in the image: {by} \
                 removed it, so the installed packages, whose files remain, cannot be listed"
            ))
        }
    }
}

/// The first rpm database file (SQLite, Berkeley DB, NDB) under `folder`, as a path of the
/// image (relative to `base`).
fn database_file(base: &Path, folder: &Path) -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir(folder).ok()?.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().ok()?;
        if kind.is_dir() {
            if let Some(found) = database_file(base, &path) {
                return Some(found);
            }
        } else if kind.is_file()
            && crate::targets::package_list::RPM_DB_FILES
                .iter()
                .any(|name| entry.file_name() == *name)
        {
            return path
                .strip_prefix(base)
                .ok()
                .map(|relative| format!("/{}", relative.display()));
        }
    }
    None
}

/// Files by path, each with the packages that own it and the file's index in each.
type Owners<'a> = BTreeMap<&'a str, Vec<(&'a Package, usize)>>;

/// The files of a database preflight judges, by path: for each, the package and the file's index
/// in it.
fn owned_files(database: &RpmDatabase) -> Owners<'_> {
    let mut owners: Owners<'_> = BTreeMap::new();
    for package in &database.packages {
        for (index, file) in package.files.iter().enumerate() {
            let installed = matches!(file.state, None | Some(FileState::Normal));
            let directory = u32::from(file.mode) & 0o170_000 == 0o040_000;
            if installed
                && !directory
                && file.flags.0 & EXCLUDED_FLAGS == 0
                && !excluded_path(&file.path)
            {
                owners
                    .entry(file.path.as_str())
                    .or_default()
                    .push((package, index));
            }
        }
    }
    owners
}

/// The dist tag of the platform os-release names (`PLATFORM_ID="platform:el9"`: `el9`), as
/// preflight reads it; `None` when it names none.
fn platform_dist(root: &Path) -> Result<Option<String>, String> {
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(text) = read_tree_text(root, path)? {
            return Ok(parse_os_release(&text)
                .get("PLATFORM_ID")
                .and_then(|id| id.strip_prefix("platform:"))
                .filter(|dist| !dist.is_empty() && dist.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(str::to_owned));
        }
    }
    Ok(None)
}

/// The rpm part: items for the files of rpm packages, and the source; `None` without an rpm
/// database.
fn rpm_items(
    root: &Path,
    unpacked: &Unpacked,
    last: &BTreeMap<&str, &Modified>,
    items: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let tree = LocalTree::new(root);
    let Some(database) = rpmdb::read(&tree).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let location = &database.location;
    // The database's real path in the image, to find it in each layer's kept state.
    let real_file = match tree.open(&location.file)? {
        Some(TreeFile::Local { path, .. }) => path
            .strip_prefix(root)
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_else(|_| location.file.clone()),
        _ => location.file.clone(),
    };
    let mut states: Vec<(usize, Option<RpmDatabase>)> = Vec::new();
    for (layer, folder) in &unpacked.rpmdb_states {
        let state_tree = LocalTree::new(folder);
        let at = Location {
            file: real_file.clone(),
            dbpath: real_file
                .rsplit_once('/')
                .map_or_else(String::new, |(dir, _)| dir.to_owned()),
            ..location.clone()
        };
        let state = if state_tree.open(&at.file)?.is_some() {
            Some(
                rpmdb::read_at(&state_tree, at)
                    .map_err(|e| format!("{e} (the database as layer {layer} left it)"))?,
            )
        } else {
            None
        };
        states.push((*layer, state));
    }
    let dist = platform_dist(root)?;
    let owners = owned_files(&database);
    let earlier: Vec<(usize, Owners<'_>)> = states
        .iter()
        .map(|(layer, state)| (*layer, state.as_ref().map(owned_files).unwrap_or_default()))
        .collect();
    for (path, change) in last {
        let Some(now) = owners.get(path) else {
            continue;
        };
        // The database before the layer that changed the file: a file it did not list is new
        // in that layer (preflight: "a net-new package file").
        let Some((_, before)) = earlier
            .iter()
            .rev()
            .find(|(layer, _)| *layer < change.layer)
        else {
            continue;
        };
        let Some(previous) = before.get(path) else {
            continue;
        };
        for &(package, index) in now {
            let file = &package.files[index];
            let mut what: Vec<String> = Vec::new();
            if let Some(&(old, _)) = previous
                .iter()
                .find(|(old, _)| old.name == package.name)
                .or_else(|| previous.first())
            {
                if old.nevra() != package.nevra() {
                    if old.arch != package.arch {
                        what.push(format!(
                            "{} replaced {} of another architecture",
                            package.nevra(),
                            old.nevra()
                        ));
                    }
                    if let Some(dist) = &dist {
                        if old.release.contains(dist.as_str())
                            && !package.release.contains(dist.as_str())
                        {
                            what.push(format!(
                                "{} replaced {}, a build for {dist}, with one whose release is not",
                                package.nevra(),
                                old.nevra()
                            ));
                        }
                    }
                }
            }
            let differences = verify_file(root, file, package.file_digest_algorithm, change.mode)?;
            what.extend(differences.iter().map(ToString::to_string));
            if !what.is_empty() {
                items.push(format!(
                    "{path} (package {}, {}, layer {}): {}",
                    package.name,
                    package.nevra(),
                    change.layer,
                    what.join("; ")
                ));
            }
        }
    }
    let layers: Vec<String> = unpacked
        .rpmdb_states
        .iter()
        .map(|(layer, _)| layer.to_string())
        .collect();
    Ok(Some(format!(
        "rpm database {} ({}) and its state after layer {}",
        location.file,
        location.backend,
        layers.join(", ")
    )))
}

/// The dpkg and apk part: items for files their file lists name; the sources read.
fn listed_items(
    root: &Path,
    modified: &[Modified],
    last: &BTreeMap<&str, &Modified>,
    items: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let mut owners: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut sources = Vec::new();
    if let Some(info) = resolve_in_tree(root, "/var/lib/dpkg/info")?.filter(|p| p.is_dir()) {
        sources.push("/var/lib/dpkg/info/*.list".to_owned());
        let entries = std::fs::read_dir(&info).map_err(|e| e.to_string())?;
        for entry in entries.filter_map(Result::ok).take(100_000) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(package) = name.strip_suffix(".list") else {
                continue;
            };
            let list = format!("/var/lib/dpkg/info/{name}");
            let Some(text) = read_tree_text_large(root, &list)? else {
                continue;
            };
            for line in text.lines().filter(|l| l.starts_with('/')) {
                owners.insert(line.to_owned(), (package.to_owned(), list.clone()));
            }
        }
    }
    if let Some(text) = read_tree_text_large(root, "/lib/apk/db/installed")? {
        sources.push("/lib/apk/db/installed".to_owned());
        let (mut package, mut dir) = (String::new(), String::new());
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("P:") {
                package = name.to_owned();
            } else if let Some(d) = line.strip_prefix("F:") {
                dir = d.to_owned();
            } else if let Some(file) = line.strip_prefix("R:") {
                owners.insert(
                    format!("/{dir}/{file}"),
                    (package.clone(), "/lib/apk/db/installed".to_owned()),
                );
            }
        }
    }
    for change in last.values() {
        let Some((package, list)) = owners.get(&change.path) else {
            continue;
        };
        if excluded_path(&change.path) {
            continue;
        }
        let upgraded = modified
            .iter()
            .any(|other| other.layer == change.layer && other.path == *list);
        if !upgraded {
            items.push(format!(
                "{} (package {package}, layer {}): {}",
                change.path,
                change.layer,
                if change.mode.is_some() {
                    "replaced"
                } else {
                    "deleted"
                }
            ));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_s_excluded_paths() {
        for path in [
            "/etc/passwd",
            "/etc",
            "/var/lib/rpm/rpmdb.sqlite",
            "/run/x",
            "/usr/lib/.build-id/ab/cdef",
            "/usr/tmp/x",
            "/usr/share/openstack-dashboard/x",
            "/usr/lib64/gconv/gconv-modules.cache",
            // preflight's prefixes have no trailing slash
            "/etcd/config",
            "/variables",
        ] {
            assert!(excluded_path(path), "{path}");
        }
        for path in [
            "/usr/bin/ls",
            "/opt/etc/x",
            "/usr/share/x.cached",
            "/bin/busybox",
        ] {
            assert!(!excluded_path(path), "{path}");
        }
    }
}
