//! hostcert against moby's check-config.sh on real kernel configs.
//!
//! For every full config in `../shared/fixtures/kernel-configs`, runs `hostcert run --target
//! kernel-config:FILE` with the default profile and compares each (config, symbol) row of
//! `check-config/config-kernel-version/summary.tsv` (check-config run with the config's own kernel
//! version) with hostcert's result:
//!
//! - evidence: `CONFIG_<symbol>` is `y`, `m` or `not set` where check-config says `enabled`,
//!   `module` or `missing`, in every result that read it;
//! - verdict: the check reading the symbol (the one reading the fewest facts when several do)
//!   passes exactly where check-config did not flag the line.
//!
//! A row whose symbol only checks gated off for that kernel read is not compared. Every
//! disagreement and every gated-off row must have its symbol in [`EXPLAINED`], which must list
//! the same symbols as the disagreement table of `suites/kernel-features/README.md`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::BIN;

/// The least share of compared rows on which hostcert and check-config must agree.
const MIN_AGREEMENT: f64 = 0.99;

/// Symbols check-config checks that hostcert deliberately gates off or judges differently on some
/// configs of the dataset, with the reason. Keep in step with the table "Disagreements with
/// check-config" in suites/kernel-features/README.md; the test compares the two.
const EXPLAINED: &[(&str, &str)] = &[
    ("IP_NF_FILTER", "kernels without legacy xtables (6.17+) serve the filter table through iptables-nft: NF_TABLES_IPV4 + NFT_COMPAT"),
    ("IP_NF_NAT", "iptables-nft NAT: NFT_NAT + NETFILTER_XT_NAT through NFT_COMPAT"),
    ("IP_NF_TARGET_MASQUERADE", "iptables-nft runs MASQUERADE as NETFILTER_XT_TARGET_MASQUERADE in an NFT_NAT chain"),
    ("IP_NF_TARGET_REDIRECT", "iptables-nft runs REDIRECT as NETFILTER_XT_TARGET_REDIRECT in an NFT_NAT chain"),
    ("NF_NAT_IPV4", "RHEL 8.3+ carries 5.1's merge of IPv4 NAT into NF_NAT; IP_NF_NAT shows it is there"),
    ("INET_XFRM_MODE_TRANSPORT", "RHEL 8 carries 5.2's built-in xfrm modes: ESP with no INET_XFRM_MODE_* symbol"),
    ("IOSCHED_CFQ", "RHEL 8's 4.18 is blk-mq only (CFQ gone as in 5.0); IOSCHED_BFQ is the scheduler"),
    ("CFQ_GROUP_IOSCHED", "RHEL 8's 4.18 is blk-mq only; BFQ_GROUP_IOSCHED is group scheduling"),
    ("MEMCG_SWAP", "removed in 6.1 (gated off from 6.1); RHEL 9's 5.14 carries the removal: MEMCG + SWAP"),
    ("RESOURCE_COUNTERS", "RHEL 7 carries 3.19's page_counter: MEMCG + PAGE_COUNTER"),
    ("EXT3_FS", "ext3 driver removed in 4.3 (gated off from 4.3); CentOS 7 mounts ext3 with ext4 (EXT4_USE_FOR_EXT23)"),
    ("EXT3_FS_XATTR", "as EXT3_FS"),
    ("EXT3_FS_POSIX_ACL", "as EXT3_FS, with EXT4_FS_POSIX_ACL"),
    ("EXT3_FS_SECURITY", "as EXT3_FS, with EXT4_FS_SECURITY"),
];

