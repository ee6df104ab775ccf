//! Logging refused requests without letting a flood of them flood the log.
//!
//! Within each one-second window the first refusal of each kind is logged as it happens;
//! the others are only counted, and the counts are written as one summary line when the
//! next window opens. A million unauthenticated requests a second cost a handful of lines.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

struct Window {
    started: Instant,
    /// Per kind: refusals seen in this window (the first was logged).
    seen: BTreeMap<&'static str, u64>,
}

static WINDOW_NOW: LazyLock<Mutex<Window>> = LazyLock::new(|| {
    Mutex::new(Window {
        started: Instant::now(),
        seen: BTreeMap::new(),
    })
});

/// Records a refusal of `kind` (an error code, or e.g. "login failed"); returns true if this
/// one should be logged in full by the caller.
pub fn first_of_its_kind(kind: &'static str) -> bool {
    // A poisoned lock only means a panic mid-update of counters: still usable.
    let mut window = WINDOW_NOW.lock().unwrap_or_else(|p| p.into_inner());
    if window.started.elapsed() >= WINDOW {
        let elapsed = window.started.elapsed();
        let suppressed: Vec<String> = window
            .seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(kind, n)| format!("{kind}={}", n - 1))
            .collect();
        if !suppressed.is_empty() {
            tracing::info!(
                "refused more requests than were logged in the last {:.1} s: {}",
                elapsed.as_secs_f64(),
                suppressed.join(", ")
            );
        }
        window.started = Instant::now();
        window.seen.clear();
    }
    let seen = window.seen.entry(kind).or_default();
    *seen += 1;
    *seen == 1
}
