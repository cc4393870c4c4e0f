//! rpm's header blob, as every database backend stores it, and the package read from it.
//!
//! A header blob is, in network byte order (rpm's `lib/header.c`, `headerImport`):
//!
//! ```text
//! il: u32, dl: u32                       index entries and data bytes
//! il x { tag: u32, type: u32, offset: u32, count: u32 }
//! dl bytes of data                       each entry's value at its offset
//! ```
//!
//! The first entry of a header rpm installed is a region tag (`HEADERIMMUTABLE`, 63) whose
//! value is a trailer entry at the end of the region's data; its negated offset gives the number
//! of entries in the region, the package's signed original header. The entries after it
//! ("dribbles": install time, file states, the signature tags merged from the package's
//! signature header, ...) were added at install time and replace region entries of the same tag.
//! A header without a region tag is a legacy (rpm v3) header, all of it image.
//!
//! Every count, offset and length is checked as rpm's `hdrblobInit`, `hdrblobVerifyRegion` and
//! `hdrblobVerifyInfo` check them before anything is read: the blob's size must be exactly
//! `8 + 16 * il + dl`, entries lie in the data in increasing offsets without overlapping each
//! other or the region trailer, strings are NUL-terminated inside the data, numbers aligned.
//!
//! Tags and types: rpm's `include/rpm/rpmtag.h`; the format:
//! <https://github.com/rpm-software-management/rpm/blob/master/docs/manual/format_header.md>.

use super::{DigestAlgorithm, FileFlags, FileState, HeaderSignature, Package, PackageFile};

// Types (rpmTagType).
const NULL_TYPE: u32 = 0;
const CHAR_TYPE: u32 = 1;
const INT8_TYPE: u32 = 2;
const INT16_TYPE: u32 = 3;
const INT32_TYPE: u32 = 4;
const INT64_TYPE: u32 = 5;
const STRING_TYPE: u32 = 6;
const BIN_TYPE: u32 = 7;
const STRING_ARRAY_TYPE: u32 = 8;
const I18NSTRING_TYPE: u32 = 9;

// Region tags and the lowest ordinary tag.
const HEADERIMAGE: u32 = 61;
const HEADERSIGNATURES: u32 = 62;
const HEADERIMMUTABLE: u32 = 63;
const HEADERI18NTABLE: u32 = 100;

// The tags read (rpmTag).
const SIGPGP: u32 = 259;
const SHA1HEADER: u32 = 269;
const SHA256HEADER: u32 = 273;
const SIGMD5: u32 = 261;
const SIGGPG: u32 = 262;
const DSAHEADER: u32 = 267;
const RSAHEADER: u32 = 268;
const OPENPGP: u32 = 278;
const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const INSTALLTIME: u32 = 1008;
const VENDOR: u32 = 1011;
const LICENSE: u32 = 1014;
const ARCH: u32 = 1022;
const CHANGELOGTEXT: u32 = 1082;
const OLDFILENAMES: u32 = 1027;
const FILESIZES: u32 = 1028;
const FILESTATES: u32 = 1029;
const FILEMODES: u32 = 1030;
const FILEMTIMES: u32 = 1034;
const FILEDIGESTS: u32 = 1035;
const FILELINKTOS: u32 = 1036;
const FILEFLAGS: u32 = 1037;
const FILEUSERNAME: u32 = 1039;
const FILEGROUPNAME: u32 = 1040;
const SOURCERPM: u32 = 1044;
const DIRINDEXES: u32 = 1116;
const BASENAMES: u32 = 1117;
const DIRNAMES: u32 = 1118;
const LONGFILESIZES: u32 = 5008;
const FILEDIGESTALGO: u32 = 5011;
const MODULARITYLABEL: u32 = 5096;

/// rpm's limits (`lib/header.c`): index entries, data bytes, whole blob, array items.
const HEADER_TAGS_MAX: u32 = 0xffff;
const HEADER_DATA_MAX: u32 = 0x0fff_ffff;
/// The largest header blob rpm accepts (`headerMaxbytes`), and so the largest any backend reads.
pub(super) const HEADER_MAX_BYTES: usize = 256 << 20;
const HEADER_ARRAY_MAX: u32 = 0x000f_ffff;
/// An index entry's size, and so a region trailer's.
const ENTRY_SIZE: usize = 16;

