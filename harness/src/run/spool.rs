//! Where a run keeps its results: one unnamed file of JSON lines under TMPDIR (`O_TMPFILE`, or
//! removed as soon as it is made), written a target at a time as each is evaluated, and read
//! back a target at a time by the renderers. It has no name, so nothing of it outlives the
//! process, even one killed with SIGKILL.
//!
//! A target's block is its [`TargetReport`] on one line, then each of its results on its own
//! line, in plan order. Blocks are written in the order targets finish; an index in memory
//! says where each is, so they are read back in report order. Memory holds the index, each
//! target's entry without its fact sources, and the [`Tally`] of what is derived from the
//! results, never the results themselves.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use hostcert_reports::{CheckResult, ResultStore, Tally, TargetReport};

/// Where one target's block is.
#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u64,
    /// The length of its first line, the target.
    target: usize,
    /// The length of the block.
    len: usize,
}

/// The results of a run as it goes.
pub(super) struct Spool {
    file: File,
    size: u64,
    blocks: Vec<Option<Block>>,
    targets: Vec<Option<TargetReport>>,
    tally: Tally,
}

impl Spool {
    /// An empty spool for `targets` targets, in a new unnamed file under TMPDIR.
    pub(super) fn new(targets: usize) -> std::io::Result<Spool> {
        let file = tempfile::tempfile()?;
        Ok(Spool {
            file,
            size: 0,
            blocks: vec![None; targets],
            targets: vec![None; targets],
            tally: Tally::new(targets),
        })
    }

    /// Where the spool's file is, for errors.
    pub(super) fn path(&self) -> std::path::PathBuf {
        std::env::temp_dir()
    }

    /// Writes the block of the target at `index` and counts its results.
    pub(super) fn add(
        &mut self,
        index: usize,
        target: &TargetReport,
        results: &[CheckResult],
    ) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(target)?;
        bytes.push(b'\n');
        let target_len = bytes.len();
        for result in results {
            serde_json::to_writer(&mut bytes, result)?;
            bytes.push(b'\n');
            self.tally.add(index, result);
        }
        self.file.write_all_at(&bytes, self.size)?;
        self.blocks[index] = Some(Block {
            offset: self.size,
            target: target_len,
            len: bytes.len(),
        });
        self.size += bytes.len() as u64;
        let mut entry = target.clone();
        entry.fact_sources.clear();
        self.targets[index] = Some(entry);
        Ok(())
    }

    /// The targets (without their fact sources), the tally, and the store the renderers read.
    /// Every target must have been added.
    pub(super) fn finish(self) -> std::io::Result<(Vec<TargetReport>, Tally, SpoolStore)> {
        let missing = || std::io::Error::other("a target of the run was never evaluated");
        let blocks = self
            .blocks
            .into_iter()
            .map(|b| b.ok_or_else(missing))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = self
            .targets
            .into_iter()
            .map(|t| t.ok_or_else(missing))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((
            targets,
            self.tally,
            SpoolStore {
                file: self.file,
                blocks,
            },
        ))
    }
}

/// A finished spool, read a target at a time.
pub struct SpoolStore {
    file: File,
    blocks: Vec<Block>,
}

impl SpoolStore {
    fn read(&self, index: usize) -> std::io::Result<(Block, Vec<u8>)> {
        let block = self.blocks[index];
        let mut bytes = vec![0; block.len];
        self.file.read_exact_at(&mut bytes, block.offset)?;
        Ok((block, bytes))
    }
}

impl ResultStore for SpoolStore {
    fn fact_sources(&self, index: usize) -> std::io::Result<Cow<'_, BTreeMap<String, String>>> {
        let (block, bytes) = self.read(index)?;
        let target: TargetReport = serde_json::from_slice(&bytes[..block.target])?;
        Ok(Cow::Owned(target.fact_sources))
    }

    fn results(&self, index: usize) -> std::io::Result<Cow<'_, [CheckResult]>> {
        let (block, bytes) = self.read(index)?;
        let results: Result<Vec<CheckResult>, _> =
            serde_json::Deserializer::from_slice(&bytes[block.target..])
                .into_iter()
                .collect();
        Ok(Cow::Owned(results?))
    }
}
