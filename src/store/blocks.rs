//! Records compressed in blocks: a few records' compact JSON, one per line, compressed together
//! with zstd and a dictionary trained on the store's first records. One record compressed alone
//! gains ~40 % (its field names and common values are new to the compressor each time); a block of
//! 16 with a dictionary gains ~90 % and still costs one small decompression to read one record.

use std::sync::Arc;

use zstd::dict::{DecoderDictionary, EncoderDictionary};

use super::{error::StoreError, record::Indexed};

/// Records a block holds (fewer in a file's last block).
pub const RECORDS_PER_BLOCK: usize = 16;
/// zstd's level: 3 (its default) compresses at ~240 MB/s here; higher levels gain little on
/// blocks this small.
const LEVEL: i32 = 3;
/// The trained dictionary's size.
const DICTIONARY_BYTES: usize = 16 * 1024;

/// A trained dictionary, ready both ways.
pub struct Dictionary {
    pub id: i64,
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary").field("id", &self.id).finish()
    }
}

impl Dictionary {
    pub fn new(id: i64, bytes: &[u8]) -> Dictionary {
        Dictionary {
            id,
            encoder: EncoderDictionary::copy(bytes, LEVEL),
            decoder: DecoderDictionary::copy(bytes),
        }
    }
}

/// A block ready to store: its records' index fields, and their JSON compressed.
#[derive(Debug, Clone)]
pub struct Block {
    /// The dictionary it was compressed with (None: none trained yet).
    pub dictionary: Option<i64>,
    /// The JSON's length uncompressed.
    pub size: usize,
    pub data: Vec<u8>,
    /// The records, in the block's order, their `json` taken (it is in `data`).
    pub records: Vec<Indexed>,
}

/// Packs records into blocks, in order.
pub fn pack(
    mut records: Vec<Indexed>,
    dictionary: Option<&Dictionary>,
) -> Result<Vec<Block>, StoreError> {
    let compressing = |e: std::io::Error| StoreError::Corrupt(format!("zstd: {e}"));
    let mut compressor = match dictionary {
        Some(d) => zstd::bulk::Compressor::with_prepared_dictionary(&d.encoder),
        None => zstd::bulk::Compressor::new(LEVEL),
    }
    .map_err(compressing)?;
    let mut blocks = Vec::with_capacity(records.len().div_ceil(RECORDS_PER_BLOCK));
    let mut text = String::new();
    while !records.is_empty() {
        let rest = records.split_off(records.len().min(RECORDS_PER_BLOCK));
        let mut chunk = std::mem::replace(&mut records, rest);
        text.clear();
        for (i, record) in chunk.iter_mut().enumerate() {
            if i > 0 {
                // Compact JSON escapes every newline inside strings: '\n' only separates.
                text.push('\n');
            }
            text.push_str(&std::mem::take(&mut record.json));
        }
        blocks.push(Block {
            dictionary: dictionary.map(|d| d.id),
            size: text.len(),
            data: compressor.compress(text.as_bytes()).map_err(compressing)?,
            records: chunk,
        });
    }
    Ok(blocks)
}

/// A stored block's records, in order.
pub fn unpack(
    data: &[u8],
    size: usize,
    dictionary: Option<&Dictionary>,
) -> Result<Vec<String>, StoreError> {
    let corrupt = |e: std::io::Error| StoreError::Corrupt(format!("zstd: {e}"));
    let mut decompressor = match dictionary {
        Some(d) => zstd::bulk::Decompressor::with_prepared_dictionary(&d.decoder),
        None => zstd::bulk::Decompressor::new(),
    }
    .map_err(corrupt)?;
    let bytes = decompressor.decompress(data, size).map_err(corrupt)?;
    let text = String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(text.split('\n').map(str::to_owned).collect())
}

/// Decompressed blocks, the most recently stored ones kept up to a size (first in, first out: a
/// page newest first reads the blocks before it next).
#[derive(Debug)]
pub struct Cache {
    blocks: std::collections::HashMap<i64, Arc<Vec<String>>>,
    order: std::collections::VecDeque<(i64, usize)>,
    bytes: usize,
    limit: usize,
}

impl Cache {
    pub fn new(limit: usize) -> Cache {
        Cache {
            blocks: Default::default(),
            order: Default::default(),
            bytes: 0,
            limit,
        }
    }

    pub fn get(&self, id: i64) -> Option<Arc<Vec<String>>> {
        self.blocks.get(&id).cloned()
    }

    pub fn put(&mut self, id: i64, records: Arc<Vec<String>>) {
        let size = records.iter().map(String::len).sum::<usize>();
        if size > self.limit || self.blocks.insert(id, records).is_some() {
            return;
        }
        self.order.push_back((id, size));
        self.bytes += size;
        while self.bytes > self.limit {
            let Some((old, size)) = self.order.pop_front() else {
                break;
            };
            self.blocks.remove(&old);
            self.bytes -= size;
        }
    }
}

/// A dictionary trained on sample records; None when they are too few or too alike to train on.
pub fn train(samples: &[String]) -> Option<Vec<u8>> {
    zstd::dict::from_samples(samples, DICTIONARY_BYTES).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn records(n: usize) -> Vec<Indexed> {
        (0..n)
            .map(|i| {
                Indexed::of(&json!({
                    "eventID": format!("id-{i}"), "eventName": format!("Name{}", i % 7),
                    "eventTime": "2026-01-01T00:00:00Z", "eventSource": "s3.amazonaws.com",
                    "requestParameters": {"bucketName": format!("bucket-{}", i % 13), "note": "a\nb"},
                }))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn blocks_unpack_to_their_records_with_and_without_a_dictionary() {
        let originals: Vec<String> = records(40).into_iter().map(|r| r.json).collect();
        let dictionary = train(&originals).map(|bytes| Dictionary::new(7, &bytes));
        assert!(dictionary.is_some(), "40 records are enough to train on");
        for dictionary in [None, dictionary.as_ref()] {
            let blocks = pack(records(40), dictionary).unwrap();
            assert_eq!(
                blocks.iter().map(|b| b.records.len()).collect::<Vec<_>>(),
                [16, 16, 8]
            );
            let mut unpacked = Vec::new();
            for b in &blocks {
                assert_eq!(b.dictionary, dictionary.map(|d| d.id));
                assert!(b.records.iter().all(|r| r.json.is_empty()));
                unpacked.extend(unpack(&b.data, b.size, dictionary).unwrap());
            }
            assert_eq!(unpacked, originals);
        }
    }

    #[test]
    fn the_cache_keeps_the_newest_blocks_within_its_size() {
        let mut cache = Cache::new(10);
        let block = |s: &str| Arc::new(vec![s.to_owned()]);
        cache.put(1, block("aaaa"));
        cache.put(2, block("bbbb"));
        cache.put(1, block("aaaa"));
        cache.put(3, block("cccc"));
        assert!(cache.get(1).is_none(), "the first in is the first out");
        assert_eq!(cache.get(3).unwrap()[0], "cccc");
        assert!(cache.get(2).is_some());
        cache.put(4, block(&"x".repeat(11)));
        assert!(cache.get(4).is_none(), "larger than the whole cache");
    }

    #[test]
    fn a_corrupt_block_is_an_error() {
        let blocks = pack(records(3), None).unwrap();
        let mut data = blocks[0].data.clone();
        data.truncate(data.len() / 2);
        assert!(matches!(
            unpack(&data, blocks[0].size, None),
            Err(StoreError::Corrupt(_))
        ));
        assert!(unpack(b"not zstd", 10, None).is_err());
    }
}
