//! The hash index that finds a session's record in memory's dense vectors.
//!
//! Why not a `hashbrown::HashTable<u32>`: its probe reads a control byte, then the bucket that
//! byte points to, then the record: three dependent cache misses per check at a million
//! sessions, which is most of what a check costs there (docs/BENCHMARKS.md). Here a bucket is
//! one `u32` holding the record's place and a few bits of its key's hash (a fingerprint), so a
//! probe reads the bucket, then the record: two. It is also smaller (4 bytes a bucket, not 5).
//!
//! Linear probing, at most 7/8 full; removal shifts the rest of a run back (no tombstones),
//! so a lookup never walks past where its key could be. The index does not keep hashes: the
//! caller hashes a place's record when the index moves an entry or grows.

/// Buckets of a new index's first allocation.
const MIN_BUCKETS: usize = 8;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// 0: empty. Else `fingerprint << bits | (place + 1)`; `place + 1 < 2^bits` always
    /// holds, as an index has fewer entries than buckets.
    buckets: Box<[u32]>,
    /// `buckets.len() == 1 << bits` (no buckets: 0).
    bits: u32,
    len: usize,
}

impl Index {
    /// Where a probe for `hash` starts: its top bits (the fingerprint takes the bottom ones).
    fn home(&self, hash: u64) -> usize {
        (hash >> (64 - self.bits)) as usize
    }

    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    fn place_mask(&self) -> u32 {
        ((1u64 << self.bits) - 1) as u32
    }

    /// The bits of `hash` kept in its bucket: as many as the place leaves free.
    fn fingerprint(&self, hash: u64) -> u32 {
        (hash as u32) & !self.place_mask()
    }

    fn entry(&self, hash: u64, place: u32) -> u32 {
        self.fingerprint(hash) | (place + 1)
    }

    /// The place in a non-empty bucket.
    fn place(&self, bucket: u32) -> u32 {
        (bucket & self.place_mask()) - 1
    }

