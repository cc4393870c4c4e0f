//! Real container nodes: the runtime inventory of OS trees made from Debian's own runc,
//! containerd, podman, crun, conmon and docker.io packages (`dpkg-deb -x` plus a dpkg status
//! entry), judged by `dpkg-query` on the same tree and by `go version -m` on hand-installed Go
//! binaries (the Go 1.18+ inline build info, and the older pointer format made from it); the
//! container-runtimes advisories on patched and unpatched builds; kubernetes-node on this
//! machine's cgroup layout (judged by `stat -f`) and on cgroup v2 and v1 trees; rootless-podman
//! on trees whose newuidmap carries file capabilities set by `setcap` and read by `getcap`;
//! `host-root:DIR` against `local`; the kernel-config checks against kubeadm's own KernelValidator
//! (Debian's golang-k8s-system-validators-dev) on the 47 shared configs; every live-only check
//! passing and failing on snapshots; the `filesystem` probe against xfs_info, dumpe2fs and
//! `stat -f`; an image built with umoci from a runtime tree; and the Kubernetes examples against
//! kubernetes-validate's 1.35 schemas.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{code, require, stderr, stdout, Work};

/// The Debian packages ci/runtime-debs downloads.
fn runtime_debs() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("HOSTCERT_RUNTIME_DEBS")
            .unwrap_or_else(|_| "/var/cache/hostcert-runtime-debs".to_owned()),
    );
    for package in [
        "runc",
        "containerd",
        "podman",
        "crun",
        "conmon",
        "docker.io",
    ] {
        let found = std::fs::read_dir(&dir).ok().is_some_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{package}_"))
            })
        });
        assert!(
            found,
            "{package}'s .deb is missing from {}: run ci/runtime-debs (ci/test does)",
            dir.display()
        );
    }
    dir
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Unpacks a .deb into a tree as dpkg would leave it: its files, a status stanza and its file
/// list under var/lib/dpkg.
fn install_deb(tree: &Path, deb: &Path) {
    run(
        "dpkg-deb",
        &["-x", deb.to_str().unwrap(), tree.to_str().unwrap()],
    );
    let field = |name: &str| {
        run("dpkg-deb", &["-f", deb.to_str().unwrap(), name])
            .trim()
            .to_owned()
    };
    let (package, version, arch) = (field("Package"), field("Version"), field("Architecture"));
    let admin = tree.join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("info")).unwrap();
    let mut status = std::fs::read_to_string(admin.join("status")).unwrap_or_default();
    status += &format!(
        "Package: {package}\nStatus: install ok installed\nPriority: optional\nArchitecture: {arch}\nVersion: {version}\nDescription: from {}\n\n",
        deb.file_name().unwrap().to_string_lossy()
    );
    std::fs::write(admin.join("status"), status).unwrap();
    let contents = run("dpkg-deb", &["-c", deb.to_str().unwrap()]);
    let files: Vec<String> = contents
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(|path| {
            let path = path.trim_start_matches('.').trim_end_matches('/');
            if path.is_empty() {
                "/.".to_owned()
            } else {
                path.to_owned()
            }
        })
        .collect();
    std::fs::write(
        admin.join(format!("info/{package}.list")),
        files.join("\n") + "\n",
    )
    .unwrap();
}

fn deb(dir: &Path, package: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{package}_"))
        })
        .unwrap()
}

