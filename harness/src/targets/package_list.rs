//! The installed packages of a target, from its package databases, read as data: dpkg's status
//! file (`/var/lib/dpkg/status`), apk's installed database (`/lib/apk/db/installed`) and the rpm
//! database, on OS trees, unpacked images, the live machine and (through the bytes a batch sends)
//! SSH hosts.
//!
//! The rpm database (SQLite, Berkeley DB or NDB under `/var/lib/rpm`, `/usr/lib/sysimage/rpm` or
//! the `%_dbpath` the target's macros set) is read by [`super::packages::rpmdb`] through
//! [`rpm_packages`], with each package's `%changelog` CVE ids; a database that cannot be read is
//! an error, never an inventory that silently leaves its packages out. So is a dpkg status file or
//! an apk database that is not in the format its package manager writes ([`read_dpkg_status`],
//! [`read_apk_installed`]).

use std::collections::BTreeMap;

use super::packages::rpmdb::{self, RpmDatabase};
use super::packages::{LocalTree, TreeFile, TreeFiles};
use crate::facts::{Fact, FactValue};
use crate::model::Probe;

/// Where the package databases are, in the order they are read.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// apk's installed database.
pub const APK_INSTALLED: &str = "/lib/apk/db/installed";
/// The folders an rpm database lives in (rpm's `%_dbpath`: the old and the new default).
pub const RPM_DB_DIRS: &[&str] = &["/var/lib/rpm", "/usr/lib/sysimage/rpm"];
/// The files that make a folder an rpm database: SQLite, Berkeley DB, NDB.
pub const RPM_DB_FILES: &[&str] = &["rpmdb.sqlite", "Packages", "Packages.db"];
/// The most a package database may hold before it is refused.
pub const MAX_DATABASE_BYTES: u64 = 64 << 20;
/// The most an rpm database file read through [`TargetFiles::read_file`] (a remote host's, sent
/// by its batch) may hold.
pub const MAX_RPMDB_BYTES: u64 = 1 << 30;

/// Which package databases a package fact reads, and which systems write them (`explain`).
pub const DATABASES_READ: &str = "the rpm database, found by the target's %_dbpath and \
%_db_backend macros, else in /usr/lib/sysimage/rpm or /var/lib/rpm, read without librpm in the \
three formats rpm has used: SQLite rpmdb.sqlite (rpm 4.16 and later: RHEL and UBI 9 and 10, \
Fedora 33 and later, CBL-Mariner 2, Amazon Linux 2023), Berkeley DB hash Packages (RHEL, CentOS \
and UBI 7 and 8, Amazon Linux 2, SUSE before 15 SP3) and NDB Packages.db (SLE 15 SP3 and later, \
openSUSE); dpkg's /var/lib/dpkg/status (and info/*.list for files); apk's /lib/apk/db/installed. \
A database that is there but cannot be read is an error naming the file and the record, never a \
pass";

/// Whether a probe's fact is read from the package databases.
pub fn reads_package_databases(probe: &Probe) -> bool {
    match probe {
        Probe::Packages | Probe::Package(_) | Probe::Runtime(_) | Probe::Runtimes => true,
        Probe::ImageInfo(key) => matches!(
            key.as_str(),
            "packages" | "modified-package-files" | "based-on-ubi"
        ),
        _ => false,
    }
}

/// Which package manager installed a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Manager {
    /// Debian's dpkg.
    Dpkg,
    /// rpm.
    Rpm,
    /// Alpine's apk.
    Apk,
}

impl Manager {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Dpkg => "dpkg",
            Manager::Rpm => "rpm",
            Manager::Apk => "apk",
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    /// The package's name (`runc`).
    pub name: String,
    /// Its full version as the package manager prints it (`1.1.5+ds1-1+deb12u1`,
    /// `1.1.12-r3`; rpm: `[EPOCH:]VERSION-RELEASE`).
    pub version: String,
    /// Its architecture, when the database records one.
    pub architecture: Option<String>,
    /// Which database it came from.
    pub manager: Manager,
    /// The files it installed, when the database lists them (apk's and rpm's do; dpkg's are in
    /// `info/*.list` and read on demand).
    pub files: Vec<String>,
    /// The CVE ids its changelog names, when the database holds the changelog (rpm's does;
    /// dpkg's is the package's `changelog.Debian.gz`, read on demand).
    pub changelog_cves: Vec<String>,
    /// The vendor, when the database records one (rpm's `VENDOR`).
    pub vendor: Option<String>,
    /// rpm's `name-[epoch:]version-release.arch`, for rpm packages.
    pub nevra: Option<String>,
}

