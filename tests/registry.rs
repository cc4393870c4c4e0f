//! `docker://` images end to end, against a real registry: Debian's docker-registry
//! (distribution 2.8) on 127.0.0.1 with TLS from a CA the test makes with openssl and htpasswd
//! authentication, images built with umoci and pushed with skopeo. The same image read as
//! `docker://`, `oci:` and `oci-archive:` gives the same results; credentials and TLS are
//! found as containers tools find them and never written anywhere; each blob is fetched once
//! per run and only verified blobs are cached; hostile registries (a fake server) give one
//! clear error each and leave nothing in the cache.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::gpg::Gpg;
use support::image::*;
use support::registry::{self as reg, Fake, Registry, Reply, PASSWORD, USER};
use support::*;

/// A run's environment: every folder containers tools read credentials, certificates and
/// configuration from is inside the test's folder.
struct Env {
    home: PathBuf,
    cache: PathBuf,
    tmp: PathBuf,
    vars: Vec<(String, PathBuf)>,
}

impl Env {
    fn new(work: &Work) -> Env {
        Env::named(work, "env")
    }

    /// An environment of its own in the folder `name` (for runs that go on in parallel).
    fn named(work: &Work, name: &str) -> Env {
        let at = |folder: &str| work.path(&format!("{name}/{folder}"));
        let (home, cache, tmp) = (at("home"), at("cache"), at("tmp"));
        for dir in [&home, &cache, &tmp, &at("run"), &at("config")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        Env {
            home: home.clone(),
            cache: cache.clone(),
            tmp: tmp.clone(),
            vars: vec![
                ("HOME".into(), home),
                ("XDG_CACHE_HOME".into(), cache),
                ("XDG_RUNTIME_DIR".into(), at("run")),
                ("XDG_CONFIG_HOME".into(), at("config")),
                ("TMPDIR".into(), tmp),
            ],
        }
    }

    /// Runs hostcert with this environment in the work folder; checks that the run left
    /// nothing in its temporary folder.
    fn hostcert(&self, work: &Work, args: &[&str], extra: &[(&str, &Path)]) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(work.dir.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("SSL_CERT_FILE");
        for (name, value) in &self.vars {
            command.env(name, value);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        let output = command.output().expect("hostcert runs");
        let left: Vec<_> = std::fs::read_dir(&self.tmp).unwrap().collect();
        assert!(left.is_empty(), "the run left files in TMPDIR: {left:?}");
        output
    }

    /// The blobs in the cache.
    fn cached(&self) -> Vec<String> {
        let dir = self.cache.join("hostcert/blobs/sha256");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Each check's outcome and observed values, from a report's only target.
fn results(report: &Value) -> BTreeMap<String, (String, Vec<Value>)> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let observed = r["evidence"]
                .as_array()
                .map(|e| e.iter().map(|e| e["observed"].clone()).collect())
                .unwrap_or_default();
            (
                r["check"].as_str().unwrap().to_owned(),
                (r["outcome"].as_str().unwrap().to_owned(), observed),
            )
        })
        .collect()
}

/// Fails if the password, the basic credential or any bearer token `tokens` names appears in
/// the output or in any file under `dir` (a file, or a folder of reports).
fn assert_no_secret(output: &Output, dir: &Path, tokens: &[&str]) {
    let basic = reg::base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    let mut secrets = vec![PASSWORD.to_owned(), basic];
    secrets.extend(tokens.iter().map(|t| (*t).to_owned()));
    let text = format!("{}{}", stdout(output), stderr(output));
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the output: {text}"
        );
    }
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        {
            if let Ok(bytes) = std::fs::read(&path) {
                let text = String::from_utf8_lossy(&bytes);
                for secret in &secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "a secret in {}",
                        path.display()
                    );
                }
            }
        }
    }
}

fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_pushed_image_gives_the_results_of_its_layout_and_archive() {
    let work = Work::new();
    let env = Env::new(&work);
    let registry = Registry::start(&work.path("registry"));
    let layout = build_image(&work, "busybox", &Spec::good());
    registry.push(
        &format!("oci:{}:1.0", layout.display()),
        "hcc/busybox:1.0",
        &[],
    );
    let archive = work.path("busybox.tar");
    tool(
        work.dir.path(),
        "skopeo",
        &[
            "copy",
            "--quiet",
            "oci:busybox:1.0",
            &format!("oci-archive:{}:1.0", archive.display()),
        ],
    );
    // The same image pushed as Docker's schema 2 (what `docker push` and docker-archive give).
    registry.push(
        &format!("oci:{}:1.0", layout.display()),
        "hcc/busybox-v2s2:1.0",
        &["--format", "v2s2"],
    );
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let remote = format!("{}:1.0", registry.docker("hcc/busybox"));
    let v2s2 = format!("{}:1.0", registry.docker("hcc/busybox-v2s2"));
    let mut reports = Vec::new();
    for (name, target) in [
        ("docker", remote.as_str()),
        ("oci", "oci:busybox:1.0"),
        ("archive", &format!("oci-archive:{}:1.0", archive.display())),
        ("v2s2", v2s2.as_str()),
    ] {
        let output = env.hostcert(
            &work,
            &[
                "run",
                "--profile",
                "isv-image",
                "--target",
                target,
                "--authfile",
                &authfile,
                "--cert-dir",
                &ca,
                "--report-dir",
                name,
            ],
            &[],
        );
        assert_no_secret(&output, &work.path(name), &[]);
        reports.push((
            code(&output),
            results(&work.json(&format!("{name}/report.json"))),
        ));
    }
    assert_eq!(reports[0].1["image.integrity.blobs"].0, "pass");
    assert_eq!(reports[0].1["image.redhat.non-root"].0, "pass");
    assert_eq!(reports[0].1["image.redhat.sbom"].0, "pass");
    assert_eq!(reports[0].1["image.redhat.unique-tag"].1, [json!("1.0")]);
    assert_eq!(reports[0], reports[1], "docker:// and oci: differ");
    assert_eq!(reports[0], reports[2], "docker:// and oci-archive: differ");
    assert_eq!(
        reports[0], reports[3],
        "OCI and Docker schema 2 manifests differ"
    );
    // The cache holds exactly the image's verified blobs (and the schema 2 manifest, which
    // shares the config and layers), and the run's temporary folder is empty (checked by
    // Env::hostcert).
    let v2s2_manifest = registry.inspect_raw(&v2s2);
    let mut blobs: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .chain([sha256(v2s2_manifest.as_bytes())])
        .collect();
    blobs.sort();
    assert_eq!(env.cached(), blobs);
    // The evidence names the registry reference as the image's identity.
    let report = work.json("docker/report.json");
    assert_eq!(
        report["targets"][0]["name"],
        format!("{}/hcc/busybox:1.0", registry.host())
    );
    // Named by the digest skopeo reads for the tag (`REPO@sha256:…`), the same image gives the
    // same results but the tag's own check, and the same manifest digest.
    let raw = registry.inspect_raw(&remote);
    let digest = digest_of(raw.as_bytes());
    let by_digest = format!("{}@{digest}", registry.docker("hcc/busybox"));
    let output = env.hostcert(
        &work,
        &[
            "run",
            "--profile",
            "isv-image",
            "--target",
            &by_digest,
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--report-dir",
            "digest",
        ],
        &[],
    );
    let mut pinned = results(&work.json("digest/report.json"));
    let mut tagged = reports[0].1.clone();
    // Named without a tag, the image has none to be unique: that check alone fails.
    assert_eq!(
        pinned["image.redhat.unique-tag"].0,
        "fail",
        "{}",
        stderr(&output)
    );
    pinned.remove("image.redhat.unique-tag");
    tagged.remove("image.redhat.unique-tag");
    assert_eq!(
        pinned, tagged,
        "docker://…@digest and docker://…:tag differ"
    );
    let report = work.json("digest/report.json");
    assert_eq!(
        report["targets"][0]["image-digests"]["manifest"],
        json!(digest)
    );
}

