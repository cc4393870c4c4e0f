//! A target whose facts come from a snapshot file written by `hostcert gather`.

use std::path::Path;

use super::{Gathered, Target, TargetError};
use crate::facts::{Fact, FactSet, ProbeSet, Snapshot, SNAPSHOT_FORMAT_VERSION};
use crate::model::TargetKind;

/// Saved facts, evaluated offline as if the target were live.
#[derive(Debug)]
pub struct SnapshotTarget {
    path: String,
    kind: TargetKind,
    snapshot: Snapshot,
}

impl SnapshotTarget {
    /// Reads a snapshot file; a malformed file or an unknown format version is an error naming
    /// the file.
    pub fn load(path: &Path) -> Result<SnapshotTarget, TargetError> {
        let name = path.display().to_string();
        let fail = |reason: String| TargetError {
            target: name.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the fact snapshot: {e}")))?;
        let version: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not a fact snapshot: {e}")))?;
        let found = version
            .get("format-version")
            .and_then(serde_json::Value::as_u64);
        if found != Some(u64::from(SNAPSHOT_FORMAT_VERSION)) {
            return Err(fail(format!(
                "fact snapshot format version {} is not supported (this build reads version {SNAPSHOT_FORMAT_VERSION})",
                found.map_or("missing".to_owned(), |v| v.to_string())
            )));
        }
        let snapshot: Snapshot =
            serde_json::from_str(&text).map_err(|e| fail(format!("not a fact snapshot: {e}")))?;
        let kind = TargetKind::parse(&snapshot.target.kind)
            .ok_or_else(|| fail(format!("unknown target kind `{}`", snapshot.target.kind)))?;
        Ok(SnapshotTarget {
            path: name,
            kind,
            snapshot,
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

    fn address(&self) -> &str {
        &self.snapshot.target.address
    }

    fn facts_from(&self) -> String {
        self.path.clone()
    }

    fn gather(&self, probes: &ProbeSet) -> Result<Gathered, TargetError> {
        let saved: FactSet = self.snapshot.facts.iter().cloned().collect();
        let mut facts: FactSet = probes
            .iter()
            .map(|probe| {
                saved.get(probe).cloned().unwrap_or_else(|| {
                    Fact::failed(
                        probe.clone(),
                        self.path.clone(),
                        "not in the fact snapshot (gather it again with the same profile)",
                    )
                })
            })
            .collect();
        // An image's digests are reported whether asked or not, as the live gather reports them.
        for probe in crate::facts::image_digest_probes() {
            if let Some(fact) = saved.get(&probe) {
                facts.insert(fact.clone());
            }
        }
        Ok(Gathered {
            hostname: self.snapshot.target.hostname.clone(),
            facts,
        })
    }
}
