//! Verdicts people can trust, end to end with the real binary: no CERTIFIED without evidence,
//! profiles that refuse targets they do not certify, snapshots that cannot be misread, a facts
//! digest that jq and sha256sum reproduce, evidence never cut, text from targets that never
//! reaches a terminal, JUnit or Markdown as control codes, and numeric options and regular
//! expressions bounded when they are read.

mod support;

use serde_json::{json, Value};
use support::{code, fixture, require, stderr, stdout, xmllint_validates, Work};

/// The hidden characters a hostile host puts in a fact: ESC (a screen clear and a window
/// title), BEL, CR, NUL and the right-to-left override.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\rOK\0\u{202e}txt";
/// How [`HOSTILE`] reads once escaped.
const HOSTILE_SEEN: &str = "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\rOK\\u{0}\\u{202e}txt";

fn net_ns(snapshot: &mut Value, value: Value) {
    support::set_fact(snapshot, json!({"kernel-config": "NET_NS"}), value);
}

fn run_facts(work: &Work, file: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--facts", file];
    args.extend_from_slice(extra);
    work.hostcert(&args)
}

fn all_output(output: &std::process::Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

/// The old defect: `run --profile isv-image` with no `--target` certified this machine with
/// every check skipped. The profile certifies images only and says so before reading anything.
#[test]
fn an_image_profile_refuses_this_machine_before_gathering() {
    let work = Work::new();
    let output = work.hostcert(&["run", "--profile", "isv-image"]);
    assert_eq!(code(&output), 2, "{}", all_output(&output));
    assert_eq!(
        stderr(&output),
        "error: profile `isv-image` certifies image targets only (target-kinds), and `local` is a `local` target (this machine: the target when no --target is given); give one with --target oci:DIR[:TAG]\n"
    );
    assert!(
        !work.path("hostcert-report").exists(),
        "no report is written"
    );
    let gather = work.hostcert(&["gather", "--profile", "isv-image", "--output", "f.json"]);
    assert_eq!(code(&gather), 2, "{}", all_output(&gather));
    assert!(stderr(&gather).contains("certifies image targets only"));
    assert!(!work.path("f.json").exists());
    // isv-container certifies pairs: a host alone would skip every image check.
    let host = work.hostcert(&["run", "--profile", "isv-container", "--target", "local"]);
    assert_eq!(code(&host), 2);
    assert!(
        stderr(&host).contains("and `local` is a `local` target; give one with --image oci:DIR[:TAG] --target local or "),
        "{}",
        stderr(&host)
    );
    // A host profile refuses an image.
    let image = work.hostcert(&["run", "--profile", "container-host", "--target", "oci:img"]);
    assert_eq!(code(&image), 2);
    assert!(
        stderr(&image).contains("certifies local, ssh, os-tree, kernel-config targets only"),
        "{}",
        stderr(&image)
    );
}

/// A snapshot of a pair keeps its image's kind, so a pair profile takes it offline as it took
/// it live; a snapshot of the host alone is refused.
#[test]
fn a_snapshot_of_a_pair_keeps_its_image_kind_for_the_profile() {
    let work = Work::new();
    let alone = work.snapshot("healthy-host", "host", |_| {});
    let output = run_facts(&work, &alone, &["--profile", "isv-container"]);
    assert_eq!(code(&output), 2);
    assert!(stderr(&output).contains("`host` is a `local` target"));
    let pair = work.snapshot("healthy-host", "tree@host", |s| {
        s["target"]["image-kind"] = json!("os-tree");
    });
    let output = run_facts(&work, &pair, &["--profile", "isv-container"]);
    assert!(
        !stderr(&output).contains("certifies"),
        "{}",
        all_output(&output)
    );
    let report = work.json("hostcert-report/report.json");
    assert_eq!(report["targets"][0]["name"], "tree@host");
}

/// Below the profile's refusal, the verdict itself: a target on which no gating check was
/// evaluated is incomplete, never certified. An image profile without `target-kinds` on this
/// machine (the old defect's 0 pass, all skipped) is incomplete and says why.
#[test]
fn a_target_on_which_every_gating_check_was_skipped_is_incomplete() {
    let work = Work::new();
    work.write(
        "images-anywhere.yaml",
        "name: images-anywhere\nversion: 1.0.0\nsuites:\n  image-provenance: ^1\ngate: [critical, high, medium]\n",
    );
    let output = work.hostcert(&["run", "--profile", "images-anywhere.yaml"]);
    assert_eq!(code(&output), 2, "{}", all_output(&output));
    let text = stdout(&output);
    assert!(
        text.contains("verdict: INCOMPLETE (profile images-anywhere"),
        "{text}"
    );
    assert!(
        text.contains(" skip, 0 error — incomplete: no gating check was evaluated (each one was skipped, or none ran)\n"),
        "{text}"
    );
    let report = work.json("hostcert-report/report.json");
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(report["summary"]["pass"], 0);

    // A filter that keeps only checks that do not apply: incomplete too (it was certified).
    let broken = fixture("snapshots/broken-host.json").display().to_string();
    let output = run_facts(
        &work,
        &broken,
        &[
            "--exact",
            "broken-host::kernel-features::host.seccomp.errno-action",
        ],
    );
    let report = work.json("hostcert-report/report.json");
    assert_eq!(report["summary"]["skip"], 1, "{}", all_output(&output));
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(code(&output), 2);
}

/// `gate: []` can never certify, and lint says so (a warning: the profile is valid).
#[test]
fn an_empty_gate_is_never_certified_and_lint_warns() {
    let work = Work::new();
    work.write(
        "no-gate.yaml",
        "name: no-gate\nversion: 1.0.0\nsuites:\n  kernel-features: \"=1.0.0\"\ngate: []\n",
    );
    let healthy = fixture("snapshots/healthy-host.json").display().to_string();
    let output = run_facts(&work, &healthy, &["--profile", "no-gate.yaml"]);
    assert_eq!(code(&output), 2, "{}", all_output(&output));
    assert_eq!(
        work.json("hostcert-report/report.json")["verdict"],
        "incomplete"
    );
    let lint = work.hostcert(&["lint", "no-gate.yaml"]);
    assert_eq!(code(&lint), 0, "{}", all_output(&lint));
    assert_eq!(
        stderr(&lint),
        "warning: no-gate.yaml:5:1: gate: the gate is empty: no check decides the verdict, so every run of this profile is incomplete, never certified\n"
    );
    assert_eq!(
        stdout(&lint),
        "lint: ok (0 suites, 1 profiles, 1 warning)\n"
    );
}

/// `target-kinds` is checked when the profile is read, each problem at its line.
#[test]
fn bad_target_kinds_are_refused_at_file_line() {
    let work = Work::new();
    work.write(
        "kinds.yaml",
        "name: kinds\nversion: 1.0.0\ntarget-kinds: [imgae, kernel-config@local, image]\nsuites:\n  kernel-features: ^1\n",
    );
    let lint = work.hostcert(&["lint", "kinds.yaml"]);
    assert_eq!(code(&lint), 2);
    assert_eq!(
        stderr(&lint),
        "kinds.yaml:3:1: target-kinds[0]: `imgae` is not a target kind (local, ssh, os-tree, kernel-config, image, vm)\n\
         kinds.yaml:3:1: target-kinds[1]: `kernel-config@local`: the image of a pair is an image or an os-tree, not kernel-config\n\
         lint: 2 problems\n"
    );
    work.write(
        "none.yaml",
        "name: none\nversion: 1.0.0\ntarget-kinds: []\nsuites:\n  kernel-features: ^1\n",
    );
    let lint = work.hostcert(&["lint", "none.yaml"]);
    assert_eq!(code(&lint), 2);
    assert!(stderr(&lint).starts_with(
        "none.yaml:3:1: target-kinds: a profile certifies at least one kind of target"
    ));
}

/// A snapshot is refused, naming the file and the fact, when a fact appears twice (the last
/// copy used to win), has both a value and an error (the value used to win), or neither; and
/// when its target name hides control characters.
#[test]
fn a_snapshot_with_a_fact_twice_or_both_value_and_error_is_refused() {
    let work = Work::new();
    let twice = work.snapshot("healthy-host", "twice", |s| {
        let facts = s["facts"].as_array_mut().unwrap();
        let index = facts
            .iter()
            .position(|f| f["probe"] == json!({"kernel-config": "NET_NS"}))
            .unwrap();
        let mut first = facts[index].clone();
        first["value"] = json!("absent");
        facts.insert(0, first);
    });
    let both = work.snapshot("healthy-host", "both", |s| {
        let facts = s["facts"].as_array_mut().unwrap();
        let fact = facts
            .iter_mut()
            .find(|f| f["probe"] == json!({"kernel-config": "NET_NS"}))
            .unwrap();
        fact["error"] = json!("Permission denied");
    });
    let neither = work.snapshot("healthy-host", "neither", |s| {
        let facts = s["facts"].as_array_mut().unwrap();
        let fact = facts
            .iter_mut()
            .find(|f| f["probe"] == json!({"kernel-config": "NET_NS"}))
            .unwrap();
        fact.as_object_mut().unwrap().remove("value");
    });
    let name = work.snapshot_as("facts/name.json", "healthy-host", "evil\u{1b}[2J", |_| {});
    for (file, reason) in [
        (
            &twice,
            "facts[9] (CONFIG_NET_NS): the fact appears twice (also facts[0])",
        ),
        (&both, "(CONFIG_NET_NS): has both a value and an error"),
        (
            &neither,
            "(CONFIG_NET_NS): has neither a value nor an error",
        ),
        (
            &name,
            "target.name: `evil\\u{1b}[2J` holds the hidden character U+001B",
        ),
    ] {
        let output = run_facts(&work, file, &[]);
        assert_eq!(code(&output), 2, "{file}: {}", all_output(&output));
        let text = stdout(&output);
        assert!(
            text.contains(&format!("  {file}: 0 pass, 0 fail (0 gating), 0 waived, 0 skip, 28 error — could not be read: ")),
            "{text}"
        );
        assert!(text.contains(reason), "{file}: {text}");
        let report = work.json("hostcert-report/report.json");
        assert!(report["targets"][0]["error"]
            .as_str()
            .unwrap()
            .contains(reason));
    }
}

/// The facts digest is what docs/signed-evidence.md says: `jq -cj .facts snapshot.json | sha256sum`, with the
/// real jq, for a snapshot whose facts hold every kind of hostile character and whose keys are
/// not in hostcert's order (an error fact written with `error` first), filtered or not.
#[test]
fn the_facts_digest_is_what_jq_and_sha256sum_print_for_the_snapshot() {
    require("jq", "jq");
    require("sha256sum", "coreutils");
    let work = Work::new();
    let file = work.snapshot("broken-host", "hostile", |s| {
        net_ns(
            s,
            json!({"text": format!("{HOSTILE} del\u{7f} \"quote\" back\\slash \u{2028} é 😀 \t tab")}),
        );
    });
    assert!(work.read(&file).contains("\"error\": \"Permission denied"));
    let jq = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("jq -cj .facts '{file}' | sha256sum"))
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    assert!(jq.status.success(), "{}", stderr(&jq));
    let expected = format!("sha256:{}", &stdout(&jq)[..64]);
    for filter in [&[][..], &["kernel.namespaces.net"][..]] {
        let output = run_facts(&work, &file, filter);
        assert_eq!(code(&output), 1, "{}", all_output(&output));
        let report = work.json("hostcert-report/report.json");
        assert_eq!(report["targets"][0]["facts-digest"], expected.as_str());
    }
    // And for a snapshot `gather` writes of this machine.
    let gather = work.hostcert(&["gather", "--output", "local.json"]);
    assert_eq!(code(&gather), 0, "{}", all_output(&gather));
    let jq = std::process::Command::new("sh")
        .arg("-c")
        .arg("jq -cj .facts local.json | sha256sum")
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    run_facts(&work, "local.json", &[]);
    let report = work.json("hostcert-report/report.json");
    assert_eq!(
        report["targets"][0]["facts-digest"],
        format!("sha256:{}", &stdout(&jq)[..64]).as_str()
    );
}

