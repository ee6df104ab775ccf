//! A store that keeps everything in process memory: for tests, and as the reference that
//! the durable stores must agree with (see the conformance suite).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    AccountEvent, AccountId, AccountRecord, AccountStore, ActiveSession, CreateAccountError,
    DeviceDetails, DeviceHash, DeviceRecord, DeviceStore, EndReason, EndedSession, LoadedActive,
    LoadedEnded, MAX_EVENTS_PER_ACCOUNT, MAX_TABS_PER_DEVICE, Mode, NewDevice, Policy, Replacing,
    SessionStore, Snapshot, SnapshotEnded, StoreError, Stored, TabDetails, TabEnd, TabsPage,
    oldest_beyond,
};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

#[derive(Debug, Default)]
pub struct MemoryStore {
    // A std Mutex: every critical section is short and never awaits.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    active: HashMap<UidDigest, ActiveSession>,
    /// When each active session was last used, once it has been (see `touch`).
    last_seen: HashMap<UidDigest, UnixMillis>,
    ended: HashMap<UidDigest, EndedSession>,
    accounts: HashMap<String, AccountRecord>,
    /// Each account's events, oldest first.
    events: HashMap<AccountId, VecDeque<AccountEvent>>,
    devices: HashMap<DeviceHash, StoredDevice>,
}

/// A device with the tabs it started, oldest first.
#[derive(Debug)]
struct StoredDevice {
    account: AccountId,
    details: DeviceDetails,
    tabs: VecDeque<UidDigest>,
}

