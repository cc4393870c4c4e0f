//! The rpm database, read without librpm, from any tree ([`TreeFiles`]).
//!
//! [`read`] finds the database where rpm would ([`locate`]: the `%_dbpath` the tree's macro files
//! set, else `/usr/lib/sysimage/rpm` and `/var/lib/rpm`; the backend `%_db_backend` names if its
//! file is there, else the first of rpm's backends whose file is) and reads every package in it
//! ([`read_at`]). Three backends, each read-only:
//!
//! - SQLite, `rpmdb.sqlite` (rpm >= 4.16: RHEL/UBI 9 and later, Fedora >= 33, CBL-Mariner 2,
//!   Amazon Linux 2023): the `Packages` table's `hnum` and `blob` columns (rpm's
//!   `lib/backend/sqlite.c`), read with SQLite itself (the `rusqlite` crate, SQLite compiled
//!   in). A database on this machine opens in place, read-only and `immutable`, so that nothing
//!   beside it is created or changed; one whose write-ahead log or rollback journal holds data
//!   (rpm was interrupted), or that came as bytes, is copied into a private temporary folder
//!   first, so that SQLite applies the log there and what rpm would read is what is read.
//! - Berkeley DB hash, `Packages` (RHEL/CentOS/UBI 7 and 8, Amazon Linux 2, SUSE before 15 SP3):
//!   the metadata page, the hash pages bucket by bucket and their overflow pages, read directly as
//!   rpm's own read-only reader does (`lib/backend/bdb_ro.c`), in either byte order; the page
//!   layouts are Berkeley DB's `dbinc/db_page.h`.
//! - NDB, `Packages.db` (SUSE since SLE 15 SP3 and openSUSE): rpm's own format
//!   (`lib/backend/ndb/rpmpkg.c`): the slot pages, then each blob's head, data and tail, whose
//!   Adler-32 is checked.
//!
//! Each record is a header blob (`header.rs`), parsed into a [`Package`]. Anything damaged (a page,
//! a slot, a blob, a header) is an [`RpmdbError`] naming the database and the record; no package
//! is ever guessed, no record skipped, and reading never panics. Work and memory are bounded by
//! the database's own size: every page is visited at most once, and no record is larger than rpm's
//! limit of 256 MiB.

mod bdb;
mod header;
mod locate;
mod ndb;
mod sqlite;

use std::fmt;

pub use locate::{locate, Location};

use super::version::Evr;
use super::TreeFiles;

/// How an rpm database stores its packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// SQLite, `rpmdb.sqlite` (rpm >= 4.16).
    Sqlite,
    /// rpm's NDB, `Packages.db` (SUSE).
    Ndb,
    /// Berkeley DB hash, `Packages` (rpm < 4.16).
    BerkeleyDb,
}

impl Backend {
    /// Every backend, in the order rpm tries them when the configured one has no database.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Ndb, Backend::BerkeleyDb];

    /// The name of the backend's package file in the database folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Backend::Sqlite => "rpmdb.sqlite",
            Backend::Ndb => "Packages.db",
            Backend::BerkeleyDb => "Packages",
        }
    }

    /// The backend as rpm's `%_db_backend` names it (`sqlite`, `ndb`, `bdb`); `bdb_ro` is also
    /// read as Berkeley DB.
    pub fn from_macro(name: &str) -> Option<Backend> {
        match name {
            "sqlite" => Some(Backend::Sqlite),
            "ndb" => Some(Backend::Ndb),
            "bdb" | "bdb_ro" => Some(Backend::BerkeleyDb),
            _ => None,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Ndb => "ndb",
            Backend::BerkeleyDb => "bdb",
        })
    }
}

/// An rpm database that could not be read, or a record in it that is damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RpmdbError {
    /// The database, as a path of the tree (`/var/lib/rpm/Packages`), or the tree file that
    /// could not be read while finding it.
    pub database: String,
    /// The record (the package's number in the database: SQLite's `hnum`, Berkeley DB's key,
    /// NDB's package index), when one record is damaged.
    pub record: Option<u32>,
    /// What is wrong.
    pub reason: String,
}

