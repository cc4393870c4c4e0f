//! The manual, checked: every example session in README.md and docs/ is run, and what the
//! pages promise about themselves holds.
//!
//! - Every ```console block is a session: `$ COMMAND` lines (a line ending in `\` goes on on the
//!   next one) and the output each prints, stdout and stderr together as a terminal shows them.
//!   Each page's blocks run in order in one scene, a fresh folder holding `tests/fixtures/docs/`,
//!   the fixture snapshots, a few of the shared kernel configs and a small OS tree, with
//!   `hostcert` (this build) first on PATH, and HOME and TMPDIR inside the scene. A command
//!   runs with `sh -c`, so pipes, redirections and `echo $?` (the status of the command before)
//!   work as in a shell.
//! - What the page shows must be what the command prints, but for these conventions: a line
//!   `...` stands for any number of lines; `…` inside a line for any text; libtest's `test …`
//!   lines and the progress lines (`read N/M: TARGET`), which come in the order trials finish
//!   and targets are read, are compared as a set (with a `...` among,
//!   before or after them, the page shows some of them); and durations, timestamps, dates, sha256 digests and
//!   the scene's temporary folder (shown as `/tmp`) may differ.
//! - A session that needs what the tests cannot give (this machine's own output, SSH hosts,
//!   images, root) is a ```text block whose first line is `# illustrative: WHY`; any other
//!   block with `$ ` prompts fails the test, so that no example looks checked and is not.
//! - README.md stays a front page: under 20,000 bytes.
//! - Every relative link of README.md, docs/, suites/ and profiles/ pages leads to a file that
//!   exists, and every `#anchor` to a heading of that page.
//! - A plain `cargo build` builds the probe program beside hostcert.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Parser, Tag, TagEnd};
use regex::Regex;

/// README.md must stay a front page.
const README_LIMIT: usize = 20_000;

/// One of the manual's promises about itself.
type Check = fn() -> Result<(), Failed>;

/// The first line of a session block the tests do not run.
const ILLUSTRATIVE: &str = "# illustrative: ";

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for page in manual_pages() {
        let name = relative(&page);
        trials.push(Trial::test(format!("examples::{name}"), move || {
            run_examples(&page)
        }));
    }
    let checks: [(&str, Check); 4] = [
        (
            "readme_is_a_front_page_under_20000_bytes",
            readme_is_a_front_page,
        ),
        (
            "sessions_are_checked_or_marked_illustrative",
            sessions_are_checked_or_marked_illustrative,
        ),
        (
            "relative_links_lead_to_files_and_headings",
            relative_links_lead_to_files_and_headings,
        ),
        (
            "cargo_build_builds_the_probe_program_beside_hostcert",
            cargo_build_builds_the_probe_program_beside_hostcert,
        ),
    ];
    for (name, check) in checks {
        trials.push(Trial::test(name, check));
    }
    libtest_mimic::run(&args, trials).exit()
}

fn repo() -> PathBuf {
    support::repo("")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// README.md and every page of docs/.
fn manual_pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    pages.extend(markdown_files(&repo().join("docs")));
    pages
}

/// The Markdown files of a folder (not its subfolders), sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Every page whose links are checked: the manual, and the suites' and profiles' READMEs.
fn linked_pages() -> Vec<PathBuf> {
    let mut pages = manual_pages();
    for dir in ["suites", "profiles"] {
        let dir = repo().join(dir);
        pages.extend(markdown_files(&dir));
        let mut subfolders: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subfolders.sort();
        for sub in subfolders {
            pages.extend(markdown_files(&sub));
        }
    }
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- code blocks ----

/// One fenced code block of a page.
struct Block {
    /// The first word of its info string (`console`, `text`, `sh`, ...).
    language: String,
    /// The line of its opening fence.
    line: usize,
    text: String,
}

fn code_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (event, range) in Parser::new(markdown).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                let line = markdown[..range.start].matches('\n').count() + 1;
                current = Some(Block {
                    language,
                    line,
                    text: String::new(),
                });
            }
            Event::Text(text) => {
                if let Some(block) = current.as_mut() {
                    block.text.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            _ => {}
        }
    }
    blocks
}

// ---- sessions ----

/// One command of a session and the output the page shows for it.
struct Step {
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn steps(block: &Block) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for (index, line) in block.text.lines().enumerate() {
        let number = block.line + 1 + index;
        if continued {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: number,
                command: command.to_owned(),
                expected: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_owned());
        } else {
            return Err(format!(
                "line {number}: a console block starts with a `$ ` command"
            ));
        }
    }
    Ok(steps)
}