impl Inner {
    /// An active session as `load` and `lookup` return it.
    fn loaded(&self, uid: &UidDigest, session: &ActiveSession) -> LoadedActive {
        LoadedActive {
            account: session.account,
            issued_at: session.issued_at,
            last_seen: self
                .last_seen
                .get(uid)
                .copied()
                .unwrap_or(session.issued_at),
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated: every update is a
        // few infallible map operations, so the data is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, ended_since: UnixMillis) -> Result<Snapshot, StoreError> {
        let inner = self.lock();
        let mut usernames = HashMap::new();
        let mut snapshot = Snapshot::default();
        for (uid, s) in &inner.active {
            usernames.insert(s.account, s.username.clone());
            let loaded = inner.loaded(uid, s);
            snapshot.active.push((*uid, loaded));
        }
        for (uid, e) in inner
            .ended
            .iter()
            .filter(|(_, e)| e.ended_at >= ended_since)
        {
            usernames.insert(e.account, e.username.clone());
            let loaded = SnapshotEnded {
                account: e.account,
                ended_at: e.ended_at,
                kind: e.reason.kind(),
            };
            snapshot.ended.push((*uid, loaded));
        }
        snapshot.usernames = usernames.into_iter().collect();
        Ok(snapshot)
    }

    async fn claim_replacing(
        &self,
        uid: UidDigest,
        session: &ActiveSession,
        tabs: usize,
        replacing: &Replacing,
    ) -> Result<Option<Vec<(UidDigest, EndedSession)>>, StoreError> {
        let mut inner = self.lock();
        let previous: Vec<(UnixMillis, UidDigest)> = inner
            .active
            .iter()
            .filter(|(_, s)| s.account == session.account)
            .map(|(u, s)| (s.issued_at, *u))
            .collect();
        let uids: Vec<UidDigest> = previous.iter().map(|(_, u)| *u).collect();
        if !replacing.allows(&uids) {
            return Ok(None);
        }
        let mut superseded = Vec::new();
        for old in oldest_beyond(previous, tabs) {
            let Some(old_session) = inner.active.remove(&old) else {
                continue;
            };
            inner.last_seen.remove(&old);
            debug_assert_eq!(old_session.account, session.account);
            let ended = session.supersedes();
            inner.ended.insert(old, ended.clone());
            superseded.push((old, ended));
        }
        inner.active.insert(uid, session.clone());
        Ok(Some(superseded))
    }

    async fn end_tabs(
        &self,
        account: AccountId,
        only: Option<&[UidDigest]>,
        at: UnixMillis,
        why: TabEnd,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let mut inner = self.lock();
        let ending: Vec<UidDigest> = inner
            .active
            .iter()
            .filter(|(uid, s)| s.account == account && only.is_none_or(|only| only.contains(uid)))
            .map(|(uid, _)| *uid)
            .collect();
        for uid in &ending {
            if let Some(session) = inner.active.remove(uid) {
                inner.last_seen.remove(uid);
                let ended = EndedSession {
                    account,
                    username: session.username,
                    ended_at: at,
                    reason: why.reason(),
                };
                inner.ended.insert(*uid, ended);
            }
        }
        Ok(ending)
    }

    async fn tabs_of(&self, account: AccountId) -> Result<Vec<TabDetails>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .active
            .iter()
            .filter(|(_, s)| s.account == account)
            .map(|(uid, s)| TabDetails {
                uid: *uid,
                issued_at: s.issued_at,
                last_seen: inner.loaded(uid, s).last_seen,
                origin: s.origin.clone(),
            })
            .collect())
    }

    async fn tabs_page(
        &self,
        search: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<TabsPage, StoreError> {
        let inner = self.lock();
        let search = search.map(app::rules::username_key);
        let mut tabs: Vec<(AccountId, Arc<str>, TabDetails)> = inner
            .active
            .iter()
            .filter(|(_, s)| {
                let key = app::rules::username_key(&s.username);
                search
                    .as_ref()
                    .is_none_or(|search| key.contains(search.as_str()))
            })
            .map(|(uid, s)| {
                let details = TabDetails {
                    uid: *uid,
                    issued_at: s.issued_at,
                    last_seen: inner.loaded(uid, s).last_seen,
                    origin: s.origin.clone(),
                };
                (s.account, s.username.clone(), details)
            })
            .collect();
        tabs.sort_by(|a, b| {
            let key = |t: &(AccountId, Arc<str>, TabDetails)| {
                (app::rules::username_key(&t.1), t.2.issued_at, t.2.uid)
            };
            key(a).cmp(&key(b))
        });
        let total = tabs.len() as u64;
        let tabs = tabs.into_iter().skip(offset).take(limit).collect();
        Ok(TabsPage { tabs, total })
    }

    async fn touch(&self, uid: UidDigest, at: UnixMillis) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.active.contains_key(&uid) {
            let seen = inner.last_seen.entry(uid).or_insert(at);
            *seen = (*seen).max(at);
        }
        Ok(())
    }

    async fn release(&self, uid: UidDigest, at: UnixMillis) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(session) = inner.active.remove(&uid) else {
            return Ok(false);
        };
        inner.last_seen.remove(&uid);
        inner.ended.insert(
            uid,
            EndedSession {
                account: session.account,
                username: session.username,
                ended_at: at,
                reason: EndReason::LoggedOut,
            },
        );
        Ok(true)
    }

    async fn prune(&self, ended_before: UnixMillis) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = inner.ended.len();
        inner.ended.retain(|_, e| e.ended_at >= ended_before);
        Ok((before - inner.ended.len()) as u64)
    }

    async fn lookup(&self, uid: UidDigest) -> Result<Option<Stored>, StoreError> {
        let inner = self.lock();
        if let Some(s) = inner.active.get(&uid) {
            let active = inner.loaded(&uid, s);
            return Ok(Some(Stored::Active(active, s.username.clone())));
        }
        Ok(inner.ended.get(&uid).map(|e| {
            let ended = LoadedEnded {
                account: e.account,
                ended_at: e.ended_at,
                reason: e.reason.clone(),
            };
            Stored::Ended(ended, e.username.clone())
        }))
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        Ok(self.lock().active.len() as u64)
    }

    async fn active_of(&self, account: AccountId) -> Result<Vec<UidDigest>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .active
            .iter()
            .filter(|(_, s)| s.account == account)
            .map(|(uid, _)| *uid)
            .collect())
    }

    async fn forget_oldest(
        &self,
        account: AccountId,
        keep: usize,
    ) -> Result<Vec<UidDigest>, StoreError> {
        let mut inner = self.lock();
        let mut ended: Vec<(UidDigest, UnixMillis)> = inner
            .ended
            .iter()
            .filter(|(_, e)| e.account == account)
            .map(|(u, e)| (*u, e.ended_at))
            .collect();
        // Newest first; ties broken by UID so that the choice is the same every time.
        ended.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
        });
        let forgotten: Vec<UidDigest> = ended.into_iter().skip(keep).map(|(u, _)| u).collect();
        for uid in &forgotten {
            inner.ended.remove(uid);
        }
        Ok(forgotten)
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create(
        &self,
        username: &str,
        password_hash: &str,
        _at: UnixMillis,
    ) -> Result<AccountId, CreateAccountError> {
        let mut inner = self.lock();
        let key = app::rules::username_key(username);
        if inner.accounts.contains_key(&key) {
            return Err(CreateAccountError::Taken);
        }
        let id = AccountId(inner.accounts.len() as i64 + 1);
        inner.accounts.insert(
            key,
            AccountRecord {
                id,
                username: username.to_owned(),
                password_hash: password_hash.to_owned(),
                policy: None,
                admin: false,
                mode: None,
            },
        );
        Ok(id)
    }

    async fn find(&self, username_key: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.get(username_key).cloned())
    }

    async fn set_policy(
        &self,
        account: AccountId,
        policy: Option<Policy>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let record = inner.accounts.values_mut().find(|a| a.id == account);
        Ok(record.map(|record| record.policy = policy).is_some())
    }

    async fn set_password(
        &self,
        account: AccountId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let record = inner.accounts.values_mut().find(|a| a.id == account);
        Ok(record
            .map(|record| record.password_hash = password_hash.to_owned())
            .is_some())
    }

    async fn set_mode(&self, account: AccountId, mode: Option<Mode>) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let record = inner.accounts.values_mut().find(|a| a.id == account);
        Ok(record.map(|record| record.mode = mode).is_some())
    }

    async fn set_admin(&self, account: AccountId, admin: bool) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let record = inner.accounts.values_mut().find(|a| a.id == account);
        Ok(record.map(|record| record.admin = admin).is_some())
    }

    async fn record_event(
        &self,
        account: AccountId,
        event: &AccountEvent,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let events = inner.events.entry(account).or_default();
        events.push_back(event.clone());
        while events.len() > MAX_EVENTS_PER_ACCOUNT {
            events.pop_front();
        }
        Ok(())
    }

    async fn events(&self, account: AccountId) -> Result<Vec<AccountEvent>, StoreError> {
        let inner = self.lock();
        let events = inner.events.get(&account);
        Ok(events.map_or_else(Vec::new, |e| e.iter().rev().cloned().collect()))
    }
}