/// Every installed package found, by name, and the databases read.
#[derive(Debug, Clone, Default)]
pub struct PackageList {
    /// Packages by name (a name installed for two architectures keeps the first).
    pub packages: BTreeMap<String, InstalledPackage>,
    /// The databases read, for facts' sources.
    pub sources: Vec<String>,
}

/// A way to read a target's files by absolute path: the local filesystem, a tree, or what an SSH
/// host's batch sent.
pub trait TargetFiles {
    /// A regular file's bytes, at most `limit`; `Ok(None)` when there is nothing there.
    fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, String>;
    /// Whether a path exists (a file or a folder).
    fn exists(&self, path: &str) -> Result<bool, String>;
    /// The folder on this machine the target's files are in (`/` for this machine), when they
    /// are on this machine; `None` for a remote host's files.
    fn local_root(&self) -> Option<&std::path::Path> {
        None
    }
    /// The sorted names in a folder; `Ok(None)` when there is no folder there.
    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String>;
    /// The path with every symbolic link resolved (inside the target), to tell two names of one
    /// file apart (`/sbin/runc` and `/usr/sbin/runc` on a merged-/usr system); the path itself
    /// where the target cannot tell.
    fn canonical(&self, path: &str) -> String {
        path.to_owned()
    }
}

impl PackageList {
    /// Reads every package database of the target: dpkg's status, apk's installed database and
    /// the rpm database. A database that is there but cannot be read (or is not in its package
    /// manager's format) is an error naming it and why, never a list that leaves it out.
    pub fn read(files: &dyn TargetFiles) -> Result<PackageList, String> {
        let mut list = PackageList::default();
        if let Some(bytes) = files.read_file(DPKG_STATUS, MAX_DATABASE_BYTES)? {
            list.sources.push(DPKG_STATUS.to_owned());
            let packages = read_dpkg_status(&String::from_utf8_lossy(&bytes))
                .map_err(|reason| format!("{DPKG_STATUS}: {reason}"))?;
            for package in packages {
                list.packages.entry(package.name.clone()).or_insert(package);
            }
        }
        if let Some(bytes) = files.read_file(APK_INSTALLED, MAX_DATABASE_BYTES)? {
            list.sources.push(APK_INSTALLED.to_owned());
            let packages = read_apk_installed(&String::from_utf8_lossy(&bytes))
                .map_err(|reason| format!("{APK_INSTALLED}: {reason}"))?;
            for package in packages {
                list.packages.entry(package.name.clone()).or_insert(package);
            }
        }
        if let Some((source, packages)) = rpm_packages(files)? {
            list.sources.push(source);
            for package in packages {
                list.packages.entry(package.name.clone()).or_insert(package);
            }
        }
        Ok(list)
    }
}

/// Where the package list was read from, for facts' sources.
fn list_source(list: &PackageList) -> String {
    if list.sources.is_empty() {
        format!("{DPKG_STATUS}, {APK_INSTALLED}, rpm database (none present)")
    } else {
        list.sources.join(", ")
    }
}

/// The `packages` and `package` facts, from a target's package list (or why it could not be
/// read): the sorted names, or one package's record (absent when it is not installed).
pub fn package_fact(list: &Result<PackageList, String>, probe: &Probe) -> Fact {
    let list = match list {
        Ok(list) => list,
        Err(reason) => return Fact::failed(probe.clone(), "package databases", reason.clone()),
    };
    let source = list_source(list);
    match probe {
        Probe::Package(name) => {
            let value = list
                .packages
                .get(name)
                .map_or(FactValue::Absent, |package| {
                    let mut record = BTreeMap::new();
                    let mut put = |key: &str, value: &str| {
                        record.insert(key.to_owned(), FactValue::Text(value.to_owned()));
                    };
                    put("name", &package.name);
                    put("version", &package.version);
                    put("manager", package.manager.as_str());
                    for (key, value) in [
                        ("architecture", &package.architecture),
                        ("nevra", &package.nevra),
                        ("vendor", &package.vendor),
                    ] {
                        if let Some(value) = value {
                            put(key, value);
                        }
                    }
                    FactValue::Record(record)
                });
            Fact::read(probe.clone(), source, value)
        }
        _ => Fact::read(
            probe.clone(),
            source,
            FactValue::List(list.packages.keys().cloned().collect()),
        ),
    }
}

/// A target's files as the package database readers see them: each file read whole through
/// [`TargetFiles::read_file`] (a remote host's, as its batch sent them).
struct SentTree<'a>(&'a dyn TargetFiles);