/// A fresh folder for one page's sessions.
fn scene() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    copy_tree(&support::fixture("docs"), dir.path());
    for snapshot in ["healthy-host.json", "broken-host.json"] {
        std::fs::copy(
            support::fixture(&format!("snapshots/{snapshot}")),
            dir.path().join(snapshot),
        )
        .unwrap();
    }
    // Real kernel configs from the shared fixtures, and an OS tree that ships one of them.
    let configs = dir.path().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    for config in SCENE_KERNEL_CONFIGS {
        std::fs::copy(
            support::shared_fixture(&format!("kernel-configs/{config}")),
            configs.join(config),
        )
        .unwrap();
    }
    let boot = dir.path().join("os-tree/boot");
    std::fs::create_dir_all(&boot).unwrap();
    std::fs::copy(
        configs.join("debian13-6.12.63-amd64.config"),
        boot.join("config-6.12.63+deb13-amd64"),
    )
    .unwrap();
    for folder in ["home", "tmp"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    dir
}

/// The shared kernel configs a scene holds under `configs/`.
const SCENE_KERNEL_CONFIGS: &[&str] = &[
    "debian13-6.12.63-amd64.config",
    "centos7-3.10.0-1160.119.1.el7-amd64.config",
    "bottlerocket-6.12.73-amd64.config",
    "talos-6.18.45-arm64.config",
    "android16-gki-6.12.58-arm64.config",
];

/// Copies a folder's files, writing `{{date+N}}` in text files as the date N days from today.
fn copy_tree(from: &Path, to: &Path) {
    let dates = Regex::new(r"\{\{date([+-]\d+)\}\}").unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        match String::from_utf8(bytes) {
            Ok(text) => {
                let text = dates.replace_all(&text, |c: &regex::Captures| {
                    support::date_in(c[1].parse().unwrap())
                });
                std::fs::write(&target, text.as_bytes()).unwrap();
            }
            Err(bytes) => std::fs::write(&target, bytes.into_bytes()).unwrap(),
        }
    }
}

