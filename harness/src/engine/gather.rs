//! Gathering: every image and every host read once, for the union of the probes of the targets
//! made of it, and each target's facts made from them in memory.
//!
//! A run certifies *targets*; it reads *units*. A target is a host alone (this machine, an SSH
//! host, an OS tree, a kernel config, an image, a snapshot) or a pair, an image on a host
//! (`--image`): the pair's facts are made from its host's and its image's
//! ([`crate::targets::pair::compose`]), so a matrix of images by hosts reads each image and each
//! host once, whatever the number of pairs. Images are read first (each verified and unpacked
//! once); then each host is read, and every target made of it is composed and handed to the
//! caller's `judge` on the same worker thread, after which the host's facts are dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hostcert_reports::TargetReport;

use super::TargetInfo;
use crate::catalog::PlannedCheck;
use crate::facts::{FactSet, ProbeSet};
use crate::interrupt;
use crate::model::{Probe, TargetKind};
use crate::targets::pair::{ImageSide, PairInputs};
use crate::targets::{Gathered, Target, Tree};

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
    /// The image and the host of a pair.
    pub pair: Option<hostcert_reports::PairInfo>,
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
            pair: self.pair.clone(),
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

/// A target of a run: a host alone, or an image on a host.
pub struct Cell {
    /// The target's name: the host's, or `<image>@<host>`.
    pub name: String,
    /// The host, a position in [`Units::hosts`].
    pub host: usize,
    /// The image of a pair, a position in [`Units::images`].
    pub image: Option<usize>,
    /// Whether the target is a pair (it has an image, or the run a seccomp profile): its facts
    /// are composed, and it answers its own probes.
    pub paired: bool,
    /// The probes it is asked.
    pub probes: ProbeSet,
}

impl Cell {
    /// The kind of the image, for a pair with an image.
    pub fn image_kind(&self, units: &Units) -> Option<TargetKind> {
        self.image.map(|i| units.images[i].kind())
    }
}

/// What a run reads, each once, and the targets made of them.
#[derive(Default)]
pub struct Units {
    /// The images of pairs (`--image`), read first.
    pub images: Vec<Box<dyn Target>>,
    /// Hosts (and every target that is not a pair).
    pub hosts: Vec<Box<dyn Target>>,
    /// The targets certified, in report order.
    pub cells: Vec<Cell>,
    /// What pairs share: the runtime seccomp profile.
    pub pair_inputs: PairInputs,
}

impl Units {
    /// The probes each image is asked (the union of its pairs' image probes) and whether it
    /// keeps its files for a real run (a pair on this machine asks for one); the probes each host
    /// is asked (the union of its targets' host probes).
    fn asks(&self) -> (Vec<(ProbeSet, bool)>, Vec<ProbeSet>) {
        let mut images = vec![(ProbeSet::new(), false); self.images.len()];
        let mut hosts = vec![ProbeSet::new(); self.hosts.len()];
        for cell in &self.cells {
            if !cell.paired {
                hosts[cell.host].extend(cell.probes.iter().cloned());
                continue;
            }
            let (host, image) = crate::targets::pair::split(&cell.probes);
            hosts[cell.host].extend(host);
            if let Some(index) = cell.image {
                images[index].0.extend(image);
                // An image's digests identify what its pairs certified: always asked.
                if self.images[index].kind() == TargetKind::Image {
                    images[index].0.extend(crate::facts::image_digest_probes());
                }
                let real_run = cell.probes.contains(&Probe::LiveRun)
                    && self.hosts[cell.host].kind() == TargetKind::Local;
                images[index].1 |= real_run;
            }
        }
        (images, hosts)
    }

    /// The name, kind and address of a target.
    fn describe(&self, cell: &Cell) -> (TargetKind, Option<TargetKind>, String) {
        let host = &self.hosts[cell.host];
        match cell.image {
            Some(image) => {
                let image = &self.images[image];
                (
                    host.kind(),
                    Some(image.kind()),
                    format!("{} on {}", image.address(), host.address()),
                )
            }
            None => (host.kind(), host.image_kind(), host.address().to_owned()),
        }
    }
}

