//! Who is waiting to hear that a UID ended.
//!
//! One entry per watched UID, holding one `watch` sender that all of that UID's channels
//! subscribe to. Ending a UID looks up its entry and sends once: a takeover wakes exactly
//! the channels of the UIDs it ended, and costs the same with ten open channels or a million.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Rejection;
use crate::uid::UidDigest;

/// At most this many channels may watch one UID, so a stolen UID cannot open thousands.
pub const MAX_WATCHES_PER_UID: usize = 4;

type Sender = watch::Sender<Option<Rejection>>;

#[derive(Debug, Default)]
pub(super) struct Watchers {
    // A std Mutex: every critical section is one map operation and never awaits.
    by_uid: Mutex<HashMap<UidDigest, Sender>>,
}

impl Watchers {
    /// Subscribes to `uid`'s end, unless it already has [`MAX_WATCHES_PER_UID`] watches.
    /// The caller must hold the registry's read lock and have seen `uid` active, so that an
    /// end cannot fall between that check and this subscription.
    pub(super) fn subscribe(self: &Arc<Self>, uid: UidDigest) -> Option<Watch> {
        let mut by_uid = self.lock();
        let receiver = match by_uid.entry(uid) {
            Entry::Occupied(entry) => {
                if entry.get().receiver_count() >= MAX_WATCHES_PER_UID {
                    return None;
                }
                entry.get().subscribe()
            }
            Entry::Vacant(entry) => entry.insert(watch::Sender::new(None)).subscribe(),
        };
        Some(Watch {
            uid,
            receiver,
            watchers: Arc::clone(self),
        })
    }

    /// Tells every watch of `uid` that it ended, and forgets them.
    pub(super) fn ended(&self, uid: &UidDigest, rejection: Rejection) {
        let sender = self.lock().remove(uid);
        if let Some(sender) = sender {
            // No receiver left is fine: the channel closed on its own meanwhile.
            let _ = sender.send(Some(rejection));
        }
    }

    pub(super) fn is_watched(&self, uid: &UidDigest) -> bool {
        self.lock().contains_key(uid)
    }

    /// Every UID with a watch now.
    pub(super) fn watched_uids(&self) -> Vec<UidDigest> {
        self.lock().keys().copied().collect()
    }

    /// How many UIDs are being watched (for logs and metrics).
    pub(super) fn watched(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UidDigest, Sender>> {
        // Every update is a single infallible map operation: poisoned data is still whole.
        self.by_uid
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One channel's subscription to the end of its UID. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Watch {
    uid: UidDigest,
    receiver: watch::Receiver<Option<Rejection>>,
    watchers: Arc<Watchers>,
}

impl Watch {
    /// Resolves once the UID is no longer active, with the reason.
    pub async fn ended(&mut self) -> Rejection {
        // The sender is dropped only by `Watchers::ended`, which sends first, so the value is
        // there even if `wait_for` saw the sender gone; fail closed if it ever is not.
        let _ = self.receiver.wait_for(Option::is_some).await;
        self.receiver.borrow().clone().unwrap_or(Rejection::Unknown)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut by_uid = self.watchers.lock();
        // An ended UID never becomes active again, so an entry under it is this watch's.
        // This receiver is still alive here: a count of one means it is the last watch.
        if let Entry::Occupied(entry) = by_uid.entry(self.uid)
            && entry.get().receiver_count() <= 1
        {
            entry.remove();
        }
    }
}
