//! Node facts derived from a target's files: the cgroup layout it runs or boots into
//! (`cgroup-mode`), a user's subordinate ids (`subid-ranges`), the cgroup controllers systemd
//! delegates to a user (`user-cgroup`), file capabilities (`file-caps`), and the filesystem under
//! a path (`filesystem`). Each reads through [`TargetFiles`], so OS trees, images, the live
//! machine and a host's batch output share one reading.

use std::collections::{BTreeMap, BTreeSet};

use super::mounts::MountTable;
use super::package_list::TargetFiles;
use crate::facts::FactValue;

/// The largest account or configuration file read.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

fn text(files: &dyn TargetFiles, path: &str) -> Result<Option<String>, String> {
    Ok(files
        .read_file(path, MAX_CONFIG_BYTES)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
}

fn record(fields: Vec<(&str, String)>) -> FactValue {
    FactValue::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), FactValue::Text(v)))
            .collect(),
    )
}

/// The cgroup layout of a live host from its mount table, as the kubelet tells (statfs of
/// /sys/fs/cgroup is cgroup2: `v2`), with `hybrid` for a tmpfs with cgroup2 at
/// /sys/fs/cgroup/unified and `v1` otherwise.
pub fn live_cgroup_mode(table: &MountTable) -> Result<(String, String), String> {
    let source = super::mounts::MOUNTINFO.to_owned();
    match table.fs_type_at("/sys/fs/cgroup") {
        Some("cgroup2") => Ok((
            "v2".to_owned(),
            format!("{source}: cgroup2 at /sys/fs/cgroup"),
        )),
        Some(fs_type) => {
            if table.fs_type_at("/sys/fs/cgroup/unified") == Some("cgroup2") {
                Ok((
                    "hybrid".to_owned(),
                    format!(
                        "{source}: {fs_type} at /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified"
                    ),
                ))
            } else {
                Ok((
                    "v1".to_owned(),
                    format!("{source}: {fs_type} at /sys/fs/cgroup"),
                ))
            }
        }
        None => Err(format!("{source}: nothing is mounted at /sys/fs/cgroup")),
    }
}

/// Where an OS tree keeps the kernel command line its boot loader passes.
const CMDLINE_FILES: &[&str] = &[
    "/etc/kernel/cmdline",
    "/usr/lib/kernel/cmdline",
    "/etc/default/grub",
    "/boot/grub2/grubenv",
    "/boot/grub/grubenv",
];

