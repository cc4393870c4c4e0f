//! Red Hat's container checks on rpm images, judged by rpm itself: packages built with Debian's
//! `rpmbuild` from spec files (a `redhat-release` from "Red Hat, Inc.", `kernel-core`,
//! `linux-firmware`, ordinary packages with config, doc, setuid and link files), installed into
//! trees with `rpm --root`, packed into OCI images with umoci, and changed in later layers the way
//! a Containerfile's RUN steps change them (`umoci unpack`, edit, `umoci repack`).
//!
//! - The package lists hostcert reads equal `rpm -qa --root`; the modified files it reports equal
//!   `rpm -Va --root` on the merged tree, but where preflight deliberately differs
//!   ([`PREFLIGHT_DIFFERS`]).
//! - isv-image: a UBI-like image certifies; the same with `kernel-core` or `linux-firmware`
//!   installed, or with an rpm-owned file replaced in a later layer, is NOT CERTIFIED with the
//!   package and file named; a truncated database is an error, never a pass.
//! - The three shared real databases, placed where their distributions keep them in image
//!   trees, list the packages SOURCE.md lists.
//! - An SSH host's rpm database goes through the batch: the host is this machine's sshd in a
//!   mount namespace of its own, where the test's database is mounted at `/var/lib/rpm`, as on
//!   an RPM host; nothing tells the batch where to look.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::*;

// ---- packages ----

const REDHAT_RELEASE: &str = r#"
Name: redhat-release
Version: 9.4
Release: 0.5.el9
Summary: Red Hat Enterprise Linux release files (a test double)
License: GPL-2.0-only
Vendor: Red Hat, Inc.
BuildArch: x86_64

%description
The release files of a UBI 9 image.

%install
mkdir -p %{buildroot}/etc %{buildroot}/usr/lib
printf 'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\nPLATFORM_ID="platform:el9"\n' > %{buildroot}/usr/lib/os-release
ln -s ../usr/lib/os-release %{buildroot}/etc/os-release
echo 'Red Hat Enterprise Linux release 9.4 (Plow)' > %{buildroot}/etc/redhat-release

%files
/usr/lib/os-release
/etc/os-release
%config(noreplace) /etc/redhat-release
"#;

const KERNEL_CORE: &str = r#"
Name: kernel-core
Version: 5.14.0
Release: 427.13.1.el9_4
Summary: a kernel (a test double)
License: GPL-2.0-only
Vendor: Red Hat, Inc.
BuildArch: x86_64

%description
A kernel, which an image must not carry.

%install
mkdir -p %{buildroot}/lib/modules/5.14.0-427.13.1.el9_4.x86_64
echo vmlinuz > %{buildroot}/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinuz

%files
/lib/modules/5.14.0-427.13.1.el9_4.x86_64/vmlinuz
"#;

const LINUX_FIRMWARE: &str = r#"
Name: linux-firmware
Version: 20240220
Release: 143.el9
Summary: firmware (a test double)
License: Redistributable
Vendor: Red Hat, Inc.
BuildArch: noarch

%description
Firmware, which an image must not carry.

%install
mkdir -p %{buildroot}/usr/lib/firmware
echo blob > %{buildroot}/usr/lib/firmware/hcc.bin

%files
/usr/lib/firmware/hcc.bin
"#;

/// An ordinary package of the base layer, built at several versions (`ver`, `rel`, `arch`):
/// every kind of file preflight and rpm -V tell apart.
const HCC_BASE: &str = r#"
Name: hcc-base
Version: %{ver}
Release: %{rel}
Summary: an ordinary package with config, doc, setuid and link files
License: MIT
Vendor: Red Hat, Inc.
BuildArch: %{arch}

%description
Files of every kind.

%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/hcc %{buildroot}/etc %{buildroot}/usr/share/doc/hcc-base %{buildroot}/var/lib/hcc %{buildroot}/usr/share/hcc
printf '#!/bin/sh\necho hcc %{ver}\n' > %{buildroot}/usr/bin/hcc-tool
chmod 755 %{buildroot}/usr/bin/hcc-tool
cp %{buildroot}/usr/bin/hcc-tool %{buildroot}/usr/bin/hcc-setuid
echo data > %{buildroot}/usr/lib/hcc/data.txt
echo same > %{buildroot}/usr/lib/hcc/same.txt
echo gone > %{buildroot}/usr/lib/hcc/gone.txt
echo mode > %{buildroot}/usr/lib/hcc/mode.txt
ln -s data.txt %{buildroot}/usr/lib/hcc/link
echo 'level=1' > %{buildroot}/etc/hcc.conf
echo readme > %{buildroot}/usr/share/doc/hcc-base/README
echo state > %{buildroot}/var/lib/hcc/state
echo cache > %{buildroot}/usr/share/hcc/fonts.cache

%files
/usr/bin/hcc-tool
%attr(4755, root, root) /usr/bin/hcc-setuid
/usr/lib/hcc/data.txt
/usr/lib/hcc/same.txt
/usr/lib/hcc/gone.txt
/usr/lib/hcc/mode.txt
/usr/lib/hcc/link
%config(noreplace) /etc/hcc.conf
%doc /usr/share/doc/hcc-base/README
/var/lib/hcc/state
/usr/share/hcc/fonts.cache
"#;

/// A third party's package (vendor ACME): preflight only warns when its files change.
const ACME_APP: &str = r#"
Name: acme-app
Version: 3.1
Release: 1
Summary: a third party's application
License: Proprietary
Vendor: ACME
BuildArch: noarch

%description
Not Red Hat's.