/// Runs one command in the scene, as a shell would after a command that exited with `status`;
/// returns its output (stdout and stderr through one pipe) and its exit status.
fn run_command(scene: &Path, command: &str, status: i32) -> (String, i32) {
    let bin = Path::new(support::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("(exit {status}); {{ {command}\n}} 2>&1");
    let mut shell = Command::new("timeout");
    shell
        .args(["--kill-after=5", "120", "sh", "-c", &script])
        .current_dir(scene)
        .env("PATH", path)
        .env("HOME", scene.join("home"))
        .env("TMPDIR", scene.join("tmp"))
        .env("LANG", "C.UTF-8")
        .env("TZ", "UTC")
        .stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("HOSTCERT_") || name == "SSH_AUTH_SOCK" || name.starts_with("LC_") {
            shell.env_remove(&name);
        }
    }
    let output = shell.output().expect("sh runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (text, output.status.code().unwrap_or(128))
}

fn run_examples(page: &Path) -> Result<(), Failed> {
    let markdown = read(page);
    let sessions: Vec<Block> = code_blocks(&markdown)
        .into_iter()
        .filter(|b| b.language == "console")
        .collect();
    if sessions.is_empty() {
        return Ok(());
    }
    let scene = scene();
    let normalize = Normalizer::new(scene.path());
    let mut status = 0;
    let mut problems = String::new();
    for block in &sessions {
        let steps = steps(block).map_err(|e| format!("{}:{e}", relative(page)))?;
        for step in steps {
            let (output, code) = run_command(scene.path(), &step.command, status);
            status = code;
            let actual = normalize.lines(&output);
            let expected: Vec<String> = step.expected.iter().map(|l| normalize.line(l)).collect();
            if !matches(&items(&expected, true), &items(&actual, false)) {
                let _ = write!(
                    problems,
                    "\n{}:{}: `$ {}` printed what the page does not show (exit {code}).\n--- the page shows:\n{}\n--- the command printed:\n{}\n",
                    relative(page),
                    step.line,
                    step.command,
                    step.expected.join("\n"),
                    output.trim_end(),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.into())
    }
}

/// What may differ between the page and a run: written the same on both sides before they are
/// compared.
struct Normalizer {
    scene_tmp: String,
    patterns: Vec<(Regex, &'static str)>,
}

impl Normalizer {
    fn new(scene: &Path) -> Normalizer {
        let patterns = [
            (r"[0-9a-f]{64}", "<sha256>"),
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "<timestamp>",
            ),
            (r"\d{4}-\d{2}-\d{2}", "<date>"),
            (r"\(in \d+ days?\)", "(in <n> days)"),
            (r"finished in \d+(\.\d+)?s", "finished in <duration>"),
            (r"\d+(\.\d+)? s\b", "<n> s"),
            // Progress lines count targets in the order they are read.
            (r"^read \d+/(\d+): ", "read <n>/$1: "),
        ];
        Normalizer {
            scene_tmp: scene.join("tmp").display().to_string(),
            patterns: patterns
                .into_iter()
                .map(|(pattern, with)| (Regex::new(pattern).unwrap(), with))
                .collect(),
        }
    }

    fn line(&self, line: &str) -> String {
        let mut line = line.trim_end().replace(&self.scene_tmp, "/tmp");
        // libtest's terse progress: one character a trial, in the order trials finish.
        if !line.is_empty() && line.chars().all(|c| matches!(c, '.' | 'i' | 'F')) {
            let mut characters: Vec<char> = line.chars().collect();
            characters.sort_unstable();
            return characters.into_iter().collect();
        }
        for (pattern, with) in &self.patterns {
            line = pattern.replace_all(&line, *with).into_owned();
        }
        line
    }

    fn lines(&self, text: &str) -> Vec<String> {
        let mut lines: Vec<String> = text.lines().map(|l| self.line(l)).collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }
}

/// A line of output, or of what a page shows, as the comparison sees it.
#[derive(Debug)]
enum Item {
    /// A line (on the page's side, `…` matches any text).
    Line(String),
    /// `...` on the page: any number of items.
    Any,
    /// A run of libtest's `test …` lines, in any order; on the page's side, `open` when a
    /// `...` among, before or after them says they are some of the run's lines.
    Trials { lines: Vec<String>, open: bool },
}

/// A line of a run whose lines come in no fixed order: libtest's trial lines, and the progress
/// lines of targets read in parallel.
fn is_trial_line(line: &str) -> bool {
    (line.starts_with("test ") && line.contains(" ... ")) || line.starts_with("read <n>/")
}

fn items(lines: &[String], page: bool) -> Vec<Item> {
    let mut items = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = &lines[index];
        if is_trial_line(line) {
            let mut run = Vec::new();
            let mut open = page && index > 0 && lines[index - 1] == "...";
            while index < lines.len() {
                let line = &lines[index];
                if is_trial_line(line) {
                    run.push(line.clone());
                } else if page
                    && line == "..."
                    && lines.get(index + 1).is_some_and(|l| is_trial_line(l))
                {
                    open = true;
                } else {
                    break;
                }
                index += 1;
            }
            open |= page && lines.get(index).is_some_and(|l| l == "...");
            items.push(Item::Trials { lines: run, open });
            continue;
        }
        items.push(if page && line == "..." {
            Item::Any
        } else {
            Item::Line(line.clone())
        });
        index += 1;
    }
    items
}

/// A page's line as a pattern: `…` matches any text.
fn line_matches(page: &str, actual: &str) -> bool {
    if !page.contains('…') {
        return page == actual;
    }
    let pattern: Vec<String> = page.split('…').map(regex::escape).collect();
    Regex::new(&format!("^{}$", pattern.join(".*")))
        .unwrap()
        .is_match(actual)
}

fn trials_match(page: &[String], open: bool, actual: &[String]) -> bool {
    let mut left: Vec<&String> = actual.iter().collect();
    for line in page {
        match left.iter().position(|a| line_matches(line, a)) {
            Some(found) => {
                left.remove(found);
            }
            None => return false,
        }
    }
    open || left.is_empty()
}

fn matches(page: &[Item], actual: &[Item]) -> bool {
    match page.split_first() {
        None => actual.is_empty(),
        Some((Item::Any, rest)) => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((expected, rest)) => match (expected, actual.first()) {
            (Item::Line(p), Some(Item::Line(a))) => {
                line_matches(p, a) && matches(rest, &actual[1..])
            }
            (Item::Trials { lines, open }, Some(Item::Trials { lines: run, .. })) => {
                trials_match(lines, *open, run) && matches(rest, &actual[1..])
            }
            _ => false,
        },
    }
}

// ---- the other promises ----

fn readme_is_a_front_page() -> Result<(), Failed> {
    let size = std::fs::metadata(repo().join("README.md")).unwrap().len() as usize;
    if size > README_LIMIT {
        return Err(format!(
            "README.md is {size} bytes, more than {README_LIMIT}: it is the front page; move the detail into docs/"
        )
        .into());
    }
    Ok(())
}

fn sessions_are_checked_or_marked_illustrative() -> Result<(), Failed> {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in manual_pages() {
        for block in code_blocks(&read(&page)) {
            let prompts = block.text.lines().any(|l| l.starts_with("$ "));
            match block.language.as_str() {
                "console" => checked += 1,
                "text" if prompts && !block.text.starts_with(ILLUSTRATIVE) => problems.push(format!(
                    "{}:{}: a session in a text block that does not start with `{ILLUSTRATIVE}WHY`: make it a console block (the tests run it) or say why it cannot run",
                    relative(&page),
                    block.line
                )),
                "text" => {}
                _ if prompts => problems.push(format!(
                    "{}:{}: a `$ ` session in a {:?} block: sessions are console blocks (run by the tests) or illustrative text blocks",
                    relative(&page),
                    block.line,
                    block.language
                )),
                _ => {}
            }
        }
    }
    if checked < 20 {
        problems.push(format!(
            "only {checked} console blocks in README.md and docs/: the manual's examples are meant to be run"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as
/// `-`; a repeated one gets `-1`, `-2`, ...
fn anchors(markdown: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = Vec::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H6 => {
                heading = Some(String::new());
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = heading.as_mut() {
                    heading.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let text = heading.take().unwrap_or_default();
                let slug: String = text
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let count = seen.entry(slug.clone()).or_insert(0);
                anchors.push(if *count == 0 {
                    slug
                } else {
                    format!("{slug}-{count}")
                });
                *count += 1;
            }
            _ => {}
        }
    }
    anchors
}

fn relative_links_lead_to_files_and_headings() -> Result<(), Failed> {
    let mut problems = Vec::new();
    for page in linked_pages() {
        let markdown = read(&page);
        for event in Parser::new(&markdown) {
            let Event::Start(Tag::Link { dest_url, .. }) = event else {
                continue;
            };
            let url = dest_url.to_string();
            if url.contains("://") || url.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match url.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (url.as_str(), None),
            };
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                problems.push(format!("{}: {url}: no such file", relative(&page)));
                continue;
            }
            if let Some(anchor) = anchor {
                if target.extension().is_some_and(|e| e == "md")
                    && !anchors(&read(&target)).iter().any(|a| a == anchor)
                {
                    problems.push(format!(
                        "{}: {url}: {} has no heading with that anchor",
                        relative(&page),
                        relative(&target)
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// `cargo build` and `cargo run` at the root build the default members' binaries: the package
/// they build must hold the probe program as a binary beside hostcert, and `cargo run` must run
/// hostcert. (ci/test also removes the probe program and checks that `cargo build` makes it.)
fn cargo_build_builds_the_probe_program_beside_hostcert() -> Result<(), Failed> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "{}", support::stderr(&output));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let default_members: Vec<&str> = metadata["workspace_default_members"]
        .as_array()
        .expect("workspace_default_members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let packages = metadata["packages"].as_array().unwrap();
    let default: Vec<&serde_json::Value> = packages
        .iter()
        .filter(|p| default_members.contains(&p["id"].as_str().unwrap()))
        .collect();
    let [package] = default.as_slice() else {
        return Err(format!("expected one default member, found {default_members:?}").into());
    };
    let binaries: Vec<&str> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    if !binaries.contains(&"hostcert") || !binaries.contains(&"hostcert-probe") {
        return Err(format!(
            "`cargo build` builds the binaries {binaries:?} of {}; it must build hostcert and hostcert-probe",
            package["name"]
        )
        .into());
    }
    if package["default_run"] != "hostcert" {
        return Err(format!(
            "`cargo run` must run hostcert; default-run is {}",
            package["default_run"]
        )
        .into());
    }
    // Cargo built both for this test, into one folder: where hostcert looks for the probe.
    let probe = Path::new(support::PROBE_BIN);
    if probe.parent() != Path::new(support::BIN).parent() || !probe.is_file() {
        return Err(format!("{} is not beside {}", probe.display(), support::BIN).into());
    }
    Ok(())
}