/// The cgroup layout an OS tree boots into: systemd's choice from its version (unified, cgroup
/// v2, by default from 243; cgroup v1 unsupported from 256 unless forced, and gone from 258) and
/// the kernel command line the tree configures (`systemd.unified_cgroup_hierarchy`,
/// `systemd.legacy_systemd_cgroup_controller`, `cgroup_no_v1=all`,
/// `SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1`); OpenRC's `rc_cgroup_mode` in /etc/rc.conf. An error
/// when the tree has neither, or when systemd's version cannot be told.
pub fn tree_cgroup_mode(files: &dyn TargetFiles) -> Result<(String, String), String> {
    let mut arguments: Vec<(String, String)> = Vec::new();
    let mut read_from = Vec::new();
    for path in CMDLINE_FILES {
        if let Some(text) = text(files, path)? {
            let words = cmdline_words(path, &text);
            if !words.is_empty() {
                read_from.push((*path).to_owned());
            }
            arguments.extend(words.into_iter().map(|w| (path.to_string(), w)));
        }
    }
    if let Some(entries) = files.list("/boot/loader/entries")? {
        let mut entries: Vec<String> = entries
            .into_iter()
            .filter(|e| e.ends_with(".conf"))
            .collect();
        entries.sort();
        for entry in entries {
            let path = format!("/boot/loader/entries/{entry}");
            if let Some(text) = text(files, &path)? {
                for line in text.lines() {
                    if let Some(options) = line.trim().strip_prefix("options") {
                        read_from.push(path.clone());
                        arguments.extend(
                            options
                                .split_whitespace()
                                .map(|w| (path.clone(), w.to_owned())),
                        );
                    }
                }
            }
        }
    }
    let value_of = |key: &str| {
        arguments.iter().rev().find_map(|(path, word)| {
            if word == key {
                Some((path.clone(), "1".to_owned()))
            } else {
                word.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|value| (path.clone(), value.to_owned()))
            }
        })
    };
    let boolean = |value: &str| match value {
        "1" | "yes" | "y" | "true" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "off" => Some(false),
        _ => None,
    };
    let Some((systemd, systemd_source)) = systemd_version(files)? else {
        if let Some(rc) = text(files, "/etc/rc.conf")? {
            if let Some(mode) = shell_assignment(&rc, "rc_cgroup_mode") {
                let mode = match mode.as_str() {
                    "unified" => "v2",
                    "hybrid" => "hybrid",
                    "legacy" => "v1",
                    other => return Err(format!("/etc/rc.conf: unknown rc_cgroup_mode `{other}`")),
                };
                return Ok((mode.to_owned(), "/etc/rc.conf rc_cgroup_mode".to_owned()));
            }
            return Err("the tree boots OpenRC without rc_cgroup_mode in /etc/rc.conf, whose default depends on the OpenRC version; set rc_cgroup_mode=\"unified\"".to_owned());
        }
        return Err("the tree has no systemd (no libsystemd-shared-*.so and no systemd package) and no /etc/rc.conf: its cgroup layout at boot cannot be told".to_owned());
    };
    let mut source = format!("systemd {systemd} ({systemd_source})");
    if !read_from.is_empty() {
        read_from.dedup();
        source += &format!(", kernel command line in {}", read_from.join(", "));
    }
    if systemd >= 258 {
        return Ok((
            "v2".to_owned(),
            format!("{source}: systemd 258 and later mount only cgroup v2"),
        ));
    }
    if value_of("cgroup_no_v1").is_some_and(|(_, v)| v == "all") {
        return Ok(("v2".to_owned(), format!("{source}: cgroup_no_v1=all")));
    }
    let unified = match value_of("systemd.unified_cgroup_hierarchy") {
        Some((path, value)) => match boolean(&value) {
            Some(unified) => Some((unified, path)),
            None => {
                return Err(format!(
                    "{path}: systemd.unified_cgroup_hierarchy={value} is not a boolean"
                ))
            }
        },
        None => None,
    };
    let forced = value_of("SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE").is_some_and(|(_, v)| v == "1");
    let mode = match unified {
        Some((true, path)) => {
            return Ok(("v2".to_owned(), format!("{source}: systemd.unified_cgroup_hierarchy=1 in {path}")))
        }
        Some((false, path)) if systemd >= 256 && !forced => {
            return Ok((
                "v2".to_owned(),
                format!("{source}: systemd.unified_cgroup_hierarchy=0 in {path} is ignored from systemd 256 without SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"),
            ))
        }
        Some((false, path)) => {
            let legacy = value_of("systemd.legacy_systemd_cgroup_controller")
                .and_then(|(_, v)| boolean(&v))
                .unwrap_or(false);
            source += &format!(": systemd.unified_cgroup_hierarchy=0 in {path}");
            if legacy {
                "v1"
            } else {
                "hybrid"
            }
        }
        None if systemd >= 243 => {
            source += ": unified by default from systemd 243";
            "v2"
        }
        None => {
            source += ": hybrid by default before systemd 243";
            "hybrid"
        }
    };
    Ok((mode.to_owned(), source))
}

/// The words of a kernel command line file: the file itself (`/etc/kernel/cmdline`), grub's
/// `GRUB_CMDLINE_LINUX` and `GRUB_CMDLINE_LINUX_DEFAULT`, or grubenv's `kernelopts`.
fn cmdline_words(path: &str, text: &str) -> Vec<String> {
    let joined: String = if path.ends_with("/default/grub") {
        ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"]
            .iter()
            .filter_map(|key| shell_assignment(text, key))
            .collect::<Vec<_>>()
            .join(" ")
    } else if path.ends_with("grubenv") {
        text.lines()
            .find_map(|l| l.strip_prefix("kernelopts="))
            .unwrap_or_default()
            .to_owned()
    } else {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join(" ")
    };
    joined.split_whitespace().map(str::to_owned).collect()
}

/// The value of a `KEY=value` shell assignment (quotes removed), the last one winning.
fn shell_assignment(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|value| {
            value
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_owned()
        })
}

/// systemd's version in a tree: the number in `libsystemd-shared-NNN*.so`, else the dpkg package.
fn systemd_version(files: &dyn TargetFiles) -> Result<Option<(u32, String)>, String> {
    for dir in ["/usr/lib/systemd", "/lib/systemd", "/usr/lib64/systemd"] {
        for name in files.list(dir)?.unwrap_or_default() {
            if let Some(rest) = name.strip_prefix("libsystemd-shared-") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(version) = digits.parse() {
                    return Ok(Some((version, format!("{dir}/{name}"))));
                }
            }
        }
    }
    if let Ok(list) = super::package_list::PackageList::read(files) {
        if let Some(package) = list.packages.get("systemd") {
            let upstream = super::package_list::upstream_version(&package.version);
            let digits: String = upstream.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(version) = digits.parse() {
                return Ok(Some((
                    version,
                    format!("package systemd {}", package.version),
                )));
            }
        }
    }
    Ok(None)
}