%install
mkdir -p %{buildroot}/opt/acme
echo app > %{buildroot}/opt/acme/app

%files
/opt/acme/app
"#;

/// The rpm files the tests install, built once per test.
struct Rpms {
    redhat_release: PathBuf,
    kernel_core: PathBuf,
    linux_firmware: PathBuf,
    acme_app: PathBuf,
    /// hcc-base 1.0-1.el9.x86_64, the base layer's.
    base: PathBuf,
    /// hcc-base 2.0-1.el9.x86_64: an upgrade.
    upgrade: PathBuf,
    /// hcc-base 2.0-1.fc40.x86_64: an "upgrade" that is not a build for el9.
    other_dist: PathBuf,
    /// hcc-base 2.0-1.el9.noarch: an "upgrade" for another architecture.
    other_arch: PathBuf,
}

fn build_rpms(work: &Path) -> Rpms {
    let one = |name: &str, spec: &str, defines: &[&str]| {
        rpmbuild(work, name, spec, defines)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("rpmbuild built no {name}"))
    };
    let base = |tag: &str, ver: &str, rel: &str, arch: &str| {
        let defines = [
            format!("ver {ver}"),
            format!("rel {rel}"),
            format!("arch {arch}"),
        ];
        let defines: Vec<&str> = defines.iter().map(String::as_str).collect();
        one(tag, HCC_BASE, &defines)
    };
    Rpms {
        redhat_release: one("redhat-release", REDHAT_RELEASE, &[]),
        kernel_core: one("kernel-core", KERNEL_CORE, &[]),
        linux_firmware: one("linux-firmware", LINUX_FIRMWARE, &[]),
        acme_app: one("acme-app", ACME_APP, &[]),
        base: base("hcc-1", "1.0", "1.el9", "x86_64"),
        upgrade: base("hcc-2", "2.0", "1.el9", "x86_64"),
        other_dist: base("hcc-fc", "2.0", "1.fc40", "x86_64"),
        other_arch: base("hcc-noarch", "2.0", "1.el9", "noarch"),
    }
}

/// `rpm --root ROOT --dbpath /var/lib/rpm ARGS`, as a RHEL 9 tree keeps its database.
fn rpm_root(root: &Path, args: &[&str]) -> Command {
    require("rpm", "rpm");
    let mut command = Command::new("rpm");
    command
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
        .args(args);
    command
}

/// Installs packages into a tree (`--nodeps --noscripts`: test doubles have no dependencies).
fn install(root: &Path, args: &[&str], packages: &[&Path]) {
    run_ok(rpm_root(root, args).args(packages));
}

/// A UBI-like tree: an rpm database with these packages, /licenses and an SBOM.
fn ubi_tree(work: &Path, name: &str, packages: &[&Path]) -> PathBuf {
    let root = work.join(name);
    certification_files(&root);
    run_ok(&mut rpm_root(&root, &["--initdb"]));
    install(&root, &["-i", "--nodeps", "--noscripts"], packages);
    root
}

/// What Red Hat's other checks want of any image: /licenses and an SBOM.
fn certification_files(root: &Path) {
    std::fs::create_dir_all(root.join("licenses")).unwrap();
    std::fs::write(root.join("licenses/LICENSE"), "MIT\n").unwrap();
    std::fs::create_dir_all(root.join("sbom")).unwrap();
    let sbom = serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "components": [{"type": "library", "name": "hcc-base", "version": "1.0"}]
    });
    std::fs::write(root.join("sbom/bom.json"), sbom.to_string()).unwrap();
}

/// The labels a UBI 9 image carries (those a derived image keeps), and Red Hat's required ones.
const UBI_LABELS: &[(&str, &str)] = &[
    ("com.redhat.component", "ubi9-container"),
    (
        "url",
        "https://access.redhat.com/containers/#/registry.access.redhat.com/ubi9/images/9.4-1123",
    ),
    ("io.k8s.display-name", "Red Hat Universal Base Image 9"),
    ("name", "hcc/app"),
    ("vendor", "Example"),
    ("version", "1.0"),
    ("release", "1"),
    ("summary", "an application on UBI 9"),
    ("description", "an application on UBI 9"),
    ("maintainer", "hcc-test@example.invalid"),
    (
        "org.opencontainers.image.base.name",
        "registry.access.redhat.com/ubi9/ubi:9.4",
    ),
];

/// An OCI layout `DIR.oci` (tag 1.0) whose one layer is `tree`, with these labels and user 1001.
fn build_image(work: &Path, dir: &str, tree: &Path, labels: &[(&str, &str)]) -> String {
    require("umoci", "umoci");
    let layout = format!("{dir}.oci");
    let image = format!("{layout}:1.0");
    run_ok(
        Command::new("umoci")
            .current_dir(work)
            .args(["init", "--layout", &layout]),
    );
    run_ok(
        Command::new("umoci")
            .current_dir(work)
            .args(["new", "--image", &image]),
    );
    run_ok(
        Command::new("umoci")
            .current_dir(work)
            .args(["insert", "--image", &image])
            .arg(tree)
            .arg("/"),
    );
    let mut config = Command::new("umoci");
    config
        .current_dir(work)
        .args(["config", "--image", &image, "--config.user", "1001"]);
    for (key, value) in labels {
        config.args(["--config.label", &format!("{key}={value}")]);
    }
    run_ok(&mut config);
    image
}