/// The name rpm gives a tag, for messages.
fn tag_name(tag: u32) -> String {
    let name = match tag {
        HEADERIMAGE => "headerimage",
        HEADERSIGNATURES => "headersignatures",
        HEADERIMMUTABLE => "headerimmutable",
        SIGPGP => "sigpgp",
        SHA1HEADER => "sha1header",
        SHA256HEADER => "sha256header",
        SIGMD5 => "sigmd5",
        SIGGPG => "siggpg",
        DSAHEADER => "dsaheader",
        RSAHEADER => "rsaheader",
        OPENPGP => "openpgp",
        NAME => "name",
        VERSION => "version",
        RELEASE => "release",
        EPOCH => "epoch",
        INSTALLTIME => "installtime",
        VENDOR => "vendor",
        LICENSE => "license",
        ARCH => "arch",
        OLDFILENAMES => "oldfilenames",
        FILESIZES => "filesizes",
        FILESTATES => "filestates",
        FILEMODES => "filemodes",
        FILEMTIMES => "filemtimes",
        FILEDIGESTS => "filedigests",
        FILELINKTOS => "filelinktos",
        FILEFLAGS => "fileflags",
        FILEUSERNAME => "fileusername",
        FILEGROUPNAME => "filegroupname",
        SOURCERPM => "sourcerpm",
        DIRINDEXES => "dirindexes",
        BASENAMES => "basenames",
        DIRNAMES => "dirnames",
        LONGFILESIZES => "longfilesizes",
        FILEDIGESTALGO => "filedigestalgo",
        MODULARITYLABEL => "modularitylabel",
        _ => return format!("tag {tag}"),
    };
    format!("tag {tag} ({name})")
}

/// One index entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

impl Entry {
    fn read(index: &[u8], i: usize) -> Entry {
        let at = |field: usize| {
            let start = i * ENTRY_SIZE + field * 4;
            u32::from_be_bytes([
                index[start],
                index[start + 1],
                index[start + 2],
                index[start + 3],
            ])
        };
        Entry {
            tag: at(0),
            kind: at(1),
            offset: at(2),
            count: at(3),
        }
    }
}

/// A header blob, checked: its data and the entries in effect (region entries, replaced by the
/// dribbles of the same tag), sorted by tag.
#[derive(Debug)]
pub(super) struct Header<'a> {
    data: &'a [u8],
    entries: Vec<Entry>,
    /// The region's index entries (the region tag's own first) and data (up to and with its
    /// trailer): what rpm's header digests cover.
    region: Option<(&'a [u8], &'a [u8])>,
}

impl<'a> Header<'a> {
    /// Checks a header blob as rpm's `headerImport` does; the reason when it is damaged.
    pub(super) fn parse(blob: &'a [u8]) -> Result<Header<'a>, String> {
        if blob.len() < 8 {
            return Err(format!(
                "header of {} bytes, shorter than its 8-byte intro",
                blob.len()
            ));
        }
        let il = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
        let dl = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]);
        if il > HEADER_TAGS_MAX {
            return Err(format!(
                "header claims {il} index entries, more than rpm's limit of {HEADER_TAGS_MAX}"
            ));
        }
        if dl > HEADER_DATA_MAX {
            return Err(format!(
                "header claims {dl} data bytes, more than rpm's limit of {HEADER_DATA_MAX}"
            ));
        }
        let expected = 8 + ENTRY_SIZE as u64 * u64::from(il) + u64::from(dl);
        if expected != blob.len() as u64 || blob.len() >= HEADER_MAX_BYTES {
            return Err(format!(
                "header claims {il} index entries and {dl} data bytes ({expected} bytes), but the blob holds {}",
                blob.len()
            ));
        }
        if il < 1 {
            return Err("header has no index entries".to_owned());
        }
        let index_end = 8 + ENTRY_SIZE * il as usize;
        let index = &blob[8..index_end];
        let data = &blob[index_end..];
        let il = il as usize;

        // The region (hdrblobVerifyRegion): the first entry, when it is a region tag.
        let first = Entry::read(index, 0);
        let region = matches!(first.tag, HEADERIMAGE | HEADERSIGNATURES | HEADERIMMUTABLE);
        let (region_entries, region_data) = if region {
            region_bounds(first, data, il)?
        } else {
            (0, 0)
        };

