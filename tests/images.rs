//! Image targets end to end: images built with Debian's umoci from a busybox-static rootfs,
//! copied with skopeo, signed with gpg and skopeo, tampered with; Red Hat's container checks on
//! one image that passes them all and one that fails each; and hostile layouts built byte by
//! byte, each refused with the entry named and nothing written outside the run's folder.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use support::*;

/// Runs a tool, failing the test with its output when it fails.
fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

fn require_image_tools() {
    require("umoci", "umoci");
    require("skopeo", "skopeo");
    require("/bin/busybox", "busybox-static");
}

/// How a test image differs from the one that passes every Red Hat check.
#[derive(Clone)]
struct Spec {
    tag: &'static str,
    user: Option<&'static str>,
    labels: Vec<(&'static str, &'static str)>,
    licenses: bool,
    extra_layers: usize,
    dpkg_packages: Vec<&'static str>,
    sbom: bool,
    /// A later layer copies another file over /bin/busybox, which busybox-static owns.
    overwrite_busybox: bool,
}

impl Spec {
    fn good() -> Spec {
        Spec {
            tag: "1.0",
            user: Some("app"),
            labels: vec![
                ("name", "hcc-busybox"),
                ("vendor", "Example"),
                ("version", "1.0"),
                ("release", "1"),
                ("summary", "tiny test image"),
                ("description", "busybox-static rootfs"),
                ("maintainer", "hcc-test@example.invalid"),
                ("org.opencontainers.image.base.name", "scratch"),
            ],
            licenses: true,
            extra_layers: 0,
            dpkg_packages: vec!["busybox-static"],
            sbom: true,
            overwrite_busybox: false,
        }
    }
}

/// Builds an OCI layout `dir` holding one image tagged `spec.tag`, with umoci.
fn build_image(work: &Work, dir: &str, spec: &Spec) -> PathBuf {
    require_image_tools();
    let root = work.path(&format!("{dir}-rootfs"));
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n",
    );
    write("etc/os-release", "ID=busybox\nVERSION_ID=1.35\n");
    let mut status = String::new();
    for package in &spec.dpkg_packages {
        status += &format!("Package: {package}\nStatus: install ok installed\nVersion: 1.0\n\n");
    }
    write("var/lib/dpkg/status", &status);
    write(
        "var/lib/dpkg/info/busybox-static.list",
        "/.\n/bin\n/bin/busybox\n",
    );
    if spec.licenses {
        write("licenses/LICENSE", "Apache-2.0\n");
    }
    if spec.sbom {
        write("sbom/image.spdx.json", "{\"spdxVersion\":\"SPDX-2.3\"}\n");
    }
    let image = format!("{dir}:{}", spec.tag);
    let at = work.dir.path();
    tool(at, "umoci", &["init", "--layout", dir]);
    tool(at, "umoci", &["new", "--image", &image]);
    let rootfs = root.display().to_string();
    tool(at, "umoci", &["insert", "--image", &image, &rootfs, "/"]);
    for index in 0..spec.extra_layers {
        let file = work.path(&format!("{dir}-extra-{index}"));
        std::fs::write(&file, format!("layer {index}\n")).unwrap();
        let file = file.display().to_string();
        tool(
            at,
            "umoci",
            &[
                "insert",
                "--image",
                &image,
                &file,
                &format!("/extra/{index}"),
            ],
        );
    }
    if spec.overwrite_busybox {
        let file = work.path(&format!("{dir}-patched-busybox"));
        std::fs::write(&file, "#!/bin/sh\necho patched\n").unwrap();
        let file = file.display().to_string();
        tool(
            at,
            "umoci",
            &["insert", "--image", &image, &file, "/bin/busybox"],
        );
    }
    let mut args: Vec<String> = vec![
        "config".into(),
        "--image".into(),
        image.clone(),
        "--config.cmd".into(),
        "/bin/sh".into(),
        "--author".into(),
        "hcc test".into(),
    ];
    if let Some(user) = spec.user {
        args.push("--config.user".into());
        args.push(user.into());
    }
    for (key, value) in &spec.labels {
        args.push("--config.label".into());
        args.push(format!("{key}={value}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tool(at, "umoci", &args);
    tool(at, "umoci", &["gc", "--layout", dir]);
    work.path(dir)
}

/// Runs `hostcert run --profile isv-image` on targets, with TMPDIR inside the work folder so
/// that the test can see the run left nothing behind.
fn run_image(work: &Work, args: &[&str]) -> Output {
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args(["run", "--profile", "isv-image", "--report-dir", "report"])
        .args(args)
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .output()
        .expect("hostcert runs");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(
        left.is_empty(),
        "the run left files in its temporary folder: {left:?}"
    );
    output
}

/// The outcome of one check on the only target of `report/report.json`.
fn outcome(work: &Work, check: &str) -> (String, Value) {
    let report = work.json("report/report.json");
    let results = report["results"].as_array().unwrap();
    let result = results
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no result for {check}"));
    (
        result["outcome"].as_str().unwrap().to_owned(),
        result.clone(),
    )
}

const RED_HAT_CHECKS: &[&str] = &[
    "image.redhat.required-labels",
    "image.redhat.licenses",
    "image.redhat.layer-count",
    "image.redhat.non-root",
    "image.redhat.unique-tag",
    "image.redhat.prohibited-packages",
    "image.redhat.modified-package-files",
    "image.redhat.base-image",
    "image.redhat.sbom",
];

#[test]
fn a_good_image_passes_integrity_and_every_red_hat_check() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let output = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    let out = stdout(&output);
    assert_eq!(code(&output), 0, "{out}{}", stderr(&output));
    assert!(out.contains("verdict: CERTIFIED"), "{out}");
    for check in RED_HAT_CHECKS
        .iter()
        .chain(&["image.integrity.blobs", "image.integrity.diff-ids"])
    {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}");
    }
    // The evidence names the manifest the blobs hang from, and the user as resolved.
    let (_, blobs) = outcome(&work, "image.integrity.blobs");
    let manifest = tool(
        work.dir.path(),
        "sh",
        &[
            "-c",
            "sed 's/.*\"digest\":\"\\([^\"]*\\)\".*/\\1/' img/index.json",
        ],
    );
    assert!(
        blobs.to_string().contains(manifest.trim()),
        "{blobs} names {manifest}"
    );
    let (_, user) = outcome(&work, "image.redhat.non-root");
    assert!(user.to_string().contains("1001"), "{user}");
    assert!(user.to_string().contains("via /etc/passwd"), "{user}");
}