impl TreeFiles for SentTree<'_> {
    fn open(&self, path: &str) -> Result<Option<TreeFile>, String> {
        Ok(self
            .0
            .read_file(path, MAX_RPMDB_BYTES)?
            .map(TreeFile::Bytes))
    }

    fn list(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        self.0.list(path)
    }
}

/// The target's rpm database ([`super::packages::rpmdb`], which reads SQLite, Berkeley DB and
/// NDB databases without librpm and finds the database as rpm's macros place it), read in place
/// on this machine or from the bytes a remote host's batch sent; `Ok(None)` when it has none.
pub fn rpm_database(files: &dyn TargetFiles) -> Result<Option<RpmDatabase>, String> {
    let read = match files.local_root() {
        Some(root) => rpmdb::read(&LocalTree::new(root)),
        None => rpmdb::read(&SentTree(files)),
    };
    read.map_err(|e| e.to_string())
}

/// The packages of the target's rpm database ([`rpm_database`]) with where it was found,
/// `Ok(None)` when it has none; each with its `[EPOCH:]VERSION-RELEASE`, vendor, NEVRA, files and
/// the CVE ids its `%changelog` names. rpm's `gpg-pubkey` pseudo-packages (imported keys) are left
/// out, as they are no software.
pub fn rpm_packages(
    files: &dyn TargetFiles,
) -> Result<Option<(String, Vec<InstalledPackage>)>, String> {
    let Some(database) = rpm_database(files)? else {
        return Ok(None);
    };
    let source = format!(
        "rpm database {} ({})",
        database.location.file, database.location.backend
    );
    Ok(Some((
        source,
        database
            .packages
            .into_iter()
            .filter(|package| package.name != "gpg-pubkey")
            .map(|package| InstalledPackage {
                version: package.evr().to_string(),
                architecture: package.arch.clone(),
                manager: Manager::Rpm,
                files: package.files.iter().map(|f| f.path.clone()).collect(),
                changelog_cves: cve_ids(&package.changelog.join("\n")),
                vendor: package.vendor.clone(),
                nevra: Some(package.nevra()),
                name: package.name,
            })
            .collect(),
    )))
}

/// The packages dpkg's status file records as installed (`Status: install ok installed`, and
/// the half-configured states dpkg-query also lists with a version: `unpacked`,
/// `half-configured`, `triggers-awaited`, `triggers-pending`), in file order.
///
/// Read as dpkg's own parser reads it (`lib/dpkg/parse.c`): stanzas separated by blank lines,
/// each line a `Field: value` or a continuation (starting with a space or a tab). What dpkg would
/// refuse to load is an error naming the line: a line that is no field, a continuation with no
/// field before it, a stanza without `Package`, a `Status` with a word dpkg does not know, an
/// installed package whose version dpkg cannot parse. A status file cut short usually ends in
/// one of these.
pub fn read_dpkg_status(text: &str) -> Result<Vec<InstalledPackage>, String> {
    const WANT: &[&str] = &["unknown", "install", "hold", "deinstall", "purge"];
    const FLAG: &[&str] = &["ok", "reinstreq"];
    const STATE: &[&str] = &[
        "not-installed",
        "config-files",
        "half-installed",
        "unpacked",
        "half-configured",
        "triggers-awaited",
        "triggers-pending",
        "installed",
    ];
    let mut packages = Vec::new();
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut stanza_line = 0;
    let mut finish = |fields: &mut BTreeMap<&str, &str>, line: usize| -> Result<(), String> {
        if fields.is_empty() {
            return Ok(());
        }
        let taken = std::mem::take(fields);
        let Some(name) = taken.get("Package").filter(|n| !n.is_empty()) else {
            return Err(format!("the stanza at line {line} has no Package field"));
        };
        let Some(status) = taken.get("Status") else {
            return Ok(());
        };
        let words: Vec<&str> = status.split_whitespace().collect();
        let [want, flag, state] = words[..] else {
            return Err(format!(
                "line {line}: package {name}: Status `{status}` is not three words"
            ));
        };
        if !WANT.contains(&want) || !FLAG.contains(&flag) || !STATE.contains(&state) {
            return Err(format!(
                "line {line}: package {name}: Status `{status}` is not one dpkg writes"
            ));
        }
        let installed = matches!(
            state,
            "installed" | "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending"
        );
        let version = taken.get("Version").copied().unwrap_or("");
        if !installed {
            return Ok(());
        }
        check_debian_version(version).map_err(|reason| {
            format!("line {line}: package {name}: Version `{version}` {reason}")
        })?;
        packages.push(InstalledPackage {
            name: (*name).to_owned(),
            version: version.to_owned(),
            architecture: taken.get("Architecture").map(|a| (*a).to_owned()),
            manager: Manager::Dpkg,
            files: Vec::new(),
            changelog_cves: Vec::new(),
            vendor: None,
            nevra: None,
        });
        Ok(())
    };
    let mut previous_field = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            finish(&mut fields, stanza_line)?;
            previous_field = false;
            continue;
        }
        if fields.is_empty() && !previous_field {
            stanza_line = number;
        }
        if line.starts_with([' ', '\t']) {
            if !previous_field {
                return Err(format!(
                    "line {number}: a continuation line with no field before it"
                ));
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!(
                "line {number}: `{}` is no `Field: value` line",
                line.chars().take(60).collect::<String>()
            ));
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("line {number}: `{key}` is not a field name"));
        }
        fields.entry(key).or_insert(value.trim());
        previous_field = true;
    }
    finish(&mut fields, stanza_line)?;
    Ok(packages)
}