/// Adds a layer to an image as a RUN step would: unpacks it, lets `edit` change the root
/// filesystem, repacks the difference.
fn add_layer(work: &Path, image: &str, edit: impl FnOnce(&Path)) {
    let bundle = work.join(format!("bundle-{}", rand_name()));
    run_ok(
        Command::new("umoci")
            .current_dir(work)
            .args(["unpack", "--image", image])
            .arg(&bundle),
    );
    edit(&bundle.join("rootfs"));
    run_ok(
        Command::new("umoci")
            .current_dir(work)
            .args(["repack", "--image", image])
            .arg(&bundle),
    );
    std::fs::remove_dir_all(&bundle).unwrap();
}

/// The image's merged root filesystem, as a runtime sees it.
fn merged(work: &Path, image: &str) -> PathBuf {
    let bundle = work.join(format!("merged-{}", rand_name()));
    run_ok(
        Command::new("umoci")
            .current_dir(work)
            .args(["unpack", "--image", image])
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

fn rand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// `hostcert run --profile isv-image` on an image (signatures not judged: no policy here), with
/// TMPDIR in the work folder, which the run must leave empty.
fn isv_image(work: &Path, image: &str, report: &str) -> Output {
    let tmp = work.join(format!("tmp-{report}"));
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args(["run", "--profile", "isv-image", "--report-dir", report])
        .args([
            "--target",
            &format!("oci:{image}"),
            "--skip",
            "image.signature",
        ])
        .current_dir(work)
        .env("TMPDIR", &tmp)
        .output()
        .expect("hostcert runs");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "the run left {left:?} in TMPDIR");
    output
}

/// `rpm -Va` as the modified-files tests ask it: what a file's type, mode, size, digest and
/// link say, not owners, times, devices or capabilities (which preflight does not judge).
const RPM_VA: &[&str] = &[
    "-Va",
    "--nodeps",
    "--noscripts",
    "--nomtime",
    "--nouser",
    "--nogroup",
    "--nordev",
    "--nocaps",
];

/// One check's result in a report folder.
/// The Red Hat checks that read the image's package databases.
const PACKAGE_CHECKS: [&str; 3] = [
    "image.redhat.prohibited-packages",
    "image.redhat.modified-package-files",
    "image.redhat.based-on-ubi",
];

/// Every package check of the report in `report` is an error whose result says each of `said`:
/// a database that cannot be read is never a pass.
fn package_checks_error(work: &Path, report: &str, said: &[&str]) {
    for check in PACKAGE_CHECKS {
        let (outcome, result) = check_result(work, report, check);
        assert_eq!(outcome, "error", "{check}: {result}");
        for text in said {
            assert!(result.contains(text), "{check}: {result}");
        }
    }
}

fn check_result(work: &Path, report: &str, check: &str) -> (String, String) {
    let text = std::fs::read_to_string(work.join(report).join("report.json")).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no result for {check}"))
        .clone();
    (
        result["outcome"].as_str().unwrap().to_owned(),
        result.to_string(),
    )
}

/// Gathers the facts of `--profile PROFILE` (with the suites of `suites`) from `target` into
/// `snapshot`, failing the test when the gather does not exit 0.
fn gather(work: &Path, suites: &Path, profile: &str, target: &str, snapshot: &Path) {
    let gathered = Command::new(BIN)
        .args(["gather", "--suites"])
        .arg(suites)
        .args(["--profile", profile, "--target", target])
        .arg("--output")
        .arg(snapshot)
        .current_dir(work)
        .output()
        .unwrap();
    assert_eq!(code(&gathered), 0, "{target}: {}", stderr(&gathered));
}

/// The names the `packages` fact of a snapshot lists, and the fact.
fn package_names(snapshot: &Path) -> (Vec<String>, Value) {
    let listed = fact(snapshot, &Value::from("packages"));
    let names = listed["value"]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {listed}", snapshot.display()))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    (names, listed)
}

/// The value of one fact of a snapshot written by `hostcert gather`.
fn fact(snapshot: &Path, probe: &Value) -> Value {
    let text = std::fs::read_to_string(snapshot).unwrap();
    let snapshot: Value = serde_json::from_str(&text).unwrap();
    snapshot["facts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["probe"] == *probe)
        .unwrap_or_else(|| panic!("no fact {probe} in {text}"))
        .clone()
}

/// `rpm -qa` names of a tree's database, without rpm's gpg-pubkey pseudo-packages.
fn rpm_qa_names(root: &Path) -> Vec<String> {
    let listed = run_ok(&mut rpm_root(root, &["-qa", "--qf", "%{NAME}\\n"]));
    let mut names: Vec<String> = listed
        .lines()
        .filter(|n| *n != "gpg-pubkey")
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

// ---- isv-image verdicts ----

#[test]
fn a_ubi_like_image_certifies_and_its_package_list_equals_rpm_qa() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    let tree = ubi_tree(
        work,
        "ubi",
        &[&rpms.redhat_release, &rpms.base, &rpms.acme_app],
    );
    let image = build_image(work, "ubi", &tree, UBI_LABELS);
    let output = isv_image(work, &image, "report");
    let out = stdout(&output);
    assert_eq!(code(&output), 0, "{out}{}", stderr(&output));
    assert!(out.contains("verdict: CERTIFIED"), "{out}");
    for check in PACKAGE_CHECKS {
        let (outcome, result) = check_result(work, "report", check);
        assert_eq!(outcome, "pass", "{check}: {result}");
    }
    let (_, ubi) = check_result(work, "report", "image.redhat.based-on-ubi");
    for said in [
        "redhat-release-9.4-0.5.el9.x86_64",
        "Red Hat, Inc.",
        "com.redhat.component=ubi9-container",
        "Pyxis",
    ] {
        assert!(ubi.contains(said), "the evidence says {said}: {ubi}");
    }

    // The package list, as the `packages` probe and image-info read it, is rpm -qa's.
    let snapshot = work.join("facts.json");
    let suite = work.join("suites");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(
        suite.join("packages.yaml"),
        "name: packages\nversion: 1.0.0\nchecks:\n  - id: p.list\n    version: 1.0.0\n    title: the package list\n    severity: low\n    probes:\n      all: packages\n      base: {package: hcc-base}\n      sshd: {package: openssh-server}\n    expect:\n      all-of:\n        - {fact: base, package-at-least: 1.0-1.el9}\n        - {fact: base, package-below: '1:0.1'}\n        - {fact: sshd, exists: false}\n        - {fact: all, contains: redhat-release}\n",
    )
    .unwrap();
    std::fs::write(
        work.join("packages-profile.yaml"),
        "name: packages-profile\nversion: 1.0.0\nsuites: {packages: ^1, image-provenance: ^1.1}\ngate: [low]\n",
    )
    .unwrap();
    let target = format!("oci:{image}");
    gather(work, &suite, "packages-profile.yaml", &target, &snapshot);
    let (names, _) = package_names(&snapshot);
    assert_eq!(names, rpm_qa_names(&tree));
    let info = fact(&snapshot, &serde_json::json!({"image-info": "packages"}));
    assert_eq!(info["value"]["text"], Value::from(names.join(" ")));
    let base = fact(&snapshot, &serde_json::json!({"package": "hcc-base"}));
    let field = |name: &str| base["value"]["record"][name]["text"].clone();
    assert_eq!(field("nevra"), "hcc-base-1.0-1.el9.x86_64", "{base}");
    assert_eq!(field("manager"), "rpm");
    assert_eq!(field("vendor"), "Red Hat, Inc.");
    // package-at-least / package-below, evaluated offline from the snapshot.
    let judged = Command::new(BIN)
        .args(["run", "--suites"])
        .arg(&suite)
        .args(["--profile", "packages-profile.yaml", "--facts"])
        .arg(&snapshot)
        .args(["--report-dir", "offline", "--skip", "image."])
        .current_dir(work)
        .output()
        .unwrap();
    let (outcome, result) = check_result(work, "offline", "p.list");
    assert_eq!(outcome, "pass", "{result}{}", stdout(&judged));

    // A later layer that upgrades hcc-base with rpm changes its files the way rpm records them.
    add_layer(work, &image, |rootfs| {
        install(rootfs, &["-U", "--nodeps", "--noscripts"], &[&rpms.upgrade]);
    });
    let output = isv_image(work, &image, "upgraded");
    assert_eq!(code(&output), 0, "{}", stdout(&output));
    let (outcome, result) = check_result(work, "upgraded", "image.redhat.modified-package-files");
    assert_eq!(outcome, "pass", "{result}");
}

#[test]
fn a_kernel_or_firmware_package_is_not_certified_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    for (name, package) in [
        ("kernel-core", &rpms.kernel_core),
        ("linux-firmware", &rpms.linux_firmware),
    ] {
        let tree = ubi_tree(work, name, &[&rpms.redhat_release, &rpms.base, package]);
        let image = build_image(work, name, &tree, UBI_LABELS);
        let output = isv_image(work, &image, name);
        let out = stdout(&output);
        assert_eq!(code(&output), 1, "{out}{}", stderr(&output));
        assert!(out.contains("verdict: NOT CERTIFIED"), "{out}");
        let (outcome, result) = check_result(work, name, "image.redhat.prohibited-packages");
        assert_eq!(outcome, "fail", "{result}");
        assert!(
            result.contains(&format!("image-info packages has {name}")),
            "{result}"
        );
    }
}

/// What preflight's HasModifiedFiles does not count although `rpm -Va` lists it, and why; every
/// other file rpm -Va lists, hostcert reports, and nothing else.
const PREFLIGHT_DIFFERS: &[(&str, &str)] = &[
    ("/etc/hcc.conf", "%config, and under etc"),
    ("/usr/share/doc/hcc-base/README", "%doc"),
    ("/var/lib/hcc/state", "under var"),
    ("/usr/share/hcc/fonts.cache", "usr/**.cache"),
    ("/usr/bin/hcc-setuid", "only its setuid bit removed"),
];

#[test]
fn modified_files_equal_rpm_va_but_where_preflight_differs() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    let tree = ubi_tree(
        work,
        "ubi",
        &[&rpms.redhat_release, &rpms.base, &rpms.acme_app],
    );
    let image = build_image(work, "ubi", &tree, UBI_LABELS);
    let set_mode = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    // Layer 1: every kind of change a RUN step makes.
    add_layer(work, &image, |rootfs| {
        std::fs::write(rootfs.join("usr/bin/hcc-tool"), "#!/bin/sh\necho patched\n").unwrap();
        std::fs::write(rootfs.join("etc/hcc.conf"), "level=2\n").unwrap();
        std::fs::remove_file(rootfs.join("usr/lib/hcc/gone.txt")).unwrap();
        // Rewritten with the bytes rpm installed: only its time changes.
        std::fs::write(rootfs.join("usr/lib/hcc/same.txt"), "same\n").unwrap();
        set_mode(&rootfs.join("usr/bin/hcc-setuid"), 0o755);
        set_mode(&rootfs.join("usr/lib/hcc/mode.txt"), 0o666);
        std::fs::remove_file(rootfs.join("usr/lib/hcc/link")).unwrap();
        std::os::unix::fs::symlink("same.txt", rootfs.join("usr/lib/hcc/link")).unwrap();
        std::fs::write(rootfs.join("var/lib/hcc/state"), "changed\n").unwrap();
        std::fs::write(rootfs.join("usr/share/hcc/fonts.cache"), "changed\n").unwrap();
        std::fs::write(rootfs.join("usr/share/doc/hcc-base/README"), "changed\n").unwrap();
        std::fs::write(rootfs.join("opt/acme/app"), "patched\n").unwrap();
    });
    // Layer 2: a new file, and a package installed together with a change to its own file
    // (preflight: a net-new package file).
    add_layer(work, &image, |rootfs| {
        std::fs::write(rootfs.join("usr/lib/hcc/new.txt"), "new\n").unwrap();
        install(
            rootfs,
            &["-i", "--nodeps", "--noscripts"],
            &[&rpms.linux_firmware],
        );
        std::fs::write(rootfs.join("usr/lib/firmware/hcc.bin"), "changed\n").unwrap();
    });

    let output = isv_image(work, &image, "report");
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome, result) = check_result(work, "report", "image.redhat.modified-package-files");
    assert_eq!(outcome, "fail", "{result}");
    let report: Value = serde_json::from_str(&result).unwrap();
    let observed = report["evidence"][0]["observed"].as_str().unwrap();
    let observed = match observed.split_once(" = /") {
        Some((_, items)) => format!("/{items}"),
        None => observed.to_owned(),
    };
    // Each item: `PATH (package NAME, NEVRA, layer N): WHAT`.
    let ours: BTreeMap<String, String> = observed
        .split(", /")
        .map(|item| {
            let item = item.trim_start_matches('/');
            let (path, rest) = item.split_once(' ').unwrap();
            (format!("/{path}"), rest.to_owned())
        })
        .collect();

    // rpm -V's verdict on the merged tree: type, mode, size, digest, link, missing.
    let rootfs = merged(work, &image);
    let verified = rpm_root(&rootfs, RPM_VA).output().unwrap();
    let theirs: BTreeSet<String> = stdout(&verified)
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|path| path.starts_with('/'))
        .map(str::to_owned)
        .collect();
    let differs: BTreeMap<&str, &str> = PREFLIGHT_DIFFERS.iter().copied().collect();
    let expected: BTreeSet<String> = theirs
        .iter()
        .filter(|path| !differs.contains_key(path.as_str()))
        // linux-firmware came with the layer that changed its file: preflight's net-new file.
        .filter(|path| path.as_str() != "/usr/lib/firmware/hcc.bin")
        .cloned()
        .collect();
    let found: BTreeSet<String> = ours.keys().cloned().collect();
    assert_eq!(
        found,
        expected,
        "hostcert: {observed}\nrpm -Va:\n{}",
        stdout(&verified)
    );
    for path in PREFLIGHT_DIFFERS.iter().map(|(path, _)| *path) {
        assert!(
            theirs.contains(path),
            "rpm -Va lists {path}: {}",
            stdout(&verified)
        );
    }
    assert!(theirs.contains("/usr/lib/firmware/hcc.bin"));
    for (path, what) in [
        ("/usr/bin/hcc-tool", "content changed: sha256 recorded"),
        ("/usr/lib/hcc/gone.txt", "deleted"),
        (
            "/usr/lib/hcc/mode.txt",
            "mode changed: recorded 0644, found 0666",
        ),
        ("/usr/lib/hcc/link", "link target changed"),
        ("/opt/acme/app", "content changed"),
    ] {
        let item = ours
            .get(path)
            .unwrap_or_else(|| panic!("{path}: {observed}"));
        assert!(item.contains(what), "{path}: {item}");
        assert!(item.contains("layer 1)"), "{path}: {item}");
    }
    // The evidence names the package, its NEVRA, the file, both digests and the layer.
    let tool = &ours["/usr/bin/hcc-tool"];
    assert!(
        tool.starts_with("(package hcc-base, hcc-base-1.0-1.el9.x86_64, layer 1)"),
        "{tool}"
    );
    let recorded = run_ok(&mut rpm_root(
        &rootfs,
        &["-q", "--qf", "[%{FILENAMES} %{FILEDIGESTS}\\n]", "hcc-base"],
    ));
    let digest = recorded
        .lines()
        .find_map(|l| l.strip_prefix("/usr/bin/hcc-tool "))
        .unwrap();
    let found_digest = run_ok(Command::new("sha256sum").arg(rootfs.join("usr/bin/hcc-tool")));
    let found_digest = found_digest.split_whitespace().next().unwrap();
    assert!(
        tool.contains(&format!("recorded {digest}, found {found_digest}")),
        "{tool}"
    );
}