#[test]
fn each_red_hat_check_fails_on_an_image_made_to_fail_it() {
    let work = Work::new();
    let good = Spec::good();
    let cases: Vec<(&str, Spec, &str)> = vec![
        (
            "image.redhat.required-labels",
            Spec {
                labels: good
                    .labels
                    .iter()
                    .copied()
                    .filter(|(k, _)| *k != "maintainer")
                    .collect(),
                ..good.clone()
            },
            "image-label maintainer = absent",
        ),
        (
            "image.redhat.licenses",
            Spec {
                licenses: false,
                ..good.clone()
            },
            "image-info licenses = absent",
        ),
        (
            "image.redhat.layer-count",
            Spec {
                extra_layers: 40,
                ..good.clone()
            },
            "image-info layer-count = 41",
        ),
        (
            "image.redhat.non-root",
            Spec {
                user: Some("root"),
                ..good.clone()
            },
            "image-info user = 0",
        ),
        (
            "image.redhat.unique-tag",
            Spec {
                tag: "latest",
                ..good.clone()
            },
            "image-info tag = latest",
        ),
        (
            "image.redhat.prohibited-packages",
            Spec {
                dpkg_packages: vec!["busybox-static", "linux-image-amd64"],
                ..good.clone()
            },
            "image-info packages has linux-image-amd64",
        ),
        (
            "image.redhat.modified-package-files",
            Spec {
                overwrite_busybox: true,
                ..good.clone()
            },
            "image-info modified-package-files = /bin/busybox (package busybox-static, layer 1)",
        ),
        (
            "image.redhat.base-image",
            Spec {
                labels: good
                    .labels
                    .iter()
                    .copied()
                    .filter(|(k, _)| !k.starts_with("org.opencontainers"))
                    .collect(),
                ..good.clone()
            },
            "image-info base-image = absent",
        ),
        (
            "image.redhat.sbom",
            Spec {
                sbom: false,
                ..good.clone()
            },
            "image-info sbom = absent",
        ),
    ];
    for (index, (check, spec, observed)) in cases.iter().enumerate() {
        let dir = format!("bad{index}");
        build_image(&work, &dir, spec);
        let target = format!("oci:{dir}:{}", spec.tag);
        let output = run_image(&work, &["--target", &target, "--skip", "image.signature"]);
        let out = stdout(&output);
        assert_eq!(code(&output), 1, "{check}: {out}{}", stderr(&output));
        for other in RED_HAT_CHECKS {
            let (outcome, result) = outcome(&work, other);
            let wanted = if other == check { "fail" } else { "pass" };
            assert_eq!(outcome, wanted, "{check} case, {other}: {result}");
        }
        let (_, result) = outcome(&work, check);
        assert!(
            result.to_string().contains(observed),
            "{check}: {result} should say {observed}"
        );
    }
}

#[test]
fn archives_are_read_like_layouts_and_tampering_is_named() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let at = work.dir.path();
    // oci-archive: a tar of the layout, as skopeo writes it.
    tool(
        at,
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "oci:img:1.0",
            "oci-archive:img.tar:1.0",
        ],
    );
    tool(
        at,
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "oci:img:1.0",
            "docker-archive:docker.tar:registry.example/hcc/busybox:1.0",
        ],
    );
    for target in ["oci-archive:img.tar:1.0", "docker-archive:docker.tar"] {
        let output = run_image(&work, &["--target", target, "--skip", "image.signature"]);
        let out = stdout(&output);
        for check in ["image.integrity.blobs", "image.integrity.diff-ids"]
            .iter()
            .chain(RED_HAT_CHECKS.iter().filter(|c| !c.ends_with("base-image")))
        {
            let (outcome, result) = outcome(&work, check);
            assert_eq!(outcome, "pass", "{target} {check}: {result}\n{out}");
        }
    }
    // A docker archive names its reference.
    let (_, tag) = outcome(&work, "image.redhat.unique-tag");
    assert!(tag.to_string().contains("image-info tag = 1.0"), "{tag}");

    // Tampering: one byte of the layer, then the manifest.
    let index: Value = serde_json::from_str(&work.read("img/index.json")).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let manifest_path = work.path(&format!(
        "img/blobs/sha256/{}",
        manifest_digest.trim_start_matches("sha256:")
    ));
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let layer_path = work.path(&format!(
        "img/blobs/sha256/{}",
        layer.trim_start_matches("sha256:")
    ));
    let original = std::fs::read(&layer_path).unwrap();
    let mut tampered = original.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x55;
    std::fs::write(&layer_path, &tampered).unwrap();
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:img:1.0",
            "--skip",
            "image.signature",
            "--skip",
            "image.redhat",
        ],
    );
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome_blobs, result) = outcome(&work, "image.integrity.blobs");
    assert_eq!(outcome_blobs, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("layer {layer}: its sha256 is")),
        "{result}"
    );
    std::fs::write(&layer_path, &original).unwrap();

    let mut text = std::fs::read_to_string(&manifest_path).unwrap();
    text = text.replacen("\"schemaVersion\":2", "\"schemaVersion\": 2", 1);
    std::fs::write(&manifest_path, text).unwrap();
    let output = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome_blobs, result) = outcome(&work, "image.integrity.blobs");
    assert_eq!(outcome_blobs, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("manifest {manifest_digest}:")),
        "{result}"
    );
}