/// Evidence is never cut: the JSON report and JUnit hold the whole value; the console and HTML
/// fold it and say how much more there is.
#[test]
fn evidence_is_never_cut() {
    let work = Work::new();
    let long = format!("{}END", "x".repeat(5000));
    let file = work.snapshot("healthy-host", "long", |s| net_ns(s, json!({"text": long})));
    let output = run_facts(&work, &file, &[]);
    assert_eq!(code(&output), 1, "{}", all_output(&output));
    let report = work.json("hostcert-report/report.json");
    let result = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "kernel.namespaces.net")
        .unwrap();
    assert_eq!(result["evidence"][0]["observed"], long.as_str());
    assert!(result["message"]
        .as_str()
        .unwrap()
        .ends_with(&format!("= {long}")));
    let junit = work.read("hostcert-report/junit.xml");
    assert!(junit.contains(&format!("evidence: CONFIG_NET_NS = {long} (from")));
    xmllint_validates(&work.path("hostcert-report/junit.xml"));
    let html = work.read("hostcert-report/report.html");
    assert!(
        html.contains(&format!("{long}</details>")),
        "the whole value, folded"
    );
    assert!(html.contains("… (4603 more characters)</summary>"));
    let text = stdout(&output);
    assert!(!text.contains(&long), "the console folds it");
    assert!(
        text.contains("xxx… (4703 more characters in report.json)"),
        "{text}"
    );
}