/// Every CONFIG_ symbol moby's check-config.sh checks, in Debian's docker.io 20.10.24 copy and in
/// moby master (../shared/reference/DOMAIN.md 1.2). The suite must read each of them.
const CHECK_CONFIG_SYMBOLS: &[&str] = &[
    // Generally Necessary
    "NAMESPACES",
    "NET_NS",
    "PID_NS",
    "IPC_NS",
    "UTS_NS",
    "CGROUPS",
    "CGROUP_CPUACCT",
    "CGROUP_DEVICE",
    "CGROUP_FREEZER",
    "CGROUP_SCHED",
    "CPUSETS",
    "MEMCG",
    "KEYS",
    "VETH",
    "BRIDGE",
    "BRIDGE_NETFILTER",
    "IP_NF_FILTER",
    "IP_NF_MANGLE",
    "IP_NF_TARGET_MASQUERADE",
    "IP6_NF_FILTER",
    "IP6_NF_MANGLE",
    "IP6_NF_TARGET_MASQUERADE",
    "NETFILTER_XT_MATCH_ADDRTYPE",
    "NETFILTER_XT_MATCH_CONNTRACK",
    "NETFILTER_XT_MATCH_IPVS",
    "NETFILTER_XT_MARK",
    "IP_NF_RAW",
    "IP_NF_NAT",
    "NF_NAT",
    "IP6_NF_RAW",
    "IP6_NF_NAT",
    "POSIX_MQUEUE",
    "DEVPTS_MULTIPLE_INSTANCES",
    "NF_NAT_IPV4",
    "NF_NAT_NEEDED",
    "CGROUP_BPF",
    // Optional Features
    "USER_NS",
    "SECCOMP",
    "SECCOMP_FILTER",
    "CGROUP_PIDS",
    "CGROUP_HUGETLB",
    "MEMCG_SWAP",
    "MEMCG_SWAP_ENABLED",
    "LEGACY_VSYSCALL_NATIVE",
    "LEGACY_VSYSCALL_EMULATE",
    "LEGACY_VSYSCALL_NONE",
    "MEMCG_KMEM",
    "RESOURCE_COUNTERS",
    "NETPRIO_CGROUP",
    "CGROUP_NET_PRIO",
    "IOSCHED_CFQ",
    "CFQ_GROUP_IOSCHED",
    "BLK_CGROUP",
    "BLK_DEV_THROTTLING",
    "CGROUP_PERF",
    "NET_CLS_CGROUP",
    "CFS_BANDWIDTH",
    "FAIR_GROUP_SCHED",
    "RT_GROUP_SCHED",
    "IP_NF_TARGET_REDIRECT",
    "IP_VS",
    "IP_VS_NFCT",
    "IP_VS_PROTO_TCP",
    "IP_VS_PROTO_UDP",
    "IP_VS_RR",
    "IP_SCTP",
    "SECURITY_SELINUX",
    "SECURITY_APPARMOR",
    "NFT_CT",
    "NFT_FIB_IPV4",
    "NFT_FIB_IPV6",
    "NFT_FIB",
    "NFT_MASQ",
    "NFT_NAT",
    "NF_TABLES",
    "EXT3_FS",
    "EXT3_FS_XATTR",
    "EXT3_FS_POSIX_ACL",
    "EXT3_FS_SECURITY",
    "EXT4_FS",
    "EXT4_FS_POSIX_ACL",
    "EXT4_FS_SECURITY",
    // Network drivers
    "VXLAN",
    "BRIDGE_VLAN_FILTERING",
    "CRYPTO",
    "CRYPTO_AEAD",
    "CRYPTO_GCM",
    "CRYPTO_SEQIV",
    "CRYPTO_GHASH",
    "XFRM",
    "XFRM_USER",
    "XFRM_ALGO",
    "INET_ESP",
    "NETFILTER_XT_MATCH_BPF",
    "INET_XFRM_MODE_TRANSPORT",
    "IPVLAN",
    "MACVLAN",
    "DUMMY",
    "NF_NAT_FTP",
    "NF_CONNTRACK_FTP",
    "NF_NAT_TFTP",
    "NF_CONNTRACK_TFTP",
    // Storage drivers
    "AUFS_FS",
    "BTRFS_FS",
    "BTRFS_FS_POSIX_ACL",
    "BLK_DEV_DM",
    "DM_THIN_PROVISIONING",
    "OVERLAY_FS",
];

/// The shared real kernel configs beside the repository.
fn fixtures() -> PathBuf {
    support::shared_fixture("kernel-configs")
}

/// One row of check-config's summary.tsv.
struct Row {
    config: String,
    kernel_version: String,
    symbol: String,
    verdict: String,
    flagged: bool,
}