// ---- hostile layouts, built byte by byte ----

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One raw tar entry: a ustar header (checksum computed) and the data, padded.
fn entry(name: &str, kind: u8, data: &[u8], link: &str, declared: Option<u64>) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    let size = declared.unwrap_or(data.len() as u64);
    header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn end() -> Vec<u8> {
    vec![0u8; 1024]
}

/// Writes an OCI layout of one image, tagged `1.0`, whose single layer is `layer` (a plain
/// tar, or gzip when `gzip`). `edit` may change the manifest before it is written.
fn layout(dir: &Path, layer: &[u8], gzip: bool, edit: impl Fn(&mut Value)) {
    let diff_id = format!("sha256:{}", sha256(layer));
    let blob = if gzip {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(layer).unwrap();
        encoder.finish().unwrap()
    } else {
        layer.to_vec()
    };
    layout_blob(dir, &blob, &diff_id, gzip, edit);
}

/// Writes an OCI layout of one image, tagged `1.0`, whose single layer blob is `blob`.
fn layout_blob(dir: &Path, blob: &[u8], diff_id: &str, gzip: bool, edit: impl Fn(&mut Value)) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest), bytes).unwrap();
        format!("sha256:{digest}")
    };
    let layer_digest = put(blob);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "1000", "Labels": {"name": "hostile"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap();
    let config_digest = put(&config);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{
            "mediaType": if gzip { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" },
            "digest": layer_digest, "size": blob.len()
        }]
    });
    edit(&mut manifest);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(&manifest);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": "1.0"}
            }]
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}").unwrap();
}

/// Runs the image checks on a hostile layout and returns stdout and stderr.
fn run_hostile(work: &Work, dir: &str) -> String {
    let output = run_image(
        work,
        &[
            "--target",
            &format!("oci:{dir}:1.0"),
            "--skip",
            "image.signature",
        ],
    );
    assert_ne!(code(&output), 0, "{}", stdout(&output));
    format!("{}{}", stdout(&output), stderr(&output))
}

#[test]
fn hostile_layers_are_refused_with_the_entry_named_and_nothing_written_outside() {
    let work = Work::new();
    let file = |name: &str| entry(name, b'0', b"hello\n", "", None);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            [file("../escaped"), end()].concat(),
            "entry `../escaped`: a path with `..` is not allowed",
        ),
        (
            "absolute",
            [file("/etc/escaped"), end()].concat(),
            "entry `/etc/escaped`: an absolute path is not allowed",
        ),
        (
            "symlink-out",
            [
                entry("link", b'2', b"", "../../../../etc/passwd", None),
                end(),
            ]
            .concat(),
            "entry `link`: a symbolic link to `../../../../etc/passwd`, outside the image",
        ),
        (
            "hardlink-out",
            [entry("hard", b'1', b"", "../outside", None), end()].concat(),
            "entry `hard`: a hard link to `../outside`, outside the image",
        ),
        (
            "device",
            [entry("dev/sda", b'4', b"", "", None), end()].concat(),
            "entry `dev/sda`: a device node, which an image may not carry",
        ),
        (
            "duplicate",
            [file("etc/motd"), file("etc/motd"), end()].concat(),
            "entry `etc/motd`: appears twice in the layer",
        ),
        (
            "size-lies",
            entry("big", b'0', b"only a few bytes\n", "", Some(100_000)),
            "entry `big`: cut short",
        ),
    ];
    for (dir, layer, expected) in &cases {
        layout(&work.path(dir), layer, true, |_| {});
        let out = run_hostile(&work, dir);
        assert!(
            out.contains(expected),
            "{dir}: expected `{expected}` in\n{out}"
        );
        assert!(!work.path("escaped").exists() && !work.path("tmp/escaped").exists());
    }
}

#[test]
fn hostile_metadata_is_refused_with_bounds() {
    let work = Work::new();
    let layer = [entry("etc/motd", b'0', b"hi\n", "", None), end()].concat();
    // A gzip bomb: a file of 100 MiB of zeros compresses to about 100 KiB, made by gzip.
    let header = entry("zeros", b'0', b"", "", Some(100 << 20));
    std::fs::write(work.path("zeros-header"), &header[..512]).unwrap();
    tool(
        work.dir.path(),
        "sh",
        &[
            "-c",
            "{ cat zeros-header; head -c 104858624 /dev/zero; } | gzip -9 > bomb.gz",
        ],
    );
    let blob = std::fs::read(work.path("bomb.gz")).unwrap();
    assert!(blob.len() < 200 << 10, "gzip -9 makes a small bomb");
    layout_blob(
        &work.path("bomb"),
        &blob,
        &format!("sha256:{}", "0".repeat(64)),
        true,
        |_| {},
    );
    let out = run_hostile(&work, "bomb");
    assert!(out.contains("refused as a decompression bomb"), "{out}");
    assert!(out.contains("entry `zeros`"), "{out}");

    // A manifest of 5 MiB.
    layout(&work.path("huge"), &layer, false, |manifest| {
        manifest["annotations"] = json!({"padding": "x".repeat(5 << 20)});
    });
    let out = run_hostile(&work, "huge");
    assert!(out.contains("more than the 4 MiB hostcert reads"), "{out}");

    // A layer digest of another algorithm.
    layout(&work.path("sha512"), &layer, false, |manifest| {
        manifest["layers"][0]["digest"] = json!(format!("sha512:{}", "ab".repeat(64)));
    });
    let out = run_hostile(&work, "sha512");
    assert!(
        out.contains("uses the algorithm `sha512`; hostcert verifies sha256 digests only"),
        "{out}"
    );

    // A layer whose size the manifest misstates.
    layout(&work.path("size"), &layer, false, |manifest| {
        manifest["layers"][0]["size"] = json!(12);
    });
    let out = run_hostile(&work, "size");
    assert!(out.contains("bytes, the descriptor says 12"), "{out}");
}

