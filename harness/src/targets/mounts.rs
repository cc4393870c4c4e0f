//! The mount table of a live host, read from `/proc/self/mountinfo` as the kernel writes it
//! (fs/proc_namespace.c, `show_mountinfo`), and the `mounts` facts answered from it. Shared by the
//! local target and the SSH batch, which sends the file's bytes.
//!
//! A line is
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! ```
//!
//! the mount id, the parent's id, the device, the root of the mount inside its filesystem, the
//! mount point, the mount's options, zero or more optional fields ended by `-`, then the
//! filesystem type, the source and the filesystem's (super block's) options. The kernel escapes
//! space, tab, newline and backslash in paths, the source and the type as `\ooo` (octal), so
//! fields are separated by single spaces.

use std::collections::BTreeMap;

use crate::facts::{Fact, FactValue};
use crate::model::Probe;

/// Where the mount table is read.
pub(super) const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    pub id: String,
    pub parent_id: String,
    pub device: String,
    pub root: String,
    pub mount_point: String,
    pub options: String,
    pub propagation: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

/// The mounts of one mount namespace, in the kernel's order.
#[derive(Debug, Clone, Default)]
pub(super) struct MountTable {
    mounts: Vec<Mount>,
}

impl MountTable {
    /// Parses mountinfo text. A line that does not have the kernel's fields is an error naming
    /// its line number: a damaged table is refused rather than half read.
    pub fn parse(text: &str) -> Result<MountTable, String> {
        let mut mounts = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(' ').collect();
            let separator = fields.iter().skip(6).position(|f| *f == "-").map(|i| i + 6);
            let parsed = match (fields.get(..6), separator) {
                (Some([id, parent_id, device, root, mount_point, options]), Some(separator))
                    if fields.len() >= separator + 3
                        && !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && parent_id.bytes().all(|b| b.is_ascii_digit())
                        && device.contains(':') =>
                {
                    Some(Mount {
                        id: (*id).to_owned(),
                        parent_id: (*parent_id).to_owned(),
                        device: (*device).to_owned(),
                        root: unescape(root),
                        mount_point: unescape(mount_point),
                        options: (*options).to_owned(),
                        propagation: fields[6..separator].join(" "),
                        fs_type: unescape(fields[separator + 1]),
                        source: unescape(fields[separator + 2]),
                        super_options: unescape(&fields[separator + 3..].join(" ")),
                    })
                }
                _ => None,
            };
            let Some(mount) = parsed else {
                let shown: String = line.chars().take(80).collect();
                return Err(format!(
                    "{MOUNTINFO}:{}: not a mountinfo line: `{shown}`",
                    index + 1
                ));
            };
            mounts.push(mount);
        }
        Ok(MountTable { mounts })
    }

    /// The filesystem type of the mount in view at a mount point.
    pub fn fs_type_at(&self, point: &str) -> Option<&str> {
        self.mounts
            .iter()
            .rfind(|m| m.mount_point == point)
            .map(|m| m.fs_type.as_str())
    }

    /// The `mounts` fact for a mount point: the last mount there (later mounts hide earlier
    /// ones), with how many share the point; absent when none.
    pub fn fact(&self, probe: &Probe, point: &str) -> Fact {
        let here: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| m.mount_point == point)
            .collect();
        let Some(mount) = here.last() else {
            return Fact::read(probe.clone(), MOUNTINFO, FactValue::Absent);
        };
        let read_only = mount.options.split(',').any(|o| o == "ro");
        let fields = [
            ("fs-type", mount.fs_type.clone()),
            ("source", mount.source.clone()),
            ("options", mount.options.clone()),
            ("super-options", mount.super_options.clone()),
            ("read-only", if read_only { "yes" } else { "no" }.to_owned()),
            ("root", mount.root.clone()),
            ("id", mount.id.clone()),
            ("parent-id", mount.parent_id.clone()),
            ("device", mount.device.clone()),
            ("propagation", mount.propagation.clone()),
            ("stacked", here.len().to_string()),
        ];
        Fact::read(
            probe.clone(),
            MOUNTINFO,
            FactValue::Record(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
                    .collect::<BTreeMap<_, _>>(),
            ),
        )
    }
}

/// The `mounts` fact from a mount table that was read, or why none could be.
pub(super) fn mounts_fact(table: &Result<MountTable, String>, probe: &Probe, point: &str) -> Fact {
    match table {
        Ok(table) => table.fact(probe, point),
        Err(reason) => Fact::failed(probe.clone(), MOUNTINFO, reason.clone()),
    }
}

/// Decodes the kernel's `\ooo` escapes (a backslash and three octal digits, as `mangle` writes
/// them and libmount's `unmangle` reads them); any other backslash stays as it is.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
40 30 0:40 / /sys/fs/cgroup ro,relatime - tmpfs none rw
41 1 0:41 /dir\\040with\\011tab /mnt/a\\040b\\012c\\134d rw - tmpfs my\\040src rw,size=4k
42 1 0:42 / /proc/sys ro,nosuid master:3 shared:4 - proc proc rw
";

    fn field(table: &MountTable, point: &str, name: &str) -> Option<String> {
        let fact = table.fact(&Probe::Mounts(point.to_owned()), point);
        fact.value.unwrap().field(name).map(ToString::to_string)
    }

    #[test]
    fn fields_and_escapes_as_the_kernel_writes_them() {
        let table = MountTable::parse(TABLE).unwrap();
        assert_eq!(table.mounts.len(), 5);
        let weird = &table.mounts[3];
        assert_eq!(weird.mount_point, "/mnt/a b\nc\\d");
        assert_eq!(weird.root, "/dir with\ttab");
        assert_eq!(weird.source, "my src");
        assert_eq!(
            field(&table, "/mnt/a b\nc\\d", "super-options").as_deref(),
            Some("rw,size=4k")
        );
        assert_eq!(
            field(&table, "/proc/sys", "read-only").as_deref(),
            Some("yes")
        );
        assert_eq!(
            field(&table, "/proc/sys", "propagation").as_deref(),
            Some("master:3 shared:4")
        );
        assert_eq!(field(&table, "/sys", "read-only").as_deref(), Some("no"));
        assert_eq!(field(&table, "/sys", "device").as_deref(), Some("0:21"));
    }

    #[test]
    fn the_last_mount_at_a_point_is_the_one_in_view() {
        let table = MountTable::parse(TABLE).unwrap();
        assert_eq!(
            field(&table, "/sys/fs/cgroup", "fs-type").as_deref(),
            Some("tmpfs")
        );
        assert_eq!(
            field(&table, "/sys/fs/cgroup", "stacked").as_deref(),
            Some("2")
        );
        let absent = table.fact(&Probe::Mounts("/nowhere".to_owned()), "/nowhere");
        assert_eq!(absent.value, Some(FactValue::Absent));
    }

    #[test]
    fn damaged_lines_are_refused_with_their_number() {
        let error = MountTable::parse("22 1 0:21 / /sys rw - sysfs sysfs rw\n22 1 0:21 / /x rw\n")
            .unwrap_err();
        assert_eq!(
            error,
            "/proc/self/mountinfo:2: not a mountinfo line: `22 1 0:21 / /x rw`"
        );
        assert!(MountTable::parse("x 1 0:1 / / rw - a b c\n").is_err());
        assert_eq!(unescape("\\04"), "\\04");
        assert_eq!(unescape("a\\\\b"), "a\\\\b");
        assert_eq!(unescape("\\101\\060"), "A0");
    }
}