/// A hostile host's escape sequences never reach the user's terminal (trial failure text, the
/// summary), JUnit or Markdown: they are escaped visibly, never dropped.
#[test]
fn control_characters_from_a_target_are_escaped_in_terminal_junit_and_markdown() {
    let work = Work::new();
    let file = work.snapshot("healthy-host", "hostile", |s| {
        net_ns(s, json!({"text": HOSTILE}))
    });
    let output = run_facts(&work, &file, &[]);
    assert_eq!(code(&output), 1, "{}", all_output(&output));
    let hidden = ['\u{1b}', '\u{7}', '\r', '\0', '\u{202e}'];
    let seen = |what: &str, text: &str| {
        for c in hidden {
            assert!(!text.contains(c), "{what} holds {c:?}:\n{text}");
        }
    };
    let terminal = all_output(&output);
    seen("the terminal", &terminal);
    assert!(
        terminal.contains(&format!("CONFIG_NET_NS = {HOSTILE_SEEN} (from")),
        "{terminal}"
    );
    assert!(
        terminal.contains(&format!("observed CONFIG_NET_NS = {HOSTILE_SEEN}\n")),
        "{terminal}"
    );
    let junit = work.read("hostcert-report/junit.xml");
    seen("JUnit", &junit);
    assert!(junit.contains(HOSTILE_SEEN), "{junit}");
    xmllint_validates(&work.path("hostcert-report/junit.xml"));
    let markdown = work.read("hostcert-report/report.md");
    seen("Markdown", &markdown);
    assert!(markdown.contains("\\\\u{1b}\\[2J"), "{markdown}");
    // GitHub's renderer shows the escapes as text.
    require("cmark-gfm", "cmark-gfm");
    let rendered = std::process::Command::new("sh")
        .arg("-c")
        .arg("cmark-gfm -e table -e autolink hostcert-report/report.md")
        .current_dir(work.dir.path())
        .output()
        .unwrap();
    let html = stdout(&rendered);
    seen("cmark-gfm's HTML", &html);
    assert!(html.contains(HOSTILE_SEEN), "{html}");
    let page = work.read("hostcert-report/report.html");
    seen("HTML", &page);
}