/// A user's uid and name from /etc/passwd (the argument is a name or a uid); `None` when the user
/// does not exist.
fn passwd_user(files: &dyn TargetFiles, user: &str) -> Result<Option<(String, String)>, String> {
    let Some(passwd) = text(files, "/etc/passwd")? else {
        return Ok(None);
    };
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 3 && (fields[0] == user || fields[2] == user) {
            return Ok(Some((fields[0].to_owned(), fields[2].to_owned())));
        }
    }
    Ok(None)
}

/// The `subid-ranges` record: the ranges /etc/subuid and /etc/subgid give a user (by name or
/// uid), as shadow's newuidmap reads them; absent when the user does not exist.
pub fn subid_ranges(files: &dyn TargetFiles, user: &str) -> Result<FactValue, String> {
    let Some((name, uid)) = passwd_user(files, user)? else {
        return Ok(FactValue::Absent);
    };
    let mut fields = vec![("user", name.clone()), ("uid", uid.clone())];
    for (file, key) in [("/etc/subuid", "subuid"), ("/etc/subgid", "subgid")] {
        let mut total: u64 = 0;
        let mut ranges = Vec::new();
        if let Some(content) = text(files, file)? {
            for line in content.lines() {
                let parts: Vec<&str> = line.trim().split(':').collect();
                let [owner, start, count] = parts.as_slice() else {
                    continue;
                };
                if *owner != name && *owner != uid {
                    continue;
                }
                if let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) {
                    if count > 0 {
                        total = total.saturating_add(count);
                        ranges.push(format!("{start}:{count}"));
                    }
                }
            }
        }
        fields.push((
            if key == "subuid" {
                "subuid-count"
            } else {
                "subgid-count"
            },
            total.to_string(),
        ));
        fields.push((
            if key == "subuid" {
                "subuid-ranges"
            } else {
                "subgid-ranges"
            },
            if ranges.is_empty() {
                "none".to_owned()
            } else {
                ranges.join(" ")
            },
        ));
    }
    Ok(record(fields))
}

/// The unit folders systemd reads `user@.service` and its drop-ins from, most important first.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The `user-cgroup` record: the controllers `Delegate=` gives `user@UID.service` (its unit file,
/// then the drop-ins of `user@.service.d` and `user@UID.service.d` in systemd's order: by file
/// name, a file in an earlier folder hiding the same name in a later one), and on a live host
/// the controllers its cgroup has.
pub fn user_cgroup(files: &dyn TargetFiles, user: &str, live: bool) -> Result<FactValue, String> {
    let Some((name, uid)) = passwd_user(files, user)? else {
        return Ok(FactValue::Absent);
    };
    let mut unit = None;
    for dir in UNIT_DIRS {
        for candidate in [
            format!("{dir}/user@{uid}.service"),
            format!("{dir}/user@.service"),
        ] {
            if unit.is_none() {
                if let Some(text) = text(files, &candidate)? {
                    unit = Some((candidate, text));
                }
            }
        }
    }
    let mut dropins: BTreeMap<String, String> = BTreeMap::new();
    for dir in UNIT_DIRS {
        for folder in [
            format!("{dir}/user@.service.d"),
            format!("{dir}/user@{uid}.service.d"),
        ] {
            for entry in files.list(&folder)?.unwrap_or_default() {
                if entry.ends_with(".conf") && !dropins.contains_key(&entry) {
                    dropins.insert(entry.clone(), format!("{folder}/{entry}"));
                }
            }
        }
    }
    let mut delegate: Option<BTreeSet<String>> = None;
    let mut all = false;
    let mut sources = Vec::new();
    let mut apply = |path: &str, text: &str| {
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_owned();
                continue;
            }
            if section != "[Service]" {
                continue;
            }
            let Some(value) = line.strip_prefix("Delegate=") else {
                continue;
            };
            sources.push(path.to_owned());
            let value = value.trim();
            match value {
                "" => {
                    delegate = None;
                    all = false;
                }
                "yes" | "true" | "1" | "on" => all = true,
                "no" | "false" | "0" | "off" => {
                    delegate = Some(BTreeSet::new());
                    all = false;
                }
                list => {
                    delegate
                        .get_or_insert_with(BTreeSet::new)
                        .extend(list.split_whitespace().map(str::to_owned));
                }
            }
        }
    };
    if let Some((path, text)) = &unit {
        apply(path, text);
    }
    for path in dropins.values() {
        if let Some(text) = text(files, path)? {
            apply(path, &text);
        }
    }
    let delegated = if all {
        "all".to_owned()
    } else {
        match &delegate {
            Some(set) if !set.is_empty() => set.iter().cloned().collect::<Vec<_>>().join(" "),
            _ => "none".to_owned(),
        }
    };
    let mut fields = vec![
        ("user", name),
        ("uid", uid.clone()),
        ("delegate", delegated),
        (
            "delegate-source",
            if sources.is_empty() {
                unit.as_ref()
                    .map_or("no user@.service unit".to_owned(), |(p, _)| {
                        format!("{p} (no Delegate=)")
                    })
            } else {
                sources.join(", ")
            },
        ),
    ];
    if live {
        let path = format!(
            "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/cgroup.controllers"
        );
        fields.push((
            "controllers",
            match text(files, &path)? {
                Some(controllers) => controllers.split_whitespace().collect::<Vec<_>>().join(" "),
                None => "not running".to_owned(),
            },
        ));
    }
    Ok(record(fields))
}