/// A tree with a kernel config (Debian 13's, from the shared fixtures), systemd's shared library
/// name (its version decides the cgroup layout at boot), an fstab without swap and os-release.
fn base_tree(tree: &Path, systemd: u32) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/kernel-configs/debian13-6.12.63-amd64.config");
    assert!(config.is_file(), "{} is missing", config.display());
    for dir in ["boot", "etc", "usr/lib/systemd", "var/lib/dpkg/info"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    std::fs::copy(&config, tree.join("boot/config-6.12.63-amd64")).unwrap();
    std::fs::write(
        tree.join(format!("usr/lib/systemd/libsystemd-shared-{systemd}.so")),
        "",
    )
    .unwrap();
    std::fs::write(tree.join("etc/fstab"), "UUID=1 / ext4 defaults 0 1\n").unwrap();
    // The modules Debian's kernel builds as =m that the kernel-features checks look for.
    let modules = tree.join("lib/modules/6.12.63-amd64");
    std::fs::create_dir_all(&modules).unwrap();
    std::fs::write(
        modules.join("modules.dep"),
        [
            "kernel/fs/overlayfs/overlay.ko.xz:",
            "kernel/net/bridge/bridge.ko.xz: kernel/net/802/stp.ko.xz kernel/net/llc/llc.ko.xz",
            "kernel/drivers/net/veth.ko.xz:",
            "kernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz",
            "kernel/net/netfilter/nf_nat.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz",
            "kernel/net/netfilter/xt_conntrack.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz",
            "kernel/net/netfilter/xt_addrtype.ko.xz:",
            "kernel/net/netfilter/nf_conntrack.ko.xz:",
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"13\"\n",
    )
    .unwrap();
}

/// Gathers the given probes from a target into a snapshot and returns its facts by probe.
fn gather(work: &Work, target: &str, suite_yaml: &str) -> BTreeMap<String, Value> {
    work.write("probes/probes.yaml", suite_yaml);
    work.write(
        "probes/profile.yaml",
        "name: probes\nversion: 1.0.0\nsuites:\n  probes: ^1\n",
    );
    let output = work.hostcert(&[
        "gather",
        "--suites",
        "probes",
        "--profiles",
        "probes",
        "--profile",
        "probes",
        "--target",
        target,
        "--output",
        "facts.json",
    ]);
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    work.json("facts.json")["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (serde_json::to_string(&f["probe"]).unwrap(), f.clone()))
        .collect()
}

/// A suite that reads one probe per runtime.
fn runtime_probes_suite() -> String {
    let mut yaml = "name: probes\nversion: 1.0.0\nchecks:\n".to_owned();
    for runtime in hostcert::model::RUNTIMES {
        yaml += &format!(
            "  - id: probe.{runtime}\n    version: 1.0.0\n    title: t\n    severity: info\n    probes:\n      r: {{runtime: {runtime}}}\n    expect: {{exists: true}}\n"
        );
    }
    yaml += "  - id: probe.all\n    version: 1.0.0\n    title: t\n    severity: info\n    probes:\n      r: runtimes\n    expect: {exists: true}\n";
    yaml
}

fn runtime_record(facts: &BTreeMap<String, Value>, runtime: &str) -> Value {
    facts[&format!("{{\"runtime\":\"{runtime}\"}}")]["value"].clone()
}

#[test]
fn the_runtime_inventory_of_debian_packages_equals_dpkg_query() {
    require("dpkg-deb", "dpkg");
    require("dpkg-query", "dpkg");
    let debs = runtime_debs();
    let work = Work::new();
    let tree = work.path("tree");
    base_tree(&tree, 252);
    for package in [
        "runc",
        "containerd",
        "podman",
        "crun",
        "conmon",
        "docker.io",
    ] {
        install_deb(&tree, &deb(&debs, package));
    }
    let facts = gather(
        &work,
        &format!("rootfs:{}", tree.display()),
        &runtime_probes_suite(),
    );
    let admindir = format!("--admindir={}", tree.join("var/lib/dpkg").display());
    let listed = run(
        "dpkg-query",
        &[&admindir, "-W", "-f=${Package} ${Version}\n"],
    );
    let dpkg: BTreeMap<&str, &str> = listed.lines().filter_map(|l| l.split_once(' ')).collect();
    for (runtime, package) in [
        ("runc", "runc"),
        ("containerd", "containerd"),
        ("podman", "podman"),
        ("crun", "crun"),
        ("conmon", "conmon"),
        ("docker", "docker.io"),
    ] {
        let record = runtime_record(&facts, runtime);
        assert_eq!(
            record["record"]["package"]["text"], package,
            "{runtime}: {record}"
        );
        assert_eq!(
            record["record"]["package-version"]["text"], dpkg[package],
            "{runtime}: dpkg-query says {}",
            dpkg[package]
        );
        assert_eq!(record["record"]["package-manager"]["text"], "dpkg");
        assert_eq!(
            record["record"]["other-copies"]["text"], "none",
            "{runtime}: /sbin and /usr/sbin are one folder"
        );
        let path = record["record"]["path"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let list = std::fs::read_to_string(tree.join(format!("var/lib/dpkg/info/{package}.list")))
            .unwrap();
        assert!(
            list.lines().any(|l| l == path),
            "{runtime}: {path} is the package's"
        );
        // The upstream part of dpkg's version, as dpkg-query prints ${source:Upstream-Version}.
        let upstream = run(
            "dpkg-query",
            &[&admindir, "-W", "-f=${source:Upstream-Version}", package],
        );
        let expected = upstream.split(['+', '~']).next().unwrap();
        assert_eq!(record["record"]["version"]["text"], expected, "{runtime}");
    }
    // The patched build's changelog names CVE-2024-21626; containerd's the 2024/2025 advisories.
    let runc = runtime_record(&facts, "runc");
    assert!(runc["record"]["fixes"]["text"]
        .as_str()
        .unwrap()
        .split(' ')
        .any(|c| c == "CVE-2024-21626"));
    assert_eq!(runtime_record(&facts, "cri-o"), Value::from("absent"));
    assert_eq!(runtime_record(&facts, "kata"), Value::from("absent"));
    let all = &facts["\"runtimes\""]["value"]["record"];
    assert_eq!(all.as_object().unwrap().len(), 6, "{all}");

    // The advisories: Debian's runc 1.1.5+ds1-1+deb12u1 carries CVE-2024-21626's fix (passes)
    // but not the 2025 ones (fails); containerd 1.6.20~ds1-1+deb12u3 names CVE-2024-25621.
    let report = run_profile(
        &work,
        "container-runtimes",
        &format!("rootfs:{}", tree.display()),
    );
    let outcome = |id: &str| outcome_of(&report, id);
    assert_eq!(outcome("runtime.runc.cve-2024-21626"), "pass");
    assert_eq!(outcome("runtime.runc.cve-2025-31133"), "fail");
    assert_eq!(outcome("runtime.runc.cve-2025-52565"), "fail");
    assert_eq!(outcome("runtime.runc.cve-2025-52881"), "fail");
    assert_eq!(outcome("runtime.containerd.cve-2024-25621"), "pass");
    assert_eq!(outcome("runtime.containerd.cve-2025-64329"), "pass");
    assert_eq!(report["verdict"], "not-certified");
}

fn run_profile(work: &Work, profile: &str, target: &str) -> Value {
    let dir = format!("out-{profile}-{}", target.len());
    let output = work.hostcert(&[
        "run",
        "--profile",
        profile,
        "--target",
        target,
        "--report-dir",
        &dir,
    ]);
    assert!(
        code(&output) <= 2 && work.path(&format!("{dir}/report.json")).is_file(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    work.json(&format!("{dir}/report.json"))
}

fn results(report: &Value) -> Vec<Value> {
    report["results"].as_array().cloned().unwrap_or_default()
}

fn outcome_of(report: &Value, id: &str) -> String {
    results(report)
        .iter()
        .find(|r| r["check"] == id)
        .unwrap_or_else(|| panic!("no result for {id}"))["outcome"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Builds a Go program whose module path and `-X main.version` mimic a runtime's release build.
fn build_go(work: &Work, module: &str, version: &str, output: &Path) {
    require("go", "golang-go");
    let src = work.path(&format!(
        "go-src-{}",
        output.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), format!("module {module}\n\ngo 1.19\n")).unwrap();
    std::fs::write(
        src.join("main.go"),
        "package main\n\nvar version = \"dev\"\n\nfunc main() { println(version) }\n",
    )
    .unwrap();
    let status = Command::new("go")
        .args([
            "build",
            "-ldflags",
            &format!("-X main.version={version} -X main.gitCommit=abc"),
            "-o",
        ])
        .arg(output)
        .current_dir(&src)
        .env("GOCACHE", work.path("gocache"))
        .env("GOPATH", work.path("gopath"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GO111MODULE", "on")
        .status()
        .unwrap();
    assert!(status.success(), "go build");
}

/// `go version -m FILE`: the Go version, and `path`, `mod` and `build` lines.
fn go_version_m(file: &Path) -> (String, BTreeMap<String, String>) {
    let text = run("go", &["version", "-m", file.to_str().unwrap()]);
    let mut lines = text.lines();
    let go = lines
        .next()
        .unwrap()
        .rsplit(": ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let mut fields = BTreeMap::new();
    for line in lines {
        let parts: Vec<&str> = line.trim_start().split('\t').collect();
        match parts.as_slice() {
            ["path", path] => {
                fields.insert("path".to_owned(), (*path).to_owned());
            }
            ["mod", path, version, ..] => {
                fields.insert("mod".to_owned(), format!("{path} {version}"));
            }
            ["build", setting] => {
                if let Some((key, value)) = setting.split_once('=') {
                    fields.insert(key.to_owned(), value.to_owned());
                }
            }
            _ => {}
        }
    }
    (go, fields)
}

/// Rewrites a Go 1.18+ binary's build info header into the pre-1.18 pointer format: flags 0,
/// and pointers to the string headers of `runtime.buildVersion` and `runtime.modinfo`, which
/// the binary still holds (what Go before 1.18 wrote).
fn to_pointer_format(file: &Path) {
    use object::{Object, ObjectSection, ObjectSymbol};
    let mut data = std::fs::read(file).unwrap();
    let (offset, version_address, modinfo_address) = {
        let elf = object::File::parse(&*data).unwrap();
        let section = elf.section_by_name(".go.buildinfo").unwrap();
        let (offset, _) = section.file_range().unwrap();
        let symbol = |name: &str| {
            elf.symbols()
                .find(|s| s.name() == Ok(name))
                .unwrap_or_else(|| panic!("no {name}"))
                .address()
        };
        (
            offset as usize,
            symbol("runtime.buildVersion"),
            symbol("runtime.modinfo"),
        )
    };
    assert_eq!(&data[offset..offset + 14], b"\xff Go buildinf:");
    data[offset + 15] = 0;
    data[offset + 16..offset + 24].copy_from_slice(&version_address.to_le_bytes());
    data[offset + 24..offset + 32].copy_from_slice(&modinfo_address.to_le_bytes());
    std::fs::write(file, data).unwrap();
}

#[test]
fn hand_installed_go_binaries_are_read_as_go_version_m_reads_them() {
    let work = Work::new();
    let tree = work.path("tree");
    base_tree(&tree, 252);
    std::fs::create_dir_all(tree.join("usr/local/bin")).unwrap();
    build_go(
        &work,
        "github.com/opencontainers/runc",
        "1.1.11",
        &tree.join("usr/local/bin/runc"),
    );
    build_go(
        &work,
        "github.com/containerd/containerd/v2",
        "2.1.5",
        &tree.join("usr/local/bin/containerd"),
    );
    // The same containerd, its header rewritten into the pointer format of Go before 1.18.
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    build_go(
        &work,
        "github.com/containers/podman/v5",
        "5.6.2",
        &tree.join("usr/bin/podman"),
    );
    to_pointer_format(&tree.join("usr/bin/podman"));
    let facts = gather(
        &work,
        &format!("rootfs:{}", tree.display()),
        &runtime_probes_suite(),
    );
    for (runtime, path, version) in [
        ("runc", "usr/local/bin/runc", "1.1.11"),
        ("containerd", "usr/local/bin/containerd", "2.1.5"),
        ("podman", "usr/bin/podman", "5.6.2"),
    ] {
        let (go, fields) = go_version_m(&tree.join(path));
        let record = &runtime_record(&facts, runtime)["record"];
        assert_eq!(
            record["go-version"]["text"],
            go.as_str(),
            "{runtime}: {record}"
        );
        let module = fields["mod"].split(' ').collect::<Vec<_>>();
        assert_eq!(record["module"]["text"], module[0], "{runtime}");
        assert_eq!(record["module-version"]["text"], module[1], "{runtime}");
        assert!(
            fields["-ldflags"].contains(&format!("-X main.version={version}")),
            "{runtime}: go version -m shows {fields:?}"
        );
        assert_eq!(record["version"]["text"], version, "{runtime}");
        assert_eq!(record["package"]["text"], "none");
        assert_eq!(record["path"]["text"], format!("/{path}"));
    }
    // runc 1.1.11 by hand: CVE-2024-21626 unfixed and no package to have patched it.
    let report = run_profile(
        &work,
        "container-runtimes",
        &format!("rootfs:{}", tree.display()),
    );
    assert_eq!(outcome_of(&report, "runtime.runc.cve-2024-21626"), "fail");
    assert_eq!(
        outcome_of(&report, "runtime.containerd.cve-2024-25621"),
        "pass"
    );
    assert_eq!(report["verdict"], "not-certified");

    // A fixed runc certifies.
    build_go(
        &work,
        "github.com/opencontainers/runc",
        "1.3.3",
        &tree.join("usr/local/bin/runc"),
    );
    let report = run_profile(
        &work,
        "container-runtimes",
        &format!("rootfs:{}", tree.display()),
    );
    for id in [
        "runtime.runc.cve-2024-21626",
        "runtime.runc.cve-2025-31133",
        "runtime.runc.cve-2025-52565",
        "runtime.runc.cve-2025-52881",
    ] {
        assert_eq!(outcome_of(&report, id), "pass", "{id}");
    }
    assert_eq!(outcome_of(&report, "runtime.runc.cve-2026-41579"), "fail");
    assert_eq!(
        report["verdict"], "certified",
        "only the low CVE-2026-41579 fails"
    );
}

/// A RHEL-style runc: version 1.1.12 with the 2025 fixes backported and named in %changelog.
const RUNC_SPEC: &str = r#"
Name: runc
Epoch: 4
Version: 1.1.12
Release: 4.el9
Summary: hostcert test package
License: ASL 2.0
BuildArch: x86_64

%description
A runc whose changelog names its backports.

%install
mkdir -p %{buildroot}/usr/bin
printf '#!/bin/sh\n' > %{buildroot}/usr/bin/runc
chmod 755 %{buildroot}/usr/bin/runc

%files
/usr/bin/runc

%changelog
* Mon Nov 10 2025 Packager <packager@example.invalid> - 4:1.1.12-4
- Backport the fixes for CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881
* Wed Jan 31 2024 Packager <packager@example.invalid> - 4:1.1.12-1
- Update to 1.1.12 (CVE-2024-21626)
"#;

#[test]
fn an_rpm_runtime_is_read_from_the_rpm_database_as_rpm_lists_it() {
    require("rpmbuild", "rpm");
    require("rpm", "rpm");
    let work = Work::new();
    let top = work.path("rpmbuild");
    let spec = work.path("runc.spec");
    std::fs::write(&spec, RUNC_SPEC).unwrap();
    run(
        "rpmbuild",
        &[
            "-bb",
            "--define",
            &format!("_topdir {}", top.display()),
            spec.to_str().unwrap(),
        ],
    );
    let built = top.join("RPMS/x86_64/runc-1.1.12-4.el9.x86_64.rpm");
    let tree = work.path("tree");
    base_tree(&tree, 252);
    let root = tree.to_str().unwrap();
    run(
        "rpm",
        &["--root", root, "--dbpath", "/var/lib/rpm", "--initdb"],
    );
    run(
        "rpm",
        &[
            "--root",
            root,
            "--dbpath",
            "/var/lib/rpm",
            "-i",
            "--nodeps",
            "--noscripts",
            built.to_str().unwrap(),
        ],
    );
    let listed = run(
        "rpm",
        &[
            "--root",
            root,
            "--dbpath",
            "/var/lib/rpm",
            "-q",
            "--qf",
            "%{EVR}",
            "runc",
        ],
    );
    let facts = gather(
        &work,
        &format!("rootfs:{}", tree.display()),
        &runtime_probes_suite(),
    );
    let record = &runtime_record(&facts, "runc")["record"];
    assert_eq!(record["package-version"]["text"], listed.trim(), "{record}");
    assert_eq!(record["package-manager"]["text"], "rpm");
    assert_eq!(record["version"]["text"], "1.1.12");
    assert_eq!(record["path"]["text"], "/usr/bin/runc");
    assert_eq!(
        record["fixes"]["text"],
        "CVE-2024-21626 CVE-2025-31133 CVE-2025-52565 CVE-2025-52881"
    );
    // The backports are judged by the changelog, not by 1.1.12's number.
    let report = run_profile(
        &work,
        "container-runtimes",
        &format!("rootfs:{}", tree.display()),
    );
    for id in [
        "runtime.runc.cve-2024-21626",
        "runtime.runc.cve-2025-31133",
        "runtime.runc.cve-2025-52565",
        "runtime.runc.cve-2025-52881",
    ] {
        assert_eq!(outcome_of(&report, id), "pass", "{id}");
    }

    // A damaged rpm database is an error, never an inventory that leaves its packages out.
    let broken = work.path("broken");
    base_tree(&broken, 252);
    std::fs::create_dir_all(broken.join("var/lib/rpm")).unwrap();
    std::fs::write(broken.join("var/lib/rpm/rpmdb.sqlite"), "not a database").unwrap();
    let report = run_profile(
        &work,
        "container-runtimes",
        &format!("rootfs:{}", broken.display()),
    );
    let result = results(&report)
        .into_iter()
        .find(|r| r["check"] == "runtime.runc.cve-2024-21626")
        .unwrap();
    assert_eq!(result["outcome"], "error", "{result}");
    assert_ne!(report["verdict"], "certified");
}

/// The cgroup layout this machine runs, as coreutils' `stat -f` reports /sys/fs/cgroup.
fn this_machine_runs_cgroup2() -> bool {
    run("stat", &["-f", "-c", "%T", "/sys/fs/cgroup"]).trim() == "cgroup2fs"
}

#[test]
fn kubernetes_node_judges_this_machines_cgroup_layout_as_the_kubelet_does() {
    let work = Work::new();
    let report = run_profile(&work, "kubernetes-node", "local");
    let result = results(&report)
        .into_iter()
        .find(|r| r["check"] == "kubernetes.cgroup.v2")
        .unwrap();
    if this_machine_runs_cgroup2() {
        assert_eq!(result["outcome"], "pass", "{result}");
    } else {
        assert_eq!(result["outcome"], "fail", "{result}");
        assert_eq!(report["verdict"], "not-certified");
        assert!(result["remediation"]
            .as_str()
            .unwrap()
            .contains("failCgroupV1: false"));
        let evidence = result["evidence"].to_string();
        assert!(
            evidence.contains("hybrid") || evidence.contains("\"v1\""),
            "{evidence}"
        );
        let output = work.hostcert(&["explain", "kubernetes.cgroup.v2"]);
        assert!(
            stdout(&output).contains("kubelet is configured to not run on a host using cgroup v1"),
            "{}",
            stdout(&output)
        );
    }
    // host-root:/ reads the same host the same way.
    let host_root = run_profile(&work, "kubernetes-node", "host-root:/");
    let same = results(&host_root)
        .into_iter()
        .find(|r| r["check"] == "kubernetes.cgroup.v2")
        .unwrap();
    assert_eq!(same["outcome"], result["outcome"]);
}

#[test]
fn kubernetes_node_certifies_a_cgroup_v2_tree_and_refuses_a_v1_one() {
    let debs = runtime_debs();
    let work = Work::new();
    let v2 = work.path("v2");
    base_tree(&v2, 252);
    install_deb(&v2, &deb(&debs, "containerd"));
    let report = run_profile(
        &work,
        "kubernetes-node",
        &format!("rootfs:{}", v2.display()),
    );
    let failed: Vec<String> = results(&report)
        .iter()
        .filter(|r| r["outcome"] == "fail" && r["gating"] == true)
        .map(|r| r["check"].to_string())
        .collect();
    assert_eq!(
        report["verdict"], "certified",
        "gating failures: {failed:?}"
    );
    assert_eq!(outcome_of(&report, "kubernetes.cgroup.v2"), "pass");
    assert_eq!(
        outcome_of(&report, "kubernetes.swap.configured-off"),
        "pass"
    );
    assert_eq!(outcome_of(&report, "kubernetes.runtime.cri"), "pass");
    assert_eq!(outcome_of(&report, "kubernetes.ipvs.ip-vs"), "skip");

    // systemd 252 told to boot the hybrid layout, and a swap line: refused.
    let v1 = work.path("v1");
    base_tree(&v1, 252);
    install_deb(&v1, &deb(&debs, "containerd"));
    std::fs::create_dir_all(v1.join("etc/default")).unwrap();
    std::fs::write(
        v1.join("etc/default/grub"),
        "GRUB_CMDLINE_LINUX=\"quiet systemd.unified_cgroup_hierarchy=0\"\n",
    )
    .unwrap();
    std::fs::write(
        v1.join("etc/fstab"),
        "UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n",
    )
    .unwrap();
    let report = run_profile(
        &work,
        "kubernetes-node",
        &format!("rootfs:{}", v1.display()),
    );
    assert_eq!(outcome_of(&report, "kubernetes.cgroup.v2"), "fail");
    assert_eq!(
        outcome_of(&report, "kubernetes.swap.configured-off"),
        "fail"
    );
    assert_eq!(report["verdict"], "not-certified");

    // Without a CRI runtime, and with IPVS asked for on a kernel that has it.
    let bare = work.path("bare");
    base_tree(&bare, 257);
    let output = work.hostcert(&[
        "run",
        "--profile",
        "kubernetes-node",
        "--param",
        "kube-proxy-mode=ipvs",
        "--target",
        &format!("rootfs:{}", bare.display()),
        "--report-dir",
        "bare",
    ]);
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let report = work.json("bare/report.json");
    assert_eq!(outcome_of(&report, "kubernetes.runtime.cri"), "fail");
    assert_eq!(outcome_of(&report, "kubernetes.ipvs.ip-vs"), "pass");
}

/// getcap's view of a file: the capabilities it names, each with its flags.
fn getcap(file: &Path) -> String {
    run("getcap", &[file.to_str().unwrap()])
}

#[test]
fn rootless_podman_passes_and_fails_on_trees() {
    require("setcap", "libcap2-bin");
    require("getcap", "libcap2-bin");
    let work = Work::new();
    let make = |name: &str, subids: &str, delegate: Option<&str>| {
        let tree = work.path(name);
        base_tree(&tree, 252);
        std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
        std::fs::write(
            tree.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(tree.join("etc/subuid"), subids).unwrap();
        std::fs::write(tree.join("etc/subgid"), subids).unwrap();
        std::fs::create_dir_all(tree.join("usr/lib/systemd/system")).unwrap();
        std::fs::write(
            tree.join("usr/lib/systemd/system/user@.service"),
            "[Unit]\nDescription=User Manager\n[Service]\nType=notify\nDelegate=pids memory\n",
        )
        .unwrap();
        if let Some(delegate) = delegate {
            std::fs::create_dir_all(tree.join("etc/systemd/system/user@.service.d")).unwrap();
            std::fs::write(
                tree.join("etc/systemd/system/user@.service.d/delegate.conf"),
                format!("[Service]\nDelegate=\nDelegate={delegate}\n"),
            )
            .unwrap();
        }
        for tool in ["newuidmap", "newgidmap", "pasta"] {
            std::fs::copy("/bin/true", tree.join("usr/bin").join(tool)).unwrap();
        }
        tree
    };
    let good = make(
        "good",
        "alice:100000:65536\n",
        Some("cpu cpuset io memory pids"),
    );
    run(
        "setcap",
        &[
            "cap_setuid=ep",
            good.join("usr/bin/newuidmap").to_str().unwrap(),
        ],
    );
    run(
        "setcap",
        &[
            "cap_setgid=ep",
            good.join("usr/bin/newgidmap").to_str().unwrap(),
        ],
    );
    assert!(getcap(&good.join("usr/bin/newuidmap")).contains("cap_setuid=ep"));
    let bad = make("bad", "alice:100000:65535\n", Some(""));
    std::fs::remove_file(bad.join("usr/bin/pasta")).unwrap();
    run(
        "setcap",
        &[
            "cap_setuid=p",
            bad.join("usr/bin/newuidmap").to_str().unwrap(),
        ],
    );
    assert!(getcap(&bad.join("usr/bin/newuidmap")).contains("cap_setuid=p"));

    let judge = |tree: &Path| {
        let output = work.hostcert(&[
            "run",
            "--profile",
            "rootless-podman",
            "--param",
            "user=alice",
            "--target",
            &format!("rootfs:{}", tree.display()),
            "--report-dir",
            &format!("out-{}", tree.file_name().unwrap().to_string_lossy()),
        ]);
        assert!(code(&output) <= 1, "{}", stderr(&output));
        work.json(&format!(
            "out-{}/report.json",
            tree.file_name().unwrap().to_string_lossy()
        ))
    };
    let report = judge(&good);
    for id in [
        "rootless.subuid-range",
        "rootless.subgid-range",
        "rootless.newuidmap",
        "rootless.newgidmap",
        "rootless.cgroup-v2",
        "rootless.cgroup-delegation",
        "rootless.cgroup-delegation-cpu-io",
        "rootless.network-helper",
        "rootless.overlay",
    ] {
        assert_eq!(outcome_of(&report, id), "pass", "{id}");
    }
    let report = judge(&bad);
    for id in [
        "rootless.subuid-range",
        "rootless.subgid-range",
        // Permitted but not effective: getcap prints cap_setuid=p, newuidmap would not get it.
        "rootless.newuidmap",
        // Neither set-uid nor a capability.
        "rootless.newgidmap",
        // `Delegate=` reset, then nothing.
        "rootless.cgroup-delegation",
        "rootless.network-helper",
    ] {
        assert_eq!(outcome_of(&report, id), "fail", "{id}");
    }
    assert_eq!(report["verdict"], "not-certified");
}

/// kubeadm's system validators' kernel-config items for a cgroup v2 host, transcribed from
/// k8s.io/system-validators validators/types_unix.go (DefaultSysSpec.KernelSpec, commit 9040bc2):
/// (hostcert check, names with aliases, required).
const VALIDATOR_KERNEL_CONFIGS: &[(Option<&str>, &[&str], bool)] = &[
    (Some("namespaces"), &["NAMESPACES"], true),
    (Some("net-ns"), &["NET_NS"], true),
    (Some("pid-ns"), &["PID_NS"], true),
    (Some("ipc-ns"), &["IPC_NS"], true),
    (Some("uts-ns"), &["UTS_NS"], true),
    (Some("cpusets"), &["CPUSETS"], true),
    (Some("memcg"), &["MEMCG"], true),
    (Some("inet"), &["INET"], true),
    (Some("ext4-fs"), &["EXT4_FS"], true),
    (Some("proc-fs"), &["PROC_FS"], true),
    (
        Some("xt-target-redirect"),
        &["NETFILTER_XT_TARGET_REDIRECT", "IP_NF_TARGET_REDIRECT"],
        true,
    ),
    (
        Some("xt-match-comment"),
        &["NETFILTER_XT_MATCH_COMMENT"],
        true,
    ),
    (Some("fair-group-sched"), &["FAIR_GROUP_SCHED"], true),
    // RequiredCgroupsV2.
    (Some("cgroups"), &["CGROUPS"], true),
    (Some("cgroup-bpf"), &["CGROUP_BPF"], true),
    (Some("cgroup-pids"), &["CGROUP_PIDS"], true),
    (Some("cgroup-sched"), &["CGROUP_SCHED"], true),
    // Optional and OptionalCgroupsV2.
    (Some("overlay-fs"), &["OVERLAY_FS", "OVERLAYFS_FS"], false),
    (None, &["AUFS_FS"], false),
    (Some("blk-dev-dm"), &["BLK_DEV_DM"], false),
    (Some("cfs-bandwidth"), &["CFS_BANDWIDTH"], false),
    (Some("seccomp"), &["SECCOMP"], false),
    (Some("seccomp-filter"), &["SECCOMP_FILTER"], false),
    (Some("cgroup-hugetlb"), &["CGROUP_HUGETLB"], false),
];

/// Items where hostcert deliberately differs; keep equal to the table in
/// suites/kubernetes-node/README.md ("Compared with kubeadm's system validators").
const VALIDATOR_DIFFERENCES: &[&str] = &["AUFS_FS"];

/// The Go driver that runs the validators' own KernelValidator (parseKernelConfig and
/// validateCachedKernelConfig of Debian's golang-k8s-system-validators-dev, k8s.io/system-validators
/// 1.4.0, whose per-item logic, names then aliases and `y`/`m` good, is the one of 9040bc2) on
/// each config for each item of the 1.35 spec above, and prints `HC CONFIG ITEM RESULT` (0 good).
const VALIDATOR_DRIVER: &str = r#"package system

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

type lineReporter struct{ results []string }

func (r *lineReporter) Report(key, value string, result ValidationResultType) error {
	r.results = append(r.results, fmt.Sprintf("%d", result))
	return nil
}

func TestHostcertDriver(t *testing.T) {
	for _, file := range strings.Split(os.Getenv("HOSTCERT_CONFIGS"), "\n") {
		if file == "" {
			continue
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		k := &KernelValidator{}
		config, err := k.parseKernelConfig(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range strings.Split(os.Getenv("HOSTCERT_ITEMS"), "\n") {
			names := strings.Fields(item)
			if len(names) == 0 {
				continue
			}
			reporter := &lineReporter{}
			k.Reporter = reporter
			spec := KernelSpec{Optional: []KernelConfig{{Name: names[0], Aliases: names[1:]}}}
			_ = k.validateCachedKernelConfig(config, spec)
			fmt.Printf("HC\t%s\t%s\t%s\n", file, names[0], strings.Join(reporter.results, ","))
		}
	}
}
"#;

/// Runs the validators' Go code on the configs: (config path, first name) to good.
fn run_validators(work: &Work, configs: &[PathBuf]) -> BTreeMap<(String, String), bool> {
    require("go", "golang-go");
    let installed = Path::new("/usr/share/gocode/src/k8s.io/system-validators/validators");
    assert!(
        installed.is_dir(),
        "{} is missing: apt-get install golang-k8s-system-validators-dev (ci/test does)",
        installed.display()
    );
    let package = work.path("gopath/src/k8s.io/system-validators/validators");
    std::fs::create_dir_all(&package).unwrap();
    for entry in std::fs::read_dir(installed).unwrap().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = name.ends_with(".go")
            && !name.ends_with("_test.go")
            && !name.contains("windows")
            && !name.ends_with("_other.go");
        if wanted {
            std::fs::copy(entry.path(), package.join(&name)).unwrap();
        }
    }
    std::fs::write(package.join("hostcert_driver_test.go"), VALIDATOR_DRIVER).unwrap();
    let items: Vec<String> = VALIDATOR_KERNEL_CONFIGS
        .iter()
        .map(|(_, names, _)| names.join(" "))
        .collect();
    let paths: Vec<String> = configs.iter().map(|c| c.display().to_string()).collect();
    let output = Command::new("go")
        .args(["test", "-count=1", "-run", "TestHostcertDriver", "-v", "."])
        .current_dir(&package)
        .env("GO111MODULE", "off")
        .env(
            "GOPATH",
            format!("{}:/usr/share/gocode", work.path("gopath").display()),
        )
        .env("GOCACHE", work.path("gocache"))
        .env("GOFLAGS", "")
        .env("HOSTCERT_CONFIGS", paths.join("\n"))
        .env("HOSTCERT_ITEMS", items.join("\n"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go test: {}{}",
        stdout(&output),
        stderr(&output)
    );
    let mut verdicts = BTreeMap::new();
    for line in stdout(&output).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let ["HC", config, item, result] = fields.as_slice() {
            verdicts.insert(((*config).to_owned(), (*item).to_owned()), *result == "0");
        }
    }
    assert_eq!(
        verdicts.len(),
        configs.len() * VALIDATOR_KERNEL_CONFIGS.len()
    );
    verdicts
}

#[test]
fn kubernetes_node_kernel_configs_agree_with_the_validators_on_the_shared_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/kernel-configs");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    let work = Work::new();
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    configs.sort();
    assert_eq!(configs.len(), 47, "the 47 shared configs");
    let verdicts = run_validators(&work, &configs);
    // One run, one target per config.
    let mut args = vec![
        "run".to_owned(),
        "--profile".to_owned(),
        "kubernetes-node".to_owned(),
        "--report-dir".to_owned(),
        "configs".to_owned(),
    ];
    for config in &configs {
        args.push("--target".to_owned());
        args.push(format!("kernel-config:{}", config.display()));
    }
    let output = work.hostcert(&args);
    assert!(code(&output) <= 2, "{}", stderr(&output));
    let report = work.json("configs/report.json");
    let name_of: BTreeMap<String, String> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["address"].as_str().unwrap().to_owned(),
                t["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let outcomes: BTreeMap<(String, String), String> = results(&report)
        .iter()
        .map(|r| {
            (
                (
                    r["target"].as_str().unwrap_or_default().to_owned(),
                    r["check"].as_str().unwrap_or_default().to_owned(),
                ),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let (mut rows, mut agree) = (0, 0);
    let mut differing = std::collections::BTreeSet::new();
    for config in &configs {
        let target = &name_of[&format!("kernel-config:{}", config.display())];
        for (check, names, _required) in VALIDATOR_KERNEL_CONFIGS {
            rows += 1;
            let validators = verdicts[&(config.display().to_string(), names[0].to_owned())];
            let hostcert = match check {
                Some(check) => {
                    let id = format!("kubernetes.kernel-config.{check}");
                    outcomes
                        .get(&(target.clone(), id.clone()))
                        .unwrap_or_else(|| panic!("no {id} on {target}"))
                        == "pass"
                }
                // Not checked by hostcert: never flagged.
                None => true,
            };
            if validators == hostcert {
                agree += 1;
            } else {
                differing.insert(names[0]);
            }
        }
    }
    eprintln!("{agree} of {rows} (config, item) rows agree");
    let explained: std::collections::BTreeSet<&str> =
        VALIDATOR_DIFFERENCES.iter().copied().collect();
    assert_eq!(
        differing, explained,
        "differences not in the README's table, or gone"
    );
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../suites/kubernetes-node/README.md"),
    )
    .unwrap();
    let table = readme
        .split("## Compared with kubeadm's system validators")
        .nth(1)
        .unwrap();
    for item in VALIDATOR_DIFFERENCES {
        assert!(
            table.contains(&format!("| `{item}` |")),
            "{item} in the README"
        );
    }
    // The table's symbol rows are exactly the differences.
    let rows_in_table: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|item| {
            item.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert_eq!(rows_in_table, VALIDATOR_DIFFERENCES);
}

/// kubernetes-validate, from the venv ci/test makes.
fn kubernetes_validate() -> PathBuf {
    let venv = std::env::var("HOSTCERT_KUBERNETES_VALIDATE")
        .unwrap_or_else(|_| "/var/cache/hostcert-kubernetes-validate".to_owned());
    let program = Path::new(&venv).join("bin/kubernetes-validate");
    assert!(
        program.is_file(),
        "{} is missing: python3 -m venv {venv} && {venv}/bin/pip install kubernetes-validate (ci/test does)",
        program.display()
    );
    program
}

#[test]
fn the_kubernetes_examples_validate_against_kubernetes_1_35_schemas() {
    let validate = kubernetes_validate();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/examples");
    let work = Work::new();
    for name in ["kubernetes-node-job.yaml", "kubernetes-node-daemonset.yaml"] {
        let file = examples.join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        for needed in [
            "--target host-root:/host",
            "hostPID: true",
            "hostNetwork: true",
            "mountPath: /host, readOnly: true",
            "hostPath: {path: /, type: Directory}",
        ] {
            assert!(text.contains(needed), "{name} lacks {needed}");
        }
        let output = Command::new(&validate)
            .args(["--strict", "-k", "1.35.0"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{name}: {}{}",
            stdout(&output),
            stderr(&output)
        );
        // The validator is no rubber stamp: the same file with a wrong type is refused.
        let broken = work.path(name);
        std::fs::write(&broken, text.replace("hostPID: true", "hostPID: \"yes\"")).unwrap();
        let output = Command::new(&validate)
            .args(["--strict", "-k", "1.35.0"])
            .arg(&broken)
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "{name} with hostPID \"yes\" validated"
        );
    }
}

fn text(value: &str) -> Value {
    serde_json::json!({ "text": value })
}

fn record(fields: &[(&str, &str)]) -> Value {
    let map: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), text(v)))
        .collect();
    serde_json::json!({ "record": map })
}

/// Every live-only check, passing and failing: this machine's facts gathered into a snapshot,
/// one fact changed to what a passing or a failing host shows, evaluated offline.
#[test]
fn live_checks_pass_and_fail_on_snapshots() {
    let work = Work::new();
    let gather_snapshot = |profile: &str, extra: &[&str]| {
        let file = format!("{profile}.json");
        let mut args = vec!["gather", "--profile", profile, "--output", &file];
        args.extend_from_slice(extra);
        let output = work.hostcert(&args);
        assert_eq!(code(&output), 0, "{}", stderr(&output));
        work.json(&file)
    };
    let snapshots: BTreeMap<&str, Value> = [
        ("kubernetes-node", gather_snapshot("kubernetes-node", &[])),
        (
            "rootless-podman",
            gather_snapshot("rootless-podman", &["--param", "user=root"]),
        ),
    ]
    .into_iter()
    .collect();
    let probe = |json: &str| -> Value { serde_json::from_str(json).unwrap() };
    let cgroup_v2 = ("\"cgroup-mode\"", text("v2"));
    let clock = |value: &str| {
        let mut fields: Vec<(String, String)> = snapshots["kubernetes-node"]["facts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["probe"] == "probe-program")
            .unwrap()["value"]["record"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["text"].as_str().unwrap_or_default().to_owned()))
            .collect();
        fields.retain(|(k, _)| k != "clock-sync");
        fields.push(("clock-sync".to_owned(), value.to_owned()));
        let refs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        record(&refs)
    };
    type Row = (
        &'static str,
        &'static str,
        Vec<(&'static str, Value)>,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        ("kubernetes-node", "kubernetes.cgroup.v2", vec![cgroup_v2.clone()], "pass"),
        ("kubernetes-node", "kubernetes.cgroup.v2", vec![("\"cgroup-mode\"", text("v1"))], "fail"),
        ("kubernetes-node", "node.clock.synchronised", vec![("\"probe-program\"", clock("ok"))], "pass"),
        ("kubernetes-node", "node.clock.synchronised", vec![("\"probe-program\"", clock("failed: unsynchronised (adjtimex status 0x40 has STA_UNSYNC, maxerror 16000000 us)"))], "fail"),
        ("kubernetes-node", "kubernetes.swap.off", vec![("{\"file-content\":\"/proc/swaps\"}", text("Filename\tType\tSize\tUsed\tPriority"))], "pass"),
        ("kubernetes-node", "kubernetes.swap.off", vec![("{\"file-content\":\"/proc/swaps\"}", text("Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2"))], "fail"),
        ("kubernetes-node", "kubernetes.network.br-netfilter", vec![("{\"kernel-module\":\"br_netfilter\"}", text("loaded"))], "pass"),
        ("kubernetes-node", "kubernetes.network.br-netfilter", vec![("{\"kernel-module\":\"br_netfilter\"}", text("not-loaded"))], "fail"),
        ("kubernetes-node", "kubernetes.network.bridge-nf-call-iptables", vec![("{\"sysctl\":\"net.bridge.bridge-nf-call-iptables\"}", text("1"))], "pass"),
        ("kubernetes-node", "kubernetes.network.bridge-nf-call-iptables", vec![("{\"sysctl\":\"net.bridge.bridge-nf-call-iptables\"}", Value::from("absent"))], "fail"),
        ("kubernetes-node", "kubernetes.network.ip-forward", vec![("{\"sysctl\":\"net.ipv4.ip_forward\"}", text("1"))], "pass"),
        ("kubernetes-node", "kubernetes.network.ip-forward", vec![("{\"sysctl\":\"net.ipv4.ip_forward\"}", text("0"))], "fail"),
        ("kubernetes-node", "kubernetes.cgroups.required-controllers", vec![("{\"file-content\":\"/sys/fs/cgroup/cgroup.controllers\"}", text("cpuset cpu io memory hugetlb pids rdma misc"))], "pass"),
        ("kubernetes-node", "kubernetes.cgroups.required-controllers", vec![("{\"file-content\":\"/sys/fs/cgroup/cgroup.controllers\"}", text("cpuset cpu io pids"))], "fail"),
        ("kubernetes-node", "kubernetes.cgroups.optional-controllers", vec![("{\"file-content\":\"/sys/fs/cgroup/cgroup.controllers\"}", text("cpuset cpu io memory hugetlb pids"))], "pass"),
        ("kubernetes-node", "kubernetes.cgroups.optional-controllers", vec![("{\"file-content\":\"/sys/fs/cgroup/cgroup.controllers\"}", text("cpuset cpu memory pids"))], "fail"),
        ("kubernetes-node", "kubernetes.validators.os", vec![("{\"sysctl\":\"kernel.ostype\"}", text("Linux"))], "pass"),
        ("kubernetes-node", "kubernetes.validators.os", vec![("{\"sysctl\":\"kernel.ostype\"}", text("GNU/kFreeBSD"))], "fail"),
        ("kubernetes-node", "kubernetes.runtime.containerd-2", vec![("{\"runtime\":\"containerd\"}", record(&[("version", "2.1.5")]))], "pass"),
        ("kubernetes-node", "kubernetes.runtime.containerd-2", vec![("{\"runtime\":\"containerd\"}", record(&[("version", "1.7.29")]))], "fail"),
        ("kubernetes-node", "node.selinux.container-policy", vec![("{\"file-content\":\"/sys/fs/selinux/enforce\"}", text("0"))], "pass"),
        ("kubernetes-node", "node.selinux.container-policy", vec![("{\"file-content\":\"/sys/fs/selinux/enforce\"}", text("1")), ("{\"dir-list\":\"/var/lib/selinux/targeted/active/modules/200\"}", serde_json::json!({"list": ["container"]}))], "pass"),
        ("kubernetes-node", "node.selinux.container-policy", vec![("{\"file-content\":\"/sys/fs/selinux/enforce\"}", text("1")), ("{\"dir-list\":\"/var/lib/selinux/targeted/active/modules/200\"}", serde_json::json!({"list": ["unconfined"]}))], "fail"),
        ("kubernetes-node", "node.selinux.mode-configured", vec![("{\"file-content\":\"/etc/selinux/config\"}", text("SELINUX=enforcing\nSELINUXTYPE=targeted"))], "pass"),
        ("kubernetes-node", "node.selinux.mode-configured", vec![("{\"file-content\":\"/etc/selinux/config\"}", text("SELINUX=disabled\nSELINUXTYPE=targeted"))], "fail"),
        ("kubernetes-node", "node.apparmor.profiles-loaded", vec![("{\"file-content\":\"/sys/module/apparmor/parameters/enabled\"}", text("Y")), ("{\"file-content\":\"/sys/kernel/security/apparmor/profiles\"}", text("docker-default (enforce)\n/usr/bin/man (enforce)"))], "pass"),
        ("kubernetes-node", "node.apparmor.profiles-loaded", vec![("{\"file-content\":\"/sys/module/apparmor/parameters/enabled\"}", text("Y")), ("{\"file-content\":\"/sys/kernel/security/apparmor/profiles\"}", Value::from("absent"))], "fail"),
        ("kubernetes-node", "node.overlay.backing-filesystem", vec![("{\"filesystem\":\"/var/lib/containers\"}", record(&[("type", "xfs"), ("magic", "0x58465342"), ("d-type", "yes")]))], "pass"),
        ("kubernetes-node", "node.overlay.backing-filesystem", vec![("{\"filesystem\":\"/var/lib/containers\"}", record(&[("type", "xfs"), ("magic", "0x58465342"), ("d-type", "no")]))], "fail"),
        ("kubernetes-node", "node.overlay.backing-filesystem", vec![("{\"filesystem\":\"/var/lib/docker\"}", record(&[("type", "overlay"), ("magic", "0x794c7630"), ("d-type", "yes")]))], "fail"),
        ("kubernetes-node", "node.rhel7.user-namespaces", vec![("\"kernel-release\"", text("3.10.0-1160.el7.x86_64")), ("{\"os-release\":\"ID\"}", text("rhel")), ("{\"file-content\":\"/proc/cmdline\"}", text("ro crashkernel=auto user_namespace.enable=1"))], "pass"),
        ("kubernetes-node", "node.rhel7.user-namespaces", vec![("\"kernel-release\"", text("3.10.0-1160.el7.x86_64")), ("{\"os-release\":\"ID\"}", text("rhel")), ("{\"file-content\":\"/proc/cmdline\"}", text("ro crashkernel=auto"))], "fail"),
        ("rootless-podman", "rootless.cgroup-v2", vec![cgroup_v2.clone()], "pass"),
        ("rootless-podman", "rootless.cgroup-v2", vec![("\"cgroup-mode\"", text("hybrid"))], "fail"),
        ("rootless-podman", "rootless.max-user-namespaces", vec![("{\"sysctl\":\"user.max_user_namespaces\"}", text("28633"))], "pass"),
        ("rootless-podman", "rootless.max-user-namespaces", vec![("{\"sysctl\":\"user.max_user_namespaces\"}", text("0"))], "fail"),
        ("rootless-podman", "rootless.unprivileged-userns-clone", vec![("{\"sysctl\":\"kernel.unprivileged_userns_clone\"}", text("1"))], "pass"),
        ("rootless-podman", "rootless.unprivileged-userns-clone", vec![("{\"sysctl\":\"kernel.unprivileged_userns_clone\"}", text("0"))], "fail"),
        ("rootless-podman", "rootless.apparmor-userns-restriction", vec![("{\"sysctl\":\"kernel.apparmor_restrict_unprivileged_userns\"}", text("1")), ("{\"file-content\":\"/sys/kernel/security/apparmor/profiles\"}", text("podman (unconfined)\nunprivileged_userns (enforce)"))], "pass"),
        ("rootless-podman", "rootless.apparmor-userns-restriction", vec![("{\"sysctl\":\"kernel.apparmor_restrict_unprivileged_userns\"}", text("1")), ("{\"file-content\":\"/sys/kernel/security/apparmor/profiles\"}", text("unprivileged_userns (enforce)"))], "fail"),
        ("rootless-podman", "rootless.cgroup-controllers-live", vec![("{\"user-cgroup\":\"root\"}", record(&[("controllers", "cpu memory pids"), ("delegate", "pids memory cpu")]))], "pass"),
        ("rootless-podman", "rootless.cgroup-controllers-live", vec![("{\"user-cgroup\":\"root\"}", record(&[("controllers", "cpu"), ("delegate", "pids memory cpu")]))], "fail"),
        ("rootless-podman", "rootless.overlay", vec![("\"kernel-release\"", text("5.10.0-30-amd64")), ("{\"file\":\"/usr/bin/fuse-overlayfs\"}", Value::from("absent"))], "fail"),
        ("rootless-podman", "rootless.overlay", vec![("\"kernel-release\"", text("5.11.0")), ("{\"file\":\"/usr/bin/fuse-overlayfs\"}", Value::from("absent"))], "pass"),
    ];
    let mut failures = Vec::new();
    for (index, (profile, check, facts, expected)) in rows.iter().enumerate() {
        let mut snapshot = snapshots[profile].clone();
        for (key, value) in facts {
            support::set_fact(&mut snapshot, probe(key), value.clone());
            // A fact that could not be read here (no module support) is now one that was.
            for fact in snapshot["facts"].as_array_mut().unwrap() {
                if fact["probe"] == probe(key) {
                    fact.as_object_mut().unwrap().remove("error");
                }
            }
        }
        let file = format!("row-{index}.json");
        work.write(&file, &serde_json::to_string(&snapshot).unwrap());
        let mut args = vec![
            "run",
            "--profile",
            profile,
            "--facts",
            &file,
            "--report-dir",
        ];
        let dir = format!("row-{index}");
        args.push(&dir);
        if *profile == "rootless-podman" {
            args.extend_from_slice(&["--param", "user=root"]);
        }
        let output = work.hostcert(&args);
        assert!(code(&output) <= 2, "{}", stderr(&output));
        let outcome = outcome_of(&work.json(&format!("{dir}/report.json")), check);
        if outcome != *expected {
            failures.push(format!(
                "{check} with {facts:?}: {outcome}, expected {expected}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The `filesystem` probe on real filesystems, mounted from image files in a private mount
/// namespace: XFS (always ftype=1 in its v5 format, which xfs_info shows) reports entry types,
/// ext4 made without its `filetype` feature (dumpe2fs lists the features) does not, and statfs's
/// type agrees with `stat -f`.
#[test]
fn the_filesystem_probe_reads_d_type_as_xfs_info_and_dumpe2fs_tell() {
    for (tool, package) in [
        ("mkfs.xfs", "xfsprogs"),
        ("xfs_info", "xfsprogs"),
        ("mkfs.ext4", "e2fsprogs"),
        ("dumpe2fs", "e2fsprogs"),
        ("unshare", "util-linux"),
    ] {
        require(tool, package);
    }
    let work = Work::new();
    let images = [
        ("xfs", "mkfs.xfs -q -f", "320M"),
        ("ext4-filetype", "mkfs.ext4 -q -F", "64M"),
        ("ext4-no-filetype", "mkfs.ext4 -q -F -O ^filetype", "64M"),
    ];
    let mut script = String::from("set -e\n");
    let mut suite = "name: probes\nversion: 1.0.0\nchecks:\n".to_owned();
    for (name, mkfs, size) in images {
        let image = work.path(&format!("{name}.img"));
        let point = work.path(name);
        std::fs::create_dir_all(&point).unwrap();
        run("truncate", &["-s", size, image.to_str().unwrap()]);
        let mut words = mkfs.split(' ');
        let program = words.next().unwrap();
        let mut args: Vec<&str> = words.collect();
        args.push(image.to_str().unwrap());
        run(program, &args);
        script += &format!(
            "mount -o loop {image} {point}\nmkdir {point}/folder\ntouch {point}/file\n",
            image = image.display(),
            point = point.display()
        );
        suite += &format!(
            "  - id: probe.{name}\n    version: 1.0.0\n    title: t\n    severity: info\n    probes:\n      fs: {{filesystem: {}}}\n    expect: {{exists: true}}\n",
            point.display()
        );
    }
    work.write("probes/probes.yaml", &suite);
    work.write(
        "probes/profile.yaml",
        "name: probes\nversion: 1.0.0\nsuites:\n  probes: ^1\n",
    );
    script += &format!(
        "{} gather --suites probes --profiles probes --profile probes --output facts.json\n",
        support::BIN
    );
    for (name, _, _) in images {
        let point = work.path(name);
        script += &format!("stat -f -c %T {p} > {p}.stat\n", p = point.display());
        if name == "xfs" {
            script += &format!("xfs_info {p} > {p}.info\n", p = point.display());
        }
    }
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let facts = work.json("facts.json");
    let fact = |name: &str, field: &str| -> String {
        let path = work.path(name).display().to_string();
        facts["facts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["probe"]["filesystem"] == path.as_str())
            .unwrap()["value"]["record"][field]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let xfs_info = std::fs::read_to_string(work.path("xfs.info")).unwrap();
    assert!(xfs_info.contains("ftype=1"), "{xfs_info}");
    assert_eq!(fact("xfs", "type"), "xfs");
    assert_eq!(fact("xfs", "d-type"), "yes");
    for (name, filetype) in [("ext4-filetype", true), ("ext4-no-filetype", false)] {
        let features = run(
            "dumpe2fs",
            &["-h", work.path(&format!("{name}.img")).to_str().unwrap()],
        );
        let has = features
            .lines()
            .find(|l| l.starts_with("Filesystem features:"))
            .unwrap()
            .split_whitespace()
            .any(|w| w == "filetype");
        assert_eq!(has, filetype, "{name}: {features}");
        assert_eq!(fact(name, "type"), "ext4");
        assert_eq!(
            fact(name, "d-type"),
            if has { "yes" } else { "no" },
            "{name}"
        );
        let stat = std::fs::read_to_string(work.path(&format!("{name}.stat"))).unwrap();
        assert_eq!(stat.trim(), "ext2/ext3", "stat -f names ext4 by its magic");
    }
    let stat = std::fs::read_to_string(work.path("xfs.stat")).unwrap();
    assert_eq!(stat.trim(), "xfs");
}

/// An image holding Debian's runc and containerd (built with umoci from the same tree) has the
/// inventory the tree has, read from its unpacked layers, and the same advisories' verdicts.
#[test]
fn an_images_runtime_inventory_equals_its_trees() {
    require("umoci", "umoci");
    let debs = runtime_debs();
    let work = Work::new();
    let tree = work.path("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(
        tree.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    for package in ["runc", "containerd"] {
        install_deb(&tree, &deb(&debs, package));
    }
    let at = work.dir.path().to_str().unwrap().to_owned();
    for args in [
        vec!["init", "--layout", "img"],
        vec!["new", "--image", "img:1"],
        vec!["insert", "--image", "img:1", tree.to_str().unwrap(), "/"],
    ] {
        let output = Command::new("umoci")
            .args(&args)
            .current_dir(&at)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "umoci {args:?}: {}",
            stderr(&output)
        );
    }
    let from_tree = gather(
        &work,
        &format!("rootfs:{}", tree.display()),
        &runtime_probes_suite(),
    );
    let from_image = gather(&work, "oci:img:1", &runtime_probes_suite());
    for runtime in ["runc", "containerd", "podman"] {
        assert_eq!(
            runtime_record(&from_image, runtime),
            runtime_record(&from_tree, runtime),
            "{runtime}"
        );
    }
    assert_eq!(
        runtime_record(&from_image, "runc")["record"]["package-version"]["text"],
        "1.1.5+ds1-1+deb12u1"
    );
    let report = run_profile(&work, "container-runtimes", "oci:img:1");
    assert_eq!(outcome_of(&report, "runtime.runc.cve-2024-21626"), "pass");
    assert_eq!(outcome_of(&report, "runtime.runc.cve-2025-52881"), "fail");
}

/// Debian's own binaries copied by hand into /usr/local/bin, with no package database entry:
/// dockerd's `-X …dockerversion.Version` and the Go version as `go version -m` prints them,
/// runc (built without a version setting) as `unknown`, and the C programs crun and conmon by
/// the version strings they carry, which their packages' upstream versions confirm.
#[test]
fn debian_binaries_installed_by_hand_are_read_from_their_bytes() {
    let debs = runtime_debs();
    let work = Work::new();
    let unpacked = work.path("unpacked");
    for package in ["docker.io", "runc", "crun", "conmon"] {
        run(
            "dpkg-deb",
            &[
                "-x",
                deb(&debs, package).to_str().unwrap(),
                unpacked.to_str().unwrap(),
            ],
        );
    }
    let tree = work.path("tree");
    base_tree(&tree, 252);
    std::fs::create_dir_all(tree.join("usr/local/bin")).unwrap();
    for (from, name) in [
        ("usr/sbin/dockerd", "dockerd"),
        ("usr/sbin/runc", "runc"),
        ("usr/bin/crun", "crun"),
        ("usr/bin/conmon", "conmon"),
    ] {
        std::fs::copy(unpacked.join(from), tree.join("usr/local/bin").join(name)).unwrap();
    }
    let facts = gather(
        &work,
        &format!("rootfs:{}", tree.display()),
        &runtime_probes_suite(),
    );
    let field = |runtime: &str, name: &str| {
        runtime_record(&facts, runtime)["record"][name]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // dockerd: the -X setting go version -m shows.
    let (go, settings) = go_version_m(&tree.join("usr/local/bin/dockerd"));
    let ldflags = &settings["-ldflags"];
    let marker = "dockerversion.Version=";
    let at = ldflags.find(marker).unwrap() + marker.len();
    let version: String = ldflags[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\\' && *c != '"')
        .collect();
    assert_eq!(field("docker", "version"), version);
    assert_eq!(field("docker", "go-version"), go);
    assert_eq!(field("docker", "package"), "none");
    // runc: no version setting and no module version: unknown, and its advisories cannot pass.
    let (go, _) = go_version_m(&tree.join("usr/local/bin/runc"));
    assert_eq!(field("runc", "go-version"), go);
    assert_eq!(field("runc", "version"), "unknown");
    // C programs: the packages' upstream versions.
    for (runtime, package) in [("crun", "crun"), ("conmon", "conmon")] {
        let version = run(
            "dpkg-deb",
            &["-f", deb(&debs, package).to_str().unwrap(), "Version"],
        );
        let upstream = version
            .trim()
            .split(['-', '+', '~'])
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(field(runtime, "version"), upstream, "{runtime}");
    }
    let report = run_profile(
        &work,
        "container-runtimes",
        &format!("rootfs:{}", tree.display()),
    );
    assert_eq!(outcome_of(&report, "runtime.runc.cve-2024-21626"), "error");
    assert_ne!(report["verdict"], "certified");
}

/// getcap's text (libcap's cap_to_text: clauses `names=flags`, `names+flags`, `names-flags`,
/// applied in order) as sets of capability names per flag.
fn getcap_sets(text: &str) -> BTreeMap<char, std::collections::BTreeSet<String>> {
    let mut sets: BTreeMap<char, std::collections::BTreeSet<String>> = ['e', 'i', 'p']
        .into_iter()
        .map(|f| (f, Default::default()))
        .collect();
    for clause in text.split_whitespace().skip(1) {
        if clause.starts_with('[') {
            continue;
        }
        let at = clause.find(['=', '+', '-']).unwrap();
        let names: Vec<String> = clause[..at].split(',').map(str::to_owned).collect();
        let mut rest = &clause[at..];
        while let Some(op) = rest.chars().next() {
            let flags: String = rest[1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            for flag in ['e', 'i', 'p'] {
                for name in &names {
                    let set = sets.get_mut(&flag).unwrap();
                    match op {
                        '=' if flags.contains(flag) => {
                            set.insert(name.clone());
                        }
                        '=' => {
                            set.remove(name);
                        }
                        '+' if flags.contains(flag) => {
                            set.insert(name.clone());
                        }
                        '-' if flags.contains(flag) => {
                            set.remove(name);
                        }
                        _ => {}
                    }
                }
            }
            rest = &rest[1 + flags.len()..];
        }
    }
    sets
}

#[test]
fn file_capabilities_are_read_as_getcap_reads_them() {
    require("setcap", "libcap2-bin");
    require("getcap", "libcap2-bin");
    let work = Work::new();
    let tree = work.path("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    let file = tree.join("usr/bin/tool");
    let suite = "name: probes\nversion: 1.0.0\nchecks:\n  - id: probe.caps\n    version: 1.0.0\n    title: t\n    severity: info\n    probes:\n      c: {file-caps: /usr/bin/tool}\n    expect: {exists: true}\n";
    for caps in [
        "cap_setuid=ep",
        "cap_net_bind_service,cap_net_admin+ep",
        "cap_sys_admin=eip",
        "cap_chown+i cap_kill+p",
        "cap_checkpoint_restore,cap_bpf=p",
        "cap_setgid=p",
    ] {
        std::fs::copy("/bin/true", &file).unwrap();
        run("setcap", &[caps, file.to_str().unwrap()]);
        let expected = getcap_sets(&getcap(&file));
        let facts = gather(&work, &format!("rootfs:{}", tree.display()), suite);
        let value = &facts["{\"file-caps\":\"/usr/bin/tool\"}"]["value"]["record"];
        let names = |field: &str| -> std::collections::BTreeSet<String> {
            value[field]["text"]
                .as_str()
                .unwrap()
                .split(' ')
                .filter(|n| *n != "none")
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(names("permitted"), expected[&'p'], "{caps}");
        assert_eq!(names("inheritable"), expected[&'i'], "{caps}");
        // File capabilities have one effective bit: all permitted or none.
        let effective = value["effective"]["text"] == "yes";
        assert_eq!(effective, !expected[&'e'].is_empty(), "{caps}");
        if effective {
            assert_eq!(expected[&'e'], expected[&'p'], "{caps}");
        }
    }
    // No attribute: absent, as getcap prints nothing.
    std::fs::copy("/bin/true", tree.join("usr/bin/plain")).unwrap();
    assert_eq!(getcap(&tree.join("usr/bin/plain")).trim(), "");
}