#[test]
fn an_upgrade_to_another_architecture_or_distribution_is_a_modification() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    for (name, package, said) in [
        (
            "dist",
            &rpms.other_dist,
            "a build for el9, with one whose release is not",
        ),
        ("arch", &rpms.other_arch, "of another architecture"),
    ] {
        let tree = ubi_tree(work, name, &[&rpms.redhat_release, &rpms.base]);
        let image = build_image(work, name, &tree, UBI_LABELS);
        add_layer(work, &image, |rootfs| {
            install(
                rootfs,
                &["-U", "--nodeps", "--noscripts", "--force"],
                &[package],
            );
        });
        let output = isv_image(work, &image, name);
        assert_eq!(code(&output), 1, "{}", stdout(&output));
        let (outcome, result) = check_result(work, name, "image.redhat.modified-package-files");
        assert_eq!(outcome, "fail", "{result}");
        assert!(result.contains(said), "{name}: {result}");
        assert!(
            result.contains("/usr/bin/hcc-tool (package hcc-base"),
            "{result}"
        );
    }
}

#[test]
fn an_unreadable_package_database_is_an_error_never_a_pass() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    let tree = ubi_tree(work, "cut", &[&rpms.redhat_release, &rpms.base]);
    let database = tree.join("var/lib/rpm/rpmdb.sqlite");
    let bytes = std::fs::read(&database).unwrap();
    std::fs::write(&database, &bytes[..bytes.len() / 2]).unwrap();
    let image = build_image(work, "cut", &tree, UBI_LABELS);
    let output = isv_image(work, &image, "cut");
    let out = stdout(&output);
    assert_eq!(code(&output), 2, "{out}{}", stderr(&output));
    assert!(out.contains("verdict: INCOMPLETE"), "{out}");
    package_checks_error(
        work,
        "cut",
        &["rpm database /var/lib/rpm/rpmdb.sqlite", "truncated"],
    );
    // A dpkg status file cut in the middle of a field name is refused the same way.
    let debian = work.join("debian");
    std::fs::create_dir_all(debian.join("var/lib/dpkg")).unwrap();
    certification_files(&debian);
    std::fs::write(
        debian.join("var/lib/dpkg/status"),
        "Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\nPackage: linux-image-amd64\nStat",
    )
    .unwrap();
    let image = build_image(work, "debian", &debian, UBI_LABELS);
    let output = isv_image(work, &image, "debian");
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    package_checks_error(work, "debian", &["/var/lib/dpkg/status: line 6"]);
}

