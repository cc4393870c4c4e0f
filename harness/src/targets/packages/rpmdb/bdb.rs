//! The Berkeley DB backend: `Packages`, a Berkeley DB hash database whose keys are record
//! numbers (4 bytes, in the database's byte order) and whose values are header blobs, read
//! directly from its pages as rpm's own read-only reader does (`lib/backend/bdb_ro.c`).
//!
//! The layouts (Berkeley DB's `dbinc/db_page.h`), every number in the byte order the metadata
//! page's magic gives:
//!
//! - page 0, the hash metadata page: magic `0x00061561` at 12, version (8 to 10) at 16, page
//!   size at 20, encryption algorithm at 24, page type (8) at 25, flags at 26, last page at 32,
//!   highest bucket at 72, and at 96 the 32 `spares`, which map a bucket to its page: bucket `b`
//!   is page `b + spares[bits(b)]`, `bits` being the number of significant bits of `b`;
//! - every other page starts with a 26-byte header: its own number at 8, the previous and next
//!   page at 12 and 16, the number of entries at 20, the free-area offset (on an overflow page,
//!   the length of its data) at 22, the page type at 25;
//! - a hash page (type 13, or 2 before Berkeley DB 4.6) holds, after its header, an array of
//!   2-byte offsets, key and value alternating, to items stored from the end of the page down:
//!   an item is either inline (type 1, then the bytes up to the previous item) or off-page
//!   (type 3, then at 4 the first overflow page and at 8 the total length);
//! - an overflow page (type 7) holds its share of one item after its header, and the next
//!   overflow page's number.
//!
//! Each bucket's chain of hash pages is walked from the bucket's page; record 0 is rpm's
//! bookkeeping, not a package, and is skipped as rpm skips it.

use super::header::HEADER_MAX_BYTES;
use super::{RpmdbError, Visit};
use crate::targets::packages::TreeFile;

const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
const PAGE_HEADER: usize = 26;
const META_BYTES: usize = 512;

const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;

const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;

/// The metadata flag of a database whose pages carry checksums (and so a longer header).
const DBMETA_CHKSUM: u8 = 0x01;

struct Db<'a> {
    database: &'a str,
    file: &'a TreeFile,
    big_endian: bool,
    page_size: usize,
    last_page: u32,
    /// One bit per page: pages already read, so that a loop of pages is an error and each page
    /// is read at most once.
    seen: Vec<u64>,
}