/// Whether a version is one dpkg's `parseversion` accepts: an epoch of digits before a `:`, an
/// upstream version that starts with a digit and holds only alphanumerics and `.+~-:`, and a
/// revision (after the last `-`) that is not empty and holds only alphanumerics and `.+~`.
fn check_debian_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("is empty".to_owned());
    }
    if version.contains(char::is_whitespace) {
        return Err("holds a space".to_owned());
    }
    let rest = match version.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err("has an epoch that is not a number".to_owned());
            }
            if rest.is_empty() {
                return Err("has nothing after its epoch".to_owned());
            }
            rest
        }
        None => version,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => {
            if revision.is_empty() {
                return Err("has an empty revision".to_owned());
            }
            (upstream, Some(revision))
        }
        None => (rest, None),
    };
    if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("does not start with a digit".to_owned());
    }
    let fine = |c: char, extra: &str| c.is_ascii_alphanumeric() || extra.contains(c);
    if !upstream.chars().all(|c| fine(c, ".+~-:"))
        || !revision.unwrap_or("").chars().all(|c| fine(c, ".+~"))
    {
        return Err("holds a character dpkg does not allow in a version".to_owned());
    }
    Ok(())
}

/// The packages of apk's installed database: stanzas separated by blank lines, each line a
/// one-letter key, `:` and a value: `P:` the name, `V:` the version, `A:` the architecture, `F:` a
/// folder and `R:` a file in it. A line that is not `K:value`, or a stanza without a name or a
/// version, is an error naming the line, as apk refuses such a database.
pub fn read_apk_installed(text: &str) -> Result<Vec<InstalledPackage>, String> {
    let mut packages = Vec::new();
    let mut line_number = 0;
    for stanza in text.split("\n\n") {
        let first_line = line_number + 1;
        let mut name = None;
        let mut version = None;
        let mut architecture = None;
        let mut folder = String::new();
        let mut files = Vec::new();
        let mut any = false;
        for line in stanza.split('\n') {
            line_number += 1;
            if line.is_empty() {
                continue;
            }
            let (key, value) = match line.split_once(':') {
                Some((key, value)) if key.chars().count() == 1 => (key, value),
                _ => {
                    return Err(format!(
                        "line {line_number}: `{}` is not a `K:value` line",
                        line.chars().take(60).collect::<String>()
                    ))
                }
            };
            any = true;
            match key {
                "P" => name = Some(value.to_owned()),
                "V" => version = Some(value.to_owned()),
                "A" => architecture = Some(value.to_owned()),
                "F" => folder = value.to_owned(),
                "R" => files.push(format!("/{folder}/{value}").replace("//", "/")),
                _ => {}
            }
        }
        line_number += 1; // the blank line between stanzas
        match (name, version) {
            (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => packages
                .push(InstalledPackage {
                    name,
                    version,
                    architecture,
                    manager: Manager::Apk,
                    files,
                    changelog_cves: Vec::new(),
                    vendor: None,
                    nevra: None,
                }),
            _ if !any => {}
            _ => {
                return Err(format!(
                    "the package at line {first_line} has no name (P:) or no version (V:)"
                ))
            }
        }
    }
    Ok(packages)
}

/// The upstream version inside a package version: the epoch (`1:`) and the packager's revision
/// (Debian's last `-…`, apk's `-rN`, rpm's release) dropped, and a repack suffix (`+ds1`,
/// `+dfsg1`, `~ds1`) cut, with Debian's `~rc1` kept as the pre-release `-rc1`:
/// `1.1.5+ds1-1+deb12u1` is `1.1.5`, `1.6.20~ds1-1+deb12u3` is `1.6.20`, `1:2.1.6-2.el9` is
/// `2.1.6`, `1.0.0~rc93+ds1-5` is `1.0.0-rc93`.
pub fn upstream_version(package_version: &str) -> String {
    let without_epoch = match package_version.split_once(':') {
        Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => package_version,
    };
    let without_revision = match without_epoch.rsplit_once('-') {
        Some((upstream, _)) if !upstream.is_empty() => upstream,
        _ => without_epoch,
    };
    let mut out = String::new();
    let mut parts = without_revision.split('~');
    out.push_str(parts.next().unwrap_or_default());
    for tilde in parts {
        let lower = tilde.to_ascii_lowercase();
        if lower.starts_with("ds") || lower.starts_with("dfsg") || lower.starts_with("git") {
            break;
        }
        out.push('-');
        out.push_str(tilde);
    }
    out.split('+').next().unwrap_or_default().to_owned()
}

/// The distinct `CVE-YYYY-NNNN` ids in a text, sorted.
pub fn cve_ids(text: &str) -> Vec<String> {
    let mut ids = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("CVE-") {
        let start = at + found;
        let rest = &bytes[start + 4..];
        let year = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if year == 4 && rest.get(4) == Some(&b'-') {
            let number = rest[5..].iter().take_while(|b| b.is_ascii_digit()).count();
            if number >= 4 {
                ids.insert(text[start..start + 9 + number].to_owned());
            }
        }
        at = start + 4;
    }
    ids.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids_are_found_once_each() {
        assert_eq!(
            cve_ids("* CVE-2024-21626: x\n+ CVE-2023-25809, CVE-2024-21626; CVE-12-1 CVE-2020-123"),
            ["CVE-2023-25809", "CVE-2024-21626"]
        );
    }

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let status = "Package: runc\nStatus: install ok installed\nVersion: 1.1.5+ds1-1+deb12u1\nArchitecture: amd64\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: half\nStatus: install ok unpacked\nVersion: 2.0-1\n";
        let packages = read_dpkg_status(status).unwrap();
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["runc", "half"]);
        assert_eq!(packages[0].version, "1.1.5+ds1-1+deb12u1");
        assert_eq!(packages[0].architecture.as_deref(), Some("amd64"));
    }

    #[test]
    fn databases_dpkg_and_apk_would_refuse_are_errors_naming_the_line() {
        for (status, fragment) in [
            (
                "Package: a\nStatus: install ok installed\nVersion: 1.0\n\nPackage: b\nStat",
                "line 6",
            ),
            (
                "Package: a\nStatus: install ok instal\nVersion: 1.0\n",
                "Status `install ok instal`",
            ),
            (
                "Status: install ok installed\nVersion: 1.0\n",
                "no Package field",
            ),
            (" continued\n", "line 1: a continuation line"),
            (
                "Package: a\nStatus: install ok installed\nVersion: 1.0-\n",
                "empty revision",
            ),
            (
                "Package: a\nStatus: install ok installed\nVersion: x1.0\n",
                "start with a digit",
            ),
        ] {
            let error = read_dpkg_status(status).unwrap_err();
            assert!(error.contains(fragment), "{status:?}: {error}");
        }
        let error = read_apk_installed("P:runc\nV:1.0\nbroken line\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        let error = read_apk_installed("P:runc\nA:x86_64\n").unwrap_err();
        assert!(error.contains("no name (P:) or no version (V:)"), "{error}");
    }

    #[test]
    fn apk_installed_stanzas() {
        let db =
            "C:Q1abc=\nP:runc\nV:1.1.12-r3\nA:x86_64\nF:usr/bin\nR:runc\n\nP:crun\nV:1.14-r0\n";
        let packages = read_apk_installed(db).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].files, ["/usr/bin/runc"]);
        assert_eq!(packages[1].version, "1.14-r0");
    }

    #[test]
    fn upstream_versions_from_package_versions() {
        for (package, upstream) in [
            ("1.1.5+ds1-1+deb12u1", "1.1.5"),
            ("1.6.20~ds1-1+deb12u3", "1.6.20"),
            ("4.3.1+ds1-8+deb12u1+b3", "4.3.1"),
            ("20.10.24+dfsg1-1+deb12u1+b6", "20.10.24"),
            ("1.0.0~rc93+ds1-5+deb11u5", "1.0.0-rc93"),
            ("1.1.12-r3", "1.1.12"),
            ("1:2.1.6-2.el9", "2.1.6"),
            ("2.1.6+ds1-1", "2.1.6"),
            ("1.8.1-1+deb12u1", "1.8.1"),
            ("1.2.0", "1.2.0"),
        ] {
            assert_eq!(upstream_version(package), upstream, "{package}");
        }
    }
}
