//! The repeated-key filter of a staged import: which external ids and
//! emails came in more than one row, known without a pass over the staged
//! rows.

/// Keys seen while staging: a Bloom filter over every external id and email
/// (4 MiB, whatever the file) raises an alarm for a key it may have seen
/// before; once every row is read, [`SeenKeys::settle`] keeps the alarms
/// whose key's 64-bit hash came twice — the keys the repeated-key check then
/// looks up, nearly always real repeats. Without that sifting, the filter's
/// false alarms (one in 500 keys) made every large import scan its staged
/// rows for them. The hashes are kept for the first [`SeenKeys::MAX_HASHES`]
/// keys only (16 MiB, a million rows' keys): past them, every alarm is kept
/// and looked up, as before, and memory stays bounded whatever the file.
pub(super) struct SeenKeys {
    blocks: Vec<Block>,
    /// Every key's hash (8 bytes a key), kept until the alarms are sifted;
    /// `None` once there were too many.
    hashes: Option<Vec<u64>>,
    /// [`SeenKeys::MAX_HASHES`] (smaller in tests).
    max_hashes: usize,
    /// The keys the filter raised an alarm for (each once).
    alarmed_external_ids: HashSet<String>,
    alarmed_emails: HashSet<String>,
    pub(super) repeated_external_ids: HashSet<String>,
    pub(super) repeated_emails: HashSet<String>,
}

use std::collections::{HashMap, HashSet};

/// 512 bits of the filter, aligned on a cache line (as a plain `Vec<u64>`
/// is not: a block then straddled two lines, and a key missed on both).
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Block([u64; 8]);

impl SeenKeys {
    /// The filter's size for a source of unknown length (4 MiB).
    const MAX_BITS: usize = 1 << 25;
    /// Most key hashes kept (16 MiB).
    const MAX_HASHES: usize = 1 << 21;
    const EXTERNAL_ID: u8 = 0;
    const EMAIL: u8 = 1;

    /// A filter for `rows` rows (two keys each, 16 bits a key: about one
    /// false alarm in 500), or the largest for a stream.
    pub(super) fn new(rows: Option<usize>) -> Self {
        let bits = rows.map_or(Self::MAX_BITS, |rows| {
            rows.saturating_mul(32)
                .next_power_of_two()
                .clamp(1 << 12, Self::MAX_BITS)
        });
        let hashes = rows.map_or(0, |rows| rows.saturating_mul(2).min(Self::MAX_HASHES));
        SeenKeys {
            blocks: vec![Block([0; 8]); bits / 512],
            hashes: Some(Vec::with_capacity(hashes)),
            max_hashes: Self::MAX_HASHES,
            alarmed_external_ids: HashSet::new(),
            alarmed_emails: HashSet::new(),
            repeated_external_ids: HashSet::new(),
            repeated_emails: HashSet::new(),
        }
    }

    /// Records a key's hash in the filter; answers whether it may have been
    /// seen before.
    fn insert(&mut self, hash: u64) -> bool {
        // The key's three bits lie in one 512-bit block (a cache line): one
        // memory access a key instead of three (a tenth of reading a large
        // file went to the misses).
        let block = self.block(hash);
        let mut seen = true;
        for i in 0..3 {
            let bit = ((hash >> (32 + 9 * i)) & 511) as usize;
            let (word, mask) = (&mut self.blocks[block].0[bit / 64], 1u64 << (bit % 64));
            seen &= *word & mask != 0;
            *word |= mask;
        }
        seen
    }

    /// The filter's block a key's bits lie in.
    fn block(&self, hash: u64) -> usize {
        hash as u32 as usize % self.blocks.len()
    }

    /// The hashes of a row's keys as [`SeenKeys::add`] would take them, for
    /// [`SeenKeys::warm`].
    pub(super) fn hashes_of(external_id: Option<&str>, email: Option<&str>, hashes: &mut Vec<u64>) {
        hashes.extend(
            Self::keys(external_id, email).map(|(kind, key)| key_hash(kind, key.as_bytes())),
        );
    }