#[test]
fn a_fleet_fetches_each_blob_once_and_later_runs_read_the_verified_cache() {
    let work = Work::new();
    let env = Env::new(&work);
    let registry = Registry::start(&work.path("registry"));
    let layout = build_image(&work, "busybox", &Spec::good());
    registry.push(
        &format!("oci:{}:1.0", layout.display()),
        "hcc/busybox:1.0",
        &[],
    );
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let image = format!("{}:1.0", registry.docker("hcc/busybox"));
    // Three hosts (OS trees) paired with the image; only the image's checks run.
    let hosts: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let path = work.path(&format!("host-{name}"));
            std::fs::create_dir_all(&path).unwrap();
            format!("rootfs:{}", path.display())
        })
        .collect();
    let mut args = vec![
        "run",
        "--profile",
        "isv-container",
        "image.integrity",
        "--image",
        &image,
        "--authfile",
        &authfile,
        "--cert-dir",
        &ca,
        "--report-dir",
        "fleet",
    ];
    for host in &hosts {
        args.extend(["--target", host.as_str()]);
    }
    let output = env.hostcert(&work, &args, &[]);
    let report = work.json("fleet/report.json");
    assert_eq!(
        report["targets"].as_array().unwrap().len(),
        3,
        "{}",
        stderr(&output)
    );
    let layers = layer_digests(&layout, "1.0");
    for layer in &layers {
        assert_eq!(
            registry.blob_gets(layer),
            1,
            "layer {layer} fetched more than once"
        );
    }
    // A new run verifies the cached layer again and fetches nothing.
    let output = env.hostcert(
        &work,
        &[
            "run",
            "--profile",
            "isv-image",
            "--target",
            &image,
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--report-dir",
            "again",
        ],
        &[],
    );
    assert_eq!(
        results(&work.json("again/report.json"))["image.integrity.blobs"].0,
        "pass",
        "{}",
        stderr(&output)
    );
    for layer in &layers {
        assert_eq!(registry.blob_gets(layer), 1);
    }
    // A cached blob damaged on disk is noticed and fetched again.
    let cached = env
        .cache
        .join("hostcert/blobs/sha256")
        .join(layers[0].trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&cached).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&cached, &bytes).unwrap();
    let output = env.hostcert(
        &work,
        &[
            "run",
            "--profile",
            "isv-image",
            "--target",
            &image,
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--report-dir",
            "repaired",
        ],
        &[],
    );
    assert_eq!(
        results(&work.json("repaired/report.json"))["image.integrity.blobs"].0,
        "pass",
        "{}",
        stderr(&output)
    );
    assert_eq!(registry.blob_gets(&layers[0]), 2);
    // Two runs at once share one empty cache: both verify the image, and the cache then holds
    // exactly its blobs, whole, with no temporary file left in it.
    let shared = work.path("shared-cache");
    let twins: Vec<Env> = ["twin-0", "twin-1"]
        .iter()
        .map(|name| {
            let mut twin = Env::named(&work, name);
            for (var, value) in &mut twin.vars {
                if var == "XDG_CACHE_HOME" {
                    value.clone_from(&shared);
                }
            }
            twin.cache.clone_from(&shared);
            twin
        })
        .collect();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let running: Vec<_> = twins
            .iter()
            .enumerate()
            .map(|(i, twin)| {
                let (work, image, authfile, ca) = (&work, &image, &authfile, &ca);
                scope.spawn(move || {
                    let report_dir = format!("twin-{i}");
                    twin.hostcert(
                        work,
                        &[
                            "run",
                            "--profile",
                            "isv-image",
                            "image.integrity",
                            "--target",
                            image,
                            "--authfile",
                            authfile,
                            "--cert-dir",
                            ca,
                            "--report-dir",
                            &report_dir,
                        ],
                        &[],
                    )
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (i, output) in outputs.iter().enumerate() {
        let outcomes = results(&work.json(&format!("twin-{i}/report.json")));
        assert_eq!(
            outcomes["image.integrity.blobs"].0,
            "pass",
            "{}",
            stderr(output)
        );
        assert_eq!(
            outcomes["image.integrity.diff-ids"].0,
            "pass",
            "{}",
            stderr(output)
        );
    }
    let mut blobs: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    assert_eq!(twins[0].cached(), blobs);
    for blob in &blobs {
        let cached = std::fs::read(shared.join("hostcert/blobs/sha256").join(blob)).unwrap();
        assert_eq!(sha256(&cached), *blob, "cached blob {blob} is not whole");
    }
    let left: Vec<_> = std::fs::read_dir(shared.join("hostcert/tmp"))
        .unwrap()
        .collect();
    assert!(
        left.is_empty(),
        "temporary files left in the cache: {left:?}"
    );
    // What a killed run left in the cache's tmp/ (its owner gone) is removed by the next run;
    // a file of a run still going (this test's process) is kept.
    let tmp = shared.join("hostcert/tmp");
    let stale = tmp.join("hostcert-1999999999-blob-cut");
    let live = tmp.join(format!("hostcert-{}-blob-going", std::process::id()));
    std::fs::write(&stale, vec![0u8; 4096]).unwrap();
    std::fs::write(&live, b"partial").unwrap();
    let output = twins[0].hostcert(
        &work,
        &[
            "run",
            "--profile",
            "isv-image",
            "image.integrity",
            "--target",
            &image,
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--report-dir",
            "swept",
        ],
        &[],
    );
    assert!(
        !stale.exists(),
        "a killed run's blob stayed: {}",
        stderr(&output)
    );
    assert!(live.exists(), "a running process's blob was removed");
}

/// A `docker://` image is a row of the compatibility matrix as an `oci:` one is: read once per
/// run whatever the number of hosts, so a run of it by three hosts sends the registry the
/// requests of a run on one host, and every cell of its row has the image's digest.
#[test]
fn a_registry_image_in_a_matrix_is_read_once_whatever_the_number_of_hosts() {
    let work = Work::new();
    let registry = Registry::start(&work.path("registry"));
    let pushed = build_image(&work, "busybox", &Spec::good());
    registry.push(
        &format!("oci:{}:1.0", pushed.display()),
        "hcc/busybox:1.0",
        &[],
    );
    let local = build_image(&work, "other", &Spec::good());
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let remote = format!("{}:1.0", registry.docker("hcc/busybox"));
    let layout = format!("oci:{}:1.0", local.display());
    let hosts: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            let path = work.path(&format!("host-{name}"));
            std::fs::create_dir_all(&path).unwrap();
            format!("rootfs:{}", path.display())
        })
        .collect();
    let requests = || {
        registry
            .log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") || l.contains("\"HEAD /v2/"))
            .count()
    };
    // Each run has a cache of its own, so that both fetch what they read.
    let run = |env: &str, images: &[&str], hosts: &[String]| {
        let mut args = vec![
            "run",
            "--profile",
            "isv-container",
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--report-dir",
            env,
        ];
        for image in images {
            args.extend(["--image", image]);
        }
        for host in hosts {
            args.extend(["--target", host.as_str()]);
        }
        let before = requests();
        let output = Env::named(&work, env).hostcert(&work, &args, &[]);
        (output, requests() - before)
    };
    let (output, alone) = run("one", &[&remote], &hosts[..1]);
    assert!(alone > 0, "{}", stderr(&output));
    let (output, matrix) = run("matrix", &[&remote, &layout], &hosts);
    assert_eq!(
        matrix,
        alone,
        "the registry's image was read more than once: {}",
        stderr(&output)
    );
    let report = work.json("matrix/report.json");
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 6, "{}", stderr(&output));
    let cells = report["matrix"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6, "{}", report["matrix"]);
    let digest = &work.json("one/report.json")["targets"][0]["image-digests"]["manifest"];
    assert!(digest.is_string(), "{}", work.json("one/report.json"));
    let rows: Vec<&Value> = report["matrix"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(rows.len(), 2, "{}", report["matrix"]);
    for (cell, target) in cells.iter().zip(targets) {
        assert_eq!(cell["target"], target["name"]);
        // Every pair names the manifest it certified; the registry's row, the pushed one.
        assert!(target["image-digests"]["manifest"].is_string(), "{target}");
        if cell["image"] == *rows[0] {
            assert_eq!(&target["image-digests"]["manifest"], digest, "{target}");
        }
    }
}