fn read_rows(dir: &Path) -> Vec<Row> {
    let path = dir.join("check-config/config-kernel-version/summary.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{} has no column `{name}`", path.display()))
    };
    let (config, kind, version, symbol, verdict, flagged) = (
        column("config"),
        column("kind"),
        column("kernel_version"),
        column("symbol"),
        column("verdict"),
        column("flagged_by_check_config"),
    );
    lines
        .filter(|line| !line.is_empty())
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|fields| fields[kind] == "full")
        .map(|fields| Row {
            config: fields[config].to_owned(),
            kernel_version: fields[version].to_owned(),
            symbol: fields[symbol].to_owned(),
            verdict: fields[verdict].to_owned(),
            flagged: match fields[flagged] {
                "yes" => true,
                "no" => false,
                other => panic!("unexpected flagged_by_check_config `{other}`"),
            },
        })
        .collect()
}

/// A JSON string's text (or the JSON itself for anything else).
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// Whether a config carries the `# Linux/<arch> <version> Kernel Configuration` header.
fn has_header(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .take(20)
        .any(|l| l.starts_with("# Linux/") && l.ends_with("Kernel Configuration"))
}

/// Runs hostcert on every config at once and returns each config's JSON report.
fn run_all(dir: &Path, configs: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    let work = tempfile::tempdir().unwrap();
    let children: Vec<(String, PathBuf, Child)> = configs
        .iter()
        .map(|(file, version)| {
            let path = dir.join(file);
            let stem = file.trim_end_matches(".config");
            let json = work.path().join(format!("{stem}.json"));
            let mut command = Command::new(BIN);
            command
                .arg("run")
                .arg("--target")
                .arg(format!("kernel-config:{}", path.display()))
                .arg("--json")
                .arg(&json)
                .arg("--report-dir")
                .arg(work.path().join(format!("{stem}-report")))
                .arg("-q")
                .current_dir(work.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if !has_header(&path) {
                command
                    .arg("--param")
                    .arg(format!("kernel-version={version}"));
            }
            let child = command.spawn().expect("hostcert runs");
            (file.clone(), json, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(file, json, child)| {
            let output = child.wait_with_output().unwrap();
            let code = output.status.code();
            assert!(
                matches!(code, Some(0 | 1)),
                "hostcert on {file} exited with {code:?} (0 or 1 expected: the config must be read and every check evaluated):\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let text = std::fs::read_to_string(&json)
                .unwrap_or_else(|e| panic!("{file}: no JSON report ({e})"));
            (file, serde_json::from_str(&text).expect("valid JSON"))
        })
        .collect()
}

/// The symbols of the README's disagreement table: backticked names in its first column.
fn readme_symbols() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/kernel-features/README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let section = text
        .split("\n## Disagreements with check-config\n")
        .nth(1)
        .unwrap_or_else(|| {
            panic!(
                "{} has no section `## Disagreements with check-config`",
                path.display()
            )
        });
    let section = section.split("\n## ").next().unwrap();
    let mut symbols = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                symbols.insert(part.to_owned());
            }
        }
    }
    symbols
}