// ---- the shared databases ----

/// The folder of `shared/fixtures/rpmdb`, beside the repository or a folder above it.
fn shared(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/fixtures/rpmdb"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "shared/fixtures/rpmdb is missing beside {} and the folders above it",
                manifest.display()
            )
        })
        .join(name)
}

#[test]
fn the_shared_databases_in_image_trees_list_their_packages() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let suite = work.join("suites");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(
        suite.join("list.yaml"),
        "name: list\nversion: 1.0.0\nchecks:\n  - id: l.list\n    version: 1.0.0\n    title: the package list\n    severity: low\n    probes: {all: packages}\n    expect: {exists: true}\n",
    )
    .unwrap();
    std::fs::write(
        work.join("list-profile.yaml"),
        "name: list-profile\nversion: 1.0.0\nsuites: {list: ^1}\ngate: [low]\n",
    )
    .unwrap();
    for (fixture, file, at) in [
        ("mariner2-sqlite", "rpmdb.sqlite", "var/lib/rpm"),
        ("sle15-bci-ndb", "Packages.db", "usr/lib/sysimage/rpm"),
        ("libuuid-bdb", "Packages", "var/lib/rpm"),
    ] {
        let tree = work.join(format!("tree-{fixture}"));
        std::fs::create_dir_all(tree.join(at)).unwrap();
        std::fs::copy(
            shared(&format!("{fixture}/{file}")),
            tree.join(at).join(file),
        )
        .unwrap();
        let image = build_image(work, fixture, &tree, &[]);
        let snapshot = work.join(format!("{fixture}.json"));
        let target = format!("oci:{image}");
        gather(work, &suite, "list-profile.yaml", &target, &snapshot);
        let (ours, listed) = package_names(&snapshot);
        let mut theirs: Vec<String> =
            std::fs::read_to_string(shared(&format!("{fixture}/packages.tsv")))
                .unwrap()
                .lines()
                .map(|line| line.split('\t').next().unwrap().to_owned())
                .filter(|name| name != "gpg-pubkey")
                .collect();
        theirs.sort();
        theirs.dedup();
        assert_eq!(ours, theirs, "{fixture}");
        assert!(
            listed["source"]
                .as_str()
                .unwrap()
                .contains(&format!("/{at}/{file}")),
            "{listed}"
        );
    }
}