/// Reads every record of a `Packages` hash database.
pub(super) fn read(
    database: &str,
    file: &TreeFile,
    visit: &mut Visit<'_>,
) -> Result<(), RpmdbError> {
    let error = |reason: String| RpmdbError::database(database, reason);
    let len = file.len().map_err(|e| error(e.to_string()))?;
    if len < META_BYTES as u64 {
        return Err(error(format!(
            "{len} bytes, shorter than a Berkeley DB metadata page"
        )));
    }
    let mut meta = [0u8; META_BYTES];
    file.read_exact_at(&mut meta, 0)
        .map_err(|e| error(format!("reading the metadata page: {e}")))?;
    let magic = [meta[12], meta[13], meta[14], meta[15]];
    let big_endian = if u32::from_le_bytes(magic) == HASH_MAGIC {
        false
    } else if u32::from_be_bytes(magic) == HASH_MAGIC {
        true
    } else if u32::from_le_bytes(magic) == BTREE_MAGIC || u32::from_be_bytes(magic) == BTREE_MAGIC {
        return Err(error(
            "a Berkeley DB btree, not the hash database rpm keeps its packages in".to_owned(),
        ));
    } else {
        return Err(error(format!(
            "not a Berkeley DB hash database (magic {:08x})",
            u32::from_le_bytes(magic)
        )));
    };
    let field = |offset: usize| number(&meta, offset, big_endian);
    let version = field(16);
    if !(8..=10).contains(&version) {
        return Err(error(format!(
            "Berkeley DB hash version {version}; rpm reads versions 8 to 10"
        )));
    }
    let page_size = field(20);
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(error(format!("page size {page_size}")));
    }
    if meta[24] != 0 {
        return Err(error(
            "encrypted; rpm never encrypts its database".to_owned(),
        ));
    }
    if meta[25] != P_HASHMETA {
        return Err(error(format!(
            "page 0 has type {}, not a hash metadata page",
            meta[25]
        )));
    }
    if meta[26] & DBMETA_CHKSUM != 0 {
        return Err(error(
            "its pages carry checksums, which rpm's reader does not read either".to_owned(),
        ));
    }
    let last_page = field(32);
    let needed = (u64::from(last_page) + 1) * u64::from(page_size);
    if needed > len {
        return Err(error(format!(
            "truncated: its last page, {last_page}, ends at byte {needed}, but the file has {len}"
        )));
    }
    let max_bucket = field(72);
    if max_bucket >= last_page {
        return Err(error(format!(
            "{} buckets, more than its {last_page} pages",
            u64::from(max_bucket) + 1
        )));
    }
    let spares: Vec<u32> = (0..32).map(|i| field(96 + 4 * i)).collect();

    let mut db = Db {
        database,
        file,
        big_endian,
        page_size: page_size as usize,
        last_page,
        seen: vec![0; (last_page as usize + 1).div_ceil(64)],
    };
    db.mark(0)?;
    let mut page = vec![0u8; db.page_size];
    for bucket in 0..=max_bucket {
        let bits = (u32::BITS - bucket.leading_zeros()) as usize;
        let mut number = spares
            .get(bits)
            .and_then(|spare| bucket.checked_add(*spare))
            .ok_or_else(|| error(format!("bucket {bucket} maps to no page")))?;
        loop {
            db.read_page(number, &mut page, &[P_HASH, P_HASH_UNSORTED])?;
            db.hash_page(number, &page, visit)?;
            number = db.u32(&page, 16);
            if number == 0 {
                break;
            }
        }
    }
    Ok(())
}