// ---- signatures: hostcert's verdict equals skopeo's under the same policy.json ----

/// A throwaway GnuPG home with signing keys; its agent is stopped when dropped.
struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(work: &Work) -> Gpg {
        require("gpg", "gpg");
        let home = work.path("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        Gpg { home }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("GNUPGHOME", &self.home);
        command
    }

    /// Makes a key for `email`, exports its public key to `file`, and returns its fingerprint.
    fn key(&self, email: &str, file: &Path) -> String {
        let output = self
            .command("gpg")
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args([
                "--quick-gen-key",
                &format!("HCC Test <{email}>"),
                "rsa2048",
                "sign",
                "1d",
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let output = self
            .command("gpg")
            .args(["--list-keys", "--with-colons", email])
            .output()
            .unwrap();
        let fingerprint = stdout(&output)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_owned())
            })
            .expect("a fingerprint");
        let output = self
            .command("gpg")
            .args(["--export", &fingerprint])
            .output()
            .unwrap();
        std::fs::write(file, &output.stdout).unwrap();
        fingerprint
    }

    /// Runs skopeo with this GnuPG home.
    fn skopeo(&self, at: &Path, args: &[&str]) -> Output {
        self.command("skopeo")
            .args(args)
            .current_dir(at)
            .output()
            .unwrap()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = self.command("gpgconf").args(["--kill", "all"]).output();
    }
}

const REFERENCE: &str = "registry.example/hcc/busybox:1.0";