// ---- an SSH host ----

#[test]
fn an_ssh_host_sends_its_rpm_database_through_the_batch() {
    require("unshare", "util-linux");
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    let tree = ubi_tree(
        work,
        "host",
        &[&rpms.redhat_release, &rpms.base, &rpms.acme_app],
    );
    // The host: this machine's sshd in a mount namespace of its own, where the tree's database
    // is mounted at /var/lib/rpm, as an RPM host keeps it. The batch is not told where to look.
    let database = tree.join("var/lib/rpm");
    let client = Client::new();
    let wrapper: Vec<String> = vec![
        "unshare".into(),
        "--mount".into(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "mkdir -p /var/lib/rpm && mount --bind '{}' /var/lib/rpm && exec \"$0\" \"$@\"",
            database.display()
        ),
    ];
    let host = SshHost::start_wrapped(&client, "rpm-host", &[], &wrapper);
    let known = client.known_hosts("known_hosts", &[&host]);
    let suite = work.join("suites");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(
        suite.join("host.yaml"),
        "name: host\nversion: 1.0.0\nchecks:\n  - id: h.packages\n    version: 1.0.0\n    title: packages of a host\n    severity: high\n    probes:\n      all: packages\n      base: {package: hcc-base}\n      sshd: {package: openssh-server}\n      never: {package: hcc-never-installed}\n    expect:\n      all-of:\n        - {fact: base, package-at-least: '1.0'}\n        - {fact: base, package-below: 1.0-2.el9}\n        - {fact: sshd, package-at-least: '1:8.0'}\n        - {fact: sshd, package-below: '2:0'}\n        - {fact: never, exists: false}\n        - {fact: all, has-none-of: 'kernel kernel-core kpatch*'}\n",
    )
    .unwrap();
    std::fs::write(
        work.join("host-profile.yaml"),
        "name: host-profile\nversion: 1.0.0\nsuites: {host: ^1}\ngate: [high]\n",
    )
    .unwrap();
    let ssh = |extra: &[&str]| {
        Command::new(BIN)
            .args(extra)
            .args(["--suites"])
            .arg(&suite)
            .args([
                "--profile",
                "host-profile.yaml",
                "--target",
                &host.address(),
            ])
            .arg("--identity")
            .arg(&client.key)
            .arg("--known-hosts")
            .arg(&known)
            .current_dir(work)
            .output()
            .unwrap()
    };
    let snapshot = work.join("host.json");
    let gathered = ssh(&["gather", "--output", snapshot.to_str().unwrap()]);
    assert_eq!(code(&gathered), 0, "{}{}", stderr(&gathered), host.log());
    let (names, listed) = package_names(&snapshot);
    // This machine's dpkg packages and the mounted database's rpm packages.
    let theirs = rpm_qa_names(&tree);
    for name in &theirs {
        assert!(names.contains(name), "{name} in {names:?}");
    }
    assert!(names.contains(&"dpkg".to_owned()), "{names:?}");
    assert!(
        listed["source"]
            .as_str()
            .unwrap()
            .contains("rpm database /var/lib/rpm/rpmdb.sqlite (sqlite)"),
        "{listed}"
    );
    let base = fact(&snapshot, &serde_json::json!({"package": "hcc-base"}));
    assert_eq!(
        base["value"]["record"]["nevra"]["text"], "hcc-base-1.0-1.el9.x86_64",
        "{base}"
    );
    // This machine's own sshd package comes from dpkg, compared in dpkg's order.
    let sshd = fact(&snapshot, &serde_json::json!({"package": "openssh-server"}));
    assert_eq!(sshd["value"]["record"]["manager"]["text"], "dpkg", "{sshd}");
    let ran = ssh(&["run", "--report-dir", "ssh"]);
    assert_eq!(code(&ran), 0, "{}", stdout(&ran));
    let (outcome, result) = check_result(work, "ssh", "h.packages");
    assert_eq!(outcome, "pass", "{result}");
    // The host's log shows one session: the database came with the batch.
    assert_eq!(
        host.log().matches("Starting session: command").count(),
        2,
        "one per run: {}",
        host.log()
    );
}