/// The kernel config symbols each check of the default profile reads.
fn symbols_read_by_the_default_profile() -> BTreeSet<String> {
    let catalog = hostcert::catalog::Catalog::builtin().expect("the built-in suites load");
    let profile = catalog
        .profile(hostcert::builtin::DEFAULT_PROFILE)
        .expect("the default profile is built in")
        .clone();
    let plan = catalog
        .resolve(&profile)
        .expect("the default profile resolves");
    plan.checks
        .iter()
        .flat_map(|planned| planned.check.probes.values())
        .filter_map(|probe| match probe {
            hostcert::model::Probe::KernelConfig(symbol) => Some(symbol.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn hostcert_agrees_with_check_config_on_real_configs_except_where_explained() {
    let dir = fixtures();
    let rows = read_rows(&dir);

    // The rows cover every full config in the folder, and nothing else.
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".config"))
        .collect();
    let configs: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r.config.clone(), r.kernel_version.clone()))
        .collect();
    assert_eq!(
        configs.keys().cloned().collect::<BTreeSet<_>>(),
        on_disk,
        "summary.tsv and the full configs in {} differ",
        dir.display()
    );
    assert!(configs.len() >= 40, "only {} full configs", configs.len());

    // The suite reads every symbol check-config checks, and the list above knows every symbol of
    // the dataset.
    let read = symbols_read_by_the_default_profile();
    let unread: Vec<&&str> = CHECK_CONFIG_SYMBOLS
        .iter()
        .filter(|s| !read.contains(**s))
        .collect();
    assert!(
        unread.is_empty(),
        "no check of the default profile reads {unread:?}"
    );
    let unknown: BTreeSet<&str> = rows
        .iter()
        .map(|r| r.symbol.as_str())
        .filter(|s| !CHECK_CONFIG_SYMBOLS.contains(s))
        .collect();
    assert!(unknown.is_empty(), "CHECK_CONFIG_SYMBOLS lacks {unknown:?}");

    let reports = run_all(&dir, &configs);

    let explained: BTreeMap<&str, &str> = EXPLAINED.iter().copied().collect();
    let mut compared = 0usize;
    let mut agreed = 0usize;
    let mut gated_off = 0usize;
    let mut evidence_mismatches = Vec::new();
    let mut unexplained = Vec::new();
    let mut differences: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for row in &rows {
        let report = &reports[&row.config];
        let fact = format!("CONFIG_{}", row.symbol);
        let readers: Vec<&Value> = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["fact"] == fact.as_str())
            })
            .collect();
        let Some(primary) = readers
            .iter()
            .min_by_key(|r| r["evidence"].as_array().unwrap().len())
        else {
            // Only checks that do not apply to this kernel read the symbol.
            gated_off += 1;
            differences
                .entry(row.symbol.as_str())
                .or_default()
                .push(format!(
                    "{} (gated off)",
                    row.config.trim_end_matches(".config")
                ));
            if !explained.contains_key(row.symbol.as_str()) {
                unexplained.push(format!(
                    "{} {}: check-config says {}, hostcert gates it off",
                    row.config, row.symbol, row.verdict
                ));
            }
            continue;
        };
        let expected = match row.verdict.as_str() {
            "enabled" => "y",
            "module" => "m",
            "missing" => "not set",
            other => panic!("unexpected verdict `{other}`"),
        };
        for reader in &readers {
            for evidence in reader["evidence"].as_array().unwrap() {
                if evidence["fact"] == fact.as_str() && evidence["observed"] != expected {
                    evidence_mismatches.push(format!(
                        "{} {}: check-config says {}, {} observed {}",
                        row.config,
                        fact,
                        row.verdict,
                        text(&reader["check"]),
                        text(&evidence["observed"])
                    ));
                }
            }
        }
        compared += 1;
        let hostcert_ok = primary["outcome"] == "pass";
        let check_config_ok = !row.flagged;
        if hostcert_ok == check_config_ok {
            agreed += 1;
            continue;
        }
        differences
            .entry(row.symbol.as_str())
            .or_default()
            .push(format!(
                "{} ({} {})",
                row.config.trim_end_matches(".config"),
                text(&primary["check"]),
                text(&primary["outcome"])
            ));
        if !explained.contains_key(row.symbol.as_str()) {
            unexplained.push(format!(
                "{} {}: check-config says {}{}, {} is {}: {}",
                row.config,
                row.symbol,
                row.verdict,
                if row.flagged { " (flagged)" } else { "" },
                text(&primary["check"]),
                text(&primary["outcome"]),
                text(&primary["message"])
            ));
        }
    }

    let agreement = agreed as f64 / compared as f64;
    println!(
        "{} configs, {} rows: {} gated off, {} compared, {} agree ({:.2} %)",
        configs.len(),
        rows.len(),
        gated_off,
        compared,
        agreed,
        agreement * 100.0
    );
    for (symbol, rows) in &differences {
        println!("  {symbol}: {} rows: {}", rows.len(), rows.join(", "));
    }

    assert!(
        evidence_mismatches.is_empty(),
        "hostcert's evidence differs from the config as check-config read it:\n{}",
        evidence_mismatches.join("\n")
    );
    assert!(
        unexplained.is_empty(),
        "differences from check-config that EXPLAINED (and the README) do not explain:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<&str> = EXPLAINED
        .iter()
        .map(|(symbol, _)| *symbol)
        .filter(|symbol| !differences.contains_key(symbol))
        .collect();
    assert!(
        stale.is_empty(),
        "EXPLAINED lists symbols on which hostcert now agrees with check-config everywhere: {stale:?}"
    );
    assert!(
        agreement >= MIN_AGREEMENT,
        "hostcert agrees with check-config on {agreed} of {compared} rows ({:.2} %), below {:.0} %",
        agreement * 100.0,
        MIN_AGREEMENT * 100.0
    );
    let documented = readme_symbols();
    let listed: BTreeSet<String> = EXPLAINED.iter().map(|(s, _)| (*s).to_owned()).collect();
    assert_eq!(
        documented, listed,
        "the disagreement table of suites/kernel-features/README.md and EXPLAINED list different symbols"
    );
}

