//! What the end-to-end tests of reports, signing and the browser share: a temporary folder that
//! runs the real binary, fixture paths, and fleets of fact snapshots made from the fixtures.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_hostcert");

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path)
}

/// A temporary working folder for one test.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `hostcert ARGS` in the folder.
    pub fn hostcert<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("hostcert runs")
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.read(name)).expect("valid JSON")
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    /// Writes a copy of a fixture snapshot whose target is called `name`, with `edit` applied
    /// to its JSON, and returns the file name.
    pub fn snapshot(
        &self,
        fixture_name: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        let file = format!("facts/{}.json", name.replace(['/', '<', '>', '='], "_"));
        self.snapshot_as(&file, fixture_name, name, edit)
    }

    /// Like [`Work::snapshot`], written to `file`.
    pub fn snapshot_as(
        &self,
        file: &str,
        fixture_name: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        let text = std::fs::read_to_string(fixture(&format!("snapshots/{fixture_name}.json")))
            .expect("fixture snapshot");
        let mut snapshot: Value = serde_json::from_str(&text).unwrap();
        snapshot["target"]["name"] = Value::from(name);
        edit(&mut snapshot);
        self.write(file, &serde_json::to_string_pretty(&snapshot).unwrap());
        file.to_owned()
    }
}

/// Sets the value of the fact read by `probe` (e.g. `{"kernel-config": "NET_NS"}`) in a
/// snapshot's JSON.
pub fn set_fact(snapshot: &mut Value, probe: Value, value: Value) {
    let facts = snapshot["facts"].as_array_mut().unwrap();
    let fact = facts
        .iter_mut()
        .find(|f| f["probe"] == probe)
        .unwrap_or_else(|| panic!("no fact {probe}"));
    fact["value"] = value;
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// `--facts FILE` for every file.
pub fn facts_args(files: &[String]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| ["--facts".to_owned(), f.clone()])
        .collect()
}

pub fn xmllint_validates(junit: &Path) {
    // Jenkins' xunit-plugin schema (MIT), kept beside the fixtures so a clone validates alone.
    let xsd = fixture("junit-10.xsd");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(junit)
        .output()
        .unwrap_or_else(|e| panic!("xmllint is needed to validate JUnit ({e}); install it: apt-get install libxml2-utils"));
    assert!(
        output.status.success(),
        "JUnit does not validate against {}:\n{}",
        xsd.display(),
        stderr(&output)
    );
}

/// Today's date (UTC) plus `days`, as `YYYY-MM-DD`.
pub fn date_in(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    let (year, month, day) = date.to_calendar_date();
    format!("{year:04}-{:02}-{day:02}", month as u8)
}
