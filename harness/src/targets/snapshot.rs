//! A target whose facts come from a snapshot file written by `hostcert gather`.

use std::path::Path;

use super::{Gathered, Target, TargetError};
use crate::facts::{Fact, FactSet, ProbeSet, Snapshot};
use crate::model::TargetKind;

/// Saved facts, evaluated offline as if the target were live.
#[derive(Debug)]
pub struct SnapshotTarget {
    path: String,
    kind: TargetKind,
    image_kind: Option<TargetKind>,
    snapshot: Snapshot,
    facts: FactSet,
    digest: String,
}

impl SnapshotTarget {
    /// Reads a snapshot file; a malformed file, an unknown format version, a fact twice, or a
    /// fact with both a value and an error (or neither) is an error naming the file and the
    /// fact.
    pub fn load(path: &Path) -> Result<SnapshotTarget, TargetError> {
        let name = path.display().to_string();
        let fail = |reason: String| TargetError {
            target: name.clone(),
            reason,
        };
        let text =
            crate::fsio::read_regular_text(path, crate::fsio::cap::SNAPSHOT, "fact snapshot")
                .map_err(|e| fail(e.reason))?;
        let (snapshot, digest) = Snapshot::parse(&text).map_err(fail)?;
        let kind_of = |field: &str, text: &str| {
            TargetKind::parse(text)
                .ok_or_else(|| fail(format!("{field}: unknown target kind `{text}`")))
        };
        let kind = kind_of("target.kind", &snapshot.target.kind)?;
        let image_kind = match &snapshot.target.image_kind {
            Some(text) => Some(kind_of("target.image-kind", text)?),
            None => None,
        };
        let facts = snapshot.facts.iter().cloned().collect();
        Ok(SnapshotTarget {
            path: name,
            kind,
            image_kind,
            snapshot,
            facts,
            digest,
        })
    }
}

impl Target for SnapshotTarget {
    fn name(&self) -> &str {
        &self.snapshot.target.name
    }

    fn kind(&self) -> TargetKind {
        self.kind
    }

    fn image_kind(&self) -> Option<TargetKind> {
        self.image_kind
    }

    fn address(&self) -> &str {
        &self.snapshot.target.address
    }

    fn facts_from(&self) -> String {
        self.path.clone()
    }

    /// The snapshot's own facts, whatever was asked: `jq -cj .facts FILE | sha256sum`.
    fn facts_digest(&self, _gathered: &FactSet) -> String {
        self.digest.clone()
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let mut facts: FactSet = probes
            .iter()
            .map(|probe| {
                self.facts.get(probe).cloned().unwrap_or_else(|| {
                    Fact::failed(
                        probe.clone(),
                        self.path.clone(),
                        match &self.snapshot.target.gather_error {
                            Some(reason) => reason.clone(),
                            None => {
                                "not in the fact snapshot (gather it again with the same profile)"
                                    .to_owned()
                            }
                        },
                    )
                })
            })
            .collect();
        // An image's digests are reported whether asked or not, as the live gather reports them.
        for probe in crate::facts::image_digest_probes() {
            if let Some(fact) = self.facts.get(&probe) {
                facts.insert(fact.clone());
            }
        }
        Ok(Gathered {
            hostname: self.snapshot.target.hostname.clone(),
            facts,
            gather_error: self.snapshot.target.gather_error.clone(),
        })
    }
}