/// How an image-based OS lays out its kernel, as a tree the test builds.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// An ostree deployment or bootc image (Fedora CoreOS, RHEL CoreOS): `/usr/lib/modules/R/`
    /// holds `vmlinuz` and `config`, `/lib` links to `usr/lib`, `/etc`'s defaults are in
    /// `/usr/etc`, and `/boot` is empty.
    FedoraCoreOs,
    /// RHEL Atomic Host (ostree): `/usr/lib/ostree-boot/` holds `vmlinuz-R-CSUM` and `config-R`,
    /// `/usr/lib/modules/R/` the modules only.
    AtomicHost,
    /// A booted ostree system whose deployment's boot folder holds the config:
    /// `/boot/ostree/OS-CSUM/config-R`.
    OstreeBoot,
    /// Ubuntu Core: the kernel snap mounted at `/snap/pc-kernel/current` (a link to the
    /// revision) holds `kernel.img`, `config-R` and `modules/R/`.
    UbuntuCore,
}

/// Builds a tree of `layout` with `config` as its kernel `release`'s config; returns where the
/// config and the modules are inside it.
fn image_based_tree(root: &Path, layout: Layout, config: &Path, release: &str) -> (String, String) {
    let put = |path: &str, bytes: &[u8]| {
        let full = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    };
    let link = |path: &str, target: &str| {
        let full = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, full).unwrap();
    };
    let config_text = std::fs::read(config).unwrap();
    // The modules every kernel.modules.* check looks for, as modules.dep lists them.
    let modules_dep = "kernel/fs/overlayfs/overlay.ko.xz:\nkernel/net/bridge/bridge.ko.xz: kernel/net/802/stp.ko.xz\nkernel/drivers/net/veth.ko.xz:\nkernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\nkernel/net/netfilter/nf_nat.ko.xz:\nkernel/net/netfilter/xt_conntrack.ko.xz:\nkernel/net/netfilter/xt_addrtype.ko.xz:\n";
    let usr_layout = |os_release: &str| {
        link("/lib", "usr/lib");
        link("/bin", "usr/bin");
        put("/usr/lib/os-release", os_release.as_bytes());
        put("/usr/etc/hostname", b"image-build\n");
        put("/usr/bin/sh", b"");
        std::fs::create_dir_all(root.join("boot")).unwrap();
    };
    match layout {
        Layout::FedoraCoreOs => {
            usr_layout("ID=fedora\nVARIANT_ID=coreos\nVERSION_ID=43\n");
            put(&format!("/usr/lib/modules/{release}/vmlinuz"), b"kernel");
            put(&format!("/usr/lib/modules/{release}/config"), &config_text);
            put(
                &format!("/usr/lib/modules/{release}/modules.dep"),
                modules_dep.as_bytes(),
            );
            (
                format!("/usr/lib/modules/{release}/config"),
                format!("/lib/modules/{release}"),
            )
        }
        Layout::AtomicHost => {
            usr_layout("ID=\"centos\"\nVARIANT_ID=\"atomic.host\"\nVERSION_ID=\"7\"\n");
            put(
                &format!("/usr/lib/ostree-boot/vmlinuz-{release}-0f3a"),
                b"kernel",
            );
            put(
                &format!("/usr/lib/ostree-boot/config-{release}"),
                &config_text,
            );
            put(
                &format!("/usr/lib/modules/{release}/modules.dep"),
                modules_dep.as_bytes(),
            );
            (
                format!("/usr/lib/ostree-boot/config-{release}"),
                format!("/lib/modules/{release}"),
            )
        }
        Layout::OstreeBoot => {
            usr_layout("ID=fedora\nVERSION_ID=43\n");
            put(
                &format!("/boot/ostree/fedora-6c1e/vmlinuz-{release}"),
                b"kernel",
            );
            put(
                &format!("/boot/ostree/fedora-6c1e/config-{release}"),
                &config_text,
            );
            put(
                &format!("/usr/lib/modules/{release}/modules.dep"),
                modules_dep.as_bytes(),
            );
            (
                format!("/boot/ostree/fedora-6c1e/config-{release}"),
                format!("/lib/modules/{release}"),
            )
        }
        Layout::UbuntuCore => {
            usr_layout("NAME=\"Ubuntu Core\"\nID=ubuntu-core\nVERSION_ID=\"24\"\n");
            put("/snap/pc-kernel/1892/kernel.img", b"kernel");
            put("/snap/pc-kernel/1892/initrd.img", b"initrd");
            put(
                &format!("/snap/pc-kernel/1892/config-{release}"),
                &config_text,
            );
            put(
                &format!("/snap/pc-kernel/1892/modules/{release}/modules.dep"),
                modules_dep.as_bytes(),
            );
            link("/snap/pc-kernel/current", "1892");
            (
                format!("/snap/pc-kernel/current/config-{release}"),
                format!("/snap/pc-kernel/current/modules/{release}"),
            )
        }
    }
}

