//! What renderers read: a report's head and targets in memory, and each target's results from a
//! [`ResultStore`], one target at a time.
//!
//! A report read from a file is its own store ([`ReportView::of`]). A run never holds all its
//! results: it writes them to a spool on disk as each target is evaluated, keeps only what is
//! derived from them (a [`Tally`]), and renders every format from a view over that spool, target
//! by target. Either way the renderers are the same functions of the same data, so the files a
//! run writes and those `hostcert report --from` writes from its JSON are byte-identical.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::verdict::{Tally, TargetTally};
use crate::{CheckResult, RunReport, Summary, TargetReport, TargetVerdict, WaiverInfo};

/// Where a view reads what the report's head does not hold: each target's fact sources and
/// results.
pub trait ResultStore: Sync {
    /// The fact sources of the target at `index` of the report's targets.
    fn fact_sources(&self, index: usize) -> std::io::Result<Cow<'_, BTreeMap<String, String>>>;
    /// The results of the target at `index`, in report order.
    fn results(&self, index: usize) -> std::io::Result<Cow<'_, [CheckResult]>>;
}

/// A report as renderers read it: the head in memory, results per target from a store.
pub struct ReportView<'a> {
    report: &'a RunReport,
    store: Store<'a>,
    tally: Cow<'a, Tally>,
    verdicts: Vec<TargetVerdict>,
    waivers: Vec<WaiverInfo>,
}

/// Where a view's results are.
enum Store<'a> {
    Memory(InMemory<'a>),
    Other(&'a dyn ResultStore),
}

impl Store<'_> {
    fn get(&self) -> &dyn ResultStore {
        match self {
            Store::Memory(memory) => memory,
            Store::Other(store) => *store,
        }
    }
}

/// A report in memory as a store: each target's results are the run of results that name it.
struct InMemory<'a> {
    report: &'a RunReport,
    /// Per target, the positions of its results.
    positions: Vec<Vec<usize>>,
}

impl ResultStore for InMemory<'_> {
    fn fact_sources(&self, index: usize) -> std::io::Result<Cow<'_, BTreeMap<String, String>>> {
        Ok(Cow::Borrowed(&self.report.targets[index].fact_sources))
    }

    fn results(&self, index: usize) -> std::io::Result<Cow<'_, [CheckResult]>> {
        let positions = &self.positions[index];
        let contiguous = positions.windows(2).all(|w| w[1] == w[0] + 1);
        Ok(match (positions.first(), positions.last()) {
            (Some(&first), Some(&last)) if contiguous => {
                Cow::Borrowed(&self.report.results[first..=last])
            }
            _ => Cow::Owned(
                positions
                    .iter()
                    .map(|&p| self.report.results[p].clone())
                    .collect(),
            ),
        })
    }
}

impl<'a> ReportView<'a> {
    /// A view of a report held whole in memory (read from a file, or built by a test).
    pub fn of(report: &'a RunReport) -> ReportView<'a> {
        let mut index = std::collections::HashMap::new();
        for (position, target) in report.targets.iter().enumerate() {
            index.entry(target.name.as_str()).or_insert(position);
        }
        let mut positions = vec![Vec::new(); report.targets.len()];
        for (position, result) in report.results.iter().enumerate() {
            if let Some(&target) = index.get(result.target.as_str()) {
                positions[target].push(position);
            }
        }
        let store = Store::Memory(InMemory { report, positions });
        let tally = report.tally();
        ReportView::build(report, store, Cow::Owned(tally), report.all_waivers())
    }

    /// A view of a report whose results are in `store` (a run's spool): `report` is the head
    /// (its `results` are not read), with everything derived already set from `tally`, which
    /// counted the store's results.
    pub fn new(
        report: &'a RunReport,
        store: &'a dyn ResultStore,
        tally: &'a Tally,
    ) -> ReportView<'a> {
        let waivers = report.waivers.clone();
        ReportView::build(report, Store::Other(store), Cow::Borrowed(tally), waivers)
    }

    fn build(
        report: &'a RunReport,
        store: Store<'a>,
        tally: Cow<'a, Tally>,
        waivers: Vec<WaiverInfo>,
    ) -> ReportView<'a> {
        let verdicts = tally.verdicts(&report.targets);
        ReportView {
            report,
            store,
            tally,
            verdicts,
            waivers,
        }
    }

    /// The report's head: everything but its results (renderers never read `results`; a
    /// spooled report has none there).
    pub fn report(&self) -> &RunReport {
        self.report
    }

    /// The targets, in report order (a spooled report's without their fact sources, which
    /// [`ReportView::target`] adds).
    pub fn targets(&self) -> &[TargetReport] {
        &self.report.targets
    }

    /// The target at `index` in full: the head's entry with its fact sources.
    pub fn target(&self, index: usize) -> std::io::Result<Cow<'_, TargetReport>> {
        let head = &self.report.targets[index];
        if let Store::Memory(_) = self.store {
            return Ok(Cow::Borrowed(head));
        }
        let mut full = head.clone();
        full.fact_sources = self.store.get().fact_sources(index)?.into_owned();
        Ok(Cow::Owned(full))
    }

    /// The results of the target at `index`, in report order.
    pub fn results(&self, index: usize) -> std::io::Result<Cow<'_, [CheckResult]>> {
        self.store.get().results(index)
    }

    /// What was derived from the results of the target at `index`.
    pub fn tally(&self, index: usize) -> &TargetTally {
        &self.tally.targets()[index]
    }

    /// The outcome counts of the target at `index`.
    pub fn summary_of(&self, index: usize) -> Summary {
        self.tally(index).summary
    }

    /// The verdict of the target at `index`.
    pub fn verdict_of(&self, index: usize) -> TargetVerdict {
        self.verdicts[index]
    }

    /// Every target's verdict, in report order.
    pub fn verdicts(&self) -> &[TargetVerdict] {
        &self.verdicts
    }

    /// How many results the report holds.
    pub fn result_count(&self) -> usize {
        self.tally.summary().total
    }

    /// Every waiver of the run ([`RunReport::all_waivers`]).
    pub fn waivers(&self) -> &[WaiverInfo] {
        &self.waivers
    }

    /// The waivers that expire within `days` of the run ([`RunReport::expiring_waivers`]).
    pub fn expiring_waivers(&self, days: u32) -> Vec<(WaiverInfo, i64)> {
        crate::model::expiring(&self.waivers, self.report.run_date(), days)
    }

    /// Calls `each` with every result of the targets for which `wanted` holds (given the
    /// target's index and its tally), target by target in report order, with the target's
    /// index.
    pub fn for_each_result(
        &self,
        wanted: impl Fn(usize, &TargetTally) -> bool,
        mut each: impl FnMut(usize, &CheckResult) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        for index in 0..self.report.targets.len() {
            if !wanted(index, self.tally(index)) {
                continue;
            }
            for result in self.results(index)?.iter() {
                each(index, result)?;
            }
        }
        Ok(())
    }
}