        // Every other entry (hdrblobVerifyInfo).
        let mut end = 0u64;
        for i in usize::from(region)..il {
            let entry = Entry::read(index, i);
            let name = || tag_name(entry.tag);
            let offset = u64::from(entry.offset);
            if end > offset {
                return Err(format!(
                    "header entry {i} ({}): offset {offset} overlaps the previous entry's data, which ends at {end}",
                    name()
                ));
            }
            if entry.tag < HEADERI18NTABLE {
                return Err(format!(
                    "header entry {i}: tag {} where only a region tag may be below {HEADERI18NTABLE}",
                    entry.tag
                ));
            }
            if entry.kind > I18NSTRING_TYPE {
                return Err(format!(
                    "header entry {i} ({}): unknown type {}",
                    name(),
                    entry.kind
                ));
            }
            if entry.count < 1 || entry.count > dl {
                return Err(format!(
                    "header entry {i} ({}): count {} out of range 1..={dl}",
                    name(),
                    entry.count
                ));
            }
            if entry.kind != BIN_TYPE && entry.count > HEADER_ARRAY_MAX {
                return Err(format!(
                    "header entry {i} ({}): count {} above rpm's limit of {HEADER_ARRAY_MAX}",
                    name(),
                    entry.count
                ));
            }
            if offset % alignment(entry.kind) != 0 {
                return Err(format!(
                    "header entry {i} ({}): offset {offset} not aligned for its type {}",
                    name(),
                    entry.kind
                ));
            }
            if offset > u64::from(dl) {
                return Err(format!(
                    "header entry {i} ({}): offset {offset} past the end of the data ({dl} bytes)",
                    name()
                ));
            }
            let length = data_length(entry, &data[offset as usize..]).ok_or_else(|| {
                format!(
                    "header entry {i} ({}): {} values of type {} at offset {offset} do not fit in the data ({dl} bytes)",
                    name(),
                    entry.count,
                    entry.kind
                )
            })?;
            if length == 0 {
                return Err(format!("header entry {i} ({}): no data", name()));
            }
            end = offset + length;
            if region && end > region_data - ENTRY_SIZE as u64 && offset < region_data {
                return Err(format!(
                    "header entry {i} ({}): data overlaps the region trailer",
                    name()
                ));
            }
        }