impl RpmdbError {
    pub(crate) fn database(database: &str, reason: impl Into<String>) -> RpmdbError {
        RpmdbError {
            database: database.to_owned(),
            record: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn record(database: &str, record: u32, reason: impl Into<String>) -> RpmdbError {
        RpmdbError {
            database: database.to_owned(),
            record: Some(record),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RpmdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(record) => write!(
                f,
                "rpm database {}: record {record}: {}",
                self.database, self.reason
            ),
            None => write!(f, "rpm database {}: {}", self.database, self.reason),
        }
    }
}

/// Every package of an rpm database, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmDatabase {
    /// Where the database is and how it was found.
    pub location: Location,
    /// The packages, by record number.
    pub packages: Vec<Package>,
}

/// One installed package, as its header in the database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The record number in the database.
    pub record: u32,
    /// `NAME`.
    pub name: String,
    /// `EPOCH`, when the package has one.
    pub epoch: Option<u32>,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `ARCH`; none for rpm's `gpg-pubkey` pseudo-packages.
    pub arch: Option<String>,
    /// `VENDOR`.
    pub vendor: Option<String>,
    /// `LICENSE`.
    pub license: Option<String>,
    /// `SOURCERPM`: the source package it was built from.
    pub source_rpm: Option<String>,
    /// `INSTALLTIME`, seconds since the epoch.
    pub install_time: Option<u32>,
    /// `SIGMD5`, lowercase hex: the MD5 of the header and payload, which rpm uses as the
    /// package's identity.
    pub sigmd5: Option<String>,
    /// The OpenPGP signatures the package was installed with, in the order `rpm -qi` looks for
    /// one.
    pub signatures: Vec<HeaderSignature>,
    /// `MODULARITYLABEL`: the module stream a package of a RHEL 8 module belongs to.
    pub modularity_label: Option<String>,
    /// `FILEDIGESTALGO`: how [`PackageFile::digest`] was computed (MD5 when not given).
    pub file_digest_algorithm: DigestAlgorithm,
    /// The files, in the header's order.
    pub files: Vec<PackageFile>,
    /// `CHANGELOGTEXT`: the text of each `%changelog` entry, newest first (a distribution's
    /// security update names the CVEs it fixes there).
    pub changelog: Vec<String>,
}

impl Package {
    /// The package's `[epoch:]version-release`, to compare with [`Evr`]'s order.
    pub fn evr(&self) -> Evr {
        Evr::new(self.epoch, &self.version, &self.release)
    }

    /// `name-[epoch:]version-release.arch`, as rpm's `%{NEVRA}` spells it.
    pub fn nevra(&self) -> String {
        let mut nevra = format!("{}-{}", self.name, self.evr());
        if let Some(arch) = &self.arch {
            nevra.push('.');
            nevra.push_str(arch);
        }
        nevra
    }

    /// The key id (16 lowercase hex digits) of the first signature with one, in `rpm -qi`'s
    /// order.
    pub fn signature_key_id(&self) -> Option<&str> {
        self.signatures
            .iter()
            .find_map(|signature| signature.key_id.as_deref())
    }
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// The absolute path.
    pub path: String,
    /// The size in bytes (`LONGFILESIZES`, else `FILESIZES`).
    pub size: u64,
    /// The mode, type and permission bits (`FILEMODES`).
    pub mode: u16,
    /// The digest, lowercase hex in the package's [`DigestAlgorithm`]; none for directories,
    /// links, ghosts and anything else rpm does not digest.
    pub digest: Option<String>,
    /// `FILEFLAGS`: config, doc, ghost, license, ...
    pub flags: FileFlags,
    /// `FILESTATES`: whether the file was installed, when the header says.
    pub state: Option<FileState>,
    /// `FILELINKTOS`: a symbolic link's target.
    pub link_to: Option<String>,
    /// `FILEUSERNAME`.
    pub user: Option<String>,
    /// `FILEGROUPNAME`.
    pub group: Option<String>,
    /// `FILEMTIMES`.
    pub mtime: Option<u32>,
}

/// A file's `FILEFLAGS` (rpm's `rpmfileAttrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileFlags(pub u32);

impl FileFlags {
    /// `%config`.
    pub const CONFIG: u32 = 1 << 0;
    /// `%doc`.
    pub const DOC: u32 = 1 << 1;
    /// `%donotuse` (icon).
    pub const ICON: u32 = 1 << 2;
    /// `%config(missingok)`.
    pub const MISSINGOK: u32 = 1 << 3;
    /// `%config(noreplace)`.
    pub const NOREPLACE: u32 = 1 << 4;
    /// The spec file of a source package.
    pub const SPECFILE: u32 = 1 << 5;
    /// `%ghost`: owned, not installed from the package.
    pub const GHOST: u32 = 1 << 6;
    /// `%license`.
    pub const LICENSE: u32 = 1 << 7;
    /// `%readme`.
    pub const README: u32 = 1 << 8;
    /// `%pubkey`.
    pub const PUBKEY: u32 = 1 << 11;
    /// `%artifact` (build ids and the like).
    pub const ARTIFACT: u32 = 1 << 12;

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// `%config`.
    pub fn is_config(self) -> bool {
        self.has(Self::CONFIG)
    }

