//! The NDB backend: `Packages.db`, rpm's own package store (`lib/backend/ndb/rpmpkg.c`), all
//! numbers little-endian:
//!
//! - a 32-byte header: magic `RpmP`, version 0, generation, the number of 4096-byte slot pages,
//!   the next package index;
//! - slot pages: 16-byte slots (magic `Slot`, package index, offset and length in 16-byte
//!   blocks), the first page's first two slots taken by the header; a slot with offset 0 is free;
//! - blobs, each at its slot's blocks: a 16-byte head (magic `BlbS`, package index, generation,
//!   length), the header blob, zero padding to a whole block, and a 12-byte tail (Adler-32 of
//!   everything before it, length, magic `BlbE`).
//!
//! Every slot is checked as rpm's `rpmpkgReadSlots` does, and every blob as `rpmpkgReadBlob`
//! does, with its Adler-32 too (rpm checks it when verifying the database).

use super::header::HEADER_MAX_BYTES;
use super::{RpmdbError, Visit};
use crate::targets::packages::TreeFile;

const PAGE_SIZE: u64 = 4096;
const SLOT_SIZE: u64 = 16;
const BLOCK_SIZE: u64 = 16;
const HEADER_SIZE: u64 = 32;
const BLOB_HEAD: u64 = 16;
const BLOB_TAIL: u64 = 12;

const DB_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const HEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
/// rpm's limit on slot pages, so that slot and block numbers fit in 32 bits.
const MAX_SLOT_PAGES: u32 = (u32::MAX as u64 / (PAGE_SIZE / BLOCK_SIZE)) as u32;

fn le(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

/// One used slot: a package's index and where its blob is, in blocks.
#[derive(Debug, Clone, Copy)]
struct Slot {
    package: u32,
    offset: u32,
    blocks: u32,
}

/// Reads every blob of a `Packages.db`, in the order of their offsets, as rpm lists them.
pub(super) fn read(
    database: &str,
    file: &TreeFile,
    visit: &mut Visit<'_>,
) -> Result<(), RpmdbError> {
    let error = |reason: String| RpmdbError::database(database, reason);
    let len = file.len().map_err(|e| error(e.to_string()))?;
    if len < HEADER_SIZE {
        return Err(error(format!(
            "{len} bytes, shorter than its 32-byte header"
        )));
    }
    let mut header = [0u8; HEADER_SIZE as usize];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| error(e.to_string()))?;
    if le(&header, 0) != DB_MAGIC {
        return Err(error(
            "not an NDB package database (no RpmP magic)".to_owned(),
        ));
    }
    let version = le(&header, 4);
    if version != 0 {
        return Err(error(format!("NDB version {version}; rpm reads version 0")));
    }
    let slot_pages = le(&header, 12);
    if slot_pages == 0 || slot_pages > MAX_SLOT_PAGES || u64::from(slot_pages) * PAGE_SIZE > len {
        return Err(error(format!(
            "{slot_pages} slot pages in a file of {len} bytes"
        )));
    }
    if len % BLOCK_SIZE != 0 || len / BLOCK_SIZE >= u64::from(u32::MAX) {
        return Err(error(format!(
            "{len} bytes, not a whole number of 16-byte blocks"
        )));
    }
    let file_blocks = len / BLOCK_SIZE;
    let first_blob_block = u64::from(slot_pages) * (PAGE_SIZE / BLOCK_SIZE);

    let mut slots = Vec::new();
    let mut page = vec![0u8; PAGE_SIZE as usize];
    for number in 0..u64::from(slot_pages) {
        file.read_exact_at(&mut page, number * PAGE_SIZE)
            .map_err(|e| error(format!("slot page {number}: {e}")))?;
        let start = if number == 0 { HEADER_SIZE } else { 0 };
        for at in (start..PAGE_SIZE).step_by(SLOT_SIZE as usize) {
            let slot_number = (number * PAGE_SIZE + at) / SLOT_SIZE;
            let at = at as usize;
            if le(&page, at) != SLOT_MAGIC {
                return Err(error(format!("slot {slot_number}: no Slot magic")));
            }
            let offset = le(&page, at + 8);
            if offset == 0 {
                continue;
            }
            let slot = Slot {
                package: le(&page, at + 4),
                offset,
                blocks: le(&page, at + 12),
            };
            let end = u64::from(slot.offset) + u64::from(slot.blocks);
            if slot.package == 0
                || slot.blocks == 0
                || u64::from(slot.offset) < first_blob_block
                || end > file_blocks
            {
                return Err(error(format!(
                    "slot {slot_number}: package {} at blocks {}..{end}, outside the file's blob area (blocks {first_blob_block}..{file_blocks})",
                    slot.package, slot.offset
                )));
            }
            slots.push(slot);
        }
    }

    slots.sort_by_key(|slot| slot.offset);
    for pair in slots.windows(2) {
        if u64::from(pair[0].offset) + u64::from(pair[0].blocks) > u64::from(pair[1].offset) {
            return Err(error(format!(
                "the blobs of packages {} and {} overlap",
                pair[0].package, pair[1].package
            )));
        }
    }
    let mut packages: Vec<u32> = slots.iter().map(|slot| slot.package).collect();
    packages.sort_unstable();
    if let Some(pair) = packages.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(RpmdbError::record(
            database,
            pair[0],
            "two slots for this package",
        ));
    }

    for slot in slots {
        let blob = read_blob(file, slot)
            .map_err(|reason| RpmdbError::record(database, slot.package, reason))?;
        visit(slot.package, &blob)
            .map_err(|reason| RpmdbError::record(database, slot.package, reason))?;
    }
    Ok(())
}

