//! Devices: the browsers of an account's latest password logins may "Use here" without the
//! password (as many browsers as the account's policy allows tabs: one under latest-wins).
//!
//! A device token is a second credential, weaker in purpose than the tab UID: it authorises
//! only taking the account over in the same browser. So it is handled like the UID:
//! 256 bits from the OS CSPRNG, never logged, and stored only as its SHA-256 (a stolen
//! database yields no usable token). It travels in an HttpOnly cookie, which the HTTP layer
//! sets; this module knows nothing of HTTP.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::store::{
    AccountId, DeviceDetails, DeviceHash, DeviceRecord, DeviceStore, LoginOrigin, NewDevice,
    StoreError,
};
use crate::time::UnixMillis;
use crate::uid::UidDigest;

/// How long a device may "Use here" after its login, by default.
pub const DEFAULT_DEVICE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A device token as the browser holds it. `Debug` is redacted; [`DeviceToken::expose`]
/// is the one way out, for the cookie.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken([u8; 32]);

impl DeviceToken {
    fn generate() -> Self {
        let mut bytes = [0; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses a cookie value: exactly 64 lower-case hex digits. Anything else is no token.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0; 32];
        let (pairs, _) = text.as_bytes().as_chunks::<2>();
        for (byte, [high, low]) in bytes.iter_mut().zip(pairs) {
            *byte = hex_digit(*high)? << 4 | hex_digit(*low)?;
        }
        Some(Self(bytes))
    }