/// One image as the run read it, shared by its pairs.
struct ReadImage {
    gathered: Option<Result<Gathered, String>>,
    tree: Result<Tree, String>,
}

/// A unit (an image or a host) read, or not: for progress.
#[derive(Debug, Clone)]
pub struct UnitRead {
    /// Its name.
    pub name: String,
    /// Whether it is an image of pairs.
    pub image: bool,
    /// Why it could not be read at all.
    pub unreadable: Option<String>,
    /// Why gathering stopped part way.
    pub gather_error: Option<String>,
}

/// What gathering reports to its caller, on the calling thread.
pub enum Gathering<T> {
    /// An image or a host was read (or could not be).
    Unit(UnitRead),
    /// The target at this position of [`Units::cells`] was judged.
    Cell(usize, T),
}

/// How long an interrupted run waits for units in flight that hold no [`interrupt::Teardown`]
/// (a host blocked on the network): they are abandoned after it.
const GRACE: Duration = Duration::from_millis(500);
/// How long an interrupted run waits at most for units that tear down (a real run).
const TEARDOWN_WAIT: Duration = Duration::from_secs(60);

enum Message<T> {
    Image(usize, Result<(Gathered, Result<Tree, String>), String>),
    Host(UnitRead),
    Cell(usize, T),
}

