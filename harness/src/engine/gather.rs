//! Gathering: one pass per target for the union of the probes its checks need.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hostcert_reports::TargetReport;

use super::TargetInfo;
use crate::catalog::PlannedCheck;
use crate::facts::{FactSet, ProbeSet};
use crate::interrupt;
use crate::model::Probe;
use crate::targets::{Gathered, Target};

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
    for planned in checks.into_iter().filter(|p| p.not_applicable.is_none()) {
        probes.extend(planned.check.probes.values().cloned());
    }
    probes
}

/// How long an interrupted run waits for targets in flight that hold no [`interrupt::Teardown`]
/// (a target blocked on the network): they are abandoned after it.
const GRACE: Duration = Duration::from_millis(500);
/// How long an interrupted run waits at most for targets that tear down (a real run).
const TEARDOWN_WAIT: Duration = Duration::from_secs(60);

/// Gathers from every target, at most `jobs` at once; `probes[i]` is what `targets[i]` is asked
/// for. A target that cannot be read is returned with the reason, never dropped; one whose
/// gathering stopped part way keeps the facts it read, with the reason. `on_done` is called as
/// each target finishes (for progress), on the calling thread.
///
/// When a signal asks the run to stop ([`interrupt::requested`]), no target is started after
/// it; targets in flight get half a second to return, or up to a minute while one holds an
/// [`interrupt::Teardown`], and are then abandoned. Every target that was not read before the
/// signal is returned unreadable, `interrupted by SIGINT` (or SIGTERM), whatever it returned.
pub fn gather(
    targets: Arc<Vec<Box<dyn Target>>>,
    probes: Arc<Vec<ProbeSet>>,
    jobs: usize,
    on_done: &dyn Fn(&GatheredTarget),
) -> Vec<GatheredTarget> {
    // Remote targets wait on the network, not the CPU: the pool is sized by `jobs`, not cores.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .ok();
    let (sender, receiver) = mpsc::channel();
    let started: Arc<Vec<AtomicBool>> =
        Arc::new((0..targets.len()).map(|_| AtomicBool::new(false)).collect());
    for index in 0..targets.len() {
        let (targets, probes, sender, started) = (
            Arc::clone(&targets),
            Arc::clone(&probes),
            sender.clone(),
            Arc::clone(&started),
        );
        let job = move || {
            let target = &targets[index];
            let result = match interrupt::reason() {
                Some(reason) => Err(format!("{reason} before this target was read")),
                None => {
                    started[index].store(true, Ordering::SeqCst);
                    let result = target.gather(&probes[index]).map_err(|e| e.reason);
                    // What returns after the signal may have been cut short by it.
                    match interrupt::reason() {
                        Some(reason) => Err(format!("{reason} while this target was read")),
                        None => result,
                    }
                }
            };
            let _ = sender.send((index, gathered(target.as_ref(), result)));
        };
        match &pool {
            Some(pool) => pool.spawn(job),
            None => job(),
        }
    }
    drop(sender);
    let mut slots: Vec<Option<GatheredTarget>> = vec![None; targets.len()];
    let mut interrupted_at: Option<Instant> = None;
    loop {
        match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok((index, gathered)) => {
                on_done(&gathered);
                slots[index] = Some(gathered);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        match interrupted_at {
            None if interrupt::requested().is_some() => interrupted_at = Some(Instant::now()),
            Some(since) => {
                let waited = since.elapsed();
                if waited > TEARDOWN_WAIT
                    || (waited > GRACE && interrupt::Teardown::in_flight() == 0)
                {
                    break;
                }
            }
            None => {}
        }
    }
    // Targets abandoned in flight, and those still waiting for a thread.
    let reason = interrupt::reason().unwrap_or_default();
    slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| {
            slot.unwrap_or_else(|| {
                let when = if started[index].load(Ordering::SeqCst) {
                    "while"
                } else {
                    "before"
                };
                gathered(
                    targets[index].as_ref(),
                    Err(format!("{reason} {when} this target was read")),
                )
            })
        })
        .collect()
}

fn gathered(target: &dyn Target, result: Result<Gathered, String>) -> GatheredTarget {
    let (hostname, facts, gather_error, unreadable) = match result {
        Ok(gathered) => (
            gathered.hostname,
            gathered.facts,
            gathered.gather_error,
            None,
        ),
        Err(reason) => (None, FactSet::default(), None, Some(reason)),
    };
    let facts_digest = unreadable.is_none().then(|| target.facts_digest(&facts));
    GatheredTarget {
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
    }
}