#[test]
fn credentials_and_certificates_are_found_as_containers_tools_find_them() {
    let work = Work::new();
    let registry = Registry::start(&work.path("registry"));
    let layout = build_image(&work, "busybox", &Spec::good());
    registry.push(
        &format!("oci:{}:1.0", layout.display()),
        "hcc/busybox:1.0",
        &[],
    );
    let image = format!("{}:1.0", registry.docker("hcc/busybox"));
    let ca = registry.certs.ca_dir.display().to_string();
    let wrong = work.path("wrong.json");
    std::fs::write(
        &wrong,
        json!({"auths": {registry.host(): {"auth": reg::base64_encode(format!("{USER}:{PASSWORD}x").as_bytes())}}}).to_string(),
    )
    .unwrap();
    let wrong = wrong.display().to_string();
    // An auth file that is a FIFO is refused at once, named, never waited on.
    let fifo = work.path("fifo-auth.json");
    tool(work.dir.path(), "mkfifo", &[&fifo.display().to_string()]);
    let fifo = fifo.display().to_string();
    let authfile = registry.authfile.display().to_string();
    // What each case puts in its own home folder.
    let docker_config = |home: &Path| {
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        std::fs::copy(&registry.authfile, home.join(".docker/config.json")).unwrap();
    };
    let certs_d = |home: &Path| {
        let dir = home
            .join(".config/containers/certs.d")
            .join(registry.host());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(registry.certs.ca_dir.join("ca.crt"), dir.join("ca.crt")).unwrap();
    };
    // podman login's file: $XDG_RUNTIME_DIR/containers/auth.json (the case's `run` folder).
    let runtime_dir = |home: &Path| {
        let dir = home.parent().unwrap().join("run/containers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&registry.authfile, dir.join("auth.json")).unwrap();
    };
    // ~/.config/containers/auth.json ($XDG_CONFIG_HOME, the case's `config` folder).
    let config_home = |home: &Path| {
        let dir = home.parent().unwrap().join("config/containers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&registry.authfile, dir.join("auth.json")).unwrap();
    };
    // The first file with an entry for the registry wins, as in containers/image: wrong
    // credentials in $XDG_RUNTIME_DIR shadow good ones in Docker's config.json.
    let shadowed = |home: &Path| {
        docker_config(home);
        let dir = home.parent().unwrap().join("run/containers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&wrong, dir.join("auth.json")).unwrap();
    };
    let nothing = |_: &Path| {};
    type Setup<'a> = &'a (dyn Fn(&Path) + Sync);
    /// A case: its name, its arguments, whether REGISTRY_AUTH_FILE is set, what its home
    /// holds, the exit code and a text the output must hold.
    type Case<'a> = (&'a str, Vec<&'a str>, bool, Setup<'a>, i32, &'a str);
    let cases: Vec<Case> = vec![
        // No credentials anywhere: the registry's 401 is the error, with where they are looked for.
        (
            "none",
            vec!["--cert-dir", &ca],
            false,
            &nothing,
            2,
            "needs credentials",
        ),
        // Wrong credentials: the file is named, not its content.
        (
            "wrong",
            vec!["--cert-dir", &ca, "--authfile", &wrong],
            false,
            &nothing,
            2,
            "refused the credentials from",
        ),
        (
            "fifo",
            vec!["--cert-dir", &ca, "--authfile", &fifo],
            false,
            &nothing,
            2,
            "a FIFO, not a regular file",
        ),
        // REGISTRY_AUTH_FILE, and Docker's config.json in the home folder.
        ("env", vec!["--cert-dir", &ca], true, &nothing, 0, "\"ok\""),
        (
            "docker-config",
            vec!["--cert-dir", &ca],
            false,
            &docker_config,
            0,
            "\"ok\"",
        ),
        (
            "runtime-dir",
            vec!["--cert-dir", &ca],
            false,
            &runtime_dir,
            0,
            "\"ok\"",
        ),
        (
            "config-home",
            vec!["--cert-dir", &ca],
            false,
            &config_home,
            0,
            "\"ok\"",
        ),
        (
            "shadowed",
            vec!["--cert-dir", &ca],
            false,
            &shadowed,
            2,
            "run/containers/auth.json",
        ),
        // Without the CA the certificate is refused; with --tls-verify=false it is not checked;
        // the CA in the user's certs.d folder for HOST:PORT is found.
        (
            "no-ca",
            vec!["--authfile", &authfile],
            false,
            &nothing,
            2,
            "certificate",
        ),
        (
            "insecure",
            vec!["--authfile", &authfile, "--tls-verify=false"],
            false,
            &nothing,
            0,
            "\"ok\"",
        ),
        (
            "certs-d",
            vec!["--authfile", &authfile],
            false,
            &certs_d,
            0,
            "\"ok\"",
        ),
    ];
    std::thread::scope(|scope| {
        let running: Vec<_> = cases
            .into_iter()
            .map(|(name, extra, via_env, setup, expected_code, expected)| {
                let (work, image, registry) = (&work, &image, &registry);
                scope.spawn(move || {
                    let env = Env::named(work, name);
                    setup(&env.home);
                    let output_file = format!("{name}.json");
                    let mut args = vec![
                        "gather",
                        "--profile",
                        "isv-image",
                        "--target",
                        image,
                        "--output",
                        &output_file,
                    ];
                    args.extend(extra);
                    let vars: Vec<(&str, &Path)> = if via_env {
                        vec![("REGISTRY_AUTH_FILE", &registry.authfile)]
                    } else {
                        Vec::new()
                    };
                    let output = env.hostcert(work, &args, &vars);
                    assert_no_secret(&output, &work.path(&output_file), &[]);
                    let text = format!(
                        "{}{}",
                        stderr(&output),
                        std::fs::read_to_string(work.path(&output_file)).unwrap_or_default()
                    );
                    assert_eq!(code(&output), expected_code, "{name}: {text}");
                    assert!(
                        text.to_lowercase().contains(&expected.to_lowercase()),
                        "{name}: {text}"
                    );
                    // The error names the reference (the target's name: without `docker://`).
                    if expected_code == 2 {
                        let reference = image.trim_start_matches("docker://");
                        assert!(text.contains(&format!("`{reference}`")), "{name}: {text}");
                    }
                })
            })
            .collect();
        for case in running {
            case.join().expect("a case passes");
        }
    });
}

/// What the fake registry serves: one image's manifest, config and layer.
#[derive(Clone)]
struct Served {
    manifest: Vec<u8>,
    manifest_digest: String,
    config: Vec<u8>,
    config_digest: String,
    layer: Vec<u8>,
    layer_digest: String,
}

/// `sha256:HEX` of bytes.
fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256(bytes))
}

fn served() -> Served {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(6);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "hello.txt", &b"hello\n"[..])
        .unwrap();
    let layer = tar.into_inner().unwrap();
    let layer_digest = digest_of(&layer);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"User": "1001"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string()
    .into_bytes();
    let config_digest = digest_of(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    Served {
        manifest_digest: digest_of(&manifest),
        manifest,
        config_digest,
        config,
        layer_digest,
        layer,
    }
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// How a hostile registry spoils one answer: `None` answers as a good registry would.
type Spoil = Box<dyn Fn(&reg::Request, &Served, u16) -> Option<Reply> + Send + Sync>;

/// A fake registry serving the image (with basic authentication), except where `spoil` says.
fn fake_registry(image: &Served, spoil: Spoil) -> Fake {
    let image = image.clone();
    Fake::start(move |request, port| {
        if let Some(reply) = spoil(request, &image, port) {
            return reply;
        }
        let path = request.path.as_str();
        if path.starts_with("/v2/") && request.authorization.is_none() {
            return Reply::json(
                401,
                &json!({"errors": [{"code": "UNAUTHORIZED", "message": "log in"}]}),
                &[("WWW-Authenticate", "Basic realm=\"fake\"")],
            );
        }
        if path.ends_with("/manifests/1.0")
            || path.ends_with(&format!("/manifests/{}", image.manifest_digest))
        {
            return Reply::bytes(
                200,
                image.manifest.clone(),
                &[
                    ("Content-Type", MANIFEST_TYPE),
                    ("Docker-Content-Digest", &image.manifest_digest),
                ],
            );
        }
        if path.ends_with(&format!("/blobs/{}", image.config_digest)) {
            return Reply::bytes(200, image.config.clone(), &[]);
        }
        if path.ends_with(&format!("/blobs/{}", image.layer_digest)) {
            return Reply::bytes(200, image.layer.clone(), &[]);
        }
        Reply::json(
            404,
            &json!({"errors": [{"code": "NOT_FOUND", "message": "no such thing"}]}),
            &[],
        )
    })
}

#[test]
fn hostile_registries_give_one_clear_error_each_and_cache_nothing() {
    let work = Work::new();
    let env = Env::new(&work);
    let image = served();
    let token = "tok-SECRET-123";
    let gather_in = |env: &Env, fake: &Fake, name: &str| {
        let authfile = work.path(&format!("{name}-auth.json"));
        std::fs::write(
            &authfile,
            json!({"auths": {fake.host(): {"auth": reg::base64_encode(format!("{USER}:{PASSWORD}").as_bytes())}}}).to_string(),
        )
        .unwrap();
        // A case named `by-digest…` names the image by its manifest's digest, not its tag.
        let target = if name.starts_with("by-digest") {
            format!("docker://{}/hcc/app@{}", fake.host(), image.manifest_digest)
        } else {
            format!("docker://{}/hcc/app:1.0", fake.host())
        };
        let authfile = authfile.display().to_string();
        let output_file = format!("{name}.json");
        let started = std::time::Instant::now();
        let output = env.hostcert(
            &work,
            &[
                "gather",
                "--profile",
                "isv-image",
                "--target",
                &target,
                "--tls-verify=false",
                "--authfile",
                &authfile,
                "--gather-timeout",
                "2",
                "--connect-timeout",
                "2",
                "--output",
                &output_file,
            ],
            &[],
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name} took {:?}",
            started.elapsed()
        );
        assert_no_secret(&output, &work.path(&output_file), &[token]);
        let snapshot = std::fs::read_to_string(work.path(&output_file)).unwrap_or_default();
        let text = format!("{}{snapshot}", stderr(&output));
        (output, text)
    };
    let gather = |fake: &Fake, name: &str| gather_in(&env, fake, name);
    // Served well, the image is read over plain HTTP (--tls-verify=false) and its three blobs
    // are cached.
    let fake = fake_registry(&image, Box::new(|_, _, _| None));
    let (output, _) = gather(&fake, "good");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert_eq!(env.cached().len(), 3);
    std::fs::remove_dir_all(env.cache.join("hostcert")).unwrap();
    drop(fake);

    // A redirect of a blob to another host: followed, without the credentials.
    let storage = Fake::start({
        let image = image.clone();
        move |request, _| {
            if request.path.ends_with(&image.layer_digest) {
                Reply::bytes(200, image.layer.clone(), &[])
            } else {
                Reply::bytes(404, Vec::new(), &[])
            }
        }
    });
    let storage_port = storage.port;
    let fake = fake_registry(
        &image,
        Box::new(move |r, i, _| {
            (r.authorization.is_some() && r.path.ends_with(&format!("/blobs/{}", i.layer_digest)))
                .then(|| {
                    let location =
                        format!("http://127.0.0.1:{storage_port}/store/{}", i.layer_digest);
                    Reply::bytes(307, Vec::new(), &[("Location", &location)])
                })
        }),
    );
    let (output, _) = gather(&fake, "redirect");
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let to_storage = storage.requests();
    assert_eq!(to_storage.len(), 1, "{to_storage:?}");
    assert_eq!(
        to_storage[0].authorization, None,
        "credentials followed a redirect"
    );
    assert!(fake.requests().iter().any(|r| r.authorization.is_some()));
    std::fs::remove_dir_all(env.cache.join("hostcert")).unwrap();
    drop((fake, storage));

    let cases: Vec<(&str, &str, Spoil)> = vec![
        (
            "wrong-manifest-digest",
            "Docker-Content-Digest",
            Box::new(|r, i, _| {
                (r.authorization.is_some() && r.path.ends_with("/manifests/1.0")).then(|| {
                    let mut other = i.manifest.clone();
                    other.push(b' ');
                    Reply::bytes(
                        200,
                        other,
                        &[
                            ("Content-Type", MANIFEST_TYPE),
                            ("Docker-Content-Digest", &i.manifest_digest),
                        ],
                    )
                })
            }),
        ),
        // Asked by digest, a manifest with other bytes (and no Docker-Content-Digest to
        // compare) is refused by the digest the reference names.
        (
            "by-digest-other-manifest",
            "not the digest the reference names",
            Box::new(|r, i, _| {
                (r.authorization.is_some()
                    && r.path
                        .ends_with(&format!("/manifests/{}", i.manifest_digest)))
                .then(|| {
                    let mut other: Value = serde_json::from_slice(&i.manifest).unwrap();
                    other["annotations"] = json!({"swapped": "yes"});
                    Reply::bytes(
                        200,
                        other.to_string().into_bytes(),
                        &[("Content-Type", MANIFEST_TYPE)],
                    )
                })
            }),
        ),
        (
            "wrong-layer",
            "its sha256 is",
            Box::new(|r, i, _| {
                (r.authorization.is_some()
                    && r.path.ends_with(&format!("/blobs/{}", i.layer_digest)))
                .then(|| {
                    let mut other = i.layer.clone();
                    other[0] ^= 1;
                    Reply::bytes(200, other, &[])
                })
            }),
        ),
        (
            "lying-length",
            "cannot fetch it",
            Box::new(|r, i, _| {
                (r.authorization.is_some()
                    && r.path.ends_with(&format!("/blobs/{}", i.layer_digest)))
                .then(|| Reply::Lying {
                    declared: i.layer.len() as u64,
                    body: i.layer[..100].to_vec(),
                })
            }),
        ),
        (
            "endless-layer",
            "more than the",
            Box::new(|r, i, _| {
                (r.authorization.is_some()
                    && r.path.ends_with(&format!("/blobs/{}", i.layer_digest)))
                .then_some(Reply::Endless)
            }),
        ),
        // A layer that trickles in, a byte before each read would time out, is cut by the
        // rate --gather-timeout sets, never waited for to the end.
        (
            "trickling-layer",
            "bytes a second a blob must arrive at",
            Box::new(|r, i, _| {
                (r.authorization.is_some()
                    && r.path.ends_with(&format!("/blobs/{}", i.layer_digest)))
                .then(|| Reply::Trickle {
                    body: i.layer.clone(),
                })
            }),
        ),
        (
            "endless-manifest",
            "larger than",
            Box::new(|r, _, _| {
                (r.authorization.is_some() && r.path.ends_with("/manifests/1.0"))
                    .then_some(Reply::Endless)
            }),
        ),
        (
            "hanging",
            "did not answer within 2 seconds",
            Box::new(|r, _, _| r.path.ends_with("/manifests/1.0").then_some(Reply::Hang)),
        ),
        (
            "unauthorized-loop",
            "HTTP 401",
            Box::new(move |r, _, port| {
                Some(if r.path.starts_with("/token") {
                    Reply::json(200, &json!({"token": "tok-SECRET-123"}), &[])
                } else {
                    let realm =
                        format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"");
                    Reply::json(
                        401,
                        &json!({"errors": [{"code": "UNAUTHORIZED", "message": "echo tok-SECRET-123"}]}),
                        &[("WWW-Authenticate", &realm)],
                    )
                })
            }),
        ),
        (
            "huge-index",
            "more than the 1000 hostcert reads",
            Box::new(|r, _, _| {
                (r.authorization.is_some() && r.path.ends_with("/manifests/1.0")).then(|| {
                    let entry = json!({"mediaType": MANIFEST_TYPE, "digest": format!("sha256:{}", "a".repeat(64)), "size": 10, "platform": {"os": "linux", "architecture": "amd64"}});
                    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": vec![entry; 10_000]});
                    Reply::bytes(
                        200,
                        index.to_string().into_bytes(),
                        &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
                    )
                })
            }),
        ),
    ];
    // The cases run at once, each with its own fake registry and its own cache.
    let wrong: Vec<String> = std::thread::scope(|scope| {
        let running: Vec<_> = cases
            .into_iter()
            .map(|(name, expected, spoil)| {
                let (work, image) = (&work, &image);
                scope.spawn(move || {
                    let env = Env::named(work, name);
                    let fake = fake_registry(image, spoil);
                    let (output, text) = gather_in(&env, &fake, name);
                    let mut wrong = Vec::new();
                    if !text.contains(expected) {
                        wrong.push(format!("{name}: expected `{expected}` in {text}"));
                    }
                    let fetched_layer = [
                        "wrong-layer",
                        "lying-length",
                        "endless-layer",
                        "trickling-layer",
                    ];
                    if !fetched_layer.contains(&name) && code(&output) != 2 {
                        wrong.push(format!("{name}: exit {} ({text})", code(&output)));
                    }
                    let layer = image.layer_digest.trim_start_matches("sha256:");
                    let cached = env.cached();
                    if cached.iter().any(|d| d == layer) {
                        wrong.push(format!("{name}: a spoiled layer was cached"));
                    }
                    let refused_manifest = [
                        "wrong-manifest-digest",
                        "by-digest-other-manifest",
                        "huge-index",
                    ];
                    if refused_manifest.contains(&name) && !cached.is_empty() {
                        wrong.push(format!("{name}: cached {cached:?}"));
                    }
                    wrong
                })
            })
            .collect();
        running
            .into_iter()
            .flat_map(|t| t.join().expect("a case runs"))
            .collect()
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The outcome of one check in a report.
fn outcome_of(report: &Value, check: &str) -> (String, Value) {
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no result for {check}"))
        .clone();
    (result["outcome"].as_str().unwrap().to_owned(), result)
}

/// GPG signatures made by `skopeo copy --sign-by`, kept in a lookaside store (registries.d,
/// served over HTTP, and read as a file:// store), judged under several policies: hostcert's
/// verdict is skopeo's (`skopeo copy --policy` from the same registry) for every image and
/// policy, and the policy is looked up by the image's registry reference.
#[test]
fn lookaside_signatures_are_judged_as_skopeo_judges_them() {
    let work = Work::new();
    let env = Env::new(&work);
    let at = work.dir.path();
    let registry = Registry::start(&work.path("registry"));
    let layout = build_image(&work, "busybox", &Spec::good());
    let gpg = Gpg::new(work.dir.path());
    let signer = gpg.key("signer@example.invalid", &work.path("signer.gpg"));
    let other = gpg.key("other@example.invalid", &work.path("other.gpg"));
    let store = work.path("sigstore");
    let server = reg::StaticServer::start(&store);
    let registries_d = work.path("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("default.yaml"),
        format!(
            "default-docker:\n  lookaside: {}\n  lookaside-staging: file://{}\n",
            server.url(),
            store.display()
        ),
    )
    .unwrap();
    let file_d = work.path("registries-file.d");
    std::fs::create_dir_all(&file_d).unwrap();
    std::fs::write(
        file_d.join("default.yaml"),
        format!("default-docker:\n  lookaside: file://{}\n", store.display()),
    )
    .unwrap();
    // A lookaside store that redirects every request to the real one (as one behind a CDN or
    // object storage does): containers/image follows the redirect, and so must hostcert.
    let target = server.url();
    let redirecting = reg::Fake::start(move |request, _| {
        let location = format!("{target}{}", request.path);
        reg::Reply::bytes(302, Vec::new(), &[("Location", location.as_str())])
    });
    let redirect_d = work.path("registries-redirect.d");
    std::fs::create_dir_all(&redirect_d).unwrap();
    std::fs::write(
        redirect_d.join("default.yaml"),
        format!(
            "default-docker:\n  lookaside: http://127.0.0.1:{}\n",
            redirecting.port
        ),
    )
    .unwrap();
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let source = format!("oci:{}:1.0", layout.display());
    let rd = registries_d.display().to_string();
    for (repository, key) in [
        ("signed", Some(&signer)),
        ("other", Some(&other)),
        ("unsigned", None),
    ] {
        let destination = format!("{}:1.0", registry.docker(&format!("hcc/{repository}")));
        let mut args = vec![
            "copy",
            "--quiet",
            "--registries.d",
            &rd,
            "--dest-authfile",
            &authfile,
            "--dest-cert-dir",
            &ca,
        ];
        if let Some(key) = key {
            args.extend(["--sign-by", key.as_str()]);
        }
        args.extend([source.as_str(), destination.as_str()]);
        let output = gpg.skopeo(at, &args);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let host = registry.host();
    let signed_by = |key: &str, identity: Option<Value>| {
        let mut requirement =
            json!({"type": "signedBy", "keyType": "GPGKeys", "keyPath": work.path(key)});
        if let Some(identity) = identity {
            requirement["signedIdentity"] = identity;
        }
        requirement
    };
    let policies = [
        // The registry's namespace scope: signed accepted, others rejected.
        json!({"default": [{"type": "reject"}],
               "transports": {"docker": {format!("{host}/hcc"): [signed_by("signer.gpg", None)]}}}),
        // The most specific scope wins: the unsigned repository is accepted on its own.
        json!({"default": [{"type": "reject"}],
               "transports": {"docker": {
                   format!("{host}/hcc/unsigned:1.0"): [{"type": "insecureAcceptAnything"}],
                   format!("{host}"): [signed_by("signer.gpg", None)]}}}),
        // An identity the signature does not carry.
        json!({"default": [signed_by("signer.gpg", Some(json!({"type": "exactRepository", "dockerRepository": "registry.example/elsewhere"})))]}),
        // The other key.
        json!({"default": [signed_by("other.gpg", Some(json!({"type": "matchRepository"})))]}),
    ];
    let repositories = ["signed", "other", "unsigned"];
    let images: Vec<String> = repositories
        .iter()
        .map(|r| format!("{}:1.0", registry.docker(&format!("hcc/{r}"))))
        .collect();
    // One run of hostcert judging `images` with the lookaside stores of `registries_d` under
    // `policy`; only the signature check is evaluated.
    let judge_signatures = |registries_d: &Path, policy: &Path, report: &str, images: &[String]| {
        let (folder, policy) = (
            registries_d.display().to_string(),
            policy.display().to_string(),
        );
        let mut args = vec![
            "run",
            "--profile",
            "isv-image",
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--registries.d",
            &folder,
            "--policy",
            &policy,
            "--report-dir",
            report,
            "image.signature.policy",
        ];
        for image in images {
            args.extend(["--target", image.as_str()]);
        }
        env.hostcert(&work, &args, &[])
    };
    let mut compared = 0;
    let mut accepted = 0;
    for (index, policy) in policies.iter().enumerate() {
        let policy_file = work.path(&format!("policy-{index}.json"));
        std::fs::write(&policy_file, policy.to_string()).unwrap();
        let policy_path = policy_file.display().to_string();
        // skopeo's verdicts on the three images, at once.
        let skopeo: Vec<Output> = std::thread::scope(|scope| {
            let running: Vec<_> = images
                .iter()
                .enumerate()
                .map(|(n, image)| {
                    let (work, gpg, policy_path, rd, authfile, ca) =
                        (&work, &gpg, &policy_path, &rd, &authfile, &ca);
                    scope.spawn(move || {
                        let destination = format!(
                            "oci:{}:x",
                            work.path(&format!("copy-{index}-{n}")).display()
                        );
                        gpg.skopeo(
                            at,
                            &[
                                "--policy",
                                policy_path,
                                "copy",
                                "--quiet",
                                "--remove-signatures",
                                "--registries.d",
                                rd,
                                "--src-authfile",
                                authfile,
                                "--src-cert-dir",
                                ca,
                                image,
                                &destination,
                            ],
                        )
                    })
                })
                .collect();
            running.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for (name, folder) in [
            ("http", &registries_d),
            ("file", &file_d),
            ("redirect", &redirect_d),
        ] {
            // One run judges the three images; only the signature check is evaluated.
            let report = format!("report-{index}-{name}");
            let output = judge_signatures(folder, &policy_file, &report, &images);
            let report = work.json(&format!("{report}/report.json"));
            let results = report["results"].as_array().unwrap();
            assert_eq!(results.len(), 3, "{}", stderr(&output));
            for ((repository, skopeo), result) in repositories.iter().zip(&skopeo).zip(results) {
                assert_eq!(result["check"], "image.signature.policy");
                assert!(result["target"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("hcc/{repository}:")));
                assert_eq!(
                    result["outcome"] == "pass",
                    skopeo.status.success(),
                    "policy {index}, {repository} ({name} lookaside): skopeo says {}, hostcert {result}",
                    stderr(skopeo),
                );
                compared += 1;
                accepted += usize::from(skopeo.status.success());
            }
        }
    }
    assert_eq!(compared, 36);
    // Accepted: signed under policies 0 and 1, unsigned under 1, other under 3; each judged
    // with the three lookaside stores.
    assert_eq!(accepted, 12);
    assert!(
        redirecting
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.path.ends_with("/signature-1")),
        "the redirecting store was asked"
    );
    // skopeo follows the redirecting store too: the signed image is accepted through it.
    let through = gpg.skopeo(
        at,
        &[
            "--policy",
            &work.path("policy-0.json").display().to_string(),
            "copy",
            "--quiet",
            "--remove-signatures",
            "--registries.d",
            &redirect_d.display().to_string(),
            "--src-authfile",
            &authfile,
            "--src-cert-dir",
            &ca,
            &images[0],
            &format!("oci:{}:x", work.path("copy-redirect").display()),
        ],
    );
    assert!(through.status.success(), "{}", stderr(&through));
    // A store that redirects to itself forever is an error after five hops, never a pass.
    let looping = Fake::start(|request, port| {
        let location = format!("http://127.0.0.1:{port}{}", request.path);
        Reply::bytes(302, Vec::new(), &[("Location", location.as_str())])
    });
    let loop_d = work.path("registries-loop.d");
    std::fs::create_dir_all(&loop_d).unwrap();
    std::fs::write(
        loop_d.join("default.yaml"),
        format!(
            "default-docker:\n  lookaside: http://127.0.0.1:{}\n",
            looping.port
        ),
    )
    .unwrap();
    let output = judge_signatures(
        &loop_d,
        &work.path("policy-0.json"),
        "report-loop",
        &images[..1],
    );
    let report = work.json("report-loop/report.json");
    let result = &report["results"][0];
    assert_eq!(result["outcome"], "error", "{}", stderr(&output));
    assert!(
        result["message"]
            .as_str()
            .unwrap()
            .contains("more than 5 redirects"),
        "{result}"
    );
}

/// Cosign-style signatures (`sha256-HEX.sig`, made with openssl as cosign makes them) and
/// SLSA provenance attestations (`sha256-HEX.att`) pushed beside the image: the signature is
/// read only where registries.d sets `use-sigstore-attachments`, as containers/image reads it
/// (Debian's skopeo has sigstore disabled, so openssl's verification of the signature is the
/// reference verdict), and the attestation is verified with its key.
#[test]
fn cosign_signatures_and_attestations_in_the_registry_are_found() {
    let work = Work::new();
    let env = Env::new(&work);
    let at = work.dir.path();
    let registry = Registry::start(&work.path("registry"));
    let layout = build_image(&work, "busybox", &Spec::good());
    p256_key(at, "signer");
    p256_key(at, "other");
    let identity = format!("{}/hcc/cosign:1.0", registry.host());
    let sig_tag = cosign_sign(&layout, "1.0", &work.path("signer.key"), &identity, at);
    let digest = manifest_digest(&layout);
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": identity, "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://example.invalid/build"},
                      "runDetails": {"builder": {"id": "https://ci.example.invalid/builder"}}}
    });
    attach(
        &work,
        "busybox",
        &[envelope(&work, "signer.key", &statement)],
    );
    let att_tag = format!("{}.att", digest.replacen(':', "-", 1));
    for tag in ["1.0", sig_tag.as_str(), att_tag.as_str()] {
        registry.push(
            &format!("oci:{}:{tag}", layout.display()),
            &format!("hcc/cosign:{tag}"),
            &["--preserve-digests"],
        );
    }
    // The reference verdict on the signature: openssl.
    let verifies = |key: &str| {
        Command::new("openssl")
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
            .status()
            .unwrap()
            .success()
    };
    assert!(verifies("signer.pub") && !verifies("other.pub"));
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let image = format!("docker://{identity}");
    let with_attachments = work.path("attachments.d");
    std::fs::create_dir_all(&with_attachments).unwrap();
    std::fs::write(
        with_attachments.join("a.yaml"),
        format!(
            "docker:\n  {}/hcc:\n    use-sigstore-attachments: true\n    lookaside: file://{}\n",
            registry.host(),
            work.path("no-lookaside").display()
        ),
    )
    .unwrap();
    let without = work.path("plain.d");
    std::fs::create_dir_all(&without).unwrap();
    std::fs::write(
        without.join("a.yaml"),
        format!(
            "default-docker:\n  lookaside: file://{}\n",
            work.path("no-lookaside").display()
        ),
    )
    .unwrap();
    for (name, key, folder, accepted) in [
        ("signer", "signer.pub", &with_attachments, true),
        ("other", "other.pub", &with_attachments, false),
        ("not-read", "signer.pub", &without, false),
    ] {
        let policy = json!({"default": [{"type": "sigstoreSigned", "keyPath": work.path(key)}]});
        let policy_file = work.path(&format!("{name}-policy.json"));
        std::fs::write(&policy_file, policy.to_string()).unwrap();
        let report = format!("report-{name}");
        let output = env.hostcert(
            &work,
            &[
                "run",
                "--profile",
                "isv-image",
                "--target",
                &image,
                "--authfile",
                &authfile,
                "--cert-dir",
                &ca,
                "--registries.d",
                &folder.display().to_string(),
                "--policy",
                &policy_file.display().to_string(),
                "--attestation-key",
                &work.path("signer.pub").display().to_string(),
                "--param",
                "allowed-builders=https://ci.example.invalid/builder",
                "--report-dir",
                &report,
            ],
            &[],
        );
        let report = work.json(&format!("{report}/report.json"));
        let (outcome, result) = outcome_of(&report, "image.signature.policy");
        assert_eq!(
            outcome == "pass",
            accepted,
            "{name}: {result}\n{}",
            stderr(&output)
        );
        if name == "not-read" {
            assert!(
                result.to_string().contains("no signature exists"),
                "{result}"
            );
        }
        let (outcome, result) = outcome_of(&report, "image.attestation.provenance");
        assert_eq!(outcome, "pass", "{name}: {result}");
        assert!(result.to_string().contains(&att_tag), "{result}");
    }
}

/// A multi-platform index pushed with `skopeo copy --all`: every platform is its own target
/// (`REF[linux/arm64]`), judged on the manifest skopeo picks for that architecture, with the
/// same results as the layout's own platforms; `--platform` picks one; the report names the
/// index and manifest digests, and a signed bundle has them as subjects.
#[test]
fn every_platform_of_a_pushed_index_is_its_own_target() {
    let work = Work::new();
    let env = Env::new(&work);
    let at = work.dir.path();
    let registry = Registry::start(&work.path("registry"));
    let digests = build_index(&work, "multi");
    let layout = work.path("multi");
    registry.push(
        &format!("oci:{}:1.0", layout.display()),
        "hcc/multi:1.0",
        &["--all", "--preserve-digests"],
    );
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let image = format!("{}:1.0", registry.docker("hcc/multi"));
    // skopeo's choice per architecture, from the registry.
    for (platform, digest) in &digests {
        let arch = platform.trim_start_matches("linux/");
        let copy = format!("dir:{}", work.path(&format!("skopeo-{arch}")).display());
        tool(
            at,
            "skopeo",
            &[
                "--insecure-policy",
                "--override-arch",
                arch,
                "copy",
                "--quiet",
                "--src-authfile",
                &authfile,
                "--src-cert-dir",
                &ca,
                &image,
                &copy,
            ],
        );
        let chosen = tool(
            at,
            "skopeo",
            &["manifest-digest", &format!("skopeo-{arch}/manifest.json")],
        );
        assert_eq!(
            chosen.trim(),
            digest,
            "skopeo picks {digest} for {platform}"
        );
    }
    tool(
        at,
        "openssl",
        &["genpkey", "-algorithm", "ed25519", "-out", "sign.key"],
    );
    let run = |report: &str, target: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--profile",
            "isv-image",
            "--target",
            target,
            "--authfile",
            &authfile,
            "--cert-dir",
            &ca,
            "--skip",
            "image.signature",
            "--report-dir",
            report,
        ];
        args.extend(extra);
        let output = env.hostcert(&work, &args, &[]);
        (output, work.json(&format!("{report}/report.json")))
    };
    let (output, remote) = run("remote", &image, &["--sign", "sign.key"]);
    let (_, local) = run("local", "oci:multi:1.0", &[]);
    let name = format!("{}/hcc/multi:1.0", registry.host());
    let targets: Vec<&Value> = remote["targets"].as_array().unwrap().iter().collect();
    assert_eq!(targets.len(), 2, "{}", stderr(&output));
    let index = registry.inspect_raw(&image);
    let index_digest = digest_of(index.as_bytes());
    for ((platform, digest), target) in digests.iter().zip(&targets) {
        assert_eq!(target["name"], json!(format!("{name}[{platform}]")));
        assert_eq!(
            target["image-digests"],
            json!({"manifest": digest, "index": index_digest}),
            "{target}"
        );
    }
    // The same results per platform as the layout's own targets.
    let by_target = |report: &Value| -> Vec<(String, String, String)> {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let target = r["target"].as_str().unwrap();
                let platform = target[target.find('[').unwrap()..].to_owned();
                (
                    platform,
                    r["check"].as_str().unwrap().to_owned(),
                    r["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(by_target(&remote), by_target(&local));
    let non_root: Vec<(String, String, String)> = by_target(&remote)
        .into_iter()
        .filter(|(_, check, _)| check == "image.redhat.non-root")
        .collect();
    assert_eq!(non_root[0].2, "pass");
    assert_eq!(non_root[1].2, "fail");
    // The signed bundle names each platform's manifest and the index as subjects.
    let bundle = work.read("remote/report.intoto.jsonl");
    let envelope: Value = serde_json::from_str(bundle.trim()).unwrap();
    let payload = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap()
    };
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let subjects = statement["subject"].to_string();
    for (_, digest) in &digests {
        assert!(
            subjects.contains(digest.trim_start_matches("sha256:")),
            "{subjects}"
        );
    }
    assert!(
        subjects.contains(&format!("index:{name}[linux/amd64]")),
        "{subjects}"
    );
    // --platform picks one.
    let (_, picked) = run("picked", &image, &["--platform", "linux/arm64"]);
    let targets = picked["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["name"], json!(format!("{name}[linux/arm64]")));
    // A platform the index does not list is an error naming the ones it does: never certified.
    let (output, missing) = run("missing", &image, &["--platform", "linux/s390x"]);
    assert_eq!(code(&output), 2, "{}", stderr(&output));
    let error = missing["targets"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("linux/amd64") && error.contains("linux/arm64"),
        "{missing}"
    );
}

/// The image pulled into a podman store (vfs, the test's own root): `containers-storage:`
/// gives the results of the same image as `oci:` and `docker://`, found by its full name in
/// brackets and through a storage.conf by its short name; nothing in the store is written.
#[test]
fn a_stored_image_gives_the_results_of_its_layout_and_registry_copy() {
    let work = Work::new();
    let env = Env::new(&work);
    let at = work.dir.path();
    let layout = build_image(&work, "busybox", &Spec::good());
    let source = format!("oci:{}:1.0", layout.display());
    let store = reg::PodmanStore::new(&work.path("podman"));
    // Into the store as podman pulls: containers/storage's own code, through skopeo (podman
    // pull oci: refuses a layout path with capitals, which temporary folders have).
    tool(
        at,
        "skopeo",
        &[
            "--insecure-policy",
            "copy",
            "--quiet",
            &source,
            &store.address("localhost/hcc/busybox:1.0"),
        ],
    );
    let listed = store.podman(at, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(listed.contains("localhost/hcc/busybox:1.0"), "{listed}");
    // And into an overlay store (the layer's files under overlay/ID/diff), with
    // skip_mount_home so that containers/storage leaves no bind mount behind.
    let overlay = work.path("overlay");
    let overlay_conf = work.path("overlay.conf");
    std::fs::write(
        &overlay_conf,
        format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n[storage.options.overlay]\nskip_mount_home = \"true\"\n",
            overlay.display()
        ),
    )
    .unwrap();
    let copied = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            &source,
            "containers-storage:localhost/hcc/busybox:1.0",
        ])
        .env("CONTAINERS_STORAGE_CONF", &overlay_conf)
        .current_dir(at)
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", stderr(&copied));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&*overlay.display().to_string()),
        "{mountinfo}"
    );
    let in_overlay = format!(
        "containers-storage:[overlay@{0}/root+{0}/run]localhost/hcc/busybox:1.0",
        overlay.display()
    );
    let overlay_layers: Vec<_> = std::fs::read_dir(overlay.join("root/overlay"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("diff").is_dir())
        .collect();
    assert!(!overlay_layers.is_empty(), "no overlay layer folder");
    let registry = Registry::start(&work.path("registry"));
    registry.push(&source, "hcc/busybox:1.0", &[]);
    let authfile = registry.authfile.display().to_string();
    let ca = registry.certs.ca_dir.display().to_string();
    let conf = work.path("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            store.root.display(),
            store.runroot.display()
        ),
    )
    .unwrap();
    let before = store.listing();
    let remote = format!("{}:1.0", registry.docker("hcc/busybox"));
    let stored = store.address("localhost/hcc/busybox:1.0");
    let mut reports = Vec::new();
    for (name, target) in [
        ("oci", source.as_str()),
        ("docker", remote.as_str()),
        ("stored", stored.as_str()),
        ("conf", "containers-storage:hcc/busybox:1.0"),
        ("overlay", in_overlay.as_str()),
    ] {
        let output = env.hostcert(
            &work,
            &[
                "run",
                "--profile",
                "isv-image",
                "--target",
                target,
                "--authfile",
                &authfile,
                "--cert-dir",
                &ca,
                "--report-dir",
                name,
            ],
            &[("CONTAINERS_STORAGE_CONF", &conf)],
        );
        let report = work.json(&format!("{name}/report.json"));
        assert!(
            report["targets"][0]["error"].is_null(),
            "{name}: {}",
            stderr(&output)
        );
        reports.push((name, code(&output), results(&report)));
    }
    assert_eq!(reports[0].2["image.integrity.diff-ids"].0, "pass");
    assert_eq!(reports[0].2["image.redhat.unique-tag"].1, [json!("1.0")]);
    for other in &reports[1..] {
        assert_eq!(
            (other.1, &other.2),
            (reports[0].1, &reports[0].2),
            "{} differs from oci:",
            other.0
        );
    }
    assert_eq!(store.listing(), before, "the store was written");
}