/// Capability names by number, as libcap's cap_to_name spells them.
const CAPABILITIES: &[&str] = &[
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The `file-caps` record of a `security.capability` value (`struct vfs_cap_data` or
/// `vfs_ns_cap_data`, little-endian): revision 1 (one 32-bit word per set), 2 (two words) or 3
/// (two words and the namespace's root uid), bit 0 of the magic the effective flag.
pub fn file_caps(value: &[u8]) -> Result<FactValue, String> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(value.get(at..at + 4)?.try_into().ok()?))
    };
    let magic = word(0).ok_or("a security.capability value shorter than its header")?;
    let (words, size) = match magic & 0xFF00_0000 {
        0x0100_0000 => (1, 12),
        0x0200_0000 => (2, 20),
        0x0300_0000 => (2, 24),
        other => {
            return Err(format!(
                "unknown security.capability revision {:#x}",
                other >> 24
            ))
        }
    };
    if value.len() != size {
        return Err(format!(
            "a revision {} security.capability value of {} bytes (expected {size})",
            magic >> 24,
            value.len()
        ));
    }
    let mut permitted: u64 = 0;
    let mut inheritable: u64 = 0;
    for index in 0..words {
        let at = 4 + index * 8;
        permitted |= u64::from(word(at).unwrap_or(0)) << (32 * index);
        inheritable |= u64::from(word(at + 4).unwrap_or(0)) << (32 * index);
    }
    let names = |mask: u64| {
        let names: Vec<String> = (0..64)
            .filter(|bit| mask & (1 << bit) != 0)
            .map(|bit| {
                CAPABILITIES
                    .get(bit)
                    .map_or_else(|| bit.to_string(), |name| (*name).to_owned())
            })
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(" ")
        }
    };
    Ok(record(vec![
        ("permitted", names(permitted)),
        ("inheritable", names(inheritable)),
        (
            "effective",
            if magic & 1 != 0 { "yes" } else { "no" }.to_owned(),
        ),
        (
            "rootid",
            if size == 24 {
                word(20).unwrap_or(0).to_string()
            } else {
                "0".to_owned()
            },
        ),
    ]))
}