    /// The bucket holding the place of `hash` for which `is` holds.
    fn position(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<usize> {
        // An empty index reads no memory (the ended one is empty while start-up loads the
        // active UIDs, each probing it).
        if self.len == 0 {
            return None;
        }
        let fingerprint = self.fingerprint(hash);
        let mut at = self.home(hash);
        loop {
            let bucket = self.buckets[at];
            if bucket == 0 {
                return None;
            }
            if bucket & !self.place_mask() == fingerprint && is(self.place(bucket)) {
                return Some(at);
            }
            at = (at + 1) & self.mask();
        }
    }

    /// The place whose record `is` the one looked for; `hash` is that record's.
    pub(super) fn find(&self, hash: u64, is: impl FnMut(u32) -> bool) -> Option<u32> {
        let at = self.position(hash, is)?;
        Some(self.place(self.buckets[at]))
    }

    /// Adds `place`, whose record hashes to `hash` and is not in the index yet.
    pub(super) fn insert(&mut self, hash: u64, place: u32, rehash: impl Fn(u32) -> u64) {
        self.reserve(1, &rehash);
        self.put(hash, place);
    }

    /// Puts `place` in the first empty bucket from `hash`'s home (there is room).
    fn put(&mut self, hash: u64, place: u32) {
        let mut at = self.home(hash);
        while self.buckets[at] != 0 {
            at = (at + 1) & self.mask();
        }
        self.buckets[at] = self.entry(hash, place);
        self.len += 1;
    }

    /// Moves the entry of the record at `from` (hashing to `hash`) to `to`, where the record
    /// now is.
    pub(super) fn repoint(&mut self, hash: u64, from: u32, to: u32) {
        if let Some(at) = self.position(hash, |place| place == from) {
            self.buckets[at] = self.entry(hash, to);
        }
    }

    /// Removes `place`, whose record hashes to `hash`.
    pub(super) fn remove(&mut self, hash: u64, place: u32, rehash: impl Fn(u32) -> u64) {
        let Some(mut hole) = self.position(hash, |p| p == place) else {
            return;
        };
        self.len -= 1;
        // Knuth's algorithm R: every later entry of the run that may stand in the hole moves
        // into it, and leaves a hole of its own, until the run ends.
        let mut at = hole;
        loop {
            self.buckets[hole] = 0;
            loop {
                at = (at + 1) & self.mask();
                let bucket = self.buckets[at];
                if bucket == 0 {
                    return;
                }
                let home = self.home(rehash(self.place(bucket)));
                // The entry stays if its home lies cyclically in (hole, at]: a probe from there
                // would not pass the hole.
                let stays = if hole <= at {
                    hole < home && home <= at
                } else {
                    hole < home || home <= at
                };
                if !stays {
                    self.buckets[hole] = bucket;
                    hole = at;
                    break;
                }
            }
        }
    }

    /// Room for `additional` more entries without growing.
    pub(super) fn reserve(&mut self, additional: usize, rehash: impl Fn(u32) -> u64) {
        let wanted = self.len + additional;
        if wanted > capacity(self.buckets.len()) {
            self.rebuild(buckets_for(wanted), rehash);
        }
    }

    /// Moves every entry into `buckets` new buckets.
    fn rebuild(&mut self, buckets: usize, rehash: impl Fn(u32) -> u64) {
        let old = std::mem::take(&mut self.buckets);
        let places: Vec<u32> = old
            .iter()
            .filter(|&&bucket| bucket != 0)
            .map(|&bucket| self.place(bucket))
            .collect();
        self.buckets = vec![0; buckets].into_boxed_slice();
        self.bits = buckets.trailing_zeros();
        self.len = 0;
        for place in places {
            self.put(rehash(place), place);
        }
    }
}

/// How many entries `buckets` buckets hold: 7/8 of them.
fn capacity(buckets: usize) -> usize {
    buckets - buckets / 8
}

/// The fewest buckets (a power of two) that hold `entries`.
fn buckets_for(entries: usize) -> usize {
    let mut buckets = MIN_BUCKETS;
    while capacity(buckets) < entries {
        buckets *= 2;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Records as memory keeps them: a dense vector of keys, removed by moving the last one
    /// into the hole.
    struct Model {
        index: Index,
        keys: Vec<u64>,
    }

    /// Hashes that are not random, so runs form and wrap around the end of the buckets.
    fn hash(key: u64) -> u64 {
        key.rotate_right(3) ^ (key << 61)
    }

    impl Model {
        fn find(&self, key: u64) -> Option<u32> {
            let keys = &self.keys;
            self.index.find(hash(key), |p| keys[p as usize] == key)
        }

        fn insert(&mut self, key: u64) {
            if self.find(key).is_some() {
                return;
            }
            self.keys.push(key);
            let keys = &self.keys;
            let place = (keys.len() - 1) as u32;
            self.index
                .insert(hash(key), place, |p| hash(keys[p as usize]));
        }

        fn remove(&mut self, key: u64) {
            let Some(place) = self.find(key) else {
                return;
            };
            let keys = &self.keys;
            self.index
                .remove(hash(key), place, |p| hash(keys[p as usize]));
            self.keys.swap_remove(place as usize);
            let last = self.keys.len() as u32;
            if let Some(&moved) = self.keys.get(place as usize) {
                self.index.repoint(hash(moved), last, place);
            }
        }
    }

    proptest! {
        /// Whatever the order of inserts and removals, every key is found at its record's
        /// place, and no other key is found.
        #[test]
        fn finds_what_a_map_would(
            steps in proptest::collection::vec((any::<bool>(), 0..64u64), 1..400),
            high in any::<u64>(),
        ) {
            // Keys differ in their top bits too, so homes collide in small tables.
            let key = |k: u64| k.wrapping_mul(high | 1);
            let mut model = Model { index: Index::default(), keys: Vec::new() };
            let mut map: HashMap<u64, ()> = HashMap::new();
            for (op, k) in steps {
                if op {
                    model.insert(key(k));
                    map.insert(key(k), ());
                } else {
                    model.remove(key(k));
                    map.remove(&key(k));
                }
                prop_assert_eq!(model.index.len, map.len());
                prop_assert_eq!(model.keys.len(), map.len());
                for k in 0..64 {
                    let found = model.find(key(k));
                    prop_assert_eq!(found.is_some(), map.contains_key(&key(k)), "key {}", k);
                    if let Some(place) = found {
                        prop_assert_eq!(model.keys[place as usize], key(k));
                    }
                }
            }
        }
    }

    #[test]
    fn grows_when_7_8_full_and_empties_its_buckets_on_removal() {
        let mut model = Model {
            index: Index::default(),
            keys: Vec::new(),
        };
        for key in 0..7u64 {
            model.insert(key << 40);
        }
        assert_eq!(model.index.buckets.len(), 8);
        model.insert(7 << 40);
        assert_eq!(model.index.buckets.len(), 16);
        for key in 0..7u64 {
            model.remove(key << 40);
        }
        assert_eq!(model.find(7 << 40), Some(0));
        assert_eq!(model.index.buckets.iter().filter(|&&b| b != 0).count(), 1);
        model.remove(7 << 40);
        assert_eq!(model.index.len, 0);
        assert!(model.index.buckets.iter().all(|&b| b == 0));
        assert_eq!(model.find(7 << 40), None);
    }
}
