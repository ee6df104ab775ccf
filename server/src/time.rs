//! Wall-clock instants as stored and sent: milliseconds since the Unix epoch, UTC.

#[cfg(not(test))]
use std::time::SystemTime;
use std::time::{Duration, UNIX_EPOCH};

/// An instant in milliseconds since the Unix epoch. Stored as an integer; sent as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(i64);

impl UnixMillis {
    pub fn now() -> Self {
        #[cfg(test)]
        let now = test_clock::now();
        #[cfg(not(test))]
        let now = SystemTime::now();
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }

    /// [`now`](Self::now) to within a tenth of a second, for the per-request path: one
    /// atomic load instead of a clock read (which on some virtual machines is a system call,
    /// a hundred nanoseconds or more). A thread of its own keeps it current.
    pub fn coarse_now() -> Self {
        #[cfg(test)]
        return Self::now();
        #[cfg(not(test))]
        coarse::now()
    }

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved back by `by`, saturating at the epoch's far past.
    pub fn minus(self, by: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(by.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T17:39:31.123Z`.
    pub fn to_rfc3339(self) -> String {
        let millis = u64::try_from(self.0).unwrap_or(0);
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
    }
}

#[cfg(not(test))]
mod coarse {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;

    use super::UnixMillis;

    const TICK: Duration = Duration::from_millis(100);

    static NOW: AtomicI64 = AtomicI64::new(0);
    static TICKER: OnceLock<()> = OnceLock::new();

    pub fn now() -> UnixMillis {
        TICKER.get_or_init(|| {
            NOW.store(UnixMillis::now().as_millis(), Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name("solotab-clock".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(TICK);
                        NOW.store(UnixMillis::now().as_millis(), Ordering::Relaxed);
                    }
                });
            if spawned.is_err() {
                tracing::warn!("cannot start the coarse clock's thread; reading the clock instead");
            }
        });
        match NOW.load(Ordering::Relaxed) {
            0 => UnixMillis::now(),
            millis => UnixMillis::from_millis(millis),
        }
    }
}

/// The wall clock of the library's own unit tests: the time they started, moved on by
/// tokio's clock, so that a test with paused time (`start_paused`, `advance`) can let a
/// timeout of hours pass at once. Unpaused, it follows real time.
#[cfg(test)]
mod test_clock {
    use std::sync::LazyLock;
    use std::time::SystemTime;

    static START: LazyLock<(SystemTime, std::time::Instant)> =
        LazyLock::new(|| (SystemTime::now(), std::time::Instant::now()));

    pub fn now() -> SystemTime {
        let (wall, instant) = *START;
        let elapsed = tokio::time::Instant::now()
            .into_std()
            .saturating_duration_since(instant);
        wall + elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            UnixMillis::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            UnixMillis::from_millis(1_795_455_571_123).to_rfc3339(),
            "2026-11-23T17:39:31.123Z"
        );
    }
}
