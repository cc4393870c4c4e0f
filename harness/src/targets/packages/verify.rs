//! One installed file checked against what its package's rpm header recorded, as `rpm -V`
//! checks it (`lib/verify.c`): whether it is there, its type, a link's target, a regular file's
//! size and digest (in the package's digest algorithm), and its permission bits. Ownership and
//! modification times are not compared (an unpacked image's tree is owned by whoever unpacked
//! it), nor file capabilities.

use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;

use super::rpmdb::{DigestAlgorithm, PackageFile};
use crate::targets::host::resolve_in_tree;

/// How a file differs from its package's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Nothing is there (rpm -V: `missing`).
    Missing,
    /// Something of another type is there (rpm -V: `M`, and `5`/`L` as they follow).
    Type {
        /// The type rpm recorded.
        recorded: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A symbolic link points elsewhere (rpm -V: `L`).
    LinkTarget {
        /// The target rpm recorded.
        recorded: String,
        /// The target found.
        found: String,
    },
    /// A regular file's content differs (rpm -V: `S` and/or `5`).
    Content {
        /// The algorithm of both digests.
        algorithm: DigestAlgorithm,
        /// The digest rpm recorded.
        recorded: String,
        /// The digest of the file found.
        found: String,
        /// The size rpm recorded.
        recorded_size: u64,
        /// The size found.
        found_size: u64,
    },
    /// The permission bits differ (rpm -V: `M`).
    Mode {
        /// The bits rpm recorded (with setuid, setgid and sticky).
        recorded: u32,
        /// The bits found.
        found: u32,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing => f.write_str("deleted"),
            Difference::Type { recorded, found } => {
                write!(f, "a {found} where the package installed a {recorded}")
            }
            Difference::LinkTarget { recorded, found } => write!(
                f,
                "link target changed: recorded {recorded:?}, found {found:?}"
            ),
            Difference::Content {
                algorithm,
                recorded,
                found,
                recorded_size,
                found_size,
            } => {
                write!(
                    f,
                    "content changed: {algorithm} recorded {recorded}, found {found}"
                )?;
                if recorded_size != found_size {
                    write!(f, " (size recorded {recorded_size}, found {found_size})")?;
                }
                Ok(())
            }
            Difference::Mode { recorded, found } => {
                write!(
                    f,
                    "mode changed: recorded {recorded:04o}, found {found:04o}"
                )
            }
        }
    }
}

/// rpm's `S_IFMT` file types, named.
fn type_name(mode: u32) -> &'static str {
    match mode & 0o170_000 {
        0o100_000 => "regular file",
        0o040_000 => "directory",
        0o120_000 => "symbolic link",
        0o020_000 => "character device",
        0o060_000 => "block device",
        0o010_000 => "FIFO",
        0o140_000 => "socket",
        _ => "file of unknown type",
    }
}

/// Checks the file at `file.path` of the tree at `root` against its record. `mode` is the mode
/// the image's layer gave the file, when the tree does not keep it (an unpacked image drops
/// setuid and setgid bits); the removal of setuid or setgid bits alone is no difference, as
/// Red Hat's preflight allows it. Returns every difference, in rpm -V's order; an error when the
/// file cannot be read or its digest algorithm is not implemented.
pub fn verify_file(
    root: &Path,
    file: &PackageFile,
    algorithm: DigestAlgorithm,
    mode: Option<u32>,
) -> Result<Vec<Difference>, String> {
    let (parent, name) = match file.path.rsplit_once('/') {
        Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
        None => return Err(format!("{}: not an absolute path", file.path)),
    };
    let Some(folder) = resolve_in_tree(root, parent)? else {
        return Ok(vec![Difference::Missing]);
    };
    let real = folder.join(name);
    let metadata = match std::fs::symlink_metadata(&real) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![Difference::Missing]),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Ok(vec![Difference::Missing])
        }
        Err(e) => return Err(format!("{}: {e}", file.path)),
    };
    let recorded_type = u32::from(file.mode) & 0o170_000;
    let kind = metadata.file_type();
    let found_type = if kind.is_file() {
        0o100_000
    } else if kind.is_dir() {
        0o040_000
    } else if kind.is_symlink() {
        0o120_000
    } else if kind.is_char_device() {
        0o020_000
    } else if kind.is_block_device() {
        0o060_000
    } else if kind.is_fifo() {
        0o010_000
    } else {
        0o140_000
    };
    if recorded_type != found_type {
        return Ok(vec![Difference::Type {
            recorded: type_name(recorded_type),
            found: type_name(found_type),
        }]);
    }
    let mut differences = Vec::new();
    match found_type {
        0o120_000 => {
            let target = std::fs::read_link(&real)
                .map_err(|e| format!("{}: {e}", file.path))?
                .to_string_lossy()
                .into_owned();
            let recorded = file.link_to.clone().unwrap_or_default();
            if target != recorded {
                differences.push(Difference::LinkTarget {
                    recorded,
                    found: target,
                });
            }
            // A link's own mode is not compared, as rpm -V does not.
            return Ok(differences);
        }
        0o100_000 => {
            if let Some(recorded) = &file.digest {
                let found = digest_file(&real, algorithm)
                    .map_err(|reason| format!("{}: {reason}", file.path))?;
                if !found.eq_ignore_ascii_case(recorded) || metadata.len() != file.size {
                    differences.push(Difference::Content {
                        algorithm,
                        recorded: recorded.clone(),
                        found,
                        recorded_size: file.size,
                        found_size: metadata.len(),
                    });
                }
            }
        }
        _ => {}
    }
    let recorded = u32::from(file.mode) & 0o7777;
    let found = mode.unwrap_or(metadata.permissions().mode()) & 0o7777;
    let dropped_only = found == recorded & !0o6000;
    if found != recorded && !dropped_only {
        differences.push(Difference::Mode { recorded, found });
    }
    Ok(differences)
}