/// The name of a filesystem magic number (statfs's f_type).
pub fn filesystem_name(magic: u64) -> Option<&'static str> {
    Some(match magic {
        0x5846_5342 => "xfs",
        0xEF53 => "ext4",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlay",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x6365_6570 => "cgroup",
        0x6367_7270 => "cgroup2",
        0x9FA0 => "proc",
        0x6265_6572 => "sysfs",
        0xF15F => "ecryptfs",
        0x2011_BAB0 => "exfat",
        0x4D44 => "vfat",
        0x5265_4973 => "reiserfs",
        0x7363_6673 => "squashfs",
        0xE0F5_E1E2 => "erofs",
        0x0BAD_1DEA => "futexfs",
        0x0027_E0EB => "cgroup",
        0x1CD1 => "devpts",
        0x6462_6720 => "debugfs",
        0x8584_58F6 => "ramfs",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files from a map, for unit tests: a folder lists the names of the files right in it.
    struct Map(BTreeMap<&'static str, &'static str>);

    impl TargetFiles for Map {
        fn read_file(&self, path: &str, _: u64) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.get(path).map(|t| t.as_bytes().to_vec()))
        }
        fn exists(&self, path: &str) -> Result<bool, String> {
            Ok(self.0.contains_key(path))
        }
        fn list(&self, path: &str) -> Result<Option<Vec<String>>, String> {
            let names: Vec<String> = self
                .0
                .keys()
                .filter_map(|file| file.strip_prefix(path)?.strip_prefix('/'))
                .filter(|name| !name.contains('/'))
                .map(str::to_owned)
                .collect();
            Ok((!names.is_empty()).then_some(names))
        }
    }

    #[test]
    fn subid_ranges_by_name_and_uid() {
        let files = Map(BTreeMap::from([
            (
                "/etc/passwd",
                "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
            ),
            (
                "/etc/subuid",
                "alice:100000:65536\n1000:300000:10\nbob:1:2\nbroken\n",
            ),
            ("/etc/subgid", "alice:100000:1000\n"),
        ]));
        let value = subid_ranges(&files, "alice").unwrap();
        let field = |k: &str| value.field(k).unwrap().to_string();
        assert_eq!(field("subuid-count"), "65546");
        assert_eq!(field("subuid-ranges"), "100000:65536 300000:10");
        assert_eq!(field("subgid-count"), "1000");
        assert_eq!(subid_ranges(&files, "nobody").unwrap(), FactValue::Absent);
        assert_eq!(
            subid_ranges(&files, "0")
                .unwrap()
                .field("subuid-count")
                .unwrap()
                .to_string(),
            "0"
        );
    }

    #[test]
    fn file_capabilities_revisions() {
        // cap_setuid=ep, revision 2.
        let mut v2 = vec![0x01, 0, 0, 0x02];
        v2.extend_from_slice(&(1u32 << 7).to_le_bytes());
        v2.extend_from_slice(&0u32.to_le_bytes());
        v2.extend_from_slice(&[0; 8]);
        let caps = file_caps(&v2).unwrap();
        assert_eq!(caps.field("permitted").unwrap().to_string(), "cap_setuid");
        assert_eq!(caps.field("effective").unwrap().to_string(), "yes");
        assert!(file_caps(&v2[..10]).is_err());
        assert!(file_caps(&[0, 0, 0, 9]).is_err());
    }

    #[test]
    fn tree_cgroup_modes() {
        let tree = |systemd: &'static str, files: &[(&'static str, &'static str)]| {
            let mut map: BTreeMap<&'static str, &'static str> = files.iter().copied().collect();
            if !systemd.is_empty() {
                map.insert(systemd, "");
            }
            Map(map)
        };
        const V252: &str = "/usr/lib/systemd/libsystemd-shared-252.so";
        const V256: &str = "/usr/lib/systemd/libsystemd-shared-256.so";
        let mode = |map: &Map| tree_cgroup_mode(map).map(|(mode, _)| mode);
        assert_eq!(mode(&tree(V252, &[])).unwrap(), "v2");
        assert_eq!(
            mode(&tree("/usr/lib/systemd/libsystemd-shared-239.so", &[])).unwrap(),
            "hybrid"
        );
        assert!(mode(&tree("", &[])).is_err());
        let grub = [(
            "/etc/default/grub",
            "GRUB_CMDLINE_LINUX=\"quiet systemd.unified_cgroup_hierarchy=0\"\n",
        )];
        assert_eq!(mode(&tree(V252, &grub)).unwrap(), "hybrid");
        assert_eq!(mode(&tree(V256, &grub)).unwrap(), "v2");
        let legacy = [(
            "/etc/kernel/cmdline",
            "systemd.unified_cgroup_hierarchy=no systemd.legacy_systemd_cgroup_controller",
        )];
        assert_eq!(
            mode(&tree("/usr/lib/systemd/libsystemd-shared-250.so", &legacy)).unwrap(),
            "v1"
        );
        let entry = [(
            "/boot/loader/entries/a.conf",
            "title x\noptions root=/dev/sda systemd.unified_cgroup_hierarchy=0\n",
        )];
        assert_eq!(mode(&tree(V252, &entry)).unwrap(), "hybrid");
        let rc = [("/etc/rc.conf", "rc_cgroup_mode=\"unified\"\n")];
        assert_eq!(mode(&tree("", &rc)).unwrap(), "v2");
    }
}