    /// A row's keys, each with its kind (an external id and an email with
    /// the same text are different keys).
    fn keys<'k>(
        external_id: Option<&'k str>,
        email: Option<&'k str>,
    ) -> impl Iterator<Item = (u8, &'k str)> {
        [(Self::EXTERNAL_ID, external_id), (Self::EMAIL, email)]
            .into_iter()
            .filter_map(|(kind, key)| Some((kind, key?)))
    }

    /// Reads the filter's blocks for keys that [`SeenKeys::add`] will be
    /// given soon (the rows read ahead), in one tight loop: their cache
    /// misses then overlap instead of stalling the reader one key at a time,
    /// and `add` finds the blocks cached. A million-row file's keys missed
    /// the cache on nearly every add: a fifth of the reading thread's time.
    /// Only a hint: a key given otherwise later is merely slower.
    pub(super) fn warm(&self, hashes: &[u64]) {
        let mut touched = 0u64;
        for hash in hashes {
            touched ^= self.blocks[self.block(*hash)].0[0];
        }
        // Kept, so that the reads are made.
        std::hint::black_box(touched);
    }

    pub(super) fn add(&mut self, external_id: Option<&str>, email: Option<&str>) {
        for (kind, key) in Self::keys(external_id, email) {
            let hash = key_hash(kind, key.as_bytes());
            if let Some(hashes) = &mut self.hashes {
                if hashes.len() < self.max_hashes {
                    hashes.push(hash);
                } else {
                    self.hashes = None;
                }
            }
            if self.insert(hash) {
                let alarmed = if kind == Self::EXTERNAL_ID {
                    &mut self.alarmed_external_ids
                } else {
                    &mut self.alarmed_emails
                };
                if !alarmed.contains(key) {
                    alarmed.insert(key.to_string());
                }
            }
        }
    }

    /// Once every row is read: keeps the alarms whose hash came more than
    /// once (all of them when the hashes were not all kept), and frees the
    /// filter and the hashes.
    pub(super) fn settle(&mut self) {
        let hashes = self.hashes.take();
        self.blocks = Vec::new();
        let external_ids = std::mem::take(&mut self.alarmed_external_ids);
        let emails = std::mem::take(&mut self.alarmed_emails);
        let Some(hashes) = hashes else {
            self.repeated_external_ids.extend(external_ids);
            self.repeated_emails.extend(emails);
            return;
        };
        if external_ids.is_empty() && emails.is_empty() {
            return;
        }
        // SipHash, not the keys' own hash: a file's keys could be chosen to
        // collide in a table indexed by it.
        let alarms = |kind, keys: &HashSet<String>| {
            keys.iter()
                .map(|key| (key_hash(kind, key.as_bytes()), 0u32))
                .collect::<Vec<_>>()
        };
        let mut counts: HashMap<u64, u32> = alarms(Self::EXTERNAL_ID, &external_ids)
            .into_iter()
            .chain(alarms(Self::EMAIL, &emails))
            .collect();
        for hash in &hashes {
            if let Some(count) = counts.get_mut(hash) {
                *count += 1;
            }
        }
        drop(hashes);
        let repeated = |kind, key: &String| {
            counts
                .get(&key_hash(kind, key.as_bytes()))
                .is_some_and(|count| *count > 1)
        };
        self.repeated_external_ids.extend(
            external_ids
                .into_iter()
                .filter(|key| repeated(Self::EXTERNAL_ID, key)),
        );
        self.repeated_emails
            .extend(emails.into_iter().filter(|key| repeated(Self::EMAIL, key)));
    }
}