/// Flips one byte in the middle of a file.
fn flip(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The digest of the manifest tagged 1.0 in a layout.
fn manifest_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn gpg_signatures_are_judged_as_skopeo_judges_them() {
    let work = Work::new();
    let at = work.dir.path();
    build_image(&work, "img", &Spec::good());
    let gpg = Gpg::new(&work);
    let signer = gpg.key("signer@example.invalid", &work.path("signer.gpg"));
    let other = gpg.key("other@example.invalid", &work.path("other.gpg"));
    let requirement = json!({
        "type": "signedBy", "keyType": "GPGKeys",
        "keyPath": work.path("signer.gpg"),
        "signedIdentity": {"type": "exactReference", "dockerReference": REFERENCE}
    });
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"dir": {"": [requirement]}, "oci": {"": [requirement]}}
    });
    std::fs::write(work.path("policy.json"), policy.to_string()).unwrap();

    let sign = |dir: &str, fingerprint: &str, identity: &str| {
        let output = gpg.skopeo(
            at,
            &[
                "--insecure-policy",
                "copy",
                "--sign-by",
                fingerprint,
                "--sign-identity",
                identity,
                "oci:img:1.0",
                &format!("dir:{dir}"),
            ],
        );
        assert!(output.status.success(), "{}", stderr(&output));
    };
    sign("signed", &signer, REFERENCE);
    sign("wrong-key", &other, REFERENCE);
    sign("wrong-identity", &signer, "registry.example/other:1.0");
    let output = gpg.skopeo(
        at,
        &["--insecure-policy", "copy", "oci:img:1.0", "dir:unsigned"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    // skopeo keeps the manifest's bytes: the dir: copy signs the same digest.
    let digest = manifest_digest(&work.path("img"));
    assert_eq!(
        tool(at, "skopeo", &["manifest-digest", "signed/manifest.json"]).trim(),
        digest
    );

    // Each case: a dir: copy for skopeo and the equivalent OCI layout and signature for
    // hostcert.
    copy_dir(&work.path("signed"), &work.path("tampered-layer"));
    copy_dir(&work.path("img"), &work.path("img-tampered-layer"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(work.path("signed/manifest.json")).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    flip(&work.path(&format!("tampered-layer/{layer}")));
    flip(&work.path(&format!("img-tampered-layer/blobs/sha256/{layer}")));

    copy_dir(&work.path("signed"), &work.path("tampered-manifest"));
    copy_dir(&work.path("img"), &work.path("img-tampered-manifest"));
    let text = std::fs::read_to_string(work.path("signed/manifest.json")).unwrap();
    let edited = text.replacen("\"schemaVersion\":2", "\"schemaVersion\": 2", 1);
    assert_ne!(text, edited);
    std::fs::write(work.path("tampered-manifest/manifest.json"), &edited).unwrap();
    // In the layout the edited manifest is a new blob that index.json names, so every digest
    // holds and only the signature can tell.
    let new_digest = sha256(edited.as_bytes());
    std::fs::write(
        work.path(&format!("img-tampered-manifest/blobs/sha256/{new_digest}")),
        &edited,
    )
    .unwrap();
    let index = std::fs::read_to_string(work.path("img/index.json"))
        .unwrap()
        .replace(&digest, &format!("sha256:{new_digest}"))
        .replace(
            &format!("\"size\":{}", text.len()),
            &format!("\"size\":{}", edited.len()),
        );
    std::fs::write(work.path("img-tampered-manifest/index.json"), index).unwrap();

    copy_dir(&work.path("signed"), &work.path("tampered-signature"));
    flip(&work.path("tampered-signature/signature-1"));

    let cases = [
        ("signed", "img", true),
        ("wrong-key", "img", false),
        ("wrong-identity", "img", false),
        ("unsigned", "img", false),
        ("tampered-layer", "img-tampered-layer", false),
        ("tampered-manifest", "img-tampered-manifest", false),
        ("tampered-signature", "img", false),
    ];
    for (dir, layout, accepted) in cases {
        let skopeo = gpg.skopeo(
            at,
            &[
                "--policy",
                "policy.json",
                "copy",
                "--remove-signatures",
                &format!("dir:{dir}"),
                &format!("oci:out-{dir}:1.0"),
            ],
        );
        assert_eq!(
            skopeo.status.success(),
            accepted,
            "skopeo on {dir}: {}",
            stderr(&skopeo)
        );
        let mut args = vec![
            "--target".to_owned(),
            format!("oci:{layout}:1.0"),
            "--policy".to_owned(),
            "policy.json".to_owned(),
            "--skip".to_owned(),
            "image.redhat".to_owned(),
        ];
        let signature = work.path(&format!("{dir}/signature-1"));
        if signature.exists() {
            args.push("--signature".to_owned());
            args.push(signature.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run_image(&work, &args);
        let out = stdout(&output);
        assert_eq!(
            code(&output) == 0,
            accepted,
            "hostcert on {dir} disagrees with skopeo ({}): {out}{}",
            stderr(&skopeo),
            stderr(&output)
        );
        let (outcome, result) = outcome(&work, "image.signature.policy");
        let text = result.to_string();
        if accepted {
            assert_eq!(outcome, "pass", "{text}");
            assert!(text.contains(&signer), "the evidence names the key: {text}");
            assert!(
                text.contains(REFERENCE),
                "the evidence names the identity: {text}"
            );
            assert!(
                text.contains("transports.oci[\\\"\\\"][0] signedBy"),
                "{text}"
            );
        } else if dir != "tampered-layer" {
            assert_eq!(outcome, "fail", "{dir}: {text}");
        }
        let reason = match dir {
            "wrong-key" => Some("does not verify with any key"),
            // Where the flipped byte lands decides whether the deflate stream or the RSA
            // signature breaks; either way the signature file is named.
            "tampered-signature" => Some("tampered-signature/signature-1: "),
            "wrong-identity" => Some("Docker reference registry.example/other:1.0 does not match registry.example/hcc/busybox:1.0"),
            "unsigned" => Some("a signature was required, but no signature exists"),
            "tampered-manifest" => Some("does not match the manifest"),
            _ => None,
        };
        if let Some(reason) = reason {
            assert!(text.contains(reason), "{dir}: {text}");
        }
    }

    // A signature made with skopeo standalone-sign, found in a lookaside folder in
    // registries.d's layout, and verified by skopeo standalone-verify as well.
    let sigdir = work.path(&format!(
        "lookaside/hcc/busybox@{}",
        digest.replacen(':', "=", 1)
    ));
    std::fs::create_dir_all(&sigdir).unwrap();
    let signature = sigdir.join("signature-1").display().to_string();
    let output = gpg.skopeo(
        at,
        &[
            "standalone-sign",
            "-o",
            &signature,
            "signed/manifest.json",
            REFERENCE,
            &signer,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gpg.skopeo(
        at,
        &[
            "standalone-verify",
            "signed/manifest.json",
            REFERENCE,
            &signer,
            &signature,
        ],
    );
    assert!(
        stdout(&output).contains("Signature verified"),
        "{}",
        stderr(&output)
    );
    let output = run_image(
        &work,
        &[
            "--target",
            "oci:img:1.0",
            "--policy",
            "policy.json",
            "--lookaside",
            "lookaside",
            "--skip",
            "image.redhat",
        ],
    );
    assert_eq!(code(&output), 0, "{}", stdout(&output));
}

#[test]
fn sigstore_signatures_verify_with_a_p256_public_key() {
    require("openssl", "openssl");
    let work = Work::new();
    let at = work.dir.path();
    build_image(&work, "img", &Spec::good());
    for name in ["signer", "other"] {
        tool(
            at,
            "openssl",
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        );
        tool(
            at,
            "openssl",
            &[
                "ec",
                "-in",
                &format!("{name}.key"),
                "-pubout",
                "-out",
                &format!("{name}.pub"),
            ],
        );
    }
    let digest = manifest_digest(&work.path("img"));
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": REFERENCE},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    })
    .to_string();
    std::fs::write(work.path("payload.json"), &payload).unwrap();
    tool(
        at,
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sign",
            "signer.key",
            "-out",
            "payload.sig",
            "payload.json",
        ],
    );
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(work.path("payload.sig")).unwrap())
    };
    // An unsigned copy, for signatures given with --signature.
    copy_dir(&work.path("img"), &work.path("unsigned"));
    // Store it as cosign does: a manifest tagged sha256-<hex>.sig in the layout.
    let blobs = work.path("img/blobs/sha256");
    let put = |bytes: &[u8]| {
        let hex = sha256(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (payload_digest, payload_size) = put(payload.as_bytes());
    let (config_digest, config_size) = put(b"{}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest, "size": payload_size,
            "annotations": {"dev.cosignproject.cosign/signature": signature}
        }]
    })
    .to_string();
    let (manifest_digest_sig, manifest_size) = put(manifest.as_bytes());
    let mut index: Value = serde_json::from_str(&work.read("img/index.json")).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest_sig, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": format!("{}.sig", digest.replacen(':', "-", 1))}
    }));
    std::fs::write(work.path("img/index.json"), index.to_string()).unwrap();

    for (key, identity, accepted) in [
        ("signer.pub", REFERENCE, true),
        ("other.pub", REFERENCE, false),
        ("signer.pub", "registry.example/other:1.0", false),
    ] {
        // The reference verdict: openssl's own verification of the signature with the key.
        let openssl = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                key,
                "-signature",
                "payload.sig",
                "payload.json",
            ])
            .current_dir(at)
            .output()
            .unwrap();
        let policy = json!({
            "default": [{"type": "reject"}],
            "transports": {"oci": {"": [{
                "type": "sigstoreSigned", "keyPath": work.path(key),
                "signedIdentity": {"type": "exactReference", "dockerReference": identity}
            }]}}
        });
        std::fs::write(work.path("sigstore-policy.json"), policy.to_string()).unwrap();
        let output = run_image(
            &work,
            &[
                "--target",
                "oci:img:1.0",
                "--policy",
                "sigstore-policy.json",
                "--skip",
                "image.redhat",
            ],
        );
        let (outcome, result) = outcome(&work, "image.signature.policy");
        assert_eq!(outcome == "pass", accepted, "{key} {identity}: {result}");
        assert_eq!(code(&output) == 0, accepted, "{}", stdout(&output));
        if identity == REFERENCE {
            assert_eq!(
                openssl.status.success(),
                accepted,
                "openssl agrees on {key}"
            );
        }
        if accepted {
            assert!(
                result.to_string().contains("signed by P-256 key sha256:"),
                "{result}"
            );
        }
    }

    // The same signature given with --signature as cosign-style JSON, on the unsigned copy:
    // accepted; with one byte of the signature flipped, or on an edited manifest, refused.
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"oci": {"": [{
            "type": "sigstoreSigned", "keyPath": work.path("signer.pub"),
            "signedIdentity": {"type": "exactReference", "dockerReference": REFERENCE}
        }]}}
    });
    std::fs::write(work.path("sigstore-policy.json"), policy.to_string()).unwrap();
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let der = std::fs::read(work.path("payload.sig")).unwrap();
    let mut tampered = der.clone();
    let last = tampered.len() - 2;
    tampered[last] ^= 0x01;
    std::fs::write(work.path("tampered.sig"), &tampered).unwrap();
    let openssl = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "signer.pub",
            "-signature",
            "tampered.sig",
            "payload.json",
        ])
        .current_dir(at)
        .output()
        .unwrap();
    assert!(
        !openssl.status.success(),
        "openssl refuses the tampered signature"
    );
    for (name, signature) in [("good.json", &der), ("tampered.json", &tampered)] {
        let json = json!({"payload": b64(payload.as_bytes()), "signature": b64(signature)});
        std::fs::write(work.path(name), json.to_string()).unwrap();
    }
    copy_dir(&work.path("unsigned"), &work.path("edited"));
    let text = std::fs::read_to_string(work.path(&format!(
        "edited/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    )))
    .unwrap();
    let edited = text.replacen("\"schemaVersion\":2", "\"schemaVersion\": 2", 1);
    assert_ne!(text, edited);
    let new_digest = sha256(edited.as_bytes());
    std::fs::write(
        work.path(&format!("edited/blobs/sha256/{new_digest}")),
        &edited,
    )
    .unwrap();
    let index = work
        .read("edited/index.json")
        .replace(&digest, &format!("sha256:{new_digest}"))
        .replace(
            &format!("\"size\":{}", text.len()),
            &format!("\"size\":{}", edited.len()),
        );
    std::fs::write(work.path("edited/index.json"), index).unwrap();
    for (layout, signature, accepted, reason) in [
        (
            "unsigned",
            None,
            false,
            "a signature was required, but no signature exists",
        ),
        ("unsigned", Some("good.json"), true, "signed by P-256 key"),
        (
            "unsigned",
            Some("tampered.json"),
            false,
            "does not verify with any key",
        ),
        (
            "edited",
            Some("good.json"),
            false,
            "does not match the manifest",
        ),
    ] {
        let target = format!("oci:{layout}:1.0");
        let mut args = vec![
            "--target",
            &target,
            "--policy",
            "sigstore-policy.json",
            "--skip",
            "image.redhat",
        ];
        if let Some(signature) = signature {
            args.extend(["--signature", signature]);
        }
        let output = run_image(&work, &args);
        let (outcome, result) = outcome(&work, "image.signature.policy");
        assert_eq!(
            outcome == "pass",
            accepted,
            "{layout} {signature:?}: {result}"
        );
        assert_eq!(code(&output) == 0, accepted, "{}", stdout(&output));
        assert!(
            result.to_string().contains(reason),
            "{layout} {signature:?}: {result}"
        );
    }
}

#[test]
fn zstd_layers_are_verified_and_unpacked() {
    require("zstd", "zstd");
    let work = Work::new();
    let layer = [
        entry("licenses/LICENSE", b'0', b"MIT\n", "", None),
        entry("etc/motd", b'0', b"hello from zstd\n", "", None),
        end(),
    ]
    .concat();
    std::fs::write(work.path("layer.tar"), &layer).unwrap();
    tool(
        work.dir.path(),
        "zstd",
        &["-q", "-19", "layer.tar", "-o", "layer.tar.zst"],
    );
    let blob = std::fs::read(work.path("layer.tar.zst")).unwrap();
    let zstd = |manifest: &mut Value| {
        manifest["layers"][0]["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+zstd");
    };
    let diff_id = format!("sha256:{}", sha256(&layer));
    layout_blob(&work.path("zst"), &blob, &diff_id, false, zstd);
    let output = run_image(
        &work,
        &["--target", "oci:zst:1.0", "--skip", "image.signature"],
    );
    for check in [
        "image.integrity.blobs",
        "image.integrity.diff-ids",
        "image.redhat.licenses",
        "image.redhat.non-root",
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}\n{}", stdout(&output));
    }
    // The same layer under a diff_id that is not its content.
    layout_blob(
        &work.path("zst-bad"),
        &blob,
        &format!("sha256:{}", "1".repeat(64)),
        false,
        zstd,
    );
    let output = run_image(
        &work,
        &["--target", "oci:zst-bad:1.0", "--skip", "image.signature"],
    );
    assert_eq!(code(&output), 1);
    let (outcome, result) = outcome(&work, "image.integrity.diff-ids");
    assert_eq!(outcome, "fail", "{result}");
    assert!(
        result
            .to_string()
            .contains(&format!("its uncompressed sha256 is {diff_id}")),
        "{result}"
    );
}

/// A DSSE envelope of an in-toto statement, signed by openssl with a P-256 key.
fn envelope(work: &Work, key: &str, statement: &Value) -> Value {
    use base64::Engine as _;
    let body = statement.to_string();
    let payload_type = "application/vnd.in-toto+json";
    let pae = format!(
        "DSSEv1 {} {payload_type} {} {body}",
        payload_type.len(),
        body.len()
    );
    std::fs::write(work.path("pae"), pae).unwrap();
    tool(
        work.dir.path(),
        "openssl",
        &["dgst", "-sha256", "-sign", key, "-out", "pae.sig", "pae"],
    );
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({
        "payloadType": payload_type,
        "payload": b64(body.as_bytes()),
        "signatures": [{"keyid": "", "sig": b64(&std::fs::read(work.path("pae.sig")).unwrap())}]
    })
}

/// Attaches envelopes to the image of layout `dir` cosign-style, as a manifest tagged
/// `sha256-<hex>.att`.
fn attach(work: &Work, dir: &str, envelopes: &[Value]) {
    let digest = manifest_digest(&work.path(dir));
    let blobs = work.path(&format!("{dir}/blobs/sha256"));
    let put = |bytes: &[u8]| {
        let hex = sha256(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    };
    let mut config = put(b"{}");
    config["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let layers: Vec<Value> = envelopes
        .iter()
        .map(|e| {
            let mut d = put(e.to_string().as_bytes());
            d["mediaType"] = json!("application/vnd.dsse.envelope.v1+json");
            d
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers
    });
    let mut entry = put(manifest.to_string().as_bytes());
    entry["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": format!("{}.att", digest.replacen(':', "-", 1))});
    let mut index: Value = serde_json::from_str(&work.read(&format!("{dir}/index.json"))).unwrap();
    index["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(work.path(&format!("{dir}/index.json")), index.to_string()).unwrap();
}

#[test]
fn slsa_provenance_attestations_are_verified_against_key_subject_and_builder() {
    require("openssl", "openssl");
    let work = Work::new();
    let at = work.dir.path();
    for name in ["signer", "other"] {
        tool(
            at,
            "openssl",
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
        );
        tool(
            at,
            "openssl",
            &[
                "ec",
                "-in",
                &format!("{name}.key"),
                "-pubout",
                "-out",
                &format!("{name}.pub"),
            ],
        );
    }
    let statement = |digest: &str, builder: &str| {
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "registry.example/hcc/busybox", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {"buildType": "https://example.invalid/build"},
                          "runDetails": {"builder": {"id": builder}}}
        })
    };
    let builder = "https://ci.example.invalid/builder";
    type Envelopes<'a> = Box<dyn Fn(&str) -> Vec<Value> + 'a>;
    let cases: Vec<(&str, Envelopes, &str, &str)> = vec![
        (
            "good",
            Box::new(|d: &str| vec![envelope(&work, "signer.key", &statement(d, builder))]),
            "pass",
            builder,
        ),
        (
            "wrong-key",
            Box::new(|d: &str| vec![envelope(&work, "other.key", &statement(d, builder))]),
            "fail",
            "rejected: no signature in the envelope verifies",
        ),
        (
            "wrong-subject",
            Box::new(|_: &str| {
                vec![envelope(
                    &work,
                    "signer.key",
                    &statement(&"ab".repeat(32), builder),
                )]
            }),
            "fail",
            "no subject of the statement is the image's manifest",
        ),
        (
            "unknown-builder",
            Box::new(|d: &str| {
                vec![envelope(
                    &work,
                    "signer.key",
                    &statement(d, "https://evil.example/builder"),
                )]
            }),
            "fail",
            "https://evil.example/builder",
        ),
        (
            "none",
            Box::new(|_: &str| vec![]),
            "fail",
            "image-info provenance = absent",
        ),
    ];
    for (dir, envelopes, wanted, evidence) in &cases {
        build_image(&work, dir, &Spec::good());
        let digest = manifest_digest(&work.path(dir));
        let envelopes = envelopes(&digest);
        if !envelopes.is_empty() {
            attach(&work, dir, &envelopes);
        }
        let output = run_image(
            &work,
            &[
                "--target",
                &format!("oci:{dir}:1.0"),
                "--attestation-key",
                "signer.pub",
                "--param",
                &format!("allowed-builders={builder}"),
                "image.attestation",
            ],
        );
        let (outcome, result) = outcome(&work, "image.attestation.provenance");
        assert_eq!(&outcome, wanted, "{dir}: {result}\n{}", stdout(&output));
        assert!(result.to_string().contains(evidence), "{dir}: {result}");
    }
}