/// Numeric options are checked when they are parsed, with a usage error (exit 2) that gives the
/// range; nothing runs.
#[test]
fn numeric_options_out_of_range_are_usage_errors() {
    let work = Work::new();
    for (args, says) in [
        (
            &["run", "--test-threads", "0"][..],
            "'0' for '--test-threads <TEST_THREADS>': 0 is not in 1..=1024",
        ),
        (
            &["run", "--test-threads", "100000"][..],
            "100000 is not in 1..=1024",
        ),
        (
            &["run", "--jobs", "0"][..],
            "'0' for '--jobs <N>': 0 is not in 1..=1024",
        ),
        (&["run", "--jobs", "5000"][..], "5000 is not in 1..=1024"),
        (
            &["run", "--connect-timeout", "0"][..],
            "0 is not in 1..=600",
        ),
        (
            &["run", "--auth-timeout", "18446744073709551615"][..],
            "18446744073709551615 is not in 1..=600",
        ),
        (
            &["run", "--gather-timeout", "0"][..],
            "0 is not in 1..=86400",
        ),
        (
            &["gather", "--gather-timeout", "86401", "-o", "f.json"][..],
            "86401 is not in 1..=86400",
        ),
        (
            &["run", "--waiver-warning-days", "100000"][..],
            "100000 is not in 0..=3650",
        ),
        (
            &[
                "report",
                "--from",
                "r.json",
                "--waiver-warning-days",
                "4000",
            ][..],
            "4000 is not in 0..=3650",
        ),
        (
            &["run", "--shard", "0/3"][..],
            "`0/3` is not a shard K/N with 1 <= K <= N",
        ),
        (
            &["run", "--shard", "4/3"][..],
            "`4/3` is not a shard K/N with 1 <= K <= N",
        ),
        (
            &["run", "--shard", "1/0"][..],
            "`1/0` is not a shard K/N with 1 <= K <= N",
        ),
    ] {
        let output = work.hostcert(args);
        assert_eq!(code(&output), 2, "{args:?}: {}", all_output(&output));
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{args:?}");
    }
    assert!(!work.path("hostcert-report").exists());
}

