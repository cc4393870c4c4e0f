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
            "image licenses = absent",
        ),
        (
            "image.redhat.layer-count",
            Spec {
                extra_layers: 40,
                ..good.clone()
            },
            "image layer-count = 41",
        ),
        (
            "image.redhat.non-root",
            Spec {
                user: Some("root"),
                ..good.clone()
            },
            "image user = 0",
        ),
        (
            "image.redhat.unique-tag",
            Spec {
                tag: "latest",
                ..good.clone()
            },
            "image tag = latest",
        ),
        (
            "image.redhat.prohibited-packages",
            Spec {
                dpkg_packages: vec!["busybox-static", "linux-image-amd64"],
                ..good.clone()
            },
            "image packages has linux-image-amd64",
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
            "image base-image = absent",
        ),
        (
            "image.redhat.sbom",
            Spec {
                sbom: false,
                ..good.clone()
            },
            "image sbom = absent",
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
    assert!(tag.to_string().contains("image tag = 1.0"), "{tag}");

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
