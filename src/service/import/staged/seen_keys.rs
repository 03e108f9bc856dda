//! The repeated-key filter of a staged import: which external ids and
//! emails came in more than one row, known without a pass over the staged
//! rows.

/// Keys seen while staging: a Bloom filter over every external id and email
/// (4 MiB, whatever the file) raises an alarm for a key it may have seen
/// before; once every row is read, [`SeenKeys::settle`] keeps the alarms
/// whose key's 64-bit hash came twice — the keys the repeated-key check then
/// looks up, nearly always real repeats. Without that sifting, the filter's
/// false alarms (one in 500 keys) made every large import scan its staged
/// rows for them.
pub(super) struct SeenKeys {
    bits: Vec<u64>,
    /// Every key's hash (8 bytes a key), kept until the alarms are sifted.
    hashes: Vec<u64>,
    /// The keys the filter raised an alarm for: hash, kind, key.
    alarms: Vec<(u64, u8, String)>,
    pub(super) repeated_external_ids: std::collections::HashSet<String>,
    pub(super) repeated_emails: std::collections::HashSet<String>,
}

impl SeenKeys {
    /// The filter's size for a source of unknown length (4 MiB).
    const MAX_BITS: usize = 1 << 25;
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
        SeenKeys {
            bits: vec![0; bits / 64],
            hashes: Vec::with_capacity(rows.map_or(0, |rows| rows.saturating_mul(2))),
            alarms: Vec::new(),
            repeated_external_ids: Default::default(),
            repeated_emails: Default::default(),
        }
    }

    /// Records a key's hash in the filter; answers whether it may have been
    /// seen before.
    fn insert(&mut self, hash: u64) -> bool {
        // The key's three bits lie in one 512-bit block (a cache line): one
        // memory access a key instead of three (a tenth of reading a large
        // file went to the misses).
        let blocks = self.bits.len() / 8;
        let block = (hash as u32 as usize % blocks) * 8;
        let mut seen = true;
        for i in 0..3 {
            let bit = ((hash >> (32 + 9 * i)) & 511) as usize;
            let (word, mask) = (block + bit / 64, 1u64 << (bit % 64));
            seen &= self.bits[word] & mask != 0;
            self.bits[word] |= mask;
        }
        seen
    }

    pub(super) fn add(&mut self, external_id: Option<&str>, email: Option<&str>) {
        for (kind, key) in [(Self::EXTERNAL_ID, external_id), (Self::EMAIL, email)] {
            if let Some(key) = key {
                let hash = key_hash(kind, key.as_bytes());
                self.hashes.push(hash);
                if self.insert(hash) {
                    self.alarms.push((hash, kind, key.to_string()));
                }
            }
        }
    }

    /// Once every row is read: keeps the alarms whose hash came more than
    /// once, and frees the filter and the hashes.
    pub(super) fn settle(&mut self) {
        let hashes = std::mem::take(&mut self.hashes);
        self.bits = Vec::new();
        if self.alarms.is_empty() {
            return;
        }
        let mut counts: std::collections::HashMap<u64, u32, PassThrough> =
            self.alarms.iter().map(|(hash, _, _)| (*hash, 0)).collect();
        for hash in &hashes {
            if let Some(count) = counts.get_mut(hash) {
                *count += 1;
            }
        }
        drop(hashes);
        for (hash, kind, key) in std::mem::take(&mut self.alarms) {
            if counts.get(&hash).is_some_and(|count| *count > 1) {
                match kind {
                    Self::EXTERNAL_ID => self.repeated_external_ids.insert(key),
                    _ => self.repeated_emails.insert(key),
                };
            }
        }
    }
}

/// Hashes [`key_hash`] values as they are: they are spread already.
#[derive(Default, Clone, Copy)]
struct PassThrough;

impl std::hash::BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
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
        let alarms = seen.alarms.len();
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
            seen.hashes.capacity() == 0 && seen.bits.capacity() == 0,
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
        assert!(seen.alarms.len() > 10_000, "{} alarms", seen.alarms.len());
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
}