        // The entries in effect (hdrblobImport): the region's, then the dribbles that replace
        // region entries of the same tag (and a dribble of file base names drops the legacy
        // file names).
        let (image, dribbles) = if region {
            (1..region_entries, region_entries..il)
        } else {
            (0..il, il..il)
        };
        let mut entries: Vec<Entry> = image.map(|i| Entry::read(index, i)).collect();
        entries.sort_by_key(|entry| entry.tag);
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].tag == pair[1].tag) {
            return Err(format!(
                "header has {} twice in its region",
                tag_name(pair[0].tag)
            ));
        }
        let mut added: Vec<Entry> = dribbles.map(|i| Entry::read(index, i)).collect();
        added.sort_by_key(|entry| entry.tag);
        if let Some(pair) = added.windows(2).find(|pair| pair[0].tag == pair[1].tag) {
            return Err(format!(
                "header has {} twice outside its region",
                tag_name(pair[0].tag)
            ));
        }
        entries.retain(|entry| {
            let replaced = |tag: u32| added.binary_search_by_key(&tag, |e| e.tag).is_ok();
            !(replaced(entry.tag) || entry.tag == OLDFILENAMES && replaced(BASENAMES))
        });
        entries.extend(added);
        entries.sort_by_key(|entry| entry.tag);
        let region = region.then(|| {
            (
                &index[..region_entries * ENTRY_SIZE],
                &data[..region_data as usize],
            )
        });
        Ok(Header {
            data,
            entries,
            region,
        })
    }

    /// Checks the region against the header's SHA-256 and SHA-1 digests, when it has them, as
    /// rpm does for every header it reads from its database (`headerCheck`): the digest of the
    /// header magic, the region's entry count and data length, its index entries and its data.
    pub(super) fn verify_digests(&self) -> Result<(), String> {
        let Some((index, data)) = self.region else {
            return Ok(());
        };
        fn digest<D: sha2::Digest>(index: &[u8], data: &[u8]) -> String {
            let mut hasher = D::new();
            hasher.update([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
            hasher.update(((index.len() / ENTRY_SIZE) as u32).to_be_bytes());
            hasher.update((data.len() as u32).to_be_bytes());
            hasher.update(index);
            hasher.update(data);
            crate::dsse::hex(&hasher.finalize())
        }
        for (tag, computed) in [
            (
                SHA256HEADER,
                digest::<sha2::Sha256> as fn(&[u8], &[u8]) -> String,
            ),
            (SHA1HEADER, digest::<sha1::Sha1>),
        ] {
            if let Some(expected) = self.string(tag)? {
                let actual = computed(index, data);
                if !expected.eq_ignore_ascii_case(&actual) {
                    return Err(format!(
                        "the header's region does not match its {}: {actual} computed, {expected} recorded",
                        tag_name(tag)
                    ));
                }
            }
        }
        Ok(())
    }

    fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries
            .binary_search_by_key(&tag, |entry| entry.tag)
            .ok()
            .map(|i| self.entries[i])
    }

    /// An entry's data, from its offset on (bounds were checked by [`Header::parse`]).
    fn bytes(&self, entry: Entry) -> &'a [u8] {
        &self.data[entry.offset as usize..]
    }

    fn expect_type(entry: Entry, kinds: &[u32]) -> Result<(), String> {
        if kinds.contains(&entry.kind) {
            Ok(())
        } else {
            Err(format!(
                "{} has type {}, expected {}",
                tag_name(entry.tag),
                entry.kind,
                kinds
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        }
    }

    /// A string tag's value (the first string of an array or an i18n string, as rpm's
    /// `headerGetString` gives it), as bytes.
    fn string_bytes(&self, tag: u32) -> Result<Option<&'a [u8]>, String> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        Self::expect_type(entry, &[STRING_TYPE, STRING_ARRAY_TYPE, I18NSTRING_TYPE])?;
        Ok(Some(nul_terminated(self.bytes(entry))))
    }

    /// A string tag's value, which must be UTF-8 (names, versions).
    fn string(&self, tag: u32) -> Result<Option<String>, String> {
        self.string_bytes(tag)?
            .map(|bytes| {
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("{} is not UTF-8", tag_name(tag)))
            })
            .transpose()
    }

    /// A free-text string tag's value (vendor, license), invalid UTF-8 replaced.
    fn text(&self, tag: u32) -> Result<Option<String>, String> {
        Ok(self
            .string_bytes(tag)?
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned()))
    }

    fn required(&self, tag: u32) -> Result<String, String> {
        self.string(tag)?
            .ok_or_else(|| format!("header has no {}", tag_name(tag)))
    }

    /// A string array's values.
    fn strings(&self, tag: u32) -> Result<Option<Vec<&'a [u8]>>, String> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        Self::expect_type(entry, &[STRING_ARRAY_TYPE, I18NSTRING_TYPE])?;
        let mut rest = self.bytes(entry);
        let mut strings = Vec::with_capacity(entry.count as usize);
        for _ in 0..entry.count {
            let string = nul_terminated(rest);
            rest = &rest[(string.len() + 1).min(rest.len())..];
            strings.push(string);
        }
        Ok(Some(strings))
    }

    /// A number array's values, each `N` bytes big-endian, of one of `kinds`.
    fn numbers<const N: usize>(
        &self,
        tag: u32,
        kinds: &[u32],
    ) -> Result<Option<impl Iterator<Item = [u8; N]> + 'a>, String> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        Self::expect_type(entry, kinds)?;
        let bytes = &self.bytes(entry)[..entry.count as usize * N];
        Ok(Some(bytes.chunks_exact(N).map(|chunk| {
            let mut value = [0; N];
            value.copy_from_slice(chunk);
            value
        })))
    }

    fn u32s(&self, tag: u32) -> Result<Option<Vec<u32>>, String> {
        Ok(self
            .numbers::<4>(tag, &[INT32_TYPE])?
            .map(|values| values.map(u32::from_be_bytes).collect()))
    }

    fn u32(&self, tag: u32) -> Result<Option<u32>, String> {
        Ok(self.u32s(tag)?.and_then(|values| values.first().copied()))
    }

    fn u16s(&self, tag: u32) -> Result<Option<Vec<u16>>, String> {
        Ok(self
            .numbers::<2>(tag, &[INT16_TYPE])?
            .map(|values| values.map(u16::from_be_bytes).collect()))
    }

    fn u64s(&self, tag: u32) -> Result<Option<Vec<u64>>, String> {
        Ok(self
            .numbers::<8>(tag, &[INT64_TYPE])?
            .map(|values| values.map(u64::from_be_bytes).collect()))
    }

    fn i8s(&self, tag: u32) -> Result<Option<Vec<i8>>, String> {
        Ok(self
            .numbers::<1>(tag, &[CHAR_TYPE, INT8_TYPE])?
            .map(|values| values.map(i8::from_be_bytes).collect()))
    }

    fn bin(&self, tag: u32) -> Result<Option<&'a [u8]>, String> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        Self::expect_type(entry, &[BIN_TYPE])?;
        Ok(Some(&self.bytes(entry)[..entry.count as usize]))
    }
}

