//! The HTML report in a real browser: headless Chromium (Debian's `chromium`, which `ci/test`
//! installs) loads the page of a 200-target run, its script runs, and the test reads the DOM
//! Chromium serializes: counts, the first failure's text, the filters preset by a link, and
//! that hostile text from a target stayed text. A screenshot is taken too, and kept at
//! `target/tmp/hostcert-report-200.png` for a person to look at.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// A target whose name and facts try to inject markup and script into the page.
const HOSTILE_NAME: &str = "<img/src=x/onerror=document.title='pwned'>";
const HOSTILE_VALUE: &str = "<script>document.title='pwned'</script>\"><b>bold</b>";

/// Runs headless Chromium with the flags that keep it off the network, in a fresh profile, and
/// returns its stdout. Fails with the install hint when Chromium is missing.
fn chromium(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    // The DOM is megabytes: to a file, so that a full pipe never stalls Chromium.
    let out_path = profile.path().join("stdout");
    let out_file = std::fs::File::create(&out_path).unwrap();
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdout(out_file)
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!("headless Chromium is needed to test the HTML report ({e}); install it: apt-get install chromium (ci/test does)")
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {args:?}");
    std::fs::read_to_string(&out_path).unwrap()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The text between `start` (after its first occurrence at or after `from`) and `end`.
fn between<'a>(text: &'a str, from: &str, start: &str, end: &str) -> &'a str {
    let at = text.find(from).unwrap_or_else(|| panic!("no {from}"));
    let begin = at
        + text[at..]
            .find(start)
            .unwrap_or_else(|| panic!("no {start}"))
        + start.len();
    let stop = begin + text[begin..].find(end).unwrap();
    &text[begin..stop]
}

#[test]
fn the_html_report_of_200_targets_works_in_headless_chromium() {
    let work = Work::new();
    let mut files = Vec::new();
    for index in 0..100 {
        files.push(work.snapshot("broken-host", &format!("broken-{index:03}"), |_| {}));
    }
    for index in 0..99 {
        files.push(work.snapshot("healthy-host", &format!("healthy-{index:03}"), |_| {}));
    }
    files.push(work.snapshot("healthy-host", HOSTILE_NAME, |snapshot| {
        set_fact(
            snapshot,
            json!({"os-release": "ID"}),
            json!({ "text": HOSTILE_VALUE }),
        );
    }));
    let mut args = vec!["run".to_owned(), "-q".to_owned()];
    args.extend(facts_args(&files));
    let started = Instant::now();
    let run = work.hostcert(&args);
    let run_time = started.elapsed();
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    let report: Value = work.json("hostcert-report/report.json");
    let results = report["results"].as_array().unwrap();
    assert_eq!(report["targets"].as_array().unwrap().len(), 200);
    let failing: Vec<&Value> = results
        .iter()
        .filter(|r| r["outcome"] == "fail" || r["outcome"] == "error")
        .collect();
    let page = work.path("hostcert-report/report.html");
    let size = std::fs::metadata(&page).unwrap().len();

    // The page with filters preset by its link: failures and errors of broken-000..009.
    let started = Instant::now();
    let dom = chromium(&[
        "--dump-dom".to_owned(),
        format!("{}#o=fail,error&q=broken-00", file_url(&page)),
    ]);
    let load_time = started.elapsed();
    eprintln!(
        "200 targets, {} results: run {run_time:?}, report.html {size} bytes, chromium load and dump {load_time:?}",
        results.len()
    );
    assert!(dom.contains("<body class=\"\">"), "the page's script ran");
    let rows = dom.matches("<tr class=\"r ").count();
    assert_eq!(
        rows,
        results.len() + failing.len(),
        "one row per result and per failure"
    );
    assert_eq!(dom.matches("<details class=\"target\"").count(), 200);
    let shown_failures: usize = failing
        .iter()
        .filter(|r| r["target"].as_str().unwrap().starts_with("broken-00"))
        .count();
    assert_eq!(
        shown_failures, 80,
        "7 failures and 1 error on each of 10 broken targets"
    );
    assert_eq!(
        between(&dom, "<span id=\"shown\"", ">", "<"),
        format!("{shown_failures} of {} results shown", results.len())
    );
    assert_eq!(
        between(&dom, "<span id=\"failure-count\"", ">", "<"),
        shown_failures.to_string()
    );
    // Every row but the shown ones is hidden, in both tables; so are the other targets.
    let hidden_rows = dom
        .split("<tr class=\"r ")
        .skip(1)
        .filter(|row| row[..row.find('>').unwrap()].contains(" hidden=\"\""))
        .count();
    assert_eq!(hidden_rows, rows - 2 * shown_failures);
    assert_eq!(
        dom.matches("<details class=\"target\"").count()
            - dom
                .split("<details class=\"target\"")
                .skip(1)
                .filter(|d| !d[..d.find('>').unwrap()].contains("hidden"))
                .count(),
        190
    );
    // The first failure shown is the first gating failure of the run.
    let first = failing
        .iter()
        .find(|r| r["gating"] == true && r["outcome"] == "fail")
        .unwrap();
    let first_row = between(&dom, "<section id=\"failures\">", "<tr class=\"r ", "</tr>");
    assert!(
        first_row.contains(&format!(
            "<td class=\"tg\">{}</td>",
            first["target"].as_str().unwrap()
        )),
        "{first_row}"
    );
    assert_eq!(
        between(first_row, "<div class=\"msg\"", ">", "</div>"),
        first["message"].as_str().unwrap()
    );
    assert_eq!(
        first["message"],
        "expected CONFIG_NET_NS = y; observed CONFIG_NET_NS = not set"
    );
    // Hostile text stayed text: no element came from it and no script of it ran.
    assert!(!dom.contains("<img"), "an <img> element was injected");
    assert!(!dom.contains("<b>bold</b>"));
    assert!(!dom.contains("<title>pwned</title>"));
    assert!(dom.contains("&lt;img/src=x/onerror=document.title='pwned'&gt;"));
    assert!(dom.contains(
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;\"&gt;&lt;b&gt;bold&lt;/b&gt;"
    ));

    // A screenshot of the page as it opens, for a person to look at.
    let shot = work.path("report.png");
    chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,2000".to_owned(),
        file_url(&page),
    ]);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(
        png.len() > 50_000,
        "a blank page compresses to less: {} bytes",
        png.len()
    );
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostcert-report-200.png");
    std::fs::write(&kept, &png).unwrap();
}