/// An image built by podman from a busybox rootfs (FROM scratch, COPY) is certified straight
/// from the store; a file changed in the layer's folder afterwards is named, the layer fails its
/// diff_id and the image is not certified, as skopeo refuses to copy it.
#[test]
fn a_freshly_built_image_is_certified_without_a_push_and_tampering_is_named() {
    let work = Work::new();
    let env = Env::new(&work);
    let at = work.dir.path();
    let context = work.path("context");
    std::fs::create_dir_all(context.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", context.join("rootfs/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", context.join("rootfs/bin/sh")).unwrap();
    std::fs::create_dir_all(context.join("rootfs/etc")).unwrap();
    std::fs::write(
        context.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::create_dir_all(context.join("rootfs/licenses")).unwrap();
    std::fs::write(context.join("rootfs/licenses/LICENSE"), "Apache-2.0\n").unwrap();
    std::fs::write(
        context.join("Containerfile"),
        "FROM scratch\nCOPY rootfs/ /\nUSER app\nLABEL name=hcc vendor=Example version=1.0 release=1 summary=s description=d maintainer=m\n",
    )
    .unwrap();
    let store = reg::PodmanStore::new(&work.path("podman"));
    store.podman(
        at,
        &[
            "build",
            "--quiet",
            "-t",
            "localhost/hcc/built:1.0",
            &context.display().to_string(),
        ],
    );
    let address = store.address("localhost/hcc/built:1.0");
    let judge = |report: &str| {
        let output = env.hostcert(
            &work,
            &[
                "run",
                "--profile",
                "isv-image",
                "--target",
                &address,
                "--skip",
                "image.signature",
                "--report-dir",
                report,
            ],
            &[],
        );
        (
            output,
            results(&work.json(&format!("{report}/report.json"))),
        )
    };
    let skopeo_copies = |name: &str| {
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet", &address])
            .arg(format!("oci:{}:x", work.path(name).display()))
            .current_dir(at)
            .status()
            .unwrap()
            .success()
    };
    let (output, good) = judge("built");
    assert_eq!(
        good["image.integrity.diff-ids"].0,
        "pass",
        "{}",
        stderr(&output)
    );
    assert_eq!(
        good["image.redhat.non-root"],
        ("pass".to_owned(), vec![json!("1001")])
    );
    assert!(skopeo_copies("copy-good"));
    // Change /etc/passwd in the layer's folder, keeping its size: uid 1001 becomes 0000.
    let layers = store.root.join("vfs/dir");
    let layer = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("etc/passwd").is_file())
        .expect("the layer's folder")
        .path();
    let passwd = layer.join("etc/passwd");
    let text = std::fs::read_to_string(&passwd).unwrap();
    std::fs::write(&passwd, text.replace("1001:1001", "0000:0000")).unwrap();
    assert!(
        !skopeo_copies("copy-changed"),
        "skopeo copies a changed layer"
    );
    let (output, changed) = judge("changed");
    assert_eq!(code(&output), 1, "{}", stdout(&output));
    let (outcome, observed) = &changed["image.integrity.diff-ids"];
    assert_eq!(outcome, "fail");
    assert!(
        observed[0].to_string().contains("etc/passwd"),
        "{observed:?}"
    );
    // Files of a layer that fails are not read: the user check cannot run on them.
    assert_eq!(changed["image.redhat.non-root"].0, "error");
    // A file of another size is named too.
    std::fs::write(&passwd, format!("{text}extra:x:2:2::/:/bin/sh\n")).unwrap();
    let (_, longer) = judge("longer");
    let observed = longer["image.integrity.diff-ids"].1[0].to_string();
    assert!(
        observed.contains("etc/passwd") && observed.contains("tar-split recorded"),
        "{observed}"
    );
}

/// The bearer-token flow as Docker and containers/image run it: the registry's `401` names a
/// token realm; the token is asked for with the auth file's basic credentials (GET, with the
/// repository's pull scope) or with its identity token (an OAuth2 refresh-token POST), then sent
/// to the registry. The token and the credentials appear in no output.
#[test]
fn bearer_tokens_are_asked_for_with_basic_credentials_or_an_identity_token() {
    let work = Work::new();
    let env = Env::new(&work);
    let image = served();
    let token = "tok-SECRET-123";
    let refresh = "refresh-SECRET-456";
    let basic = format!(
        "Basic {}",
        reg::base64_encode(format!("{USER}:{PASSWORD}").as_bytes())
    );
    // The layer is redirected to another host (blob storage): the token must not follow it.
    let storage = Fake::start({
        let image = image.clone();
        move |request, _| {
            if request.path.ends_with(&image.layer_digest) {
                Reply::bytes(200, image.layer.clone(), &[])
            } else {
                Reply::bytes(404, Vec::new(), &[])
            }
        }
    });
    let storage_port = storage.port;
    let fake = fake_registry(
        &image,
        Box::new(move |r, i, port| {
            if r.authorization.as_deref() == Some(&format!("Bearer {token}"))
                && r.path.ends_with(&format!("/blobs/{}", i.layer_digest))
            {
                let location = format!("http://127.0.0.1:{storage_port}/store/{}", i.layer_digest);
                return Some(Reply::bytes(307, Vec::new(), &[("Location", &location)]));
            }
            if r.path.starts_with("/token") {
                let scoped = r.path.contains("scope=repository%3Ahcc%2Fapp%3Apull")
                    || String::from_utf8_lossy(&r.body)
                        .contains("scope=repository%3Ahcc%2Fapp%3Apull");
                let by_password =
                    r.method == "GET" && r.authorization.as_deref() == Some(basic.as_str());
                let by_refresh = r.method == "POST"
                    && String::from_utf8_lossy(&r.body).contains("grant_type=refresh_token")
                    && String::from_utf8_lossy(&r.body)
                        .contains(&format!("refresh_token={refresh}"));
                return Some(if scoped && (by_password || by_refresh) {
                    Reply::json(200, &json!({"token": token, "expires_in": 300}), &[])
                } else {
                    Reply::json(401, &json!({"details": "no"}), &[])
                });
            }
            (r.authorization.as_deref() != Some(&format!("Bearer {token}"))).then(|| {
                let challenge = format!(
                    "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:hcc/app:pull\""
                );
                Reply::json(
                    401,
                    &json!({"errors": [{"code": "UNAUTHORIZED", "message": "token needed"}]}),
                    &[("WWW-Authenticate", &challenge)],
                )
            })
        }),
    );
    let target = format!("docker://{}/hcc/app:1.0", fake.host());
    for (name, entry) in [
        (
            "password",
            json!({"auth": reg::base64_encode(format!("{USER}:{PASSWORD}").as_bytes())}),
        ),
        ("identity", json!({"auth": "", "identitytoken": refresh})),
    ] {
        let authfile = work.path(&format!("{name}-auth.json"));
        std::fs::write(
            &authfile,
            json!({"auths": {fake.host(): entry}}).to_string(),
        )
        .unwrap();
        let output_file = format!("{name}.json");
        let output = env.hostcert(
            &work,
            &[
                "gather",
                "--profile",
                "isv-image",
                "--target",
                &target,
                "--tls-verify=false",
                "--authfile",
                &authfile.display().to_string(),
                "--output",
                &output_file,
            ],
            &[],
        );
        assert_eq!(code(&output), 0, "{name}: {}", stderr(&output));
        assert_no_secret(&output, &work.path(&output_file), &[token, refresh]);
        assert!(work.read(&output_file).contains("\"ok\""));
    }
    let requests = fake.requests();
    assert!(requests
        .iter()
        .any(|r| r.method == "POST" && r.path.starts_with("/token")));
    assert!(requests.iter().any(|r| r.path.contains("/blobs/")
        && r.authorization.as_deref() == Some(&format!("Bearer {token}"))));
    // The first run followed the layer's redirect (the second read the cache), and no token
    // went with it.
    let to_storage = storage.requests();
    assert!(
        !to_storage.is_empty(),
        "the layer was not fetched from the storage host"
    );
    assert!(
        to_storage.iter().all(|r| r.authorization.is_none()),
        "a token followed a redirect to another host: {to_storage:?}"
    );
}

/// SBOMs attached to a pushed image are found where their tools put them: the OCI 1.1 referrers
/// API, its `sha256-HEX` tag fallback (which Distribution 2.8 needs: it has no referrers API),
/// and a cosign `.sbom` tag; each validated as the SBOM check validates documents. The fake
/// registry serves an image with no SBOM file in it.
#[test]
fn sboms_are_found_through_referrers_their_tag_fallback_and_cosign_tags() {
    let work = Work::new();
    let image = served();
    let document = spdx_document("hello").into_bytes();
    let document_digest = digest_of(&document);
    let empty = b"{}".to_vec();
    let empty_digest = digest_of(&empty);
    let referrer = json!({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_digest, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": document_digest, "size": document.len()}],
        "subject": {"mediaType": MANIFEST_TYPE, "digest": image.manifest_digest, "size": image.manifest.len()},
    })
    .to_string()
    .into_bytes();
    let referrer_digest = digest_of(&referrer);
    let listing = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": MANIFEST_TYPE, "digest": referrer_digest, "size": referrer.len(),
                       "artifactType": "application/spdx+json"}],
    })
    .to_string()
    .into_bytes();
    let hex = image
        .manifest_digest
        .trim_start_matches("sha256:")
        .to_owned();
    let cases = [
        (
            "api",
            format!("/referrers/{}", image.manifest_digest),
            format!("referrer {referrer_digest}"),
        ),
        (
            "tag",
            format!("/manifests/sha256-{hex}"),
            format!("referrer {referrer_digest}"),
        ),
        (
            "cosign",
            format!("/manifests/sha256-{hex}.sbom"),
            format!("cosign tag sha256-{hex}.sbom"),
        ),
    ];
    std::thread::scope(|scope| {
        let running: Vec<_> = cases
            .iter()
            .map(|(name, place, expected)| {
                let (work, image) = (&work, &image);
                let (referrer, listing, document, empty) =
                    (referrer.clone(), listing.clone(), document.clone(), empty.clone());
                let (referrer_digest, document_digest, empty_digest) =
                    (referrer_digest.clone(), document_digest.clone(), empty_digest.clone());
                let place = place.clone();
                scope.spawn(move || {
                    let fake = fake_registry(
                        image,
                        Box::new(move |r, _, _| {
                            let path = r.path.as_str();
                            if path.ends_with(&place) {
                                let body = if place.ends_with(".sbom") {
                                    referrer.clone()
                                } else {
                                    listing.clone()
                                };
                                let kind = if place.ends_with(".sbom") {
                                    MANIFEST_TYPE
                                } else {
                                    "application/vnd.oci.image.index.v1+json"
                                };
                                return Some(Reply::bytes(200, body, &[("Content-Type", kind)]));
                            }
                            for (digest, body) in [
                                (&referrer_digest, &referrer),
                                (&document_digest, &document),
                                (&empty_digest, &empty),
                            ] {
                                if path.ends_with(&format!("/{digest}")) {
                                    return Some(Reply::bytes(200, body.clone(), &[("Content-Type", MANIFEST_TYPE)]));
                                }
                            }
                            None
                        }),
                    );
                    let env = Env::named(work, name);
                    let authfile = work.path(&format!("{name}-auth.json"));
                    std::fs::write(
                        &authfile,
                        json!({"auths": {fake.host(): {"auth": reg::base64_encode(format!("{USER}:{PASSWORD}").as_bytes())}}}).to_string(),
                    )
                    .unwrap();
                    let target = format!("docker://{}/hcc/app:1.0", fake.host());
                    let output_file = format!("{name}.json");
                    let output = env.hostcert(
                        work,
                        &[
                            "gather", "--profile", "isv-image", "--target", &target,
                            "--tls-verify=false", "--authfile", &authfile.display().to_string(),
                            "--output", &output_file,
                        ],
                        &[],
                    );
                    assert_eq!(code(&output), 0, "{name}: {}", stderr(&output));
                    let snapshot = work.json(&output_file);
                    let fact = snapshot["facts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|f| f["probe"] == json!({"image-info": "sbom"}))
                        .cloned()
                        .unwrap();
                    assert!(
                        fact.to_string().contains(expected.as_str()),
                        "{name}: {fact}"
                    );
                    assert!(fact.to_string().contains("SPDX-2.3"), "{name}: {fact}");
                })
            })
            .collect();
        for case in running {
            case.join().expect("a case passes");
        }
    });
}