/// A file's digest, lowercase hex, in one of rpm's digest algorithms, read in 256 KiB chunks.
pub fn digest_file(path: &Path, algorithm: DigestAlgorithm) -> Result<String, String> {
    fn stream<D: sha2::Digest>(path: &Path) -> Result<String, String> {
        let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut hasher = D::new();
        let mut buffer = vec![0u8; 256 << 10];
        loop {
            let read = file.read(&mut buffer).map_err(|e| e.to_string())?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(crate::dsse::hex(&hasher.finalize()))
    }
    match algorithm {
        DigestAlgorithm::Md5 => stream::<md5::Md5>(path),
        DigestAlgorithm::Sha1 => stream::<sha1::Sha1>(path),
        DigestAlgorithm::Sha224 => stream::<sha2::Sha224>(path),
        DigestAlgorithm::Sha256 => stream::<sha2::Sha256>(path),
        DigestAlgorithm::Sha384 => stream::<sha2::Sha384>(path),
        DigestAlgorithm::Sha512 => stream::<sha2::Sha512>(path),
        DigestAlgorithm::Sha3_256 => stream::<sha3::Sha3_256>(path),
        DigestAlgorithm::Sha3_512 => stream::<sha3::Sha3_512>(path),
        other => Err(format!(
            "its package's file digests are {other}, which hostcert does not compute"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::packages::rpmdb::FileFlags;

    fn record(path: &str, mode: u16, digest: Option<&str>, size: u64) -> PackageFile {
        PackageFile {
            path: path.to_owned(),
            size,
            mode,
            digest: digest.map(str::to_owned),
            flags: FileFlags::default(),
            state: None,
            link_to: None,
            user: None,
            group: None,
            mtime: None,
        }
    }

    #[test]
    fn each_difference_rpm_v_reports() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::write(root.join("usr/bin/tool"), b"hello\n").unwrap();
        std::os::unix::fs::symlink("tool", root.join("usr/bin/link")).unwrap();
        let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let md5 = "b1946ac92492d2347c6235b4d2611184";
        let same = record("/usr/bin/tool", 0o100_755, Some(sha), 6);
        assert_eq!(
            verify_file(root, &same, DigestAlgorithm::Sha256, Some(0o755)),
            Ok(vec![])
        );
        let md5_record = record("/usr/bin/tool", 0o100_755, Some(md5), 6);
        assert_eq!(
            verify_file(root, &md5_record, DigestAlgorithm::Md5, Some(0o755)),
            Ok(vec![])
        );
        // The setuid bit removed by a later layer: allowed; added: a difference.
        let setuid = record("/usr/bin/tool", 0o104_755, Some(sha), 6);
        assert_eq!(
            verify_file(root, &setuid, DigestAlgorithm::Sha256, Some(0o755)),
            Ok(vec![])
        );
        assert_eq!(
            verify_file(root, &same, DigestAlgorithm::Sha256, Some(0o4755)),
            Ok(vec![Difference::Mode {
                recorded: 0o755,
                found: 0o4755
            }])
        );
        let other = record("/usr/bin/tool", 0o100_755, Some(&"0".repeat(64)), 7);
        let found = verify_file(root, &other, DigestAlgorithm::Sha256, Some(0o755)).unwrap();
        assert_eq!(
            found[0].to_string(),
            format!(
                "content changed: sha256 recorded {}, found {sha} (size recorded 7, found 6)",
                "0".repeat(64)
            )
        );
        let gone = record("/usr/bin/gone", 0o100_755, Some(sha), 6);
        assert_eq!(
            verify_file(root, &gone, DigestAlgorithm::Sha256, None),
            Ok(vec![Difference::Missing])
        );
        let mut link = record("/usr/bin/link", 0o120_777, None, 4);
        link.link_to = Some("other".to_owned());
        assert_eq!(
            verify_file(root, &link, DigestAlgorithm::Sha256, None).unwrap()[0].to_string(),
            "link target changed: recorded \"other\", found \"tool\""
        );
        let was_link = record("/usr/bin/tool", 0o120_777, None, 4);
        assert_eq!(
            verify_file(root, &was_link, DigestAlgorithm::Sha256, None).unwrap()[0].to_string(),
            "a regular file where the package installed a symbolic link"
        );
        assert!(verify_file(root, &same, DigestAlgorithm::Ripemd160, None)
            .unwrap_err()
            .contains("ripemd160"));
    }
}