/// Gathers every unit once, at most `jobs` at once, and hands each target's facts to `judge`
/// (on a worker thread; its answer reaches `on` on the calling thread). Images are read
/// before hosts. A target that cannot be read is judged with the reason, never dropped; one
/// whose gathering stopped part way keeps the facts it read, with the reason.
///
/// When a signal asks the run to stop ([`interrupt::requested`]), no unit is started after
/// it; units in flight get half a second to return, or up to a minute while one holds an
/// [`interrupt::Teardown`], and are then abandoned. Every target whose host was not read
/// before the signal is judged unreadable, `interrupted by SIGINT` (or SIGTERM).
pub fn gather<T: Send + 'static>(
    units: Arc<Units>,
    jobs: usize,
    judge: Arc<dyn Fn(usize, GatheredTarget) -> T + Send + Sync>,
    on: &mut dyn FnMut(Gathering<T>),
) {
    // Remote targets wait on the network, not the CPU: the pool is sized by `jobs`, not cores.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .ok();
    let spawn = |job: Box<dyn FnOnce() + Send>| match &pool {
        Some(pool) => pool.spawn(job),
        None => job(),
    };
    let (image_asks, host_asks) = units.asks();

    // Images first: each verified and unpacked once for all its pairs. An image no pair asks
    // anything is not read.
    // Bounded: a worker whose target's results the caller has not taken yet waits, so a run
    // holds at most `jobs` targets' results in flight, whatever the number of targets (without
    // it, fast units, such as OS trees, pile every result of the run up in the channel).
    let (sender, receiver) = mpsc::sync_channel::<Message<T>>(jobs.max(1));
    let image_started: Arc<Vec<AtomicBool>> = Arc::new(flags(units.images.len()));
    let mut images: Vec<Option<ReadImage>> = (0..units.images.len()).map(|_| None).collect();
    let mut expected = 0;
    for (index, (probes, keep_tree)) in image_asks.into_iter().enumerate() {
        if probes.is_empty() && !keep_tree {
            images[index] = Some(ReadImage {
                gathered: None,
                tree: Err("no pair of this run asks the image for anything".to_owned()),
            });
            continue;
        }
        expected += 1;
        let (units, sender, started) = (
            Arc::clone(&units),
            sender.clone(),
            Arc::clone(&image_started),
        );
        spawn(Box::new(move || {
            let result = guarded(&started[index], || {
                units.images[index]
                    .gather_keeping_tree(&probes, keep_tree)
                    .map_err(|e| e.reason)
            });
            let _ = sender.send(Message::Image(index, result));
        }));
    }
    wait(
        &receiver,
        expected,
        |m| matches!(m, Message::Image(..)),
        |message| {
            if let Message::Image(index, result) = message {
                let image = &units.images[index];
                let (gathered, tree) = match result {
                    Ok((gathered, tree)) => (Ok(gathered), tree),
                    Err(reason) => (Err(reason.clone()), Err(reason)),
                };
                on(Gathering::Unit(UnitRead {
                    name: image.name().to_owned(),
                    image: true,
                    unreadable: gathered.as_ref().err().cloned(),
                    gather_error: gathered.as_ref().ok().and_then(|g| g.gather_error.clone()),
                }));
                images[index] = Some(ReadImage {
                    gathered: Some(gathered),
                    tree,
                });
            }
        },
    );
    let images: Arc<Vec<ReadImage>> = Arc::new(
        images
            .into_iter()
            .enumerate()
            .map(|(index, image)| {
                image.unwrap_or_else(|| {
                    let reason = abandoned(image_started[index].load(Ordering::SeqCst));
                    ReadImage {
                        gathered: Some(Err(reason.clone())),
                        tree: Err(reason),
                    }
                })
            })
            .collect(),
    );

    // Then hosts: each read once, and every target made of it composed and judged at once.
    let mut cells_of: Vec<Vec<usize>> = vec![Vec::new(); units.hosts.len()];
    for (index, cell) in units.cells.iter().enumerate() {
        cells_of[cell.host].push(index);
    }
    let cells_of = Arc::new(cells_of);
    let host_started: Arc<Vec<AtomicBool>> = Arc::new(flags(units.hosts.len()));
    for (index, probes) in host_asks.into_iter().enumerate() {
        if cells_of[index].is_empty() {
            continue;
        }
        let (units, images, cells_of, judge, sender, started) = (
            Arc::clone(&units),
            Arc::clone(&images),
            Arc::clone(&cells_of),
            Arc::clone(&judge),
            sender.clone(),
            Arc::clone(&host_started),
        );
        spawn(Box::new(move || {
            let host = units.hosts[index].as_ref();
            let result = guarded(&started[index], || {
                host.gather(&probes).map_err(|e| e.reason)
            });
            let _ = sender.send(Message::Host(UnitRead {
                name: host.name().to_owned(),
                image: false,
                unreadable: result.as_ref().err().cloned(),
                gather_error: result.as_ref().ok().and_then(|g| g.gather_error.clone()),
            }));
            // A host alone is one target, which takes its facts; each pair copies what it needs
            // of them, and they are dropped when the last is judged. A host that could not be
            // read gives every target made of it the same reason.
            let mut result = Some(result);
            for &cell in &cells_of[index] {
                let facts = match &result {
                    Some(Err(reason)) => HostFacts::Failed(reason.clone()),
                    Some(Ok(read)) if units.cells[cell].paired => HostFacts::Shared(read),
                    _ => match result.take() {
                        Some(Ok(read)) => HostFacts::Owned(read),
                        Some(Err(reason)) => HostFacts::Failed(reason),
                        None => {
                            HostFacts::Failed("the host was given to another target".to_owned())
                        }
                    },
                };
                // A pair's real run happens as it is composed: a signal during it means the
                // target was interrupted while it was read, as for a host's own gather.
                let before = interrupt::reason();
                let mut gathered = compose(&units, &images, cell, facts);
                if let (None, Some(reason)) = (before, interrupt::reason()) {
                    let reason = format!("{reason} while this target was read");
                    gathered = compose(&units, &images, cell, HostFacts::Failed(reason));
                }
                let _ = sender.send(Message::Cell(cell, judge(cell, gathered)));
            }
        }));
    }
    drop(sender);
    let mut done = vec![false; units.cells.len()];
    let total = units.cells.len();
    wait(
        &receiver,
        total,
        |m| matches!(m, Message::Cell(..)),
        |message| match message {
            Message::Host(read) => on(Gathering::Unit(read)),
            Message::Cell(index, judged) => {
                done[index] = true;
                on(Gathering::Cell(index, judged));
            }
            // An image abandoned after a signal that returned late.
            Message::Image(..) => {}
        },
    );
    // Targets whose host was abandoned in flight, or never started.
    for (index, cell) in units.cells.iter().enumerate() {
        if done[index] {
            continue;
        }
        let reason = abandoned(host_started[cell.host].load(Ordering::SeqCst));
        let gathered = compose(&units, &images, index, HostFacts::Failed(reason));
        on(Gathering::Cell(index, judge(index, gathered)));
    }
    // Each worker lets go of the images just after its last message: wait for them (bounded,
    // for workers abandoned after a signal), so that the images' unpacked trees are removed
    // before the run goes on and exits.
    let bound = if interrupt::requested().is_some() {
        GRACE
    } else {
        TEARDOWN_WAIT
    };
    let since = Instant::now();
    while Arc::strong_count(&images) > 1 && since.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(images);
}