/// A registry that requires a client certificate: the one in the cert folder (`*.cert` and its
/// `*.key`) is presented; without it the handshake fails; a certificate without its key is an
/// error naming the file.
#[test]
fn client_certificates_in_the_cert_folder_are_presented() {
    let work = Work::new();
    let registry = Registry::start_with(&work.path("registry"), true);
    let layout = build_image(&work, "busybox", &Spec::good());
    let authfile = registry.authfile.display().to_string();
    // skopeo needs the client certificate to push.
    let client = registry.certs.client_dir.display().to_string();
    tool(
        &registry.dir,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-authfile",
            &authfile,
            "--dest-cert-dir",
            &client,
            &format!("oci:{}:1.0", layout.display()),
            &format!("{}:1.0", registry.docker("hcc/busybox")),
        ],
    );
    let no_key = work.path("no-key");
    std::fs::create_dir_all(&no_key).unwrap();
    for file in ["ca.crt", "client.cert"] {
        std::fs::copy(registry.certs.client_dir.join(file), no_key.join(file)).unwrap();
    }
    let image = format!("{}:1.0", registry.docker("hcc/busybox"));
    let ca = registry.certs.ca_dir.display().to_string();
    let no_key = no_key.display().to_string();
    let cases = [
        ("with", client.as_str(), 0, "\"ok\""),
        (
            "without",
            ca.as_str(),
            2,
            image.trim_start_matches("docker://"),
        ),
        (
            "no-key",
            no_key.as_str(),
            2,
            "client.cert has no matching client.key",
        ),
    ];
    std::thread::scope(|scope| {
        let running: Vec<_> = cases
            .iter()
            .map(|&(name, folder, expected_code, expected)| {
                let (work, image, authfile) = (&work, &image, &authfile);
                scope.spawn(move || {
                    let env = Env::named(work, name);
                    let output_file = format!("{name}.json");
                    let output = env.hostcert(
                        work,
                        &[
                            "gather",
                            "--profile",
                            "isv-image",
                            "--target",
                            image,
                            "--authfile",
                            authfile,
                            "--cert-dir",
                            folder,
                            "--output",
                            &output_file,
                        ],
                        &[],
                    );
                    let text = format!(
                        "{}{}",
                        stderr(&output),
                        std::fs::read_to_string(work.path(&output_file)).unwrap_or_default()
                    );
                    assert_eq!(code(&output), expected_code, "{name}: {text}");
                    assert!(text.contains(expected), "{name}: {text}");
                })
            })
            .collect();
        for case in running {
            case.join().expect("a case passes");
        }
    });
}