/// One blob, checked: head, length, tail and Adler-32.
fn read_blob(file: &TreeFile, slot: Slot) -> Result<Vec<u8>, String> {
    let bytes = u64::from(slot.blocks) * BLOCK_SIZE;
    if bytes < BLOB_HEAD + BLOB_TAIL {
        return Err(format!(
            "a blob of {} blocks, too small to hold one",
            slot.blocks
        ));
    }
    if bytes > HEADER_MAX_BYTES as u64 + BLOB_HEAD + BLOB_TAIL + BLOCK_SIZE {
        return Err(format!("a blob of {bytes} bytes, more than rpm reads"));
    }
    let mut blob = vec![0u8; bytes as usize];
    file.read_exact_at(&mut blob, u64::from(slot.offset) * BLOCK_SIZE)
        .map_err(|e| format!("reading its blob: {e}"))?;
    if le(&blob, 0) != HEAD_MAGIC {
        return Err("its blob has no BlbS magic".to_owned());
    }
    let package = le(&blob, 4);
    if package != slot.package {
        return Err(format!("its blob says it is package {package}"));
    }
    let length = u64::from(le(&blob, 12));
    if (BLOB_HEAD + length + BLOB_TAIL).div_ceil(BLOCK_SIZE) != u64::from(slot.blocks) {
        return Err(format!(
            "its blob claims {length} bytes, which do not fill its {} blocks",
            slot.blocks
        ));
    }
    let tail = (bytes - BLOB_TAIL) as usize;
    if le(&blob, tail + 8) != TAIL_MAGIC {
        return Err("its blob has no BlbE magic".to_owned());
    }
    if u64::from(le(&blob, tail + 4)) != length {
        return Err(format!(
            "its blob's tail says {} bytes, its head {length}",
            le(&blob, tail + 4)
        ));
    }
    let mut adler = adler2::Adler32::new();
    adler.write_slice(&blob[..tail]);
    let checksum = le(&blob, tail);
    if adler.checksum() != checksum {
        return Err(format!(
            "its blob's Adler-32 is {:08x}, its tail says {checksum:08x}",
            adler.checksum()
        ));
    }
    blob.truncate((BLOB_HEAD + length) as usize);
    blob.drain(..BLOB_HEAD as usize);
    Ok(blob)
}