    /// `%doc`.
    pub fn is_doc(self) -> bool {
        self.has(Self::DOC)
    }

    /// `%ghost`.
    pub fn is_ghost(self) -> bool {
        self.has(Self::GHOST)
    }

    /// `%license`.
    pub fn is_license(self) -> bool {
        self.has(Self::LICENSE)
    }
}

/// rpm's `%{FILEFLAGS:fflags}` letters: `d` doc, `c` config, `s` spec file, `m` missingok,
/// `n` noreplace, `g` ghost, `l` license, `r` readme, `a` artifact.
impl fmt::Display for FileFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (flag, letter) in [
            (Self::DOC, 'd'),
            (Self::CONFIG, 'c'),
            (Self::SPECFILE, 's'),
            (Self::MISSINGOK, 'm'),
            (Self::NOREPLACE, 'n'),
            (Self::GHOST, 'g'),
            (Self::LICENSE, 'l'),
            (Self::README, 'r'),
            (Self::ARTIFACT, 'a'),
        ] {
            if self.has(flag) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// A file's `FILESTATES` value (rpm's `rpmfileState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileState {
    /// Installed.
    Normal,
    /// Replaced by another package's file.
    Replaced,
    /// Not installed (excluded docs, another language, `--excludepath`).
    NotInstalled,
    /// On a network file system shared with other hosts.
    NetShared,
    /// Not installed: the wrong color (architecture) for a multilib file.
    WrongColor,
    /// Unknown to rpm (`-1`), or a value rpm does not define.
    Other(i8),
}

impl FileState {
    fn from_rpm(value: i8) -> FileState {
        match value {
            0 => FileState::Normal,
            1 => FileState::Replaced,
            2 => FileState::NotInstalled,
            3 => FileState::NetShared,
            4 => FileState::WrongColor,
            other => FileState::Other(other),
        }
    }
}

/// The algorithm of a package's file digests (rpm's `pgpHashAlgo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// MD5, rpm's default when a header names none.
    Md5,
    /// SHA-1.
    Sha1,
    /// RIPEMD-160.
    Ripemd160,
    /// MD2.
    Md2,
    /// TIGER-192.
    Tiger192,
    /// HAVAL-5-160.
    Haval5160,
    /// SHA-256, the usual one today.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA-224.
    Sha224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-512.
    Sha3_512,
    /// An id rpm does not define.
    Unknown(u32),
}

impl DigestAlgorithm {
    fn from_rpm(id: u32) -> DigestAlgorithm {
        match id {
            1 => DigestAlgorithm::Md5,
            2 => DigestAlgorithm::Sha1,
            3 => DigestAlgorithm::Ripemd160,
            5 => DigestAlgorithm::Md2,
            6 => DigestAlgorithm::Tiger192,
            7 => DigestAlgorithm::Haval5160,
            8 => DigestAlgorithm::Sha256,
            9 => DigestAlgorithm::Sha384,
            10 => DigestAlgorithm::Sha512,
            11 => DigestAlgorithm::Sha224,
            12 => DigestAlgorithm::Sha3_256,
            14 => DigestAlgorithm::Sha3_512,
            other => DigestAlgorithm::Unknown(other),
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Ripemd160 => "ripemd160",
            DigestAlgorithm::Md2 => "md2",
            DigestAlgorithm::Tiger192 => "tiger192",
            DigestAlgorithm::Haval5160 => "haval-5-160",
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
            DigestAlgorithm::Sha224 => "sha224",
            DigestAlgorithm::Sha3_256 => "sha3-256",
            DigestAlgorithm::Sha3_512 => "sha3-512",
            DigestAlgorithm::Unknown(id) => return write!(f, "unknown ({id})"),
        };
        f.write_str(name)
    }
}

/// One OpenPGP signature a package was installed with, and the key that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSignature {
    /// The header tag that holds it, as rpm names it: `dsaheader` (DSA, ECDSA and EdDSA header
    /// signatures), `rsaheader`, `siggpg` and `sigpgp` (header and payload), `openpgp` (rpm 6).
    pub tag: &'static str,
    /// The issuer's key id, 16 lowercase hex digits (from the issuer subpacket, a v3
    /// signature's key id, or the issuer fingerprint).
    pub key_id: Option<String>,
    /// The issuer's fingerprint, lowercase hex, when the signature names it.
    pub fingerprint: Option<String>,
    /// Why the signature could not be read, when it could not.
    pub problem: Option<String>,
}