/// Signatures kept in the store: `skopeo copy --sign-by` into containers-storage keeps the
/// signature beside the image (big data `signature-HEX`), and hostcert's verdict on the stored
/// images under a signedBy policy is skopeo's (`skopeo copy --policy` out of the store).
#[test]
fn signatures_kept_in_the_store_are_judged_as_skopeo_judges_them() {
    let work = Work::new();
    let env = Env::new(&work);
    let at = work.dir.path();
    // Two images (one store keeps one image per config, and its signatures with it).
    let signed = build_image(&work, "busybox", &Spec::good());
    let unsigned = build_image(
        &work,
        "other",
        &Spec {
            user: Some("root"),
            ..Spec::good()
        },
    );
    let store = reg::PodmanStore::new(&work.path("podman"));
    let gpg = Gpg::new(work.dir.path());
    let signer = gpg.key("signer@example.invalid", &work.path("signer.gpg"));
    for (name, layout, sign) in [("signed", &signed, true), ("unsigned", &unsigned, false)] {
        let source = format!("oci:{}:1.0", layout.display());
        let destination = store.address(&format!("localhost/hcc/{name}:1.0"));
        let mut args = vec!["--insecure-policy", "copy", "--quiet"];
        if sign {
            args.extend(["--sign-by", signer.as_str()]);
        }
        args.extend([source.as_str(), destination.as_str()]);
        let output = gpg.skopeo(at, &args);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let policy = work.path("policy.json");
    std::fs::write(
        &policy,
        json!({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": work.path("signer.gpg"),
                            "signedIdentity": {"type": "matchRepository"}}]})
        .to_string(),
    )
    .unwrap();
    let policy = policy.display().to_string();
    let mut accepted = Vec::new();
    for name in ["signed", "unsigned"] {
        let address = store.address(&format!("localhost/hcc/{name}:1.0"));
        let copy = format!("oci:{}:x", work.path(&format!("copy-{name}")).display());
        let skopeo = gpg.skopeo(
            at,
            &[
                "--policy",
                &policy,
                "copy",
                "--quiet",
                "--remove-signatures",
                &address,
                &copy,
            ],
        );
        let report = format!("report-{name}");
        let output = env.hostcert(
            &work,
            &[
                "run",
                "--profile",
                "isv-image",
                "--target",
                &address,
                "--policy",
                &policy,
                "--report-dir",
                &report,
                "image.signature.policy",
            ],
            &[],
        );
        let (outcome, result) = outcome_of(
            &work.json(&format!("{report}/report.json")),
            "image.signature.policy",
        );
        assert_eq!(
            outcome == "pass",
            skopeo.status.success(),
            "{name}: skopeo says {}, hostcert {result}\n{}",
            stderr(&skopeo),
            stderr(&output)
        );
        accepted.push(outcome == "pass");
    }
    assert_eq!(accepted, [true, false]);
}