#[test]
fn file_probes_read_the_merged_layers_with_whiteouts_applied() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let at = work.dir.path();
    // A later layer deletes /sbom (whiteout) and makes /licenses an empty folder (opaque).
    tool(
        at,
        "umoci",
        &["insert", "--image", "img:1.0", "--whiteout", "/sbom"],
    );
    std::fs::create_dir_all(work.path("empty")).unwrap();
    let empty = work.path("empty").display().to_string();
    tool(
        at,
        "umoci",
        &[
            "insert",
            "--image",
            "img:1.0",
            "--opaque",
            &empty,
            "/licenses",
        ],
    );
    work.write(
        "suites/files.yaml",
        r#"name: image-files
version: 1.0.0
checks:
  - id: image-files.os-release
    version: 1.0.0
    title: os-release is read from the image
    severity: high
    probes:
      id: {os-release: ID}
    expect: {equals: busybox}
  - id: image-files.busybox
    version: 1.0.0
    title: /bin/busybox is a file of the image
    severity: high
    probes:
      busybox: {file: /bin/sh}
    expect: {fact: busybox.kind, equals: file}
  - id: image-files.passwd
    version: 1.0.0
    title: /etc/passwd names the app user
    severity: high
    probes:
      passwd: {file-content: /etc/passwd}
    expect: {matches: '(?m)^app:x:1001:'}
  - id: image-files.sbom-gone
    version: 1.0.0
    title: /sbom was deleted by a whiteout
    severity: high
    probes:
      sbom: {dir-list: /sbom}
    expect: {exists: false}
  - id: image-files.licenses-empty
    version: 1.0.0
    title: /licenses was emptied by an opaque whiteout
    severity: high
    probes:
      licenses: {dir-list: /licenses}
    expect: {exists: true}
"#,
    );
    work.write(
        "profiles/files.yaml",
        "name: image-files\nversion: 1.0.0\nsuites:\n  image-files: ^1\n  image-provenance: ^1\ngate: [critical, high]\n",
    );
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args([
            "run",
            "--suites",
            "suites",
            "--profiles",
            "profiles",
            "--profile",
            "image-files",
        ])
        .args([
            "--report-dir",
            "report",
            "--target",
            "oci:img:1.0",
            "--skip",
            "image.signature",
        ])
        .current_dir(at)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    for check in [
        "image-files.os-release",
        "image-files.busybox",
        "image-files.passwd",
        "image-files.sbom-gone",
        "image-files.licenses-empty",
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}\n{}", stdout(&output));
    }
    for (check, observed) in [
        ("image.redhat.sbom", "image-info sbom = absent"),
        ("image.redhat.licenses", "image-info licenses = 0"),
    ] {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "fail", "{check}: {result}");
        assert!(result.to_string().contains(observed), "{check}: {result}");
    }
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn hostile_archives_are_refused_with_the_member_named() {
    let work = Work::new();
    let cases = [
        (
            "dotdot.tar",
            [entry("../escaped", b'0', b"x", "", None), end()].concat(),
            "archive entry `../escaped`: a path with `..`",
        ),
        (
            "twice.tar",
            [
                entry("index.json", b'0', b"{}", "", None),
                entry("index.json", b'0', b"{}", "", None),
                end(),
            ]
            .concat(),
            "archive entry `index.json` appears twice",
        ),
        (
            "short.tar",
            entry("oci-layout", b'0', b"{}", "", Some(50_000)),
            "archive entry `oci-layout` is cut short",
        ),
    ];
    for (file, bytes, expected) in cases {
        std::fs::write(work.path(file), bytes).unwrap();
        let out = run_hostile_target(&work, &format!("oci-archive:{file}"));
        assert!(
            out.contains(expected),
            "{file}: expected `{expected}` in\n{out}"
        );
    }
    assert!(!work.path("escaped").exists());
}

