//! Gathering: one pass per target for the union of the probes its checks need.

use rayon::prelude::*;

use hostcert_reports::TargetReport;

use super::TargetInfo;
use crate::catalog::PlannedCheck;
use crate::facts::{FactSet, ProbeSet};
use crate::model::Probe;
use crate::targets::Target;

/// What one target gave: its facts, or why it could not be read.
#[derive(Debug, Clone)]
pub struct GatheredTarget {
    /// Name, kind, and the reason when it could not be read at all.
    pub info: TargetInfo,
    /// Why gathering stopped before every fact was read, when it did (see
    /// [`crate::targets::Gathered`]): the facts read before are judged.
    pub gather_error: Option<String>,
    /// The sha256 of the facts the target gave ([`Target::facts_digest`]); `None` when it could
    /// not be read.
    pub facts_digest: Option<String>,
    /// The address as given.
    pub address: String,
    /// `live` or the snapshot file.
    pub facts_from: String,
    /// The host name it reported.
    pub hostname: Option<String>,
    /// The facts (empty when it could not be read).
    pub facts: FactSet,
}

impl GatheredTarget {
    /// The target's entry in a report: where each fact was read from.
    pub fn report(&self) -> TargetReport {
        TargetReport {
            name: self.info.name.clone(),
            kind: self.info.kind.as_str().to_owned(),
            address: self.address.clone(),
            hostname: self.hostname.clone(),
            facts_from: self.facts_from.clone(),
            error: self.info.unreadable.clone(),
            gather_error: self.gather_error.clone(),
            fact_sources: self
                .facts
                .iter()
                .map(|f| (f.probe.to_string(), f.source.clone()))
                .collect(),
            facts_digest: self.facts_digest.clone(),
            image_digests: crate::facts::image_digests(&self.facts),
            groups: Default::default(),
        }
    }
}

/// The deduplicated probes a set of checks needs, plus the identity probes applicability uses.
pub fn probes_for<'a>(checks: impl IntoIterator<Item = &'a PlannedCheck>) -> ProbeSet {
    let mut probes: ProbeSet = Probe::identity().into_iter().collect();
    for planned in checks {
        probes.extend(planned.check.probes.values().cloned());
    }
    probes
}

/// Gathers from every target, at most `jobs` at once; `probes[i]` is what `targets[i]` is asked
/// for. A target that cannot be read is returned with the reason, never dropped; one whose
/// gathering stopped part way keeps the facts it read, with the reason. `on_done` is called as
/// each target finishes (for progress), from the worker threads.
pub fn gather(
    targets: &[Box<dyn Target>],
    probes: &[ProbeSet],
    jobs: usize,
    on_done: &(dyn Fn(&GatheredTarget) + Sync),
) -> Vec<GatheredTarget> {
    let gather_all = || {
        targets
            .par_iter()
            .zip(probes.par_iter())
            .map(|(target, probes)| {
                let (hostname, facts, gather_error, unreadable) = match target.gather(probes) {
                    Ok(gathered) => (
                        gathered.hostname,
                        gathered.facts,
                        gathered.gather_error,
                        None,
                    ),
                    Err(error) => (None, FactSet::default(), None, Some(error.reason)),
                };
                let facts_digest = unreadable.is_none().then(|| target.facts_digest(&facts));
                let gathered = GatheredTarget {
                    info: TargetInfo {
                        name: target.name().to_owned(),
                        kind: target.kind(),
                        unreadable,
                        image_kind: target.image_kind(),
                    },
                    address: target.address().to_owned(),
                    facts_from: target.facts_from(),
                    hostname,
                    facts,
                    gather_error,
                    facts_digest,
                };
                on_done(&gathered);
                gathered
            })
            .collect()
    };
    // Remote targets wait on the network, not the CPU: the pool is sized by `jobs`, not cores.
    match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
    {
        Ok(pool) => pool.install(gather_all),
        Err(_) => gather_all(),
    }
}
