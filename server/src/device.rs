//! Devices: the browser of an account's latest password login may "Use here" without the
//! password.
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

use crate::store::{AccountId, DeviceHash, DeviceRecord, DeviceStore, StoreError};
use crate::time::UnixMillis;

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

    fn hash(&self) -> DeviceHash {
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

    /// A fresh device for `account`, which from now on is the account's only one.
    pub async fn issue(&self, account: AccountId) -> Result<DeviceToken, StoreError> {
        let token = DeviceToken::generate();
        let now = UnixMillis::now();
        let expires = UnixMillis::from_millis(
            now.as_millis()
                .saturating_add(i64::try_from(self.lifetime.as_millis()).unwrap_or(i64::MAX)),
        );
        self.store
            .replace_devices(account, token.hash(), now, expires)
            .await?;
        Ok(token)
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

    #[tokio::test]
    async fn a_new_device_ends_the_accounts_others_and_forget_ends_it() {
        let (devices, ann) = devices_for_ann(DEFAULT_DEVICE_LIFETIME).await;
        let first = devices.issue(ann).await.unwrap();
        assert_eq!(devices.find(&first).await.unwrap().unwrap().username, "ann");
        let second = devices.issue(ann).await.unwrap();
        assert_eq!(devices.find(&first).await.unwrap(), None);
        assert!(devices.forget(&second).await.unwrap());
        assert_eq!(devices.find(&second).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_device_is_not_found_once_its_lifetime_is_over() {
        let (devices, ann) = devices_for_ann(Duration::ZERO).await;
        let token = devices.issue(ann).await.unwrap();
        assert_eq!(devices.find(&token).await.unwrap(), None);
        assert_eq!(devices.prune().await.unwrap(), 1);
    }
}