/// A `matches` pattern that compiles to more than the limit is a load error at its file and
/// line, not a slow run.
#[test]
fn a_pathological_regex_is_a_load_error_at_file_line() {
    let work = Work::new();
    work.write(
        "suites/regex.yaml",
        "name: regex-suite\nversion: 1.0.0\nchecks:\n  - id: rx.wide\n    version: 1.0.0\n    title: wide\n    severity: low\n    probes:\n      os: {os-release: ID}\n    expect: {matches: '\\w{100}'}\n",
    );
    let lint = work.hostcert(&["lint", "suites/regex.yaml"]);
    assert_eq!(code(&lint), 2, "{}", all_output(&lint));
    assert_eq!(
        stderr(&lint),
        "suites/regex.yaml:10:5: checks[0] (rx.wide).expect: the regular expression `\\w{100}` is too large: compiled, it exceeds the limit of 2097152 bytes\nlint: 1 problem\n"
    );
}

/// A target whose gathering stopped part way keeps what it read: a fact it read that fails a
/// gating check makes it not certified; otherwise it is incomplete, and says why. A snapshot
/// records the stop, so evaluating it later says the same.
#[test]
fn a_snapshot_of_a_gather_that_stopped_keeps_its_facts_and_its_reason() {
    let work = Work::new();
    let stopped = |s: &mut Value| {
        s["target"]["gather-error"] = json!("the host's batch stopped: connection lost");
        let facts = s["facts"].as_array_mut().unwrap();
        facts.retain(|f| f["probe"] != json!({"kernel-config": "IPC_NS"}));
    };
    let file = work.snapshot("healthy-host", "lost", stopped);
    let output = run_facts(&work, &file, &[]);
    assert_eq!(code(&output), 2, "{}", all_output(&output));
    assert!(stdout(&output).contains(
        " — gathering stopped before every fact was read: the host's batch stopped: connection lost\n"
    ));
    let report = work.json("hostcert-report/report.json");
    assert_eq!(
        report["targets"][0]["gather-error"],
        "the host's batch stopped: connection lost"
    );
    let ipc = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"] == "kernel.namespaces.ipc")
        .unwrap();
    assert_eq!(ipc["outcome"], "error");
    assert!(ipc["message"]
        .as_str()
        .unwrap()
        .ends_with("the host's batch stopped: connection lost"));
    assert!(report["targets"][0]["facts-digest"].is_string());
    // A failure among the facts read decides: not certified, whatever else is missing.
    let file = work.snapshot("healthy-host", "lost-broken", |s| {
        stopped(s);
        net_ns(s, json!("absent"));
    });
    let output = run_facts(&work, &file, &[]);
    assert_eq!(code(&output), 1, "{}", all_output(&output));
}
