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

    /// A one-line rendering for messages and evidence: line feeds become `\n`, tabs spaces; never
    /// cut (reports for people fold long text themselves, and say so).
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
        full.replace('\n', "\\n").replace('\t', " ")
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
    /// (`probe`, `source`, then `value` or `error`), as `jq -cj` prints it. So for the snapshot
    /// `hostcert gather` writes of the same facts it is `jq -cj .facts snapshot.json | sha256sum`
    /// (a test checks it with the real jq). Reports record it per target, and signed
    /// attestations name it as their subject.
    pub fn digest(&self) -> String {
        let facts: Vec<&Fact> = self.iter().collect();
        jq_digest(serde_json::to_vec(&facts).expect("facts always serialize"))
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

/// The sha256 of compact JSON as `jq -cj` prints it, `sha256:<hex>`. serde_json and jq write
/// compact JSON alike (the same short escapes `\b \t \n \f \r`, `\u00XX` in lowercase for the
/// other control characters, every other character as it is), except for DEL, which jq writes
/// `\u007f`: it is escaped the same way here. (A raw DEL byte can only occur inside a string.)
fn jq_digest(mut json: Vec<u8>) -> String {
    if json.contains(&0x7f) {
        json = json
            .iter()
            .flat_map(|&byte| match byte {
                0x7f => b"\\u007f".to_vec(),
                other => vec![other],
            })
            .collect();
    }
    crate::catalog::digest(&json)
}

/// The JSON of a snapshot's facts as written, object keys in file order: strings, arrays,
/// objects and null only (a fact holds no number or boolean), no key twice in an object. Written
/// back compactly it is what `jq -c` prints of the file's `facts`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FactJson {
    Null,
    String(String),
    Array(Vec<FactJson>),
    Object(Vec<(String, FactJson)>),
}

