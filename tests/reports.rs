//! End-to-end tests of what a run leaves for people and CI: the four report files of a fleet,
//! waivers files and their warnings, `diff` and `run --baseline` on two real runs that differ,
//! and signed bundles that verify, interoperate with OpenSSL, and fail when one byte changes.

mod support;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use support::*;

/// The broken fixture host without its one gating error (the cgroup controllers file it could
/// not read), so that its verdict is decided by failures alone.
fn readable_broken(snapshot: &mut Value) {
    let facts = snapshot["facts"].as_array_mut().unwrap();
    let fact = facts
        .iter_mut()
        .find(|f| f["probe"] == json!({"file-content": "/sys/fs/cgroup/cgroup.controllers"}))
        .unwrap();
    fact.as_object_mut().unwrap().remove("error");
    fact["value"] = json!({"text": "cpuset cpu io memory pids"});
}

/// The "done when": a run over several targets writes JSON, JUnit, HTML and Markdown,
/// and a fleet's JUnit with failures, errors, skips and waivers validates against the XSD.
#[test]
fn a_fleet_run_writes_every_report_and_its_junit_validates() {
    let work = Work::new();
    let files = vec![
        work.snapshot("broken-host", "broken-1", |_| {}),
        work.snapshot("broken-host", "broken-2", |_| {}),
        work.snapshot("healthy-host", "healthy-1", |_| {}),
        "missing.json".to_owned(),
    ];
    let soon = date_in(10);
    work.write(
        "waivers.yaml",
        &format!(
            "- check: kernel.namespaces.net\n  targets: [broken-*]\n  reason: NET_NS returns with the next vendor kernel\n  approver: qa@example.com\n  expires: {soon}\n\
             - check: kernel.storage.overlayfs\n  targets: [broken-2]\n  reason: devicemapper on this host\n  approver: storage@example.com\n  expires: 2020-01-31\n"
        ),
    );
    let mut args = vec![
        "run".to_owned(),
        "--waivers".to_owned(),
        "waivers.yaml".to_owned(),
    ];
    args.extend(facts_args(&files));
    let output = work.hostcert(&args);
    assert_eq!(code(&output), 1, "{}{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&format!("  warning: the waiver for `kernel.namespaces.net` approved by qa@example.com (from waivers.yaml) expires on {soon} (in 10 days)\n")), "{text}");
    assert!(text.contains("  warning: the waiver for `kernel.storage.overlayfs` approved by storage@example.com (from waivers.yaml) expired on 2020-01-31; its failures count again\n"), "{text}");
    assert!(text.contains("reports: hostcert-report/report.json, hostcert-report/junit.xml, hostcert-report/report.html, hostcert-report/report.md\n"), "{text}");

    let report = work.json("hostcert-report/report.json");
    assert_eq!(report["waivers"].as_array().unwrap().len(), 2);
    let waived = result(&report, "broken-1", "kernel.namespaces.net");
    assert_eq!(waived["outcome"], "waived");
    assert_eq!(waived["waiver"]["source"], "waivers.yaml");
    assert_eq!(waived["waiver"]["targets"], json!(["broken-*"]));
    let expired = result(&report, "broken-2", "kernel.storage.overlayfs");
    assert_eq!(expired["outcome"], "fail");
    assert!(expired["message"]
        .as_str()
        .unwrap()
        .ends_with("; the waiver approved by storage@example.com expired on 2020-01-31"));
    assert!(report["targets"][0]["facts-digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(
        report["targets"][3].get("facts-digest").is_none(),
        "missing.json was not read"
    );

    let junit = work.read("hostcert-report/junit.xml");
    for needle in [
        "<failure type=\"critical\"",
        "<error type=\"error\"",
        "<skipped type=\"not-applicable\"",
        "<skipped type=\"advisory\"",
        &format!("waiver: kernel.namespaces.net approved by qa@example.com until {soon}: NET_NS returns with the next vendor kernel"),
        "waiver: kernel.storage.overlayfs for broken-2 approved by storage@example.com until 2020-01-31 (EXPIRED) (from waivers.yaml)",
    ] {
        assert!(junit.contains(needle), "{needle} not in:\n{junit}");
    }
    assert_eq!(junit.matches("<testsuite ").count(), 4);
    xmllint_validates(&work.path("hostcert-report/junit.xml"));

    let markdown = work.read("hostcert-report/report.md");
    assert!(
        markdown.starts_with("## hostcert: NOT CERTIFIED\n"),
        "{markdown}"
    );
    assert!(markdown.contains(&format!("- **Warning:** the waiver for `kernel.namespaces.net` approved by qa\u{2060}\\@example.com expires on {soon} (in 10 days).")), "{markdown}");
    assert!(
        markdown.contains("- **Expired:** the waiver for `kernel.storage.overlayfs`"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| broken-2 | not certified |"),
        "{markdown}"
    );
    let html = work.read("hostcert-report/report.html");
    assert!(html.contains("<h1 id=\"verdict\">NOT CERTIFIED</h1>"));
    assert!(html.contains("(in 10 days)"));
    assert!(html.contains("data-name=\"missing.json\""));

    // A shorter warning window leaves the waiver unmentioned.
    let quiet = work.hostcert(&[
        "report",
        "--from",
        "hostcert-report/report.json",
        "--markdown",
        "quiet.md",
        "--waiver-warning-days",
        "5",
    ]);
    assert_eq!(code(&quiet), 0, "{}", stderr(&quiet));
    assert!(!work.read("quiet.md").contains("**Warning:**"));
}

/// A waivers file is read through the same YAML code as profiles: one clear error at
/// file:line:column, before any target is read, and `lint` checks it.
#[test]
fn bad_waivers_files_are_refused_at_file_line_column() {
    let work = Work::new();
    work.write(
        "date.yaml",
        "- check: kernel.keys\n  reason: x\n  approver: y\n  expires: soon\n",
    );
    work.write(
        "key.yaml",
        "- check: kernel.keys\n  reason: x\n  approver: y\n  expires: 2099-01-01\n  colour: red\n",
    );
    work.write(
        "expired.yaml",
        "- check: kernel.keys\n  reason: x\n  approver: y\n  expires: 2020-01-01\n",
    );
    work.write(
        "typo.yaml",
        "- check: kernel.kyes\n  reason: x\n  approver: y\n  expires: 2099-01-01\n",
    );
    let healthy = fixture("snapshots/healthy-host.json").display().to_string();
    for (file, expected) in [
        ("date.yaml", "error: date.yaml:4:3: [0].expires: `soon` is not a date of the form YYYY-MM-DD\n"),
        ("key.yaml", "error: key.yaml:5:3: [0]: unknown field `colour`, expected one of `check`, `targets`, `reason`, `approver`, `expires`\n"),
    ] {
        let output = work.hostcert(&["run", "--waivers", file, "--facts", &healthy]);
        assert_eq!(code(&output), 2, "{file}");
        assert_eq!(stderr(&output), expected, "{file}");
        assert!(stdout(&output).is_empty(), "no trial ran");
        assert!(!work.path("hostcert-report").exists());
    }
    let lint = work.hostcert(&["lint", "expired.yaml", "typo.yaml", "date.yaml"]);
    assert_eq!(code(&lint), 2);
    assert_eq!(
        stderr(&lint),
        "date.yaml:4:3: [0].expires: `soon` is not a date of the form YYYY-MM-DD\n\
         expired.yaml:4:3: [0].expires: the waiver for `kernel.keys` approved by y expired on 2020-01-01\n\
         typo.yaml:1:3: [0].check: `kernel.kyes` names no check of the known suites\n\
         lint: 3 problems\n"
    );
    work.write(
        "good.yaml",
        "- check: kernel.keys\n  reason: x\n  approver: y\n  expires: 2099-01-01\n",
    );
    let good = work.hostcert(&["lint", "good.yaml"]);
    assert_eq!(code(&good), 0, "{}", stderr(&good));
    assert_eq!(
        stdout(&good),
        "lint: ok (0 suites, 0 profiles, 1 waivers files)\n"
    );
}

/// The "done when": diff and baseline gating work on two real runs that differ.
#[test]
fn diff_and_the_baseline_gate_on_two_runs_that_differ() {
    let work = Work::new();
    // The first build misses NET_NS; the second has it, but lost IPC_NS and runs a newer kernel.
    let old_files = vec![
        work.snapshot("broken-host", "build", readable_broken),
        work.snapshot("healthy-host", "stable", |_| {}),
    ];
    let run = |files: &[String], extra: &[&str]| {
        let mut args: Vec<String> = vec!["run".to_owned(), "-q".to_owned()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(facts_args(files));
        work.hostcert(&args)
    };
    let old = run(&old_files, &["--report-dir", "old"]);
    assert_eq!(code(&old), 1, "{}", stdout(&old));

    let new_files = vec![
        work.snapshot_as("v2/build.json", "broken-host", "build", |snapshot| {
            readable_broken(snapshot);
            set_fact(
                snapshot,
                json!({"kernel-config": "NET_NS"}),
                json!({"text": "y"}),
            );
            set_fact(
                snapshot,
                json!({"kernel-config": "IPC_NS"}),
                json!({"absent": null}),
            );
        }),
        work.snapshot_as("v2/stable.json", "healthy-host", "stable", |_| {}),
    ];
    let new = run(&new_files, &["--report-dir", "new"]);
    assert_eq!(code(&new), 1);

    let diff = work.hostcert(&[
        "diff",
        "old/report.json",
        "new/report.json",
        "--json",
        "diff.json",
    ]);
    assert_eq!(code(&diff), 1, "a new gating failure: {}", stdout(&diff));
    let text = stdout(&diff);
    assert!(text.contains("\nbuild:\n"), "{text}");
    assert!(text.contains("  new failure  kernel.namespaces.ipc (critical, gating): pass -> fail: expected CONFIG_IPC_NS = y; observed CONFIG_IPC_NS = not set\n"), "{text}");
    assert!(
        text.contains("  fixed        kernel.namespaces.net: fail -> pass\n"),
        "{text}"
    );
    assert!(text.contains("  evidence     kernel.namespaces.net: CONFIG_NET_NS: not set (from /boot/config-4.9.0-13-amd64) -> y (from /boot/config-4.9.0-13-amd64)\n"), "{text}");
    assert!(
        !text.contains("\nstable"),
        "an unchanged target is not listed: {text}"
    );
    assert!(
        text.ends_with("; targets: 0 added, 0 removed, 1 unchanged\n"),
        "{text}"
    );
    let as_json = work.json("diff.json");
    assert_eq!(as_json["counts"]["new-gating-failures"], 1);
    assert_eq!(
        as_json["targets"][0]["fixed"][0]["check"],
        "kernel.namespaces.net"
    );

    let same = work.hostcert(&["diff", "old/report.json", "old/report.json"]);
    assert_eq!(code(&same), 0, "{}", stdout(&same));
    let unreadable = work.hostcert(&["diff", "old/report.json", "nope.json"]);
    assert_eq!(code(&unreadable), 2);

    // Against the old run as baseline, the old failures are known: the gate passes although
    // the run is not certified.
    let known = run(
        &old_files,
        &["--report-dir", "known", "--baseline", "old/report.json"],
    );
    assert_eq!(code(&known), 0, "{}", stdout(&known));
    let text = stdout(&known);
    assert!(text.contains("verdict: NOT CERTIFIED"), "{text}");
    assert!(
        text.contains(
            "gate: CERTIFIED against the baseline (only failures new against it count)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("(known: also failed in the baseline)"),
        "{text}"
    );
    let report = work.json("known/report.json");
    assert_eq!(report["verdict"], "not-certified");
    assert_eq!(report["baseline"]["verdict"], "certified");
    assert_eq!(report["baseline"]["source"], "old/report.json");
    assert_eq!(report["baseline"]["new-failures"], 0);
    assert_eq!(
        result(&report, "build", "kernel.namespaces.net")["known-failure"],
        true
    );
    assert!(work
        .read("known/report.md")
        .contains("the gate is **CERTIFIED**, with 0 new failures (0 gating)"));
    assert!(work.read("known/report.html").contains("id=\"baseline\""));
    assert!(work
        .read("known/junit.xml")
        .contains("baseline: known failure, it also failed on this target in the baseline"));

    // The second build's lost IPC_NS is new: the gate fails, and says why.
    let regressed = run(
        &new_files,
        &["--report-dir", "regressed", "--baseline", "old/report.json"],
    );
    assert_eq!(code(&regressed), 1, "{}", stdout(&regressed));
    let report = work.json("regressed/report.json");
    assert_eq!(report["baseline"]["verdict"], "not-certified");
    assert_eq!(report["baseline"]["new-gating-failures"], 1);
    assert!(result(&report, "build", "kernel.namespaces.ipc")
        .get("known-failure")
        .is_none());

    // A baseline that cannot be read stops the run before any target is read.
    let missing = run(&old_files, &["--baseline", "nope.json"]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).starts_with("error: nope.json: cannot read the baseline: "));
    assert!(stdout(&missing).is_empty());
}

/// The DSSE pre-authentication encoding, written here from the specification rather than
/// taken from the code under test.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    bytes.extend_from_slice(payload);
    bytes
}

/// The "done when": a signed bundle verifies and a tampered one does not.
#[test]
fn signed_bundles_verify_interoperate_with_openssl_and_fail_on_one_changed_byte() {
    let work = Work::new();
    keypair(&work, "ed", &["-algorithm", "ed25519"]);
    keypair(
        &work,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let healthy = fixture("snapshots/healthy-host.json").display().to_string();
    let run = work.hostcert(&["run", "-q", "--facts", &healthy, "--sign", "ed.pem"]);
    assert_eq!(code(&run), 0, "{}{}", stdout(&run), stderr(&run));
    assert!(stdout(&run).contains(", hostcert-report/report.intoto.jsonl\n"));
    let bundle = "hostcert-report/report.intoto.jsonl";

    let verified = work.hostcert(&["verify", bundle, "--key", "ed.pub"]);
    assert_eq!(code(&verified), 0, "{}", stderr(&verified));
    let text = stdout(&verified);
    assert!(
        text.starts_with("verified: signed by an ed25519 key (keyid "),
        "{text}"
    );
    assert!(
        text.contains("subject: facts:healthy-host sha256:"),
        "{text}"
    );
    assert!(
        text.contains("configuration: suite:kernel-features 1.0.0 sha256:62f99664"),
        "{text}"
    );
    assert!(text.ends_with("verdict: CERTIFIED (result PASSED; 28 pass, 0 fail (0 gating), 0 waived, 0 skip, 0 error)\n"), "{text}");

    // The statement: in-toto v1, test-result predicate, the facts digest as subject.
    let envelope: Value = serde_json::from_str(&work.read(bundle)).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let payload = BASE64
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    let report = work.json("hostcert-report/report.json");
    let facts_digest = report["targets"][0]["facts-digest"].as_str().unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        facts_digest
    );
    // Anyone can recompute it from the snapshot: the sha256 of the compact JSON of its facts.
    let snapshot: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("snapshots/healthy-host.json")).unwrap(),
    )
    .unwrap();
    let compact = serde_json::to_vec(&snapshot["facts"]).unwrap();
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(&compact)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(facts_digest, format!("sha256:{hex}"));
    assert_eq!(statement["predicate"]["result"], "PASSED");
    assert_eq!(
        statement["predicate"]["configuration"][0]["name"],
        "profile:container-host-1-0"
    );
    assert_eq!(
        statement["predicate"]["passedTests"]
            .as_array()
            .unwrap()
            .len(),
        28
    );

    // The wrong key, a flipped byte in the payload, in the signature, or in the report: each
    // fails with exit 1.
    let wrong = work.hostcert(&["verify", bundle, "--key", "ec.pub"]);
    assert_eq!(code(&wrong), 1);
    assert!(stderr(&wrong).contains("no signature in the envelope verifies with this key"));
    let tamper = |name: &str, edit: &dyn Fn(&mut Value)| {
        let mut copy = envelope.clone();
        edit(&mut copy);
        work.write(name, &serde_json::to_string(&copy).unwrap());
        let output = work.hostcert(&[
            "verify",
            name,
            "--key",
            "ed.pub",
            "--report",
            "hostcert-report/report.json",
        ]);
        assert_eq!(code(&output), 1, "{name}: {}", stdout(&output));
        assert!(stderr(&output).starts_with(&format!("verify: FAILED: {name}: ")));
        assert!(stdout(&output).is_empty());
    };
    tamper("payload.jsonl", &|copy| {
        let mut bytes = BASE64.decode(copy["payload"].as_str().unwrap()).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        copy["payload"] = Value::from(BASE64.encode(bytes));
    });
    tamper("signature.jsonl", &|copy| {
        let sig = copy["signatures"][0]["sig"].as_str().unwrap();
        let mut bytes = BASE64.decode(sig).unwrap();
        bytes[10] ^= 0x80;
        copy["signatures"][0]["sig"] = Value::from(BASE64.encode(bytes));
    });
    tamper("type.jsonl", &|copy| {
        copy["payloadType"] = Value::from("application/vnd.in-toto+jsoN");
    });
    let original = work.read("hostcert-report/report.json");
    work.write(
        "hostcert-report/report.json",
        &original.replacen("\"pass\": 28", "\"pass\": 29", 1),
    );
    let changed_report = work.hostcert(&["verify", bundle, "--key", "ed.pub"]);
    assert_eq!(code(&changed_report), 1);
    assert!(stderr(&changed_report).contains("hostcert-report/report.json has digest sha256:"));
    work.write("hostcert-report/report.json", &original);

    // attest signs a saved report; ECDSA P-256 signatures verify with OpenSSL itself.
    let attested = work.hostcert(&[
        "attest",
        "--from",
        "hostcert-report/report.json",
        "--key",
        "ec.pem",
        "--output",
        "hostcert-report/ec.intoto.jsonl",
    ]);
    assert_eq!(code(&attested), 0, "{}", stderr(&attested));
    let verified = work.hostcert(&[
        "verify",
        "hostcert-report/ec.intoto.jsonl",
        "--key",
        "ec.pub",
    ]);
    assert_eq!(code(&verified), 0, "{}", stderr(&verified));
    for (bundle, public, algorithm) in [
        ("hostcert-report/ec.intoto.jsonl", "ec.pub", "ecdsa"),
        ("hostcert-report/report.intoto.jsonl", "ed.pub", "ed25519"),
    ] {
        let envelope: Value = serde_json::from_str(&work.read(bundle)).unwrap();
        let payload = BASE64
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let signed = pae(envelope["payloadType"].as_str().unwrap(), &payload);
        std::fs::write(work.path("pae.bin"), &signed).unwrap();
        let sig = BASE64
            .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        std::fs::write(work.path("sig.bin"), &sig).unwrap();
        let checked = if algorithm == "ecdsa" {
            openssl(
                work.dir.path(),
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    public,
                    "-signature",
                    "sig.bin",
                    "pae.bin",
                ],
            )
        } else {
            openssl(
                work.dir.path(),
                &[
                    "pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin", "-in", "pae.bin",
                    "-sigfile", "sig.bin",
                ],
            )
        };
        assert!(
            checked.status.success(),
            "openssl does not verify the {algorithm} signature: {}{}",
            stdout(&checked),
            stderr(&checked)
        );
        assert!(
            stdout(&checked).contains("Verified"),
            "{}",
            stdout(&checked)
        );
    }

    // Keys are never written into reports: no file of the run holds key material.
    let keys: Vec<String> = ["ed.pem", "ec.pem"]
        .iter()
        .map(|k| {
            work.read(k)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
        })
        .collect();
    let printed = stdout(&run) + &stderr(&run);
    for text in std::fs::read_dir(work.path("hostcert-report"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .chain([printed])
    {
        assert!(!text.contains("PRIVATE KEY"));
        for key in &keys {
            assert!(!text.contains(&key[..40]));
        }
    }

    // A key of the wrong kind is refused, before any target is read.
    let public_to_sign = work.hostcert(&["run", "--facts", &healthy, "--sign", "ed.pub"]);
    assert_eq!(code(&public_to_sign), 2);
    assert_eq!(
        stderr(&public_to_sign),
        "error: ed.pub: this is a public key; signing needs the private key\n"
    );
    let private_to_verify = work.hostcert(&["verify", bundle, "--key", "ed.pem"]);
    assert_eq!(code(&private_to_verify), 2);
    assert!(stderr(&private_to_verify)
        .contains("this is a private key; verifying needs the public key"));
}

/// A verdict is never read from a file: a report of failing results whose `verdict` was edited
/// to certified (with serde_json, as anyone would) is refused, naming the field, by every
/// command that reads a report: nothing renders, signs, compares, merges or gates against it.
#[test]
fn a_report_edited_to_certified_is_never_rendered_signed_or_trusted() {
    let work = Work::new();
    keypair(&work, "ed", &["-algorithm", "ed25519"]);
    let broken = fixture("snapshots/broken-host.json").display().to_string();
    let run = work.hostcert(&["run", "-q", "--facts", &broken]);
    assert_eq!(code(&run), 1, "{}", stdout(&run));
    let mut report = work.json("hostcert-report/report.json");
    report["verdict"] = json!("certified");
    work.write(
        "edited.json",
        &serde_json::to_string_pretty(&report).unwrap(),
    );
    // Also the counts, made to agree with the claim.
    report["summary"]["gating-fail"] = json!(0);
    report["summary"]["gating-error"] = json!(0);
    work.write(
        "edited-counts.json",
        &serde_json::to_string_pretty(&report).unwrap(),
    );
    for (file, field) in [
        ("edited.json", "`verdict` is certified, but the results give not certified (a gating check failed on target `broken-host`)"),
        ("edited-counts.json", "`summary.gating-fail` is 0, but the results count 5"),
    ] {
        for args in [
            vec!["report", "--from", file, "--html", "r.html", "--junit", "j.xml"],
            vec!["attest", "--from", file, "--key", "ed.pem", "--output", "b.jsonl"],
            vec!["diff", "hostcert-report/report.json", file],
            vec!["report", "merge", file, "--json", "m.json"],
            vec!["run", "-q", "--facts", &broken, "--report-dir", "gated", "--baseline", file],
        ] {
            let output = work.hostcert(&args);
            assert_eq!(code(&output), 2, "{args:?}: {}", stdout(&output));
            let error = stderr(&output);
            assert!(
                error.starts_with(&format!("error: {file}: "))
                    && error.contains(&format!(
                        "the report contradicts its own results: {field}"
                    )),
                "{args:?}: {error}"
            );
        }
        for written in ["r.html", "j.xml", "b.jsonl", "m.json", "gated"] {
            assert!(!work.path(written).exists(), "{written} was written");
        }
    }
}

/// `verify --require VERDICT` turns a genuine bundle that attests another verdict into exit 1,
/// for each verdict; without it, a genuine bundle verifies whatever it attests.
#[test]
fn verify_require_fails_a_genuine_bundle_of_another_verdict() {
    let work = Work::new();
    keypair(&work, "ed", &["-algorithm", "ed25519"]);
    let broken = fixture("snapshots/broken-host.json").display().to_string();
    let healthy = fixture("snapshots/healthy-host.json").display().to_string();
    let cases = [
        ("broken", &broken, "not-certified"),
        ("healthy", &healthy, "certified"),
    ];
    for (dir, facts, attested) in cases {
        let run = work.hostcert(&[
            "run",
            "-q",
            "--facts",
            facts,
            "--report-dir",
            dir,
            "--sign",
            "ed.pem",
        ]);
        assert!(code(&run) <= 1, "{}", stdout(&run));
        let bundle = format!("{dir}/report.intoto.jsonl");
        let plain = work.hostcert(&["verify", &bundle, "--key", "ed.pub"]);
        assert_eq!(code(&plain), 0, "{}", stderr(&plain));
        for required in ["certified", "not-certified", "incomplete"] {
            let output =
                work.hostcert(&["verify", &bundle, "--key", "ed.pub", "--require", required]);
            if required == attested {
                assert_eq!(code(&output), 0, "{dir} {required}: {}", stderr(&output));
            } else {
                assert_eq!(code(&output), 1, "{dir} {required}: {}", stderr(&output));
                assert!(
                    stderr(&output).contains(&format!(
                        "the bundle is genuine, but attests {}, and --require asks for {}",
                        attested.replace('-', " ").to_uppercase(),
                        required.replace('-', " ").to_uppercase()
                    )),
                    "{}",
                    stderr(&output)
                );
            }
        }
    }
}