/// Runs the image checks on a target expected to be refused; stdout and stderr.
fn run_hostile_target(work: &Work, target: &str) -> String {
    let output = run_image(work, &["--target", target, "--skip", "image.signature"]);
    assert_ne!(code(&output), 0, "{}", stdout(&output));
    format!("{}{}", stdout(&output), stderr(&output))
}

#[test]
fn a_layer_that_upgrades_a_package_may_replace_its_files() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    // One layer replaces /bin/busybox and rewrites busybox-static's file list, as dpkg does.
    work.write("upgrade/bin/busybox", "#!/bin/sh\necho upgraded\n");
    work.write(
        "upgrade/var/lib/dpkg/info/busybox-static.list",
        "/.\n/bin\n/bin/busybox\n",
    );
    let upgrade = work.path("upgrade").display().to_string();
    tool(
        work.dir.path(),
        "umoci",
        &["insert", "--image", "img:1.0", &upgrade, "/"],
    );
    run_image(
        &work,
        &[
            "--target",
            "oci:img:1.0",
            "image.redhat.modified-package-files",
        ],
    );
    let (outcome, result) = outcome(&work, "image.redhat.modified-package-files");
    assert_eq!(outcome, "pass", "{result}");
}

#[test]
fn image_facts_gathered_into_a_snapshot_evaluate_the_same() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let output = Command::new(BIN)
        .args([
            "gather",
            "--profile",
            "isv-image",
            "--target",
            "oci:img:1.0",
            "--output",
            "img.json",
        ])
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let snapshot = work.json("img.json");
    assert_eq!(snapshot["target"]["kind"], "image");
    let live = run_image(
        &work,
        &["--target", "oci:img:1.0", "--skip", "image.signature"],
    );
    let live_report = work.json("report/report.json");
    let offline = run_image(&work, &["--facts", "img.json", "--skip", "image.signature"]);
    let offline_report = work.json("report/report.json");
    assert_eq!(code(&live), code(&offline));
    // A snapshot's facts digest names all its facts (`jq -cj .facts img.json | sha256sum`),
    // whatever a filter leaves out: the live run that asks what `gather` asked gives the same.
    run_image(&work, &["--target", "oci:img:1.0"]);
    let live_all = work.json("report/report.json");
    assert_eq!(
        live_all["targets"][0]["facts-digest"],
        offline_report["targets"][0]["facts-digest"]
    );
    let outcomes = |report: &Value| -> Vec<(String, String)> {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["check"].to_string(), r["outcome"].to_string()))
            .collect()
    };
    assert_eq!(outcomes(&live_report), outcomes(&offline_report));
}