impl<'de> Deserialize<'de> for FactJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FactJson, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        struct JsonVisitor;
        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = FactJson;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a list or an object (a fact holds no number or boolean)")
            }
            fn visit_unit<E: Error>(self) -> Result<FactJson, E> {
                Ok(FactJson::Null)
            }
            fn visit_str<E: Error>(self, text: &str) -> Result<FactJson, E> {
                Ok(FactJson::String(text.to_owned()))
            }
            fn visit_string<E: Error>(self, text: String) -> Result<FactJson, E> {
                Ok(FactJson::String(text))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FactJson, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(FactJson::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FactJson, A::Error> {
                let mut fields: Vec<(String, FactJson)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if fields.iter().any(|(k, _)| *k == key) {
                        return Err(A::Error::custom(format!("the key `{key}` appears twice")));
                    }
                    let value = map.next_value()?;
                    fields.push((key, value));
                }
                Ok(FactJson::Object(fields))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

impl Serialize for FactJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            FactJson::Null => serializer.serialize_unit(),
            FactJson::String(text) => serializer.serialize_str(text),
            FactJson::Array(items) => serializer.collect_seq(items),
            FactJson::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
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
    /// For a pair (`gather --image`), the kind of its image (`image`, `os-tree`): the snapshot
    /// then answers the checks of both kinds, as the pair did. Absent for a target alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_kind: Option<String>,
    /// Why gathering stopped before every fact was read, when it did: the facts read before are
    /// in the snapshot, every other one with this reason as its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gather_error: Option<String>,
}

impl Snapshot {
    /// Parses and checks a snapshot file's text: its format version first, then its shape
    /// (unknown keys are refused), each fact with exactly one of `value` and `error` and no
    /// probe twice, and a target name without hidden characters. Returns the snapshot and the
    /// sha256 of its `facts` as `jq -cj .facts` prints them, `sha256:<hex>`. Each error names
    /// the fact (`facts[3] (CONFIG_NET_NS)`) or the field.
    pub fn parse(text: &str) -> Result<(Snapshot, String), String> {
        #[derive(Deserialize)]
        struct VersionOnly {
            #[serde(rename = "format-version")]
            format_version: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        struct Raw {
            format_version: u32,
            tool_version: String,
            gathered_at: String,
            target: SnapshotTarget,
            facts: Vec<FactJson>,
        }
        let version: VersionOnly =
            serde_json::from_str(text).map_err(|e| format!("not a fact snapshot: {e}"))?;
        let found = version.format_version.as_ref().and_then(|v| v.as_u64());
        if found != Some(u64::from(SNAPSHOT_FORMAT_VERSION)) {
            return Err(format!(
                "fact snapshot format version {} is not supported (this build reads version {SNAPSHOT_FORMAT_VERSION})",
                version
                    .format_version
                    .map_or("missing".to_owned(), |v| v.to_string())
            ));
        }
        let raw: Raw =
            serde_json::from_str(text).map_err(|e| format!("not a fact snapshot: {e}"))?;
        let name = &raw.target.name;
        if let Some(c) = name
            .chars()
            .find(|&c| hostcert_reports::escape::is_hidden(c))
        {
            return Err(format!(
                "target.name: `{}` holds the hidden character U+{:04X}",
                hostcert_reports::escape::visible(name),
                u32::from(c)
            ));
        }
        let mut facts: Vec<Fact> = Vec::with_capacity(raw.facts.len());
        let mut seen: BTreeMap<Probe, usize> = BTreeMap::new();
        for (index, json) in raw.facts.iter().enumerate() {
            let value = serde_json::to_value(json).expect("fact JSON always converts");
            let fact: Fact = serde_json::from_value(value)
                .map_err(|e| format!("facts[{index}]: not a fact: {e}"))?;
            let at = format!("facts[{index}] ({})", fact.probe);
            match (&fact.value, &fact.error) {
                (Some(_), Some(_)) => return Err(format!("{at}: has both a value and an error")),
                (None, None) => return Err(format!("{at}: has neither a value nor an error")),
                _ => {}
            }
            if let Some(first) = seen.insert(fact.probe.clone(), index) {
                return Err(format!(
                    "{at}: the fact appears twice (also facts[{first}])"
                ));
            }
            facts.push(fact);
        }
        let digest = jq_digest(serde_json::to_vec(&raw.facts).expect("fact JSON serializes"));
        Ok((
            Snapshot {
                format_version: raw.format_version,
                tool_version: raw.tool_version,
                gathered_at: raw.gathered_at,
                target: raw.target,
                facts,
            },
            digest,
        ))
    }
}

/// The probes a set of checks needs, deduplicated.
pub type ProbeSet = BTreeSet<Probe>;

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(facts: &str) -> String {
        format!(
            r#"{{"format-version": 1, "tool-version": "0", "gathered-at": "x",
                "target": {{"name": "t", "kind": "local", "address": "t"}}, "facts": {facts}}}"#
        )
    }

    #[test]
    fn snapshots_with_a_fact_twice_or_both_or_neither_value_and_error_are_refused() {
        let cases = [
            (
                r#"[{"probe": "architecture", "source": "a", "value": {"text": "x86_64"}},
                    {"probe": "architecture", "source": "b", "value": {"text": "aarch64"}}]"#,
                "facts[1] (architecture): the fact appears twice (also facts[0])",
            ),
            (
                r#"[{"probe": "architecture", "source": "a", "value": "absent", "error": "e"}]"#,
                "facts[0] (architecture): has both a value and an error",
            ),
            (
                r#"[{"probe": "architecture", "source": "a", "value": null}]"#,
                "facts[0] (architecture): has neither a value nor an error",
            ),
            (
                r#"[{"probe": "architecture", "source": "a", "source": "b", "value": "absent"}]"#,
                "the key `source` appears twice",
            ),
            (
                r#"[{"probe": "architecture", "source": "a", "value": {"text": 1}}]"#,
                "a fact holds no number or boolean",
            ),
        ];
        for (facts, expected) in cases {
            let error = Snapshot::parse(&snapshot(facts)).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        let (parsed, _) = Snapshot::parse(&snapshot(
            r#"[{"source": "a", "probe": "architecture", "value": {"absent": null}}]"#,
        ))
        .unwrap();
        assert_eq!(parsed.facts[0].value, Some(FactValue::Absent));
    }

    /// The digest is over the facts as `jq -cj` writes them: file order, DEL as `\u007f`.
    #[test]
    fn the_snapshot_digest_is_over_compact_json_as_jq_writes_it() {
        let facts = r#"[{"source": "a\u007f\u001b", "probe": "architecture", "error": "é\n"}]"#;
        let (_, digest) = Snapshot::parse(&snapshot(facts)).unwrap();
        let jq = r#"[{"source":"a\u007f\u001b","probe":"architecture","error":"é\n"}]"#;
        assert_eq!(digest, crate::catalog::digest(jq.as_bytes()));
        let set: FactSet = [Fact::failed(Probe::Architecture, "a\u{7f}", "x")]
            .into_iter()
            .collect();
        let canonical = r#"[{"probe":"architecture","source":"a\u007f","error":"x"}]"#;
        assert_eq!(set.digest(), crate::catalog::digest(canonical.as_bytes()));
    }

    #[test]
    fn display_never_cuts() {
        let long = "x".repeat(1000);
        assert_eq!(FactValue::Text(long.clone()).display("absent"), long);
        assert_eq!(FactValue::Text("a\nb".into()).display("absent"), "a\\nb");
    }
}