// ---- OS trees and this machine ----

/// The `packages` fact `hostcert gather` reads from one target, as names.
fn gathered_packages(work: &Path, target: &str, name: &str) -> (Vec<String>, Value) {
    let suite = work.join("list-suites");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(
        suite.join("list.yaml"),
        "name: list\nversion: 1.0.0\nchecks:\n  - id: l.list\n    version: 1.0.0\n    title: the package list\n    severity: low\n    probes: {all: packages}\n    expect: {exists: true}\n",
    )
    .unwrap();
    std::fs::write(
        work.join("list-profile.yaml"),
        "name: list-profile\nversion: 1.0.0\nsuites: {list: ^1}\ngate: [low]\n",
    )
    .unwrap();
    let snapshot = work.join(format!("{name}.json"));
    gather(work, &suite, "list-profile.yaml", target, &snapshot);
    package_names(&snapshot)
}

/// The names `dpkg-query` lists as installed (dpkg's states that leave files on the system).
fn dpkg_query_installed() -> Vec<String> {
    require("dpkg-query", "dpkg");
    let listed =
        run_ok(Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Status}\t${Package}\n"]));
    let mut names: Vec<String> = listed
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(state, _)| {
            matches!(
                *state,
                "installed"
                    | "unpacked"
                    | "half-configured"
                    | "triggers-awaited"
                    | "triggers-pending"
            )
        })
        .map(|(_, name)| name.to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_packages_probe_reads_os_trees_and_this_machine_as_rpm_and_dpkg_list_them() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    // An OS tree (`rootfs:`) with an rpm database: rpm -qa's list.
    let tree = ubi_tree(
        work,
        "tree",
        &[&rpms.redhat_release, &rpms.base, &rpms.kernel_core],
    );
    let (ours, listed) = gathered_packages(work, &format!("rootfs:{}", tree.display()), "tree");
    assert_eq!(ours, rpm_qa_names(&tree), "{listed}");
    assert!(ours.contains(&"kernel-core".to_owned()), "{listed}");
    assert!(
        listed["source"]
            .as_str()
            .unwrap()
            .contains("/var/lib/rpm/rpmdb.sqlite"),
        "{listed}"
    );
    // The same tree with its database cut short: an error naming it, not a shorter list.
    let database = tree.join("var/lib/rpm/rpmdb.sqlite");
    let bytes = std::fs::read(&database).unwrap();
    std::fs::write(&database, &bytes[..bytes.len() / 2]).unwrap();
    let snapshot = work.join("cut.json");
    let target = format!("rootfs:{}", tree.display());
    gather(
        work,
        &work.join("list-suites"),
        "list-profile.yaml",
        &target,
        &snapshot,
    );
    let cut = fact(&snapshot, &Value::from("packages"));
    assert!(
        cut["error"]
            .as_str()
            .is_some_and(|e| e.contains("rpmdb.sqlite")),
        "{cut}"
    );

    // This machine (`local`): Debian's dpkg database, as dpkg-query lists it; Debian's rpm keeps
    // no system database, so no rpm package is listed. dpkg may change under a concurrent
    // apt-get: the list is compared when dpkg-query gives the same list before and after.
    for attempt in 0..3 {
        let before = dpkg_query_installed();
        let (ours, listed) = gathered_packages(work, "local", "local");
        let after = dpkg_query_installed();
        if before != after && attempt < 2 {
            continue;
        }
        assert_eq!(ours, before, "{listed}");
        assert!(
            listed["source"]
                .as_str()
                .unwrap()
                .contains("/var/lib/dpkg/status"),
            "{listed}"
        );
        break;
    }
}

