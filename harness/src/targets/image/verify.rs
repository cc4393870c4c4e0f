//! Streaming digests of layer blobs: each layer is read once, in parallel across layers, in
//! fixed-size chunks (256 KiB); its compressed sha256 and size and its uncompressed sha256 (the diff_id)
//! are computed in the same pass. No layer is ever held in memory.

use std::io::Read;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::layout::{hex, Compression, Layer};

/// The chunk size reads use. Layers are read in parallel on the gather's pool (up to `--jobs`
/// threads), so two chunks per layer in flight must stay small.
const CHUNK: usize = 256 << 10;
/// Uncompressed bytes a layer may hold beyond [`MAX_RATIO`] times its compressed size.
const BOMB_SLACK: u64 = 64 << 20;
/// The largest ratio of uncompressed to compressed bytes a layer may have: more is a bomb.
pub(super) const MAX_RATIO: u64 = 200;
/// The most uncompressed bytes any layer may hold.
pub(super) const MAX_LAYER_BYTES: u64 = 64 << 30;

/// What reading one layer found.
#[derive(Debug, Clone, Default)]
pub(super) struct LayerCheck {
    /// Problems with the blob itself: missing, wrong size or sha256.
    pub blob: Vec<String>,
    /// Problems with its uncompressed content: diff_id, decompression.
    pub diff_id: Vec<String>,
}

/// The uncompressed bytes a layer may have, given its compressed size.
pub(super) fn decompressed_limit(compressed: u64) -> u64 {
    compressed
        .saturating_mul(MAX_RATIO)
        .saturating_add(BOMB_SLACK)
        .min(MAX_LAYER_BYTES)
}