/// Outcomes by check id, and the target's entry, of a one-target JSON report.
fn outcomes_of(report: &Value) -> BTreeMap<String, String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (text(&r["check"]), text(&r["outcome"])))
        .collect()
}

/// Trees laid out as Fedora CoreOS (ostree, bootc), RHEL Atomic Host, a booted ostree `/boot` and
/// Ubuntu Core keep their kernel config where those OSes do: each tree is judged at that kernel's
/// own version, the config read from there (the source in evidence), and every kernel check
/// decided on the config gives the same outcome as the config judged alone.
#[test]
fn image_based_os_trees_are_judged_with_the_kernel_they_ship() {
    let dir = fixtures();
    let work = tempfile::tempdir().unwrap();
    let cases = [
        (
            Layout::FedoraCoreOs,
            "fedora43-6.17.1-300.fc43-amd64.config",
            "6.17.1-300.fc43.x86_64",
        ),
        (
            Layout::AtomicHost,
            "centos7-3.10.0-1160.119.1.el7-amd64.config",
            "3.10.0-1160.119.1.el7.x86_64",
        ),
        (
            Layout::OstreeBoot,
            "fedora43-6.17.1-300.fc43-amd64.config",
            "6.17.1-300.fc43.x86_64",
        ),
        (
            Layout::UbuntuCore,
            "ubuntu24.04-6.8.0-31-generic-amd64.config",
            "6.8.0-31-generic",
        ),
    ];
    for (layout, file, release) in cases {
        let name = format!("{layout:?}").to_lowercase();
        let tree = work.path().join(&name);
        let config = dir.join(file);
        let (config_place, modules_place) = image_based_tree(&tree, layout, &config, release);
        let run = |target: String, json: &str| -> Value {
            let json = work.path().join(json);
            let output = Command::new(BIN)
                .args(["run", "--profile", "container-host", "-q", "--target"])
                .arg(&target)
                .arg("--json")
                .arg(&json)
                .arg("--report-dir")
                .arg(work.path().join(format!("{name}-reports")))
                .arg("--param")
                .arg(format!("kernel-version={release}"))
                .current_dir(work.path())
                .output()
                .unwrap();
            assert!(
                output.status.code().is_some_and(|c| c <= 1),
                "{target}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
        };
        let tree_report = run(
            format!("rootfs:{}", tree.display()),
            &format!("{name}-tree.json"),
        );
        let alone = run(
            format!("kernel-config:{}", config.display()),
            &format!("{name}-config.json"),
        );
        let target = &tree_report["targets"][0];
        assert_eq!(target["kind"], "os-tree", "{name}");
        assert!(target["error"].is_null(), "{name}: {}", target["error"]);
        // Judged at the kernel the tree ships, with its config from where the OS keeps it.
        let sources = &target["fact-sources"];
        assert_eq!(text(&sources["CONFIG_NET_NS"]), config_place, "{name}");
        let kernel_version = tree_report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["check"] == "kernel.version.minimum")
            .unwrap();
        assert!(
            kernel_version["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| text(&e["observed"]) == release),
            "{name}: {kernel_version}"
        );
        // The modules the kernel ships are found where it ships them.
        assert!(
            text(&sources["kernel-module overlay"]).starts_with(&modules_place),
            "{name}: {}",
            sources["kernel-module overlay"]
        );
        let tree_outcomes = outcomes_of(&tree_report);
        assert_eq!(tree_outcomes["kernel.modules.overlay"], "pass", "{name}");
        // /etc's defaults of an ostree commit are read from /usr/etc.
        assert_eq!(target["hostname"], "image-build", "{name}");
        // Every check both targets evaluate on the config agrees.
        let mut compared = 0;
        for (check, outcome) in outcomes_of(&alone) {
            if outcome == "skip" || check == "kernel.version.minimum" {
                continue;
            }
            if let Some(in_tree) = tree_outcomes.get(&check) {
                assert_eq!(in_tree, &outcome, "{name}: {check}");
                compared += 1;
            }
        }
        assert!(compared > 80, "{name}: only {compared} checks compared");
    }
}

/// Runs a program in `dir` and fails the test with its output when it fails.
fn tool(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed: {e} (apt-get install {program}; ci/test does)")
        });
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A bootc image given as `oci:` (the label `containers.bootc=1`, its kernel in
/// `/usr/lib/modules/R/`) is an OS tree judged with the kernel it ships: its
/// kernel checks give the config's own outcomes. The same image without the label is a container
/// image, which a host profile refuses. Both again from OCI and Docker archives, podman's store
/// and a registry.
#[test]
fn a_bootc_image_is_an_os_tree_judged_with_its_kernel() {
    let dir = fixtures();
    let work = tempfile::tempdir().unwrap();
    let at = work.path();
    let release = "6.17.1-300.fc43.x86_64";
    let config = dir.join("fedora43-6.17.1-300.fc43-amd64.config");
    let tree = at.join("tree");
    image_based_tree(&tree, Layout::FedoraCoreOs, &config, release);
    tool(at, "umoci", &["init", "--layout", "layout"]);
    for (tag, labels) in [
        ("bootc", &["containers.bootc=1", "ostree.bootable=true"][..]),
        ("plain", &[][..]),
    ] {
        let image = format!("layout:{tag}");
        tool(at, "umoci", &["new", "--image", &image]);
        tool(at, "umoci", &["insert", "--image", &image, "tree", "/"]);
        let mut args = vec!["config", "--image", &image, "--config.cmd", "/usr/bin/sh"];
        for label in labels {
            args.extend(["--config.label", label]);
        }
        tool(at, "umoci", &args);
    }
    let run = |target: &str, json: &str| -> Value {
        let output = Command::new(BIN)
            .args([
                "run",
                "--profile",
                "container-host",
                "-q",
                "--target",
                target,
            ])
            .args(["--json", json, "--report-dir", "reports"])
            .current_dir(at)
            .output()
            .unwrap();
        assert!(
            output.status.code().is_some_and(|c| c <= 2),
            "{target}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(at.join(json)).unwrap()).unwrap()
    };
    let bootc = run("oci:layout:bootc", "bootc.json");
    let target = &bootc["targets"][0];
    assert_eq!(target["kind"], "os-tree", "{target}");
    assert!(target["error"].is_null(), "{}", target["error"]);
    assert_eq!(
        text(&target["fact-sources"]["CONFIG_NET_NS"]),
        format!("/usr/lib/modules/{release}/config")
    );
    let alone = run(&format!("kernel-config:{}", config.display()), "alone.json");
    let in_image = outcomes_of(&bootc);
    let mut compared = 0;
    for (check, outcome) in outcomes_of(&alone) {
        if outcome == "skip" {
            continue;
        }
        if let Some(got) = in_image.get(&check) {
            assert_eq!(got, &outcome, "{check}");
            compared += 1;
        }
    }
    assert!(compared > 80, "only {compared} checks compared");
    assert_eq!(in_image["kernel.namespaces.core"], "pass");
    // Unlabelled, it is a container image, which container-host does not certify.
    let plain = Command::new(BIN)
        .args([
            "run",
            "--profile",
            "container-host",
            "-q",
            "--target",
            "oci:layout:plain",
        ])
        .args(["--report-dir", "plain"])
        .current_dir(at)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(2), "{said}");
    assert!(said.contains("image"), "{said}");

    // The same two images copied with skopeo into OCI and Docker archives and podman's store
    // (vfs, in a folder of the test), and pushed to a registry (Debian's docker-registry with TLS
    // and a login): each bootc copy is the OS tree with the layout's outcomes, each plain copy is
    // an image that container-host refuses.
    let registry = support::registry::Registry::start(&at.join("registry"));
    let layout = at.join("layout").display().to_string();
    registry.push(&format!("oci:{layout}:bootc"), "os/bootc:43", &[]);
    registry.push(&format!("oci:{layout}:plain"), "os/plain:43", &[]);
    std::fs::create_dir_all(at.join("cache")).unwrap();
    let store = format!("vfs@{0}/store/root+{0}/store/run", at.display());
    for tag in ["bootc", "plain"] {
        let stored = format!("containers-storage:[{store}]localhost/os/{tag}:43");
        let copies = [
            // (where skopeo copies the image, the target hostcert is given)
            (
                format!("oci-archive:{tag}.tar:43"),
                format!("oci-archive:{tag}.tar:43"),
            ),
            (
                format!("docker-archive:{tag}-docker.tar:os/{tag}:43"),
                format!("docker-archive:{tag}-docker.tar"),
            ),
            (stored.clone(), stored),
            (
                String::new(),
                format!("{}:43", registry.docker(&format!("os/{tag}"))),
            ),
        ];
        for (destination, target) in copies {
            if !destination.is_empty() {
                let source = format!("oci:layout:{tag}");
                tool(
                    at,
                    "skopeo",
                    &[
                        "--insecure-policy",
                        "copy",
                        "--quiet",
                        &source,
                        &destination,
                    ],
                );
            }
            let json = "copy.json";
            let output = Command::new(BIN)
                .args([
                    "run",
                    "--profile",
                    "container-host",
                    "-q",
                    "--target",
                    &target,
                ])
                .arg("--authfile")
                .arg(&registry.authfile)
                .arg("--cert-dir")
                .arg(&registry.certs.ca_dir)
                .args(["--json", json, "--report-dir", "reports"])
                .env("XDG_CACHE_HOME", at.join("cache"))
                .current_dir(at)
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&output.stderr);
            if tag == "plain" {
                assert_eq!(output.status.code(), Some(2), "{target}: {said}");
                assert!(said.contains("image"), "{target}: {said}");
                continue;
            }
            assert!(
                output.status.code().is_some_and(|c| c <= 1),
                "{target}: {said}"
            );
            let report: Value =
                serde_json::from_str(&std::fs::read_to_string(at.join(json)).unwrap()).unwrap();
            let entry = &report["targets"][0];
            assert_eq!(entry["kind"], "os-tree", "{target}: {entry}");
            assert!(entry["error"].is_null(), "{target}: {}", entry["error"]);
            assert_eq!(outcomes_of(&report), in_image, "{target}");
        }
    }
}