#[test]
fn a_layer_that_removes_the_rpm_database_is_an_error_never_a_pass() {
    // A base layer with kernel-core, and a layer that deletes the database (as some builds do
    // to slim an image): the kernel's files are still there, rpm -qa in the image lists nothing,
    // and preflight, which cannot open the database, does not pass the image either.
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    let tree = ubi_tree(
        work,
        "gone",
        &[&rpms.redhat_release, &rpms.base, &rpms.kernel_core],
    );
    let image = build_image(work, "gone", &tree, UBI_LABELS);
    add_layer(work, &image, |rootfs| {
        std::fs::remove_dir_all(rootfs.join("var/lib/rpm")).unwrap();
    });
    let rootfs = merged(work, &image);
    assert_eq!(rpm_qa_names(&rootfs), Vec::<String>::new());
    let output = isv_image(work, &image, "gone");
    let out = stdout(&output);
    assert_eq!(code(&output), 2, "{out}{}", stderr(&output));
    assert!(out.contains("verdict: INCOMPLETE"), "{out}");
    package_checks_error(
        work,
        "gone",
        &[
            "rpm database /var/lib/rpm/rpmdb.sqlite that layer 0 left",
            "layer 1 removed it",
        ],
    );
}

// ---- a Berkeley DB image (UBI 7 and 8) ----

/// `rpm --root ROOT` reading a Berkeley DB `Packages` (Debian's rpm reads it with `bdb_ro`).
fn rpm_root_bdb(root: &Path, args: &[&str]) -> Command {
    require("rpm", "rpm");
    let mut command = Command::new("rpm");
    command
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend bdb_ro"])
        .args(args);
    command
}

#[test]
fn a_berkeley_db_image_is_judged_as_rpm_judges_it() {
    // UBI 7 and 8 keep a Berkeley DB `Packages`: the same headers rpm installed, loaded by
    // db5.3_load, in the base layer; a later layer changes files of its packages.
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let rpms = build_rpms(work);
    let tree = ubi_tree(
        work,
        "bdb",
        &[
            &rpms.redhat_release,
            &rpms.base,
            &rpms.acme_app,
            &rpms.kernel_core,
        ],
    );
    let dbpath = tree.join("var/lib/rpm");
    let blobs = sqlite_blobs(&dbpath.join("rpmdb.sqlite"));
    for entry in std::fs::read_dir(&dbpath).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    berkeley_db(&dbpath, &blobs, 1234, 4096);
    let listed = run_ok(&mut rpm_root_bdb(&tree, &["-qa", "--qf", "%{NAME}\\n"]));
    let mut theirs: Vec<String> = listed.lines().map(str::to_owned).collect();
    theirs.sort();
    let image = build_image(work, "bdb", &tree, UBI_LABELS);
    let set_mode = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    add_layer(work, &image, |rootfs| {
        std::fs::write(rootfs.join("usr/bin/hcc-tool"), "#!/bin/sh\necho patched\n").unwrap();
        std::fs::remove_file(rootfs.join("usr/lib/hcc/gone.txt")).unwrap();
        std::fs::write(rootfs.join("usr/lib/hcc/same.txt"), "same\n").unwrap();
        set_mode(&rootfs.join("usr/lib/hcc/mode.txt"), 0o666);
        std::fs::write(rootfs.join("etc/hcc.conf"), "level=2\n").unwrap();
    });

    let output = isv_image(work, &image, "bdb");
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome, result) = check_result(work, "bdb", "image.redhat.prohibited-packages");
    assert_eq!(outcome, "fail", "{result}");
    assert!(
        result.contains("image-info packages has kernel-core"),
        "{result}"
    );
    let (outcome, result) = check_result(work, "bdb", "image.redhat.modified-package-files");
    assert_eq!(outcome, "fail", "{result}");
    assert!(result.contains("/var/lib/rpm/Packages (bdb)"), "{result}");

    // rpm -Va on the merged tree, through the same Berkeley DB file.
    let rootfs = merged(work, &image);
    let verified = rpm_root_bdb(&rootfs, RPM_VA).output().unwrap();
    let differs: BTreeMap<&str, &str> = PREFLIGHT_DIFFERS.iter().copied().collect();
    let expected: BTreeSet<String> = stdout(&verified)
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|path| path.starts_with('/') && !differs.contains_key(path))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        expected,
        [
            "/usr/bin/hcc-tool",
            "/usr/lib/hcc/gone.txt",
            "/usr/lib/hcc/mode.txt"
        ]
        .map(str::to_owned)
        .into(),
        "rpm -Va: {}",
        stdout(&verified)
    );
    for path in &expected {
        assert!(
            result.contains(&format!(
                "{path} (package hcc-base, hcc-base-1.0-1.el9.x86_64, layer 1)"
            )),
            "{path}: {result}"
        );
    }
    assert!(!result.contains("/usr/lib/hcc/same.txt"), "{result}");

    // The package list, as the `packages` probe reads it, is rpm -qa's.
    let (ours, listed) = gathered_packages(work, &format!("oci:{image}"), "bdb-list");
    assert_eq!(ours, theirs, "{listed}");
}