fn number(bytes: &[u8], offset: usize, big_endian: bool) -> u32 {
    let b = [
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

impl Db<'_> {
    fn error(&self, reason: String) -> RpmdbError {
        RpmdbError::database(self.database, reason)
    }

    fn u32(&self, bytes: &[u8], offset: usize) -> u32 {
        number(bytes, offset, self.big_endian)
    }

    fn u16(&self, bytes: &[u8], offset: usize) -> usize {
        short(bytes, offset, self.big_endian)
    }

    /// Marks a page as read; an error when it was read before (a loop, or two chains sharing a
    /// page) or is past the last page.
    fn mark(&mut self, number: u32) -> Result<(), RpmdbError> {
        if number > self.last_page {
            return Err(self.error(format!(
                "a link to page {number}, past its last page {}",
                self.last_page
            )));
        }
        let (word, bit) = (number as usize / 64, number % 64);
        if self.seen[word] & (1 << bit) != 0 {
            return Err(self.error(format!("page {number} is reached twice (a loop of pages)")));
        }
        self.seen[word] |= 1 << bit;
        Ok(())
    }

    /// Reads a page once, checking its number and type.
    fn read_page(&mut self, number: u32, page: &mut [u8], types: &[u8]) -> Result<(), RpmdbError> {
        self.mark(number)?;
        self.file
            .read_exact_at(page, u64::from(number) * self.page_size as u64)
            .map_err(|e| self.error(format!("page {number}: {e}")))?;
        let own = self.u32(page, 8);
        if own != number {
            return Err(self.error(format!("page {number} says it is page {own}")));
        }
        if !types.contains(&page[25]) {
            return Err(self.error(format!(
                "page {number} has type {}, expected {types:?}",
                page[25]
            )));
        }
        Ok(())
    }

    /// Every key and value on one hash page.
    fn hash_page(
        &mut self,
        number: u32,
        page: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), RpmdbError> {
        let entries = self.u16(page, 20);
        let index_end = PAGE_HEADER + 2 * entries;
        if entries % 2 != 0 || index_end > self.page_size {
            return Err(self.error(format!(
                "page {number}: {entries} entries do not make key and value pairs on a page of {} bytes",
                self.page_size
            )));
        }
        let big_endian = self.big_endian;
        let offset = |i: usize| short(page, PAGE_HEADER + 2 * i, big_endian);
        for pair in (0..entries).step_by(2) {
            let (key_at, value_at) = (offset(pair), offset(pair + 1));
            // Items are stored from the end of the page down: a key ends where the item before
            // it (the previous value) starts, and a value where its key starts.
            let key_end = if pair == 0 {
                self.page_size
            } else {
                offset(pair - 1)
            };
            if key_at < index_end || value_at < index_end || key_at >= key_end || value_at >= key_at
            {
                return Err(self.error(format!(
                    "page {number}: entry {pair} has items at offsets {key_at} and {value_at}, outside their bounds"
                )));
            }
            let key = self.item(number, page, key_at, key_end, None)?;
            let record = match key.len() {
                4 => self.u32(&key, 0),
                _ => {
                    return Err(self.error(format!(
                        "page {number}: a key of {} bytes, not a 4-byte record number",
                        key.len()
                    )))
                }
            };
            if record == 0 {
                // rpm's bookkeeping record, skipped as rpm skips it.
                continue;
            }
            let value = self.item(number, page, value_at, key_at, Some(record))?;
            visit(record, &value)
                .map_err(|reason| RpmdbError::record(self.database, record, reason))?;
        }
        Ok(())
    }

    /// One item of a hash page, from `start` to `end`: inline bytes, or an off-page item read
    /// from its overflow pages.
    fn item(
        &mut self,
        number: u32,
        page: &[u8],
        start: usize,
        end: usize,
        record: Option<u32>,
    ) -> Result<Vec<u8>, RpmdbError> {
        let error = |reason: String| match record {
            Some(record) => RpmdbError::record(self.database, record, reason),
            None => RpmdbError::database(self.database, reason),
        };
        match page[start] {
            H_KEYDATA => Ok(page[start + 1..end].to_vec()),
            H_OFFPAGE if end - start == 12 => {
                let first = self.u32(page, start + 4);
                let total = self.u32(page, start + 8) as usize;
                self.overflow(first, total)
                    .map_err(|reason| error(format!("page {number}: {reason}")))
            }
            H_OFFPAGE => Err(error(format!(
                "page {number}: an off-page item of {} bytes, not 12",
                end - start
            ))),
            H_DUPLICATE | H_OFFDUP => Err(error(format!(
                "page {number}: duplicate items, which rpm's database never holds"
            ))),
            other => Err(error(format!(
                "page {number}: an item of unknown type {other}"
            ))),
        }
    }

    /// The `total` bytes of an item kept on a chain of overflow pages.
    fn overflow(&mut self, first: u32, total: usize) -> Result<Vec<u8>, String> {
        if total == 0 || total >= HEADER_MAX_BYTES {
            return Err(format!("an off-page item of {total} bytes"));
        }
        let mut bytes = Vec::with_capacity(total.min(16 * self.page_size));
        let mut page = vec![0u8; self.page_size];
        let mut number = first;
        while bytes.len() < total {
            if number == 0 {
                return Err(format!(
                    "its overflow pages end after {} of its {total} bytes",
                    bytes.len()
                ));
            }
            self.read_page(number, &mut page, &[P_OVERFLOW])
                .map_err(|e| e.reason)?;
            let length = self.u16(&page, 22);
            if length == 0 || PAGE_HEADER + length > self.page_size || bytes.len() + length > total
            {
                return Err(format!(
                    "overflow page {number} holds {length} bytes, which do not fit"
                ));
            }
            bytes.extend_from_slice(&page[PAGE_HEADER..PAGE_HEADER + length]);
            number = self.u32(&page, 16);
        }
        Ok(bytes)
    }
}

fn short(bytes: &[u8], offset: usize, big_endian: bool) -> usize {
    let b = [bytes[offset], bytes[offset + 1]];
    usize::from(if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    })
}