/// Verifies every layer in parallel.
pub(super) fn verify_layers(layers: &[Layer]) -> Vec<LayerCheck> {
    layers.par_iter().map(verify_layer).collect()
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

fn verify_layer(layer: &Layer) -> LayerCheck {
    let mut check = LayerCheck::default();
    let file = match std::fs::File::open(&layer.path) {
        Ok(file) if file.metadata().map(|m| m.is_file()).unwrap_or(false) => file,
        Ok(_) => {
            check
                .blob
                .push(format!("layer {}: not a regular file", layer.name));
            return check;
        }
        Err(error) => {
            check
                .blob
                .push(format!("layer {}: missing blob ({error})", layer.name));
            return check;
        }
    };
    let compressed_size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut raw = Hashing {
        inner: std::io::BufReader::with_capacity(CHUNK, file),
        hasher: Sha256::new(),
        count: 0,
    };
    let mut buffer = vec![0u8; CHUNK];
    let uncompressed = match layer.compression {
        Compression::None => drain(&mut raw, &mut buffer, u64::MAX).map(|_| None),
        Compression::Gzip => {
            let mut decoder = Hashing {
                inner: flate2::read::MultiGzDecoder::new(&mut raw),
                hasher: Sha256::new(),
                count: 0,
            };
            let limit = decompressed_limit(compressed_size);
            match drain(&mut decoder, &mut buffer, limit) {
                Ok(()) => {
                    let digest = format!("sha256:{}", hex(&decoder.hasher.finalize()));
                    drain(&mut raw, &mut buffer, u64::MAX).map(|_| Some(digest))
                }
                Err(e) => Err(e),
            }
        }
        Compression::Zstd => {
            let mut decoder = Hashing {
                inner: ZstdFrames::new(std::io::BufReader::with_capacity(CHUNK, &mut raw)),
                hasher: Sha256::new(),
                count: 0,
            };
            let limit = decompressed_limit(compressed_size);
            match drain(&mut decoder, &mut buffer, limit) {
                Ok(()) => {
                    let digest = format!("sha256:{}", hex(&decoder.hasher.finalize()));
                    drain(&mut raw, &mut buffer, u64::MAX).map(|_| Some(digest))
                }
                Err(e) => Err(e),
            }
        }
    };
    let uncompressed = match uncompressed {
        Ok(uncompressed) => uncompressed,
        Err(reason) => {
            check
                .diff_id
                .push(format!("layer {}: {reason}", layer.name));
            // The blob's own digest still needs the rest of the file.
            let _ = drain(&mut raw, &mut buffer, u64::MAX);
            None
        }
    };
    let digest = format!("sha256:{}", hex(&raw.hasher.finalize()));
    if let Some(size) = layer.size {
        if size != raw.count {
            check.blob.push(format!(
                "layer {}: {} bytes, the descriptor says {size}",
                layer.name, raw.count
            ));
        }
    }
    if let Some(expected) = &layer.digest {
        if expected.to_string() != digest {
            check
                .blob
                .push(format!("layer {}: its sha256 is {digest}", layer.name));
        }
    }
    let content = match (layer.compression, uncompressed) {
        (Compression::None, _) => Some(digest),
        (_, content) => content,
    };
    match (&layer.diff_id, content) {
        (None, _) => check.diff_id.push(format!(
            "layer {}: the config has no diff_id for it",
            layer.name
        )),
        (Some(diff_id), Some(content)) if *diff_id != content => check.diff_id.push(format!(
            "layer {}: its uncompressed sha256 is {content}, the config's diff_id is {}",
            layer.name,
            super::layout::shorten(diff_id)
        )),
        _ => {}
    }
    check
}

/// The largest zstd window accepted: the decoder keeps a window in memory.
const MAX_ZSTD_WINDOW: u64 = 32 << 20;

/// A zstd stream of one or more frames, decoded with the pure-Rust `ruzstd`; a frame whose
/// window is larger than [`MAX_ZSTD_WINDOW`] is refused before anything is allocated for it.
pub(super) struct ZstdFrames<R: std::io::BufRead> {
    decoder: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
    source: Option<R>,
}

impl<R: std::io::BufRead> ZstdFrames<R> {
    pub(super) fn new(source: R) -> ZstdFrames<R> {
        ZstdFrames {
            decoder: None,
            source: Some(source),
        }
    }
}

/// The window a zstd frame header asks for, when the header is in `bytes`.
fn zstd_window(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < 6 || bytes[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return None;
    }
    let descriptor = bytes[4];
    if descriptor & 0x20 != 0 {
        // Single segment: the window is the content size, which follows.
        let size_bytes = match descriptor >> 6 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let dictionary_bytes = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
        let start = 5 + dictionary_bytes;
        let field = bytes.get(start..start + size_bytes)?;
        let mut size: u64 = 0;
        for (i, b) in field.iter().enumerate() {
            size |= u64::from(*b) << (8 * i);
        }
        return Some(if size_bytes == 2 { size + 256 } else { size });
    }
    let window = bytes[5];
    let log = 10 + u64::from(window >> 3);
    let base = 1u64 << log.min(62);
    Some(base + (base / 8) * u64::from(window & 7))
}

impl<R: std::io::BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(decoder) = &mut self.decoder {
                let n = decoder.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let decoder = self.decoder.take().expect("a decoder");
                self.source = Some(decoder.into_inner());
            }
            let Some(mut source) = self.source.take() else {
                return Ok(0);
            };
            let head = source.fill_buf()?;
            if head.is_empty() {
                return Ok(0);
            }
            if let Some(window) = zstd_window(head) {
                if window > MAX_ZSTD_WINDOW {
                    return Err(std::io::Error::other(format!(
                        "a zstd frame asks for a {} MiB window, more than the {} MiB hostcert allows",
                        window >> 20,
                        MAX_ZSTD_WINDOW >> 20
                    )));
                }
            }
            let decoder = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| std::io::Error::other(format!("not zstd: {e}")))?;
            self.decoder = Some(decoder);
        }
    }
}

/// Reads to the end in chunks, refusing more than `limit` bytes.
fn drain<R: Read>(reader: &mut R, buffer: &mut [u8], limit: u64) -> Result<(), String> {
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(format!("cannot decompress: {error}")),
        };
        total += n as u64;
        if total > limit {
            return Err(format!(
                "decompresses to more than {limit} bytes (over {MAX_RATIO} times its size): refused as a decompression bomb"
            ));
        }
    }
}