/// Checks the region tag and its trailer; the number of entries in the region and the end of
/// its data (the trailer's end).
fn region_bounds(first: Entry, data: &[u8], il: usize) -> Result<(usize, u64), String> {
    let name = tag_name(first.tag);
    if first.kind != BIN_TYPE || first.count != ENTRY_SIZE as u32 {
        return Err(format!(
            "header region {name}: type {} count {} where a region has type {BIN_TYPE} count {ENTRY_SIZE}",
            first.kind, first.count
        ));
    }
    let trailer_end = u64::from(first.offset) + ENTRY_SIZE as u64;
    if trailer_end > data.len() as u64 {
        return Err(format!(
            "header region {name}: trailer at offset {} past the end of the data ({} bytes)",
            first.offset,
            data.len()
        ));
    }
    let trailer = Entry::read(&data[first.offset as usize..trailer_end as usize], 0);
    // Some old packages carry HEADERIMAGE in the signature region's trailer (rpm fixes it up).
    let trailer_tag = if first.tag == HEADERSIGNATURES && trailer.tag == HEADERIMAGE {
        HEADERSIGNATURES
    } else {
        trailer.tag
    };
    if trailer_tag != first.tag || trailer.kind != BIN_TYPE || trailer.count != ENTRY_SIZE as u32 {
        return Err(format!(
            "header region {name}: bad trailer (tag {} type {} count {})",
            trailer.tag, trailer.kind, trailer.count
        ));
    }
    // The trailer's offset is the negated size of the region's index.
    let index_bytes = trailer.offset.wrapping_neg() as usize;
    let entries = index_bytes / ENTRY_SIZE;
    if index_bytes % ENTRY_SIZE != 0 || entries < 1 || entries > il {
        return Err(format!(
            "header region {name}: trailer says {index_bytes} index bytes, not 1 to {il} entries"
        ));
    }
    Ok((entries, trailer_end))
}

fn alignment(kind: u32) -> u64 {
    match kind {
        INT16_TYPE => 2,
        INT32_TYPE => 4,
        INT64_TYPE => 8,
        _ => 1,
    }
}

/// The bytes an entry's values take from the start of `data` (rpm's `dataLength` on disk);
/// `None` when they do not fit.
fn data_length(entry: Entry, data: &[u8]) -> Option<u64> {
    let size = match entry.kind {
        NULL_TYPE => 0,
        CHAR_TYPE | INT8_TYPE | BIN_TYPE => 1,
        INT16_TYPE => 2,
        INT32_TYPE => 4,
        INT64_TYPE => 8,
        STRING_TYPE if entry.count != 1 => return None,
        STRING_TYPE | STRING_ARRAY_TYPE | I18NSTRING_TYPE => {
            // `count` NUL-terminated strings.
            let mut length = 0usize;
            for _ in 0..entry.count {
                let nul = data[length..].iter().position(|&b| b == 0)?;
                length += nul + 1;
            }
            return Some(length as u64);
        }
        _ => return None,
    };
    let length = size * u64::from(entry.count);
    (length <= data.len() as u64).then_some(length)
}

/// The bytes before the first NUL (every string was checked to have one).
fn nul_terminated(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// The package a header describes.
pub(super) fn package(record: u32, header: &Header<'_>) -> Result<Package, String> {
    header.verify_digests()?;
    let name = header.required(NAME)?;
    let version = header.required(VERSION)?;
    let release = header.required(RELEASE)?;
    let algorithm = match header.u32(FILEDIGESTALGO)? {
        Some(id) => DigestAlgorithm::from_rpm(id),
        None => DigestAlgorithm::Md5,
    };
    Ok(Package {
        record,
        epoch: header.u32(EPOCH)?,
        arch: header.string(ARCH)?,
        vendor: header.text(VENDOR)?,
        license: header.text(LICENSE)?,
        source_rpm: header.string(SOURCERPM)?,
        install_time: header.u32(INSTALLTIME)?,
        sigmd5: header.bin(SIGMD5)?.map(crate::dsse::hex),
        signatures: signatures(header)?,
        modularity_label: header.text(MODULARITYLABEL)?,
        file_digest_algorithm: algorithm,
        files: files(header)?,
        changelog: header
            .strings(CHANGELOGTEXT)?
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| String::from_utf8_lossy(entry).into_owned())
                    .collect()
            })
            .unwrap_or_default(),
        name,
        version,
        release,
    })
}