/// Regression: Ctrl-C while a layer streams in from a registry (here one that trickles it)
/// ends the fetch, and the run leaves neither its partial blob in the cache's `tmp/` nor
/// anything in TMPDIR (the partial blob was left for the next run to remove).
#[test]
fn sigint_while_a_layer_is_fetched_leaves_no_partial_blob() {
    let work = Work::new();
    let env = Env::new(&work);
    let image = served();
    let fake = fake_registry(
        &image,
        Box::new(|r, i, _| {
            (r.authorization.is_some() && r.path.ends_with(&format!("/blobs/{}", i.layer_digest)))
                .then(|| Reply::Trickle {
                    body: i.layer.clone(),
                })
        }),
    );
    let authfile = work.path("auth.json");
    std::fs::write(
        &authfile,
        json!({"auths": {fake.host(): {"auth": reg::base64_encode(format!("{USER}:{PASSWORD}").as_bytes())}}}).to_string(),
    )
    .unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["run", "--profile", "isv-image", "--tls-verify=false"])
        .arg("--target")
        .arg(format!("docker://{}/hcc/app:1.0", fake.host()))
        .arg("--authfile")
        .arg(&authfile)
        .args(["--gather-timeout", "120", "--report-dir", "out"])
        .current_dir(work.dir.path())
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in &env.vars {
        command.env(name, value);
    }
    let child = command.spawn().expect("hostcert runs");
    let layer = format!("/blobs/{}", image.layer_digest);
    let started = std::time::Instant::now();
    // The layer has started to trickle in.
    while !fake
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.authorization.is_some() && r.path.ends_with(&layer))
    {
        assert!(
            started.elapsed().as_secs() < 60,
            "the layer was never asked for"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let partial: Vec<_> = std::fs::read_dir(env.cache.join("hostcert/tmp"))
        .unwrap()
        .collect();
    assert_eq!(partial.len(), 1, "the partial blob is being written");
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{said}");
    assert!(
        started.elapsed().as_secs() < 60,
        "the run waited for the trickle"
    );
    let left: Vec<_> = std::fs::read_dir(env.cache.join("hostcert/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a partial blob was left: {left:?}\n{said}");
    assert!(
        !env.cached()
            .iter()
            .any(|blob| image.layer_digest.ends_with(blob.as_str())),
        "the layer was cached unverified"
    );
    let tmp: Vec<_> = std::fs::read_dir(&env.tmp).unwrap().collect();
    assert!(tmp.is_empty(), "the run left files in TMPDIR: {tmp:?}");
    let report = work.json("out/report.json");
    assert_eq!(report["verdict"], "incomplete");
    assert!(
        report["targets"][0]["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("interrupted by SIGINT"),
        "{}",
        report["targets"][0]
    );
}