impl HeaderSignature {
    /// Reads the issuer of one OpenPGP signature packet.
    fn parse(tag: &'static str, packet: &[u8]) -> HeaderSignature {
        use pgp::packet::{Packet, PacketParser, PacketTrait as _};
        let signature = match PacketParser::new(packet).next() {
            Some(Ok(Packet::Signature(signature))) => signature,
            Some(Ok(other)) => {
                return HeaderSignature::unreadable(
                    tag,
                    format!("an OpenPGP {:?} packet, not a signature", other.tag()),
                )
            }
            Some(Err(error)) => {
                return HeaderSignature::unreadable(
                    tag,
                    format!("not an OpenPGP signature: {error}"),
                )
            }
            None => return HeaderSignature::unreadable(tag, "empty".to_owned()),
        };
        let fingerprint = signature
            .issuer_fingerprint()
            .first()
            .map(|fingerprint| crate::dsse::hex(fingerprint.as_bytes()));
        let key_id = signature
            .issuer()
            .first()
            .map(|key_id| crate::dsse::hex(key_id.as_ref()))
            .or_else(|| {
                // A v4 key's id is the fingerprint's last 8 bytes, a v6 key's its first 8.
                let fingerprint = signature.issuer_fingerprint().first().copied()?;
                let bytes = fingerprint.as_bytes();
                match fingerprint.version() {
                    Some(pgp::types::KeyVersion::V4) => {
                        Some(crate::dsse::hex(&bytes[bytes.len().checked_sub(8)?..]))
                    }
                    _ => Some(crate::dsse::hex(bytes.get(..8)?)),
                }
            });
        HeaderSignature {
            tag,
            problem: key_id
                .is_none()
                .then(|| "the signature names no issuer".to_owned()),
            key_id,
            fingerprint,
        }
    }

    fn unreadable(tag: &'static str, problem: String) -> HeaderSignature {
        HeaderSignature {
            tag,
            key_id: None,
            fingerprint: None,
            problem: Some(problem),
        }
    }
}

/// Finds the rpm database of a tree ([`locate`]) and reads it ([`read_at`]); `Ok(None)` when the
/// tree has no rpm database.
pub fn read(tree: &dyn TreeFiles) -> Result<Option<RpmDatabase>, RpmdbError> {
    match locate(tree)? {
        Some(location) => read_at(tree, location).map(Some),
        None => Ok(None),
    }
}

/// Reads every package of the database at `location`.
pub fn read_at(tree: &dyn TreeFiles, location: Location) -> Result<RpmDatabase, RpmdbError> {
    let database = location.file.as_str();
    let file = tree
        .open(database)
        .map_err(|reason| RpmdbError::database(database, reason))?
        .ok_or_else(|| RpmdbError::database(database, "no such file"))?;
    let mut packages = Vec::new();
    let mut visit = |record: u32, blob: &[u8]| {
        let header = header::Header::parse(blob)?;
        packages.push(header::package(record, &header)?);
        Ok(())
    };
    match location.backend {
        Backend::Sqlite => sqlite::read(tree, database, file, &mut visit)?,
        Backend::BerkeleyDb => bdb::read(database, &file, &mut visit)?,
        Backend::Ndb => ndb::read(database, &file, &mut visit)?,
    }
    packages.sort_by_key(|package| package.record);
    if let Some(pair) = packages
        .windows(2)
        .find(|pair| pair[0].record == pair[1].record)
    {
        return Err(RpmdbError::record(
            database,
            pair[0].record,
            "two packages with this record number",
        ));
    }
    Ok(RpmDatabase { location, packages })
}

/// Parses one header blob as a record of a database is parsed, digests checked; for the fuzz
/// target `rpmdb` ([`crate::fuzz`]).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_header(blob: &[u8]) {
    if let Ok(header) = header::Header::parse(blob) {
        let _ = header.verify_digests();
        if let Ok(package) = header::package(0, &header) {
            let _ = (package.nevra(), package.evr(), package.signature_key_id());
        }
    }
}

/// What a backend calls for each record: its number and header blob; the reason when the
/// record is damaged.
type Visit<'a> = dyn FnMut(u32, &[u8]) -> Result<(), String> + 'a;
