//! Streaming digests of layer blobs: each layer is read once, in parallel across layers, in
//! fixed-size chunks; its compressed sha256 and size and its uncompressed sha256 (the diff_id)
//! are computed in the same pass. No layer is ever held in memory.

use std::io::Read;

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::layout::{hex, Compression, Layer};

/// The chunk size reads use.
const CHUNK: usize = 1 << 20;
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
            let result = drain(&mut raw, &mut buffer, u64::MAX);
            check.diff_id.push(format!(
                "layer {}: zstd layers are not decompressed by hostcert yet; its diff_id is not verified",
                layer.name
            ));
            result.map(|_| None)
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