/// A key's hash for the key filter: each 8 bytes folded in and spread by
/// splitmix64's finaliser. A filter needs well-spread bits, not resistance
/// to chosen keys (a file of colliding keys only makes more of them looked
/// up exactly), and SipHash took an eighth of reading a large body's rows.
fn key_hash(kind: u8, key: &[u8]) -> u64 {
    let spread = |mut hash: u64| {
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        hash ^ (hash >> 31)
    };
    let mut hash = spread(u64::from(kind) << 56 ^ key.len() as u64);
    let mut words = key.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        hash = spread(hash ^ u64::from_le_bytes(bytes));
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    spread(hash ^ u64::from_le_bytes(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_filter_sized_for_its_rows_raises_few_false_alarms() {
        // Keys as exports write them: a counter inside a fixed text.
        let rows = 100_000;
        let mut seen = SeenKeys::new(Some(rows));
        for i in 0..rows {
            seen.add(
                Some(&format!("EMP-{i}")),
                Some(&format!("user{i}@bench.example")),
            );
        }
        let alarms = seen.alarmed_external_ids.len() + seen.alarmed_emails.len();
        // 16 bits a key: about one in 500 (400 of 200,000; this hash: 139).
        // A weak hash (FxHash's word mixing alone: 4,529) fails.
        assert!(
            alarms > 0 && alarms < 2 * rows / 250,
            "{alarms} false alarms"
        );
        // None of them is a repeat: settled, none is left to look up.
        seen.settle();
        assert!(seen.repeated_external_ids.is_empty() && seen.repeated_emails.is_empty());
        assert!(
            seen.hashes.is_none() && seen.blocks.capacity() == 0,
            "memory kept"
        );
    }

    #[test]
    fn the_key_filter_keeps_every_key_seen_twice_and_only_those() {
        // A filter far too small for its keys: most of them raise an alarm.
        let mut seen = SeenKeys::new(Some(1));
        for i in 0..50_000 {
            seen.add(Some(&format!("E{i}")), Some(&format!("e{i}@x.example")));
        }
        seen.add(Some("E17"), Some("new@x.example"));
        seen.add(Some("E-new"), Some("e42@x.example"));
        seen.add(None, Some("e42@x.example"));
        let alarms = seen.alarmed_external_ids.len() + seen.alarmed_emails.len();
        assert!(alarms > 10_000, "{alarms} alarms");
        seen.settle();
        assert_eq!(
            seen.repeated_external_ids.iter().collect::<Vec<_>>(),
            ["E17"]
        );
        assert_eq!(
            seen.repeated_emails.iter().collect::<Vec<_>>(),
            ["e42@x.example"]
        );
        // An external id and an email with the same text are different keys.
        let mut kinds = SeenKeys::new(Some(1));
        kinds.add(Some("same"), Some("same"));
        kinds.settle();
        assert!(kinds.repeated_external_ids.is_empty() && kinds.repeated_emails.is_empty());
    }

    #[test]
    fn each_block_of_the_filter_is_one_cache_line() {
        let seen = SeenKeys::new(Some(100_000));
        assert_eq!(std::mem::size_of::<Block>(), 64);
        assert_eq!(seen.blocks.as_ptr() as usize % 64, 0);
        // A key's three bits are all in its block, and warming reads it.
        let mut seen = seen;
        let hash = key_hash(SeenKeys::EMAIL, b"a@x.example");
        seen.warm(&[hash]);
        assert!(!seen.insert(hash));
        let block = seen.blocks[seen.block(hash)].0;
        let set: u32 = block.iter().map(|word| word.count_ones()).sum();
        assert!((1..=3).contains(&set), "{set} bits set");
        assert_eq!(
            seen.blocks
                .iter()
                .map(|b| b.0.iter().map(|w| w.count_ones()).sum::<u32>())
                .sum::<u32>(),
            set
        );
        assert!(seen.insert(hash), "seen once");
    }

    #[test]
    fn past_the_hashes_it_keeps_every_alarm_and_no_more_memory() {
        let mut seen = SeenKeys::new(Some(1));
        seen.max_hashes = 1_000;
        for i in 0..5_000 {
            seen.add(Some(&format!("E{i}")), None);
        }
        let alarms = seen.alarmed_external_ids.len();
        assert!(alarms > 100, "{alarms} alarms");
        assert!(seen.hashes.is_none(), "the hashes stopped at their bound");
        seen.settle();
        // Not sifted: each is looked up, as the filter alone had them.
        assert_eq!(seen.repeated_external_ids.len(), alarms);
    }

    #[test]
    fn a_key_repeated_on_every_row_is_kept_once() {
        let mut seen = SeenKeys::new(None);
        for _ in 0..10_000 {
            seen.add(Some("E1"), Some("same@x.example"));
        }
        assert_eq!(seen.alarmed_external_ids.len(), 1);
        assert_eq!(seen.alarmed_emails.len(), 1);
        seen.settle();
        assert!(seen.repeated_external_ids.contains("E1"));
        assert!(seen.repeated_emails.contains("same@x.example"));
    }
}
