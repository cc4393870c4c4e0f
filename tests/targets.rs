//! Offline targets end to end: `kernel-config:FILE` on real distribution configs (from
//! ../shared/fixtures/kernel-configs) and `rootfs:DIR` on OS trees each test builds, including
//! hostile ones (symbolic links out of the tree, loops, FIFOs, damaged configs).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{code, outcome, result, stdout_and_stderr, target_names, Work};

/// A real kernel config from the shared fixtures beside the repository.
fn real_config(name: &str) -> PathBuf {
    support::shared_fixture(&format!("kernel-configs/{name}"))
}

/// Runs `hostcert ARGS --report-dir report -q` in the work folder (pinned to the
/// `container-host-1-0` profile unless the test names one, as `Work::hostcert` does).
fn run(work: &Work, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--report-dir", "report", "-q"]);
    work.hostcert(&all)
}

/// The JSON report of the last `run`.
fn last_report(work: &Work) -> Value {
    work.json("report/report.json")
}

#[test]
fn a_real_debian_config_is_judged_with_its_own_kernel_version() {
    let work = Work::new();
    let config = real_config("debian13-6.12.63-amd64.config");
    let address = format!("kernel-config:{}", config.display());
    let output = run(&work, &["run", "--target", &address]);
    assert_eq!(code(&output), 0, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    let target = "debian13-6.12.63-amd64";
    assert_eq!(report["targets"][0]["kind"], "kernel-config");
    assert_eq!(outcome(&report, target, "kernel.namespaces.net"), "pass");
    let net = result(&report, target, "kernel.namespaces.net");
    assert_eq!(net["evidence"][0]["fact"], "CONFIG_NET_NS");
    assert_eq!(net["evidence"][0]["source"], config.display().to_string());
    let minimum = result(&report, target, "kernel.version.minimum");
    assert_eq!(minimum["evidence"][0]["observed"], "6.12.63");
    assert_eq!(
        minimum["evidence"][0]["source"],
        format!("{} header", config.display())
    );
    assert_eq!(
        result(&report, target, "host.sysctl.ip-forward")["message"],
        "not applicable: needs a live host, this is a kernel-config target"
    );
    // A kernel config alone is never asked for facts it cannot have.
    let sources = report["targets"][0]["fact-sources"].as_object().unwrap();
    assert!(
        !sources.keys().any(|k| k.starts_with("sysctl")),
        "{sources:?}"
    );
}

#[test]
fn an_old_kernel_fails_the_minimum_and_a_headerless_config_needs_its_version() {
    let work = Work::new();
    let centos7 = format!(
        "kernel-config:{}",
        real_config("centos7-3.10.0-1160.119.1.el7-amd64.config").display()
    );
    let output = run(&work, &["run", "--target", &centos7]);
    assert_eq!(code(&output), 1, "{}", stdout_and_stderr(&output));
    assert_eq!(
        outcome(
            &last_report(&work),
            "centos7-3.10.0-1160.119.1.el7-amd64",
            "kernel.version.minimum"
        ),
        "fail"
    );

    // Photon strips the header line: the version must be given.
    let photon = format!(
        "kernel-config:{}",
        real_config("photon5-6.1.138-amd64.config").display()
    );
    let output = run(&work, &["run", "--target", &photon]);
    assert_eq!(code(&output), 2, "{}", stdout_and_stderr(&output));
    let minimum = result(
        &last_report(&work),
        "photon5-6.1.138-amd64",
        "kernel.version.minimum",
    )
    .clone();
    assert_eq!(minimum["outcome"], "error");
    assert!(
        minimum["message"]
            .as_str()
            .unwrap()
            .ends_with("the config has no `# Linux/<arch> <version> Kernel Configuration` header; give its version with --param kernel-version=X.Y.Z"),
        "{minimum}"
    );
    let output = run(
        &work,
        &[
            "run",
            "--target",
            &photon,
            "--param",
            "kernel-version=6.1.138",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stdout_and_stderr(&output));
    let minimum = result(
        &last_report(&work),
        "photon5-6.1.138-amd64",
        "kernel.version.minimum",
    )
    .clone();
    assert_eq!(minimum["evidence"][0]["source"], "--param kernel-version");
}

#[test]
fn fragments_garbage_and_damaged_files_are_refused_with_the_reason() {
    let work = Work::new();
    let fragment = format!(
        "kernel-config:{}",
        real_config("fragments/flatcar-6.12.103-amd64.config").display()
    );
    let garbage = work.write_bytes(
        "garbage.config",
        "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_NET_NS=y\nrm -rf /\n",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        &std::fs::read(real_config("debian13-6.12.63-amd64.config")).unwrap(),
    )
    .unwrap();
    let gz = gz.finish().unwrap();
    let truncated = work.write_bytes("truncated.config.gz", &gz[..gz.len() / 3]);
    let whole = work.write_bytes("whole.config.gz", &gz);
    let output = run(
        &work,
        &[
            "run",
            "--target",
            &fragment,
            "--target",
            &format!("kernel-config:{}", garbage.display()),
            "--target",
            &format!("kernel-config:{}", truncated.display()),
            "--target",
            &format!("kernel-config:{}", whole.display()),
            "--target",
            "kernel-config:missing.config",
        ],
    );
    assert_eq!(code(&output), 2, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    let errors: Vec<(String, String)> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        errors[0]
            .1
            .contains("looks like a config fragment, not a full kernel config"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        (
            "garbage".to_owned(),
            format!(
                "{}:3: not a kernel config line: `rm -rf /`",
                garbage.display()
            )
        )
    );
    assert_eq!(errors[2].0, "truncated.config.gz");
    assert!(
        errors[2].1.contains("is not a readable gzip file"),
        "{errors:?}"
    );
    assert_eq!(
        errors[3],
        ("whole.config.gz".to_owned(), String::new()),
        "gzip is read"
    );
    assert_eq!(
        errors[4],
        (
            "missing".to_owned(),
            "cannot read missing.config: No such file or directory (os error 2)".to_owned()
        )
    );
    assert_eq!(
        outcome(&report, "whole.config.gz", "kernel.namespaces.net"),
        "pass"
    );
    assert_eq!(
        outcome(&report, "garbage", "kernel.namespaces.net"),
        "error"
    );
}

/// A small OS tree: os-release and one kernel with a real config.
fn debian_tree(work: &Work, root: &str) {
    work.write_bytes(
        &format!("{root}/etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 13\"\nID=debian\nVERSION_ID=\"13\"\n",
    );
    work.write_bytes(&format!("{root}/etc/hostname"), "builder\n");
    let config = std::fs::read(real_config("debian13-6.12.63-amd64.config")).unwrap();
    work.write_bytes(&format!("{root}/boot/config-6.12.63-amd64"), config);
    std::fs::create_dir_all(work.path(&format!("{root}/lib/modules/6.12.63-amd64/kernel")))
        .unwrap();
}

#[test]
fn an_os_tree_is_judged_by_its_own_kernel_and_files() {
    let work = Work::new();
    debian_tree(&work, "tree");
    let output = run(&work, &["run", "--target", "rootfs:tree"]);
    assert_eq!(code(&output), 0, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    assert_eq!(report["targets"][0]["name"], "tree");
    assert_eq!(report["targets"][0]["kind"], "os-tree");
    assert_eq!(report["targets"][0]["hostname"], "builder");
    let net = result(&report, "tree", "kernel.namespaces.net");
    assert_eq!(net["evidence"][0]["source"], "/boot/config-6.12.63-amd64");
    assert_eq!(outcome(&report, "tree", "host.os.release"), "pass");
    assert_eq!(
        result(&report, "tree", "host.cgroups.mounted")["message"],
        "not applicable: needs a live host, this is an os-tree target"
    );
    let release = result(&report, "tree", "kernel.version.minimum");
    assert_eq!(release["evidence"][0]["observed"], "6.12.63-amd64");
}

#[test]
fn a_tree_with_two_kernels_gives_two_named_targets_or_the_one_chosen() {
    let work = Work::new();
    debian_tree(&work, "tree");
    let old = std::fs::read(real_config("centos7-3.10.0-1160.119.1.el7-amd64.config")).unwrap();
    work.write_bytes("tree/lib/modules/3.10.0-1160.el7.x86_64/config", old);
    let output = run(&work, &["run", "--target", "rootfs:tree"]);
    assert_eq!(
        code(&output),
        1,
        "the 3.10 kernel is below the minimum:\n{}",
        stdout_and_stderr(&output)
    );
    let report = last_report(&work);
    let names = target_names(&report);
    assert_eq!(names, ["tree@3.10.0-1160.el7.x86_64", "tree@6.12.63-amd64"]);
    assert_eq!(
        outcome(
            &report,
            "tree@3.10.0-1160.el7.x86_64",
            "kernel.version.minimum"
        ),
        "fail"
    );
    assert_eq!(
        result(
            &report,
            "tree@3.10.0-1160.el7.x86_64",
            "kernel.namespaces.net"
        )["evidence"][0]["source"],
        "/lib/modules/3.10.0-1160.el7.x86_64/config"
    );

    let chosen = run(
        &work,
        &[
            "run",
            "--target",
            "rootfs:tree",
            "--param",
            "kernel-version=6.12.63-amd64",
        ],
    );
    assert_eq!(code(&chosen), 0, "{}", stdout_and_stderr(&chosen));
    assert_eq!(last_report(&work)["targets"].as_array().unwrap().len(), 1);

    let absent = run(
        &work,
        &[
            "run",
            "--target",
            "rootfs:tree",
            "--param",
            "kernel-version=9.9",
        ],
    );
    assert_eq!(code(&absent), 2);
    assert_eq!(
        last_report(&work)["targets"][0]["error"],
        "no kernel 9.9 in the tree (it has: 3.10.0-1160.el7.x86_64, 6.12.63-amd64)"
    );
}

#[test]
fn a_tree_without_a_kernel_says_so_for_every_kernel_check() {
    let work = Work::new();
    work.write_bytes("image/etc/os-release", "ID=alpine\n");
    let output = run(&work, &["run", "--target", "rootfs:image"]);
    assert_eq!(code(&output), 2, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    let net = result(&report, "image", "kernel.namespaces.net");
    assert_eq!(net["outcome"], "error");
    assert!(
        net["message"].as_str().unwrap().contains("no kernel found in this tree (looked for /boot/config-*, /lib/modules/*/, /usr/lib/modules/*/, /usr/lib/ostree-boot/config-*, /boot/ostree/*/config-*, /snap/*/current/config-*, and a kernel build's .config with include/config/kernel.release)"),
        "{net}"
    );
    assert_eq!(outcome(&report, "image", "host.os.release"), "pass");
}

/// Guards that nothing outside the tree is read: links out of it, absolute or relative, resolve
/// inside it, as they would for a process chrooted into the tree.
#[test]
fn symbolic_links_never_lead_out_of_the_tree() {
    let work = Work::new();
    debian_tree(&work, "tree");
    work.write_bytes("outside/os-release", "ID=outside-the-tree\n");
    std::fs::remove_file(work.path("tree/etc/os-release")).unwrap();
    let escape = format!(
        "../../../../../../../../{}/outside/os-release",
        work.dir.path().display()
    );
    work.symlink(&escape, "tree/etc/os-release");
    work.symlink(
        &format!("{}/outside/os-release", work.dir.path().display()),
        "tree/usr/lib/os-release",
    );
    let output = run(&work, &["run", "--target", "rootfs:tree"]);
    assert!(
        matches!(code(&output), 0 | 1),
        "{}",
        stdout_and_stderr(&output)
    );
    let os = result(&last_report(&work), "tree", "host.os.release").clone();
    assert_eq!(os["outcome"], "fail", "{os}");
    assert_eq!(os["evidence"][0]["observed"], "absent");

    // Inside the tree, links work as on the installed system.
    std::fs::remove_file(work.path("tree/etc/os-release")).unwrap();
    work.write_bytes("tree/usr/lib/real-os-release", "ID=debian\n");
    work.symlink("../usr/lib/real-os-release", "tree/etc/os-release");
    run(&work, &["run", "--target", "rootfs:tree"]);
    assert_eq!(
        outcome(&last_report(&work), "tree", "host.os.release"),
        "pass"
    );
}

#[test]
fn link_loops_and_fifos_in_a_tree_are_errors_not_hangs() {
    let work = Work::new();
    debian_tree(&work, "tree");
    std::fs::remove_file(work.path("tree/etc/os-release")).unwrap();
    work.symlink("os-release-b", "tree/etc/os-release");
    work.symlink("os-release", "tree/etc/os-release-b");
    // host.os.release is low severity: its error does not decide the verdict.
    let output = run(&work, &["run", "--target", "rootfs:tree"]);
    assert_eq!(code(&output), 0, "{}", stdout_and_stderr(&output));
    let os = result(&last_report(&work), "tree", "host.os.release").clone();
    assert_eq!(os["outcome"], "error", "{os}");
    assert!(
        os["message"]
            .as_str()
            .unwrap()
            .contains("/etc/os-release: too many levels of symbolic links in the tree"),
        "{os}"
    );

    std::fs::remove_file(work.path("tree/etc/os-release")).unwrap();
    let status = Command::new("mkfifo")
        .arg(work.path("tree/etc/os-release"))
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(status.success());
    // host.os.release is low severity: its error does not decide the verdict.
    let output = run(&work, &["run", "--target", "rootfs:tree"]);
    assert_eq!(code(&output), 0, "{}", stdout_and_stderr(&output));
    let os = result(&last_report(&work), "tree", "host.os.release").clone();
    assert_eq!(os["outcome"], "error", "{os}");
    assert!(
        os["message"]
            .as_str()
            .unwrap()
            .contains("/etc/os-release: a FIFO, not a regular file"),
        "{os}"
    );
}

#[test]
fn several_configs_print_and_record_a_matrix_of_targets_by_check_groups() {
    let work = Work::new();
    let mut args = vec!["run".to_owned()];
    for name in ["debian13-6.12.63-amd64", "android16-gki-6.12.58-arm64"] {
        args.push("--target".to_owned());
        args.push(format!(
            "kernel-config:{}",
            real_config(&format!("{name}.config")).display()
        ));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&work, &args);
    assert_eq!(code(&output), 1, "{}", stdout_and_stderr(&output));
    let printed = stdout_and_stderr(&output);
    let header = printed
        .lines()
        .find(|l| l.starts_with("target "))
        .expect("a matrix header");
    assert!(
        header.contains(" namespaces ") && header.ends_with(" verdict"),
        "{header}"
    );
    assert!(
        !header.contains("sysctl"),
        "groups where nothing applied are left out: {header}"
    );
    let android = printed
        .lines()
        .find(|l| l.starts_with("android16-gki-6.12.58-arm64 "))
        .unwrap();
    assert!(
        android.contains("!2/3/1") && android.ends_with("not certified"),
        "{android}"
    );
    let debian = printed
        .lines()
        .find(|l| l.starts_with("debian13-6.12.63-amd64 "))
        .unwrap();
    assert!(
        debian.ends_with(" certified") && !debian.contains('!'),
        "{debian}"
    );
    let report = last_report(&work);
    let groups = &report["targets"][1]["groups"]["namespaces"];
    assert_eq!(
        (
            groups["pass"].as_u64(),
            groups["fail"].as_u64(),
            groups["gating-fail"].as_u64()
        ),
        (Some(2), Some(3), Some(2)),
        "user namespaces are not gating"
    );
}

/// On an OS tree a feature built as a module (`=m`) is only there if the module is installed.
#[test]
fn a_module_built_feature_needs_its_module_in_the_tree() {
    let work = Work::new();
    debian_tree(&work, "tree");
    work.write_bytes(
        "tree/lib/modules/6.12.63-amd64/kernel/fs/overlayfs/overlay.ko.xz",
        b"",
    );
    let suites = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/suites-modules");
    let suites = suites.to_str().unwrap();
    let run = |work: &Work| {
        run(
            work,
            &[
                "run",
                "--suites",
                suites,
                "--profile",
                "modules-demo",
                "--target",
                "rootfs:tree",
            ],
        )
    };
    let output = run(&work);
    assert_eq!(code(&output), 1, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    assert_eq!(outcome(&report, "tree", "modules-demo.overlay"), "pass");
    let bridge = result(&report, "tree", "modules-demo.br-netfilter");
    assert_eq!(bridge["outcome"], "fail");
    let evidence: Vec<(&str, &str)> = bridge["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["fact"].as_str().unwrap(), e["observed"].as_str().unwrap()))
        .collect();
    assert_eq!(
        evidence,
        [
            ("CONFIG_BRIDGE_NETFILTER", "m"),
            ("kernel-module br_netfilter", "no such module")
        ]
    );

    // modules.dep, as depmod writes it, is read when present.
    work.write_bytes(
        "tree/lib/modules/6.12.63-amd64/modules.dep",
        "kernel/fs/overlayfs/overlay.ko.xz:\nkernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\n",
    );
    let output = run(&work);
    assert_eq!(code(&output), 0, "{}", stdout_and_stderr(&output));
    let bridge = result(&last_report(&work), "tree", "modules-demo.br-netfilter").clone();
    assert_eq!(bridge["evidence"][1]["observed"], "not-loaded");
    assert_eq!(
        bridge["evidence"][1]["source"],
        "/lib/modules/6.12.63-amd64"
    );
}

/// The built-in suite asks an OS tree for the modules of the features its config builds as
/// modules (issue 3: on an OS tree a module must also exist under lib/modules/<version>/).
#[test]
fn the_built_in_suite_fails_a_tree_that_lacks_a_module_its_config_needs() {
    let work = Work::new();
    debian_tree(&work, "tree");
    let modules = "tree/lib/modules/6.12.63-amd64/kernel";
    for module in [
        "fs/overlayfs/overlay",
        "net/bridge/bridge",
        "drivers/net/veth",
        "net/netfilter/nf_nat",
        "net/netfilter/xt_conntrack",
        "net/netfilter/xt_addrtype",
    ] {
        work.write_bytes(&format!("{modules}/{module}.ko.xz"), b"");
    }
    let output = run(
        &work,
        &[
            "run",
            "--profile",
            "container-host",
            "--target",
            "rootfs:tree",
            "kernel.modules",
        ],
    );
    assert_eq!(code(&output), 1, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    assert_eq!(outcome(&report, "tree", "kernel.modules.overlay"), "pass");
    let bridge = result(&report, "tree", "kernel.modules.br-netfilter");
    assert_eq!(bridge["outcome"], "fail");
    assert_eq!(bridge["evidence"][0]["observed"], "m");
    assert_eq!(bridge["evidence"][1]["observed"], "no such module");
    // A kernel config alone cannot say which modules are installed: the checks do not apply.
    let config = format!(
        "kernel-config:{}",
        real_config("debian13-6.12.63-amd64.config").display()
    );
    run(
        &work,
        &[
            "run",
            "--profile",
            "container-host",
            "--target",
            &config,
            "kernel.modules",
        ],
    );
    let skipped = result(
        &last_report(&work),
        "debian13-6.12.63-amd64",
        "kernel.modules.overlay",
    )
    .clone();
    assert_eq!(skipped["outcome"], "skip");
}

/// `--images FILE` gives the matrix's rows, one address a line, in the file's order after the
/// `--image` ones (blank lines and `#` comments skipped); a line that is no image is named with
/// the file and its line before any target is read, and a file that names no image is refused
/// rather than the run falling back to the hosts alone.
#[test]
fn an_images_file_gives_the_rows_of_the_matrix_and_a_bad_line_is_named() {
    let work = Work::new();
    for tree in ["host", "img-a", "img-b", "img-c"] {
        debian_tree(&work, tree);
    }
    work.write(
        "bad.txt",
        "rootfs:img-a\n# fine so far\nnot-a-scheme:img-b\n",
    );
    let output = run(
        &work,
        &[
            "run",
            "--profile",
            "isv-container",
            "--images",
            "bad.txt",
            "--target",
            "rootfs:host",
        ],
    );
    assert_eq!(code(&output), 2, "{}", stdout_and_stderr(&output));
    assert!(
        stdout_and_stderr(&output).contains("--images bad.txt:3: "),
        "{}",
        stdout_and_stderr(&output)
    );
    assert!(!work.path("report").exists(), "nothing is written");

    work.write("empty.txt", "# no image yet\n\n");
    let output = run(
        &work,
        &["run", "--images", "empty.txt", "--target", "rootfs:host"],
    );
    assert_eq!(code(&output), 2, "{}", stdout_and_stderr(&output));
    assert!(
        stdout_and_stderr(&output).contains("empty.txt names no image"),
        "{}",
        stdout_and_stderr(&output)
    );
    assert!(!work.path("report").exists(), "nothing is written");

    work.write(
        "images.txt",
        "# the rows of the matrix\nrootfs:img-b\n\n   # indented comment\n  rootfs:img-c  \n",
    );
    let output = run(
        &work,
        &[
            "run",
            "--profile",
            "isv-container",
            "--image",
            "rootfs:img-a",
            "--images",
            "images.txt",
            "--target",
            "rootfs:host",
        ],
    );
    assert!(code(&output) <= 2, "{}", stdout_and_stderr(&output));
    let report = last_report(&work);
    let names: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["img-a@host", "img-b@host", "img-c@host"]);
    assert_eq!(
        report["matrix"]["images"],
        serde_json::json!(["img-a", "img-b", "img-c"])
    );
    assert_eq!(report["matrix"]["hosts"], serde_json::json!(["host"]));
}
