//! Throttling repeated failures (wrong passwords) per key: a client IP, an account.
//!
//! `limit` failures within `window` block the key for `window`; each further block of the
//! same key doubles (up to a day), and a key with nothing recent is forgotten. Callers ask
//! [`Throttle::check`] *before* doing the expensive work (a password hash), so a flood of
//! wrong passwords costs a handful of hashes, not one each. Only failures count: a refused
//! (throttled) attempt does not, and a success clears an account's record, so the owner is
//! never kept out by their own earlier typos.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a key is ever blocked.
const LONGEST_BLOCK: Duration = Duration::from_secs(24 * 60 * 60);

/// Past this many tracked keys, records with nothing recent are swept before adding more.
const SWEEP_ABOVE: usize = 50_000;

#[derive(Debug)]
pub struct Throttle<K> {
    limit: usize,
    window: Duration,
    // A std Mutex: each critical section is a few map and deque operations.
    keys: Mutex<HashMap<K, Record>>,
}

#[derive(Debug, Default)]
struct Record {
    /// Failures within the window, oldest first (at most `limit`).
    failures: VecDeque<Instant>,
    /// How many times this key has been blocked (doubles the next block).
    strikes: u32,
    blocked_until: Option<Instant>,
}

impl Record {
    fn is_stale(&self, now: Instant, window: Duration) -> bool {
        self.blocked_until.is_none_or(|until| until <= now)
            && self
                .failures
                .back()
                .is_none_or(|last| now.duration_since(*last) >= window * 2)
    }
}

impl<K: Eq + Hash + Clone> Throttle<K> {
    /// `limit` failures within `window` block a key. A limit of 0 never blocks.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` while `key` is blocked.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Counts a failure of `key`; returns how long it is now blocked, if it is.
    pub fn failure(&self, key: &K) -> Option<Duration> {
        self.failure_at(key, Instant::now())
    }

    /// Forgets `key`'s failures (a success).
    pub fn success(&self, key: &K) {
        self.lock().remove(key);
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.lock().get(key).and_then(|r| r.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    fn failure_at(&self, key: &K, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let mut keys = self.lock();
        if keys.len() > SWEEP_ABOVE && !keys.contains_key(key) {
            keys.retain(|_, record| !record.is_stale(now, self.window));
        }
        let record = keys.entry(key.clone()).or_default();
        while record
            .failures
            .front()
            .is_some_and(|first| now.duration_since(*first) >= self.window)
        {
            record.failures.pop_front();
        }
        record.failures.push_back(now);
        if record.failures.len() < self.limit {
            return None;
        }
        record.failures.clear();
        record.strikes += 1;
        let block = self
            .window
            .saturating_mul(1 << (record.strikes - 1).min(16))
            .min(LONGEST_BLOCK);
        record.blocked_until = Some(now + block);
        Some(block)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Record>> {
        // Poisoned only by a panic between map operations: the data is still whole.
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn the_limit_th_failure_in_the_window_blocks_and_blocks_double_each_time() {
        let throttle = Throttle::new(5, 15 * MINUTE);
        let t0 = Instant::now();
        for n in 0..4 {
            assert_eq!(throttle.failure_at(&"ip", t0 + MINUTE * n), None);
            assert!(throttle.check_at(&"ip", t0 + MINUTE * n).is_ok());
        }
        let blocked_at = t0 + 4 * MINUTE;
        assert_eq!(throttle.failure_at(&"ip", blocked_at), Some(15 * MINUTE));
        assert_eq!(
            throttle.check_at(&"ip", blocked_at + MINUTE),
            Err(14 * MINUTE)
        );
        assert!(
            throttle.check_at(&"other", blocked_at).is_ok(),
            "keys are separate"
        );
        let free = blocked_at + 15 * MINUTE;
        assert!(throttle.check_at(&"ip", free).is_ok());
        for n in 0..4 {
            assert_eq!(throttle.failure_at(&"ip", free + MINUTE * n), None);
        }
        assert_eq!(
            throttle.failure_at(&"ip", free + 4 * MINUTE),
            Some(30 * MINUTE),
            "the second block is twice as long"
        );
    }

    #[test]
    fn failures_spread_wider_than_the_window_never_block() {
        let throttle = Throttle::new(3, 10 * MINUTE);
        let t0 = Instant::now();
        for n in 0..20 {
            assert_eq!(throttle.failure_at(&"ip", t0 + 6 * MINUTE * n), None);
        }
    }

    #[test]
    fn a_success_clears_the_record_and_a_limit_of_zero_never_blocks() {
        let throttle = Throttle::new(2, MINUTE);
        let t0 = Instant::now();
        throttle.failure_at(&"ann", t0);
        throttle.success(&"ann");
        assert_eq!(
            throttle.failure_at(&"ann", t0),
            None,
            "the earlier failure is gone"
        );
        let off = Throttle::new(0, MINUTE);
        for _ in 0..100 {
            assert_eq!(off.failure_at(&"ann", t0), None);
        }
    }
}