/// The header's signatures, in the order `rpm -qi` looks for one: DSA (also ECDSA and EdDSA)
/// and RSA header signatures, the header+payload GPG and PGP signatures, then rpm 6's OpenPGP
/// signatures.
fn signatures(header: &Header<'_>) -> Result<Vec<HeaderSignature>, String> {
    let mut signatures = Vec::new();
    for (tag, name) in [
        (DSAHEADER, "dsaheader"),
        (RSAHEADER, "rsaheader"),
        (SIGGPG, "siggpg"),
        (SIGPGP, "sigpgp"),
    ] {
        if let Some(packet) = header.bin(tag)? {
            signatures.push(HeaderSignature::parse(name, packet));
        }
    }
    if let Some(armored) = header.strings(OPENPGP)? {
        use base64::Engine as _;
        for text in armored {
            let signature = match base64::engine::general_purpose::STANDARD.decode(text) {
                Ok(packet) => HeaderSignature::parse("openpgp", &packet),
                Err(error) => {
                    HeaderSignature::unreadable("openpgp", format!("not base64: {error}"))
                }
            };
            signatures.push(signature);
        }
    }
    Ok(signatures)
}

/// The file list: paths from the directory names, base names and directory indexes (or the
/// legacy full names), with each file's size, mode, digest, flags, state, link target, owner
/// and modification time.
fn files(header: &Header<'_>) -> Result<Vec<PackageFile>, String> {
    let paths: Vec<String> = if let Some(basenames) = header.strings(BASENAMES)? {
        let dirnames = header.strings(DIRNAMES)?.ok_or_else(|| {
            format!(
                "header has {} but no {}",
                tag_name(BASENAMES),
                tag_name(DIRNAMES)
            )
        })?;
        let indexes = header.u32s(DIRINDEXES)?.ok_or_else(|| {
            format!(
                "header has {} but no {}",
                tag_name(BASENAMES),
                tag_name(DIRINDEXES)
            )
        })?;
        same_count(DIRINDEXES, indexes.len(), basenames.len())?;
        basenames
            .iter()
            .zip(&indexes)
            .map(|(base, &index)| {
                let dir = dirnames.get(index as usize).ok_or_else(|| {
                    format!(
                        "{} has index {index}, but there are {} directories",
                        tag_name(DIRINDEXES),
                        dirnames.len()
                    )
                })?;
                let mut path = String::from_utf8_lossy(dir).into_owned();
                path.push_str(&String::from_utf8_lossy(base));
                Ok(path)
            })
            .collect::<Result<_, String>>()?
    } else if let Some(names) = header.strings(OLDFILENAMES)? {
        names
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect()
    } else {
        Vec::new()
    };
    let count = paths.len();
    let (size_tag, sizes) = match header.u64s(LONGFILESIZES)? {
        Some(sizes) => (LONGFILESIZES, Some(sizes)),
        None => (
            FILESIZES,
            header
                .u32s(FILESIZES)?
                .map(|sizes| sizes.into_iter().map(u64::from).collect()),
        ),
    };
    let sizes = per_file(size_tag, sizes, count)?;
    let modes = per_file(FILEMODES, header.u16s(FILEMODES)?, count)?;
    let flags = per_file(FILEFLAGS, header.u32s(FILEFLAGS)?, count)?;
    let states = per_file(FILESTATES, header.i8s(FILESTATES)?, count)?;
    let mtimes = per_file(FILEMTIMES, header.u32s(FILEMTIMES)?, count)?;
    let digests = per_file(FILEDIGESTS, header.strings(FILEDIGESTS)?, count)?;
    let links = per_file(FILELINKTOS, header.strings(FILELINKTOS)?, count)?;
    let users = per_file(FILEUSERNAME, header.strings(FILEUSERNAME)?, count)?;
    let groups = per_file(FILEGROUPNAME, header.strings(FILEGROUPNAME)?, count)?;
    let text = |values: &Option<Vec<&[u8]>>, i: usize| {
        values
            .as_ref()
            .map(|values| values[i])
            .filter(|value| !value.is_empty())
            .map(|value| String::from_utf8_lossy(value).into_owned())
    };
    Ok(paths
        .into_iter()
        .enumerate()
        .map(|(i, path)| PackageFile {
            path,
            size: sizes.as_ref().map_or(0, |values| values[i]),
            mode: modes.as_ref().map_or(0, |values| values[i]),
            digest: text(&digests, i),
            flags: FileFlags(flags.as_ref().map_or(0, |values| values[i])),
            state: states.as_ref().map(|values| FileState::from_rpm(values[i])),
            link_to: text(&links, i),
            user: text(&users, i),
            group: text(&groups, i),
            mtime: mtimes.as_ref().map(|values| values[i]),
        })
        .collect())
}