    /// The cookie value. Call only to hand the token to its own browser.
    pub fn expose(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What the store keeps of it, which also names it to its account.
    pub fn hash(&self) -> DeviceHash {
        DeviceHash(Sha256::digest(self.0).into())
    }
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceToken(<redacted>)")
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Issues, finds and forgets devices. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Devices {
    store: Arc<dyn DeviceStore>,
    lifetime: Duration,
}

impl Devices {
    pub fn new(store: Arc<dyn DeviceStore>, lifetime: Duration) -> Self {
        Self { store, lifetime }
    }

    /// How long a new device stays valid.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A fresh device for `account`, in the browser `origin` describes. It replaces
    /// `replacing` (the device this browser held: a browser holds one), and the account
    /// keeps only its `keep` devices signed in most recently (1 ends every other browser's
    /// "Use here").
    pub async fn issue(
        &self,
        account: AccountId,
        origin: &LoginOrigin,
        replacing: Option<&DeviceToken>,
        keep: usize,
    ) -> Result<DeviceToken, StoreError> {
        let token = DeviceToken::generate();
        let now = UnixMillis::now();
        let expires_at = UnixMillis::from_millis(
            now.as_millis()
                .saturating_add(i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX)),
        );
        let device = NewDevice {
            hash: token.hash(),
            account,
            created_at: now,
            expires_at,
            origin: origin.clone(),
        };
        self.store
            .add_device(&device, replacing.map(DeviceToken::hash), keep.max(1))
            .await?;
        Ok(token)
    }

    /// Records that the browser holding `token` signed `tab` in, now: signing the browser
    /// out later signs that tab out too.
    pub async fn started(&self, token: &DeviceToken, tab: UidDigest) -> Result<(), StoreError> {
        self.store
            .link_tab(token.hash(), tab, UnixMillis::now())
            .await
    }

    /// The account's browsers that may still "Use here", the latest sign-in first.
    pub async fn of(&self, account: AccountId) -> Result<Vec<DeviceDetails>, StoreError> {
        self.store.devices_of(account, UnixMillis::now()).await
    }

    /// Signs one of the account's browsers out: forgets its device and returns the tabs it
    /// started (for the caller to end); `None` if the account has no such device.
    pub async fn sign_out(
        &self,
        account: AccountId,
        device: DeviceHash,
    ) -> Result<Option<Vec<UidDigest>>, StoreError> {
        self.store.remove_device_of(account, device).await
    }

    /// The account `token` may "Use here" for, if it is still valid.
    pub async fn find(&self, token: &DeviceToken) -> Result<Option<DeviceRecord>, StoreError> {
        self.store
            .find_device(token.hash(), UnixMillis::now())
            .await
    }

    /// Forgets `token` (logout in its browser).
    pub async fn forget(&self, token: &DeviceToken) -> Result<bool, StoreError> {
        self.store.remove_device(token.hash()).await
    }

    /// Forgets every device of the account (no browser may "Use here" for it); returns how
    /// many there were.
    pub async fn forget_all(&self, account: AccountId) -> Result<usize, StoreError> {
        let mut forgotten = 0;
        for device in self.of(account).await? {
            forgotten += usize::from(self.sign_out(account, device.hash).await?.is_some());
        }
        Ok(forgotten)
    }

    /// Forgets every expired device; returns how many.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        self.store.prune_devices(UnixMillis::now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccountStore, MemoryStore};

    #[test]
    fn tokens_are_random_hex_and_parse_back_only_in_that_form() {
        let token = DeviceToken::generate();
        let text = token.expose();
        assert_eq!(text.len(), 64);
        assert_eq!(DeviceToken::parse(&text), Some(token.clone()));
        assert_ne!(DeviceToken::generate(), token);
        for bad in [
            String::new(),
            text[..63].to_owned(),
            text.to_uppercase(),
            format!("{}g", &text[..63]),
            format!("{text}0"),
        ] {
            assert_eq!(DeviceToken::parse(&bad), None, "{bad:?}");
        }
        assert!(!format!("{token:?}").contains(&text[..8]));
    }

    /// A memory store with one account, and devices on it that live `lifetime`.
    async fn devices_for_ann(lifetime: Duration) -> (Devices, AccountId) {
        let store = Arc::new(MemoryStore::new());
        let ann = store
            .create("ann", "h", UnixMillis::from_millis(1))
            .await
            .unwrap();
        (Devices::new(store, lifetime), ann)
    }

    fn browser(n: u8) -> LoginOrigin {
        LoginOrigin {
            user_agent: Some(format!("browser {n}").into()),
            ip: std::net::IpAddr::from([10, 0, 0, n]),
        }
    }

    #[tokio::test]
    async fn with_one_device_kept_a_new_one_ends_the_accounts_others_and_forget_ends_it() {
        let (devices, ann) = devices_for_ann(DEFAULT_DEVICE_LIFETIME).await;
        let first = devices.issue(ann, &browser(1), None, 1).await.unwrap();
        assert_eq!(devices.find(&first).await.unwrap().unwrap().username, "ann");
        let second = devices.issue(ann, &browser(2), None, 1).await.unwrap();
        assert_eq!(devices.find(&first).await.unwrap(), None);
        assert!(devices.forget(&second).await.unwrap());
        assert_eq!(devices.find(&second).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_account_keeps_its_latest_browsers_and_a_browser_holds_one_device() {
        let (devices, ann) = devices_for_ann(DEFAULT_DEVICE_LIFETIME).await;
        // Sign-ins are ordered by the millisecond: these are a few apart.
        let tick = || tokio::time::sleep(Duration::from_millis(3));
        let one = devices.issue(ann, &browser(1), None, 2).await.unwrap();
        tick().await;
        let two = devices.issue(ann, &browser(2), None, 2).await.unwrap();
        tick().await;
        // Browser one signs in again: its new device replaces its old one, not browser two's.
        let one_again = devices
            .issue(ann, &browser(1), Some(&one), 2)
            .await
            .unwrap();
        assert_eq!(devices.find(&one).await.unwrap(), None);
        assert!(devices.find(&two).await.unwrap().is_some());
        let listed: Vec<_> = devices.of(ann).await.unwrap();
        assert_eq!(
            listed.iter().map(|d| d.hash).collect::<Vec<_>>(),
            vec![one_again.hash(), two.hash()]
        );
        assert_eq!(listed[1].user_agent.as_deref(), Some("browser 2"));
        // A third browser: the one signed in longest ago (two) goes.
        tick().await;
        let three = devices.issue(ann, &browser(3), None, 2).await.unwrap();
        assert_eq!(devices.find(&two).await.unwrap(), None);
        assert!(devices.find(&one_again).await.unwrap().is_some());
        assert!(devices.find(&three).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn signing_a_browser_out_returns_the_tabs_it_started_its_new_device_included() {
        let (devices, ann) = devices_for_ann(DEFAULT_DEVICE_LIFETIME).await;
        let tab = |n: u8| UidDigest::from_bytes([n; 32]);
        let first = devices.issue(ann, &browser(1), None, 2).await.unwrap();
        devices.started(&first, tab(1)).await.unwrap();
        let second = devices
            .issue(ann, &browser(1), Some(&first), 2)
            .await
            .unwrap();
        devices.started(&second, tab(2)).await.unwrap();
        let other = AccountId(ann.0 + 1);
        assert_eq!(devices.sign_out(other, second.hash()).await.unwrap(), None);
        let mut tabs = devices.sign_out(ann, second.hash()).await.unwrap().unwrap();
        tabs.sort();
        assert_eq!(tabs, vec![tab(1), tab(2)]);
        assert_eq!(devices.find(&second).await.unwrap(), None);
        assert_eq!(devices.sign_out(ann, second.hash()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_device_is_not_found_once_its_lifetime_is_over() {
        let (devices, ann) = devices_for_ann(Duration::ZERO).await;
        let token = devices.issue(ann, &browser(1), None, 1).await.unwrap();
        assert_eq!(devices.find(&token).await.unwrap(), None);
        assert_eq!(devices.of(ann).await.unwrap(), vec![]);
        assert_eq!(devices.prune().await.unwrap(), 1);
    }
}
