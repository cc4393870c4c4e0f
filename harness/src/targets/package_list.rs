//! The installed packages of a target, from its package databases, read as data: dpkg's status
//! file (`/var/lib/dpkg/status`), apk's installed database (`/lib/apk/db/installed`) and the rpm
//! database, on OS trees, unpacked images, the live machine and (through the bytes a batch sends;
//! not the rpm database) SSH hosts.
//!
//! The rpm database (SQLite, Berkeley DB or NDB under `/var/lib/rpm` or
//! `/usr/lib/sysimage/rpm`) is read by [`super::packages::rpmdb`] through [`rpm_packages`], with
//! each package's `%changelog` CVE ids; a database that cannot be read is an error, never an
//! inventory that silently leaves its packages out.

use std::collections::BTreeMap;

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
    /// Reads the dpkg and apk databases, and refuses a target whose only database is an rpm
    /// database that [`rpm_packages`] cannot read yet.
    pub fn read(files: &dyn TargetFiles) -> Result<PackageList, String> {
        let mut list = PackageList::default();
        if let Some(bytes) = files.read_file(DPKG_STATUS, MAX_DATABASE_BYTES)? {
            list.sources.push(DPKG_STATUS.to_owned());
            for package in read_dpkg_status(&String::from_utf8_lossy(&bytes)) {
                list.packages.entry(package.name.clone()).or_insert(package);
            }
        }
        if let Some(bytes) = files.read_file(APK_INSTALLED, MAX_DATABASE_BYTES)? {
            list.sources.push(APK_INSTALLED.to_owned());
            for package in read_apk_installed(&String::from_utf8_lossy(&bytes)) {
                list.packages.entry(package.name.clone()).or_insert(package);
            }
        }
        if let Some(packages) = rpm_packages(files)? {
            list.sources.push("rpm database".to_owned());
            for package in packages {
                list.packages.entry(package.name.clone()).or_insert(package);
            }
        }
        Ok(list)
    }
}

/// The packages of the target's rpm database ([`super::packages::rpmdb`], which reads SQLite,
/// Berkeley DB and NDB databases without librpm and finds the database as rpm's macros place
/// it), `Ok(None)` when it has none; each with its `[EPOCH:]VERSION-RELEASE`, its files and the
/// CVE ids its `%changelog` names. A remote host's rpm database is not sent by its batch: there
/// the database is an error, never left out.
pub fn rpm_packages(files: &dyn TargetFiles) -> Result<Option<Vec<InstalledPackage>>, String> {
    let Some(root) = files.local_root() else {
        for dir in RPM_DB_DIRS {
            for file in RPM_DB_FILES {
                let path = format!("{dir}/{file}");
                if files.exists(&path)? {
                    return Err(format!(
                        "the host has an rpm database ({path}), which is not read over SSH; its packages cannot be listed"
                    ));
                }
            }
        }
        return Ok(None);
    };
    let tree = super::packages::LocalTree::new(root);
    let Some(database) = super::packages::rpmdb::read(&tree).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    Ok(Some(
        database
            .packages
            .into_iter()
            .filter(|package| package.name != "gpg-pubkey")
            .map(|package| InstalledPackage {
                version: match package.epoch {
                    Some(epoch) => format!("{epoch}:{}-{}", package.version, package.release),
                    None => format!("{}-{}", package.version, package.release),
                },
                architecture: package.arch.clone(),
                manager: Manager::Rpm,
                files: package.files.iter().map(|f| f.path.clone()).collect(),
                changelog_cves: super::runtimes::cve_ids(&package.changelog.join("\n")),
                name: package.name,
            })
            .collect(),
    ))
}

/// The packages dpkg's status file records as installed (`Status: install ok installed`, and
/// the half-configured states dpkg-query also lists with a version: `unpacked`,
/// `half-configured`, `triggers-awaited`, `triggers-pending`), in file order. Stanzas are
/// separated by blank lines; continuation lines (starting with a space) are skipped.
pub fn read_dpkg_status(text: &str) -> Vec<InstalledPackage> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                fields.entry(key.trim()).or_insert(value.trim());
            }
        }
        let (Some(name), Some(status)) = (fields.get("Package"), fields.get("Status")) else {
            continue;
        };
        let state = status.split_whitespace().nth(2).unwrap_or("");
        let installed = matches!(
            state,
            "installed" | "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending"
        );
        let Some(version) = fields.get("Version").filter(|v| !v.is_empty()) else {
            continue;
        };
        if installed {
            packages.push(InstalledPackage {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                architecture: fields.get("Architecture").map(|a| (*a).to_owned()),
                manager: Manager::Dpkg,
                files: Vec::new(),
                changelog_cves: Vec::new(),
            });
        }
    }
    packages
}

/// The packages of apk's installed database: stanzas separated by blank lines, `P:` the name,
/// `V:` the version, `A:` the architecture, `F:` a folder and `R:` a file in it.
pub fn read_apk_installed(text: &str) -> Vec<InstalledPackage> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut architecture = None;
        let mut folder = String::new();
        let mut files = Vec::new();
        for line in stanza.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key {
                "P" => name = Some(value.to_owned()),
                "V" => version = Some(value.to_owned()),
                "A" => architecture = Some(value.to_owned()),
                "F" => folder = value.to_owned(),
                "R" => files.push(format!("/{folder}/{value}").replace("//", "/")),
                _ => {}
            }
        }
        if let (Some(name), Some(version)) = (name, version) {
            packages.push(InstalledPackage {
                name,
                version,
                architecture,
                manager: Manager::Apk,
                files,
                changelog_cves: Vec::new(),
            });
        }
    }
    packages
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let status = "Package: runc\nStatus: install ok installed\nVersion: 1.1.5+ds1-1+deb12u1\nArchitecture: amd64\nDescription: x\n more\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: half\nStatus: install ok unpacked\nVersion: 2.0-1\n";
        let packages = read_dpkg_status(status);
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["runc", "half"]);
        assert_eq!(packages[0].version, "1.1.5+ds1-1+deb12u1");
        assert_eq!(packages[0].architecture.as_deref(), Some("amd64"));
    }

    #[test]
    fn apk_installed_stanzas() {
        let db =
            "C:Q1abc=\nP:runc\nV:1.1.12-r3\nA:x86_64\nF:usr/bin\nR:runc\n\nP:crun\nV:1.14-r0\n";
        let packages = read_apk_installed(db);
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