#[async_trait]
impl DeviceStore for MemoryStore {
    async fn add_device(
        &self,
        device: &NewDevice,
        replacing: Option<DeviceHash>,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let inherited = replacing
            .and_then(|old| inner.devices.remove(&old))
            .filter(|old| old.account == device.account)
            .map(|old| old.tabs)
            .unwrap_or_default();
        inner.devices.insert(
            device.hash,
            StoredDevice {
                account: device.account,
                details: DeviceDetails {
                    hash: device.hash,
                    created_at: device.created_at,
                    signed_in_at: device.created_at,
                    expires_at: device.expires_at,
                    user_agent: device.origin.user_agent.as_deref().map(str::to_owned),
                    ip: Some(device.origin.ip),
                },
                tabs: inherited,
            },
        );
        let mut others: Vec<_> = inner
            .devices
            .values()
            .filter(|d| d.account == device.account && d.details.hash != device.hash)
            .map(|d| d.details.clone())
            .collect();
        newest_first(&mut others);
        for old in others.iter().skip(keep.max(1) - 1) {
            inner.devices.remove(&old.hash);
        }
        Ok(())
    }

    async fn link_tab(
        &self,
        device: DeviceHash,
        tab: UidDigest,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        if let Some(stored) = self.lock().devices.get_mut(&device) {
            stored.details.signed_in_at = at;
            stored.tabs.push_back(tab);
            if stored.tabs.len() > MAX_TABS_PER_DEVICE {
                stored.tabs.pop_front();
            }
        }
        Ok(())
    }

    async fn find_device(
        &self,
        device: DeviceHash,
        now: UnixMillis,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let inner = self.lock();
        let Some(stored) = inner.devices.get(&device) else {
            return Ok(None);
        };
        let (account, expires_at) = (stored.account, stored.details.expires_at);
        if expires_at <= now {
            return Ok(None);
        }
        Ok(inner
            .accounts
            .values()
            .find(|a| a.id == account)
            .map(|a| DeviceRecord {
                account,
                username: a.username.clone(),
                expires_at,
            }))
    }

    async fn devices_of(
        &self,
        account: AccountId,
        now: UnixMillis,
    ) -> Result<Vec<DeviceDetails>, StoreError> {
        let mut devices: Vec<_> = self
            .lock()
            .devices
            .values()
            .filter(|d| d.account == account && d.details.expires_at > now)
            .map(|d| d.details.clone())
            .collect();
        newest_first(&mut devices);
        Ok(devices)
    }

    async fn remove_device(&self, device: DeviceHash) -> Result<bool, StoreError> {
        Ok(self.lock().devices.remove(&device).is_some())
    }

    async fn remove_device_of(
        &self,
        account: AccountId,
        device: DeviceHash,
    ) -> Result<Option<Vec<UidDigest>>, StoreError> {
        let mut inner = self.lock();
        if inner
            .devices
            .get(&device)
            .is_none_or(|d| d.account != account)
        {
            return Ok(None);
        }
        Ok(inner.devices.remove(&device).map(|d| d.tabs.into()))
    }

    async fn prune_devices(&self, now: UnixMillis) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = inner.devices.len();
        inner.devices.retain(|_, d| d.details.expires_at > now);
        Ok((before - inner.devices.len()) as u64)
    }
}

/// The order of [`DeviceStore::devices_of`], and of which devices a login keeps: the latest
/// sign-in first, then the latest created, then by hash (so no two are tied).
fn newest_first(devices: &mut [DeviceDetails]) {
    devices.sort_by(|a, b| {
        (b.signed_in_at, b.created_at, b.hash).cmp(&(a.signed_in_at, a.created_at, a.hash))
    });
}