/// An image on a host (`--image oci:...`, the pair of isv-container) answers the image checks
/// as an image target does: a pair is judged as its host's kind and its image's kind.
#[test]
fn an_oci_image_on_a_host_answers_the_image_checks_in_isv_container() {
    let work = Work::new();
    build_image(&work, "img", &Spec::good());
    let tmp = work.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let output = Command::new(BIN)
        .args([
            "run",
            "--profile",
            "isv-container",
            "--image",
            "oci:img:1.0",
            "--target",
            "local",
            "--report-dir",
            "report",
            "image.",
            "--skip",
            "image.signature",
        ])
        .current_dir(work.dir.path())
        .env("TMPDIR", &tmp)
        .output()
        .expect("hostcert runs");
    assert_eq!(code(&output), 0, "{}{}", stdout(&output), stderr(&output));
    let report = work.json("report/report.json");
    let target = report["targets"][0]["name"].as_str().unwrap().to_owned();
    assert!(target.ends_with("@local"), "a pair: {target}");
    for check in RED_HAT_CHECKS
        .iter()
        .chain(&["image.integrity.blobs", "image.integrity.diff-ids"])
    {
        let (outcome, result) = outcome(&work, check);
        assert_eq!(outcome, "pass", "{check}: {result}");
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "nothing left behind"
    );
}