fn same_count(tag: u32, values: usize, files: usize) -> Result<(), String> {
    if values == files {
        Ok(())
    } else {
        Err(format!(
            "{} has {values} values for {files} files",
            tag_name(tag)
        ))
    }
}

/// A per-file array, which must have one value per file when it is there.
fn per_file<T>(tag: u32, values: Option<Vec<T>>, files: usize) -> Result<Option<Vec<T>>, String> {
    if let Some(values) = &values {
        same_count(tag, values.len(), files)?;
    }
    Ok(values)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Builds a header blob the way rpm lays one out: a HEADERIMMUTABLE region holding
    /// `region` entries, then `dribbles` outside it. Each value is (tag, type, count, bytes).
    pub(crate) fn build(
        region: &[(u32, u32, u32, Vec<u8>)],
        dribbles: &[(u32, u32, u32, Vec<u8>)],
    ) -> Vec<u8> {
        let mut index: Vec<[u32; 4]> = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        let put = |index: &mut Vec<[u32; 4]>,
                   data: &mut Vec<u8>,
                   (tag, kind, count, bytes): &(u32, u32, u32, Vec<u8>)| {
            while data.len() as u64 % alignment(*kind) != 0 {
                data.push(0);
            }
            index.push([*tag, *kind, data.len() as u32, *count]);
            data.extend_from_slice(bytes);
        };
        for value in region {
            put(&mut index, &mut data, value);
        }
        let trailer_offset = data.len() as u32;
        let region_index = (region.len() as u32 + 1) * 16;
        for field in [HEADERIMMUTABLE, BIN_TYPE, region_index.wrapping_neg(), 16] {
            data.extend_from_slice(&field.to_be_bytes());
        }
        for value in dribbles {
            put(&mut index, &mut data, value);
        }
        index.insert(0, [HEADERIMMUTABLE, BIN_TYPE, trailer_offset, 16]);
        let mut blob = Vec::new();
        blob.extend_from_slice(&(index.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        for entry in &index {
            for field in entry {
                blob.extend_from_slice(&field.to_be_bytes());
            }
        }
        blob.extend_from_slice(&data);
        blob
    }

    pub(crate) fn string(tag: u32, value: &str) -> (u32, u32, u32, Vec<u8>) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        (tag, STRING_TYPE, 1, bytes)
    }

    fn strings(tag: u32, values: &[&str]) -> (u32, u32, u32, Vec<u8>) {
        let mut bytes = Vec::new();
        for value in values {
            bytes.extend_from_slice(value.as_bytes());
            bytes.push(0);
        }
        (tag, STRING_ARRAY_TYPE, values.len() as u32, bytes)
    }

    fn int32s(tag: u32, values: &[u32]) -> (u32, u32, u32, Vec<u8>) {
        (
            tag,
            INT32_TYPE,
            values.len() as u32,
            values.iter().flat_map(|v| v.to_be_bytes()).collect(),
        )
    }

    fn minimal() -> Vec<(u32, u32, u32, Vec<u8>)> {
        vec![
            string(NAME, "demo"),
            string(VERSION, "1.0"),
            string(RELEASE, "1"),
        ]
    }

    fn parse_package(blob: &[u8]) -> Result<Package, String> {
        package(7, &Header::parse(blob)?)
    }

    #[test]
    fn a_built_header_reads_back() {
        let mut region = minimal();
        region.push(int32s(EPOCH, &[3]));
        region.push(strings(BASENAMES, &["a", "b"]));
        region.push(strings(DIRNAMES, &["/etc/", "/usr/bin/"]));
        region.push(int32s(DIRINDEXES, &[1, 0]));
        region.push(int32s(FILESIZES, &[10, 20]));
        let package = parse_package(&build(&region, &[int32s(INSTALLTIME, &[99])])).expect("reads");
        assert_eq!(
            (package.name.as_str(), package.epoch, package.install_time),
            ("demo", Some(3), Some(99))
        );
        let paths: Vec<_> = package
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.size))
            .collect();
        assert_eq!(paths, [("/usr/bin/a", 10), ("/etc/b", 20)]);
        assert_eq!(package.file_digest_algorithm, DigestAlgorithm::Md5);
    }

    #[test]
    fn dribbles_replace_region_entries() {
        let blob = build(&minimal(), &[string(VERSION, "2.0")]);
        assert_eq!(parse_package(&blob).expect("reads").version, "2.0");
    }

    #[test]
    fn damaged_headers_are_refused_with_the_reason() {
        let good = build(&minimal(), &[]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("short", good[..5].to_vec(), "shorter than its 8-byte intro"),
            (
                "truncated",
                good[..good.len() - 1].to_vec(),
                "but the blob holds",
            ),
            (
                "longer",
                [good.clone(), vec![0]].concat(),
                "but the blob holds",
            ),
            (
                "il lies",
                {
                    let mut b = good.clone();
                    b[3] += 1;
                    b
                },
                "but the blob holds",
            ),
            (
                "dl lies",
                {
                    let mut b = good.clone();
                    b[7] -= 1;
                    b
                },
                "but the blob holds",
            ),
            (
                "huge il",
                {
                    let mut b = good.clone();
                    b[0..4].copy_from_slice(&0x10000u32.to_be_bytes());
                    b
                },
                "more than rpm's limit",
            ),
            (
                "huge dl",
                {
                    let mut b = good.clone();
                    b[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
                    b
                },
                "more than rpm's limit",
            ),
            // Entry 1 (name): offset far past the data.
            (
                "offset",
                {
                    let mut b = good.clone();
                    b[8 + 16 + 8..8 + 16 + 12].copy_from_slice(&0x00ff_0000u32.to_be_bytes());
                    b
                },
                "past the end of the data",
            ),
            // Entry 1 (name): count 2 for a string.
            (
                "count",
                {
                    let mut b = good.clone();
                    b[8 + 16 + 12..8 + 16 + 16].copy_from_slice(&2u32.to_be_bytes());
                    b
                },
                "do not fit",
            ),
            // Entry 1 (name): a huge count.
            (
                "huge count",
                {
                    let mut b = good.clone();
                    b[8 + 16 + 12..8 + 16 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
                    b
                },
                "out of range",
            ),
            // The region trailer's tag.
            (
                "trailer",
                {
                    let mut b = good.clone();
                    let at = b.len() - 16;
                    b[at + 3] = 62;
                    b
                },
                "bad trailer",
            ),
        ];
        for (what, blob, expected) in cases {
            let error = parse_package(&blob).expect_err(what);
            assert!(error.contains(expected), "{what}: {error}");
        }
        let no_version = build(&[string(NAME, "demo"), string(RELEASE, "1")], &[]);
        assert!(parse_package(&no_version)
            .expect_err("no version")
            .contains("no tag 1001 (version)"));
        let mismatch = build(
            &[
                minimal(),
                vec![
                    strings(BASENAMES, &["a"]),
                    strings(DIRNAMES, &["/"]),
                    int32s(DIRINDEXES, &[0]),
                    int32s(FILESIZES, &[1, 2]),
                ],
            ]
            .concat(),
            &[],
        );
        assert!(parse_package(&mismatch)
            .expect_err("sizes")
            .contains("has 2 values for 1 files"));
        let bad_index = build(
            &[
                minimal(),
                vec![
                    strings(BASENAMES, &["a"]),
                    strings(DIRNAMES, &["/"]),
                    int32s(DIRINDEXES, &[5]),
                ],
            ]
            .concat(),
            &[],
        );
        assert!(parse_package(&bad_index)
            .expect_err("index")
            .contains("has index 5"));
        let wrong_type = build(
            &[
                string(NAME, "demo"),
                string(VERSION, "1"),
                string(RELEASE, "1"),
                string(EPOCH, "1"),
            ],
            &[],
        );
        assert!(parse_package(&wrong_type)
            .expect_err("type")
            .contains("expected 4"));
    }
}
