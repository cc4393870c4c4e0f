//! Facts: typed values read from a target, and snapshots that save them for offline evaluation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Probe;

/// The value of one fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FactValue {
    /// The thing does not exist on the target: the file is missing, the symbol is not set.
    Absent,
    /// Text: a config value, a file's content, a sysctl.
    Text(String),
    /// A list: the names in a directory.
    List(Vec<String>),
    /// A record: a file's metadata, a command's status and output.
    Record(BTreeMap<String, FactValue>),
}

impl FactValue {
    /// A field of a record; `None` for other values or a missing field.
    pub fn field(&self, name: &str) -> Option<&FactValue> {
        match self {
            FactValue::Record(fields) => fields.get(name),
            _ => None,
        }
    }

    /// A one-line rendering for messages and evidence, cut at 200 characters.
    pub fn display(&self, absent_word: &str) -> String {
        let full = match self {
            FactValue::Absent => return absent_word.to_owned(),
            FactValue::Text(text) => text.clone(),
            FactValue::List(items) => format!("[{}]", items.join(", ")),
            FactValue::Record(fields) => fields
                .iter()
                .map(|(key, value)| format!("{key}={}", value.display("absent")))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let one_line = full.replace('\n', "\\n").replace('\t', " ");
        if one_line.chars().count() > 200 {
            let cut: String = one_line.chars().take(200).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    }
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display("absent"))
    }
}

/// One fact read from a target: its value (or why it could not be read) and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Fact {
    /// The probe that named the fact.
    pub probe: Probe,
    /// Where the fact was read: a path such as `/proc/config.gz`, or a command.
    pub source: String,
    /// The value, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<FactValue>,
    /// Why it could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Fact {
    /// A fact that was read.
    pub fn read(probe: Probe, source: impl Into<String>, value: FactValue) -> Fact {
        Fact {
            probe,
            source: source.into(),
            value: Some(value),
            error: None,
        }
    }

    /// A fact that could not be read.
    pub fn failed(probe: Probe, source: impl Into<String>, error: impl Into<String>) -> Fact {
        Fact {
            probe,
            source: source.into(),
            value: None,
            error: Some(error.into()),
        }
    }
}

/// How the error of a fact that was not given starts: a fact that needs an input the run did not
/// have (`--image`, `--param seccomp-profile=FILE`). Checks that read such a fact are skipped with
/// the reason, never passed and never errors.
pub const NOT_GIVEN: &str = "not given: ";

impl Fact {
    /// A fact the run had no input for (see [`NOT_GIVEN`]).
    pub fn not_given(probe: Probe, source: impl Into<String>, reason: &str) -> Fact {
        Fact::failed(probe, source, format!("{NOT_GIVEN}{reason}"))
    }

    /// Whether this fact was not given (see [`NOT_GIVEN`]).
    pub fn is_not_given(&self) -> bool {
        self.value.is_none()
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(NOT_GIVEN))
    }
}

/// The reason of an `image` fact on a run without `--image`.
pub const NO_IMAGE: &str = "no --image given";
/// The reason of a `seccomp-profile` fact on a run without `--param seccomp-profile=FILE`.
pub const NO_SECCOMP_PROFILE: &str =
    "no runtime seccomp profile given (--param seccomp-profile=FILE)";

/// The facts an image target reports whether a check asks for them or not, and the name each
/// has in a report's `image-digests`: the digest of the manifest read, and of the index it was
/// chosen from.
pub fn image_digest_probes() -> [Probe; 2] {
    [
        Probe::ImageInfo("manifest-digest".to_owned()),
        Probe::ImageInfo("index-digest".to_owned()),
    ]
}

/// The image digests a target's facts name, by kind (`manifest`, `index`): what a report's
/// `image-digests` holds and a signed attestation names as subjects.
pub fn image_digests(facts: &FactSet) -> BTreeMap<String, String> {
    image_digest_probes()
        .iter()
        .zip(["manifest", "index"])
        .filter_map(|(probe, kind)| match facts.get(probe)?.value.as_ref()? {
            FactValue::Text(digest) if digest.starts_with("sha256:") => {
                Some((kind.to_owned(), digest.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Every fact gathered from one target, by probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactSet {
    facts: BTreeMap<Probe, Fact>,
}

impl FactSet {
    /// Adds or replaces a fact.
    pub fn insert(&mut self, fact: Fact) {
        self.facts.insert(fact.probe.clone(), fact);
    }

    /// The fact for a probe, if it was gathered.
    pub fn get(&self, probe: &Probe) -> Option<&Fact> {
        self.facts.get(probe)
    }

    /// Every fact, ordered by probe.
    pub fn iter(&self) -> impl Iterator<Item = &Fact> {
        self.facts.values()
    }

    /// The canonical digest of these facts, `sha256:<hex>`: the sha256 of the compact JSON
    /// array of the facts sorted by probe, each as a snapshot's `facts` field writes it
    /// (`probe`, `source`, then `value` or `error`). Reports record it per target, and signed
    /// attestations name it as their subject.
    pub fn digest(&self) -> String {
        let facts: Vec<&Fact> = self.iter().collect();
        let bytes = serde_json::to_vec(&facts).expect("facts always serialize");
        crate::catalog::digest(&bytes)
    }

    /// The text of a fact that was read as text.
    pub fn text(&self, probe: &Probe) -> Option<&str> {
        match self.get(probe)?.value.as_ref()? {
            FactValue::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl FromIterator<Fact> for FactSet {
    fn from_iter<I: IntoIterator<Item = Fact>>(iter: I) -> FactSet {
        let mut set = FactSet::default();
        for fact in iter {
            set.insert(fact);
        }
        set
    }
}

/// The version of the fact snapshot format.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// A fact snapshot: what `hostcert gather` writes and `hostcert run --facts` evaluates again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Snapshot {
    /// [`SNAPSHOT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The hostcert version that gathered it.
    pub tool_version: String,
    /// When the facts were gathered, RFC 3339.
    pub gathered_at: String,
    /// The target the facts came from.
    pub target: SnapshotTarget,
    /// Every fact, ordered by probe.
    pub facts: Vec<Fact>,
}

/// The target a snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SnapshotTarget {
    /// The target's name.
    pub name: String,
    /// The target's kind (`local`, `ssh`, ...).
    pub kind: String,
    /// The address as given.
    pub address: String,
    /// The host name the target reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The probes a set of checks needs, deduplicated.
pub type ProbeSet = BTreeSet<Probe>;