fn flags(count: usize) -> Vec<AtomicBool> {
    (0..count).map(|_| AtomicBool::new(false)).collect()
}

/// Runs `read` unless the run was interrupted, marking the unit started; what returns after a
/// signal may have been cut short by it.
fn guarded<R>(started: &AtomicBool, read: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    match interrupt::reason() {
        Some(reason) => Err(format!("{reason} before this target was read")),
        None => {
            started.store(true, Ordering::SeqCst);
            let result = read();
            match interrupt::reason() {
                Some(reason) => Err(format!("{reason} while this target was read")),
                None => result,
            }
        }
    }
}

/// The reason of a unit abandoned after a signal.
fn abandoned(started: bool) -> String {
    let reason = interrupt::reason().unwrap_or_default();
    let when = if started { "while" } else { "before" };
    format!("{reason} {when} this target was read")
}

/// Receives `expected` messages (each handled by `handle`), or fewer when a signal stops the
/// run and units in flight do not return in time.
fn wait<T>(
    receiver: &mpsc::Receiver<Message<T>>,
    expected: usize,
    counts: impl Fn(&Message<T>) -> bool,
    mut handle: impl FnMut(Message<T>),
) {
    let mut counted = 0;
    let mut interrupted_at: Option<Instant> = None;
    while counted < expected {
        match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok(message) => {
                counted += usize::from(counts(&message));
                handle(message);
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
}

/// What a host gave, for one of its targets.
enum HostFacts<'a> {
    /// Its facts, for the host alone.
    Owned(Gathered),
    /// Its facts, shared by its pairs.
    Shared(&'a Gathered),
    /// Why it could not be read.
    Failed(String),
}

/// The facts of target `index` from its host's gather (or why it could not be read) and its
/// image's.
fn compose(
    units: &Units,
    images: &[ReadImage],
    index: usize,
    host_facts: HostFacts<'_>,
) -> GatheredTarget {
    let cell = &units.cells[index];
    let host = units.hosts[cell.host].as_ref();
    let (kind, image_kind, address) = units.describe(cell);
    let pair = cell.image.map(|image| hostcert_reports::PairInfo {
        image: units.images[image].name().to_owned(),
        host: host.name().to_owned(),
    });
    let side = cell.image.map(|image| ImageSide {
        target: units.images[image].as_ref(),
        gathered: images[image].gathered.as_ref(),
        tree: &images[image].tree,
    });
    let make_pair = |gathered: &Gathered| {
        crate::targets::pair::compose(
            &cell.probes,
            host,
            gathered,
            side.as_ref(),
            &units.pair_inputs,
        )
    };
    let composed = match host_facts {
        HostFacts::Owned(gathered) if cell.paired => Ok(make_pair(&gathered)),
        HostFacts::Owned(gathered) => Ok(gathered),
        HostFacts::Shared(gathered) => Ok(make_pair(gathered)),
        HostFacts::Failed(reason) => Err(reason),
    };
    let (hostname, facts, gather_error, unreadable) = match composed {
        Ok(gathered) => (
            gathered.hostname,
            gathered.facts,
            gathered.gather_error,
            None,
        ),
        Err(reason) => (None, FactSet::default(), None, Some(reason)),
    };
    // A snapshot's digest is its file's; a pair's, that of the facts made for it.
    let facts_digest = unreadable.is_none().then(|| {
        if cell.paired {
            facts.digest()
        } else {
            host.facts_digest(&facts)
        }
    });
    GatheredTarget {
        info: TargetInfo {
            name: cell.name.clone(),
            kind,
            unreadable,
            image_kind,
        },
        address,
        facts_from: host.facts_from(),
        hostname,
        facts,
        gather_error,
        facts_digest,
        pair,
    }
}
