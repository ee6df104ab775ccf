//! The per-login UID: a bearer credential, so it is handled like a password.
//!
//! - generated from the OS CSPRNG (uuid v4 through `getrandom`),
//! - parsed once at the edge, strictly (canonical lower-case hyphenated v4, nothing else),
//! - compared in constant time,
//! - never printed: `Debug` is redacted and there is no `Display`; [`Uid::expose`] is the
//!   one way out, used only to hand the UID to its own tab in the login response;
//! - never stored: stores and the registry key sessions by its [`UidDigest`] (SHA-256), so a
//!   copy of the database yields no UID that works.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

#[derive(Clone, Copy)]
pub struct Uid(Uuid);

/// The header value is not a canonical UUID v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a tab UID must be a lower-case hyphenated UUID v4")]
pub struct MalformedUid;

impl Uid {
    /// A fresh UID from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a header value. Only the canonical form is accepted, so one UID has exactly one
    /// spelling (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, lower-case hex).
    pub fn parse(text: &str) -> Result<Self, MalformedUid> {
        let canonical = text.len() == 36
            && text.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !canonical {
            return Err(MalformedUid);
        }
        let uuid = Uuid::parse_str(text).map_err(|_| MalformedUid)?;
        if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
            return Err(MalformedUid);
        }
        Ok(Self(uuid))
    }

    fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// What is kept of this UID anywhere but in its tab: its SHA-256. The UID has 122 random
    /// bits, so a plain hash cannot be reversed by guessing.
    pub fn digest(&self) -> UidDigest {
        UidDigest(Sha256::digest(self.as_bytes()).into())
    }

    /// The UID in its wire form. Call only to give the UID to the tab it belongs to.
    pub fn expose(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl PartialEq for Uid {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for Uid {}

impl Hash for Uid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl std::fmt::Debug for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Uid(<redacted>)")
    }
}

/// The SHA-256 of a UID: the key of a session in the stores and the registry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UidDigest([u8; 32]);

impl UidDigest {
    /// Rebuilds a digest from a store's column (not an input boundary).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, as stores name a session in keys and notices.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads [`to_hex`](Self::to_hex)'s form (either case) back; `None` if it is not that.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }
}

impl std::fmt::Debug for UidDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UidDigest({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_through_hex_and_garbage_is_refused() {
        let uid = Uid::generate().digest();
        assert_eq!(uid.to_hex().len(), 64);
        assert_eq!(UidDigest::from_hex(&uid.to_hex()), Some(uid));
        assert_eq!(UidDigest::from_hex(&uid.to_hex().to_uppercase()), Some(uid));
        assert_eq!(UidDigest::from_hex("abc"), None);
        assert_eq!(UidDigest::from_hex(&"zz".repeat(32)), None);
        assert_eq!(UidDigest::from_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn generated_uids_are_canonical_v4_and_distinct() {
        let a = Uid::generate();
        let b = Uid::generate();
        assert_ne!(a, b);
        assert_eq!(Uid::parse(&a.expose()), Ok(a));
        assert_eq!(a.0.get_version_num(), 4);
    }

    #[test]
    fn only_the_canonical_form_parses() {
        let good = "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10";
        assert!(Uid::parse(good).is_ok());
        for bad in [
            "",
            "not-a-uid",
            "6F1C1F44-3B1E-4B8E-9A53-2F6F1D1B9E10", // upper case
            "6f1c1f443b1e4b8e9a532f6f1d1b9e10",     // simple form
            "{6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10}",
            "urn:uuid:6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10",
            " 6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10",
            "6f1c1f44-3b1e-1b8e-9a53-2f6f1d1b9e10", // version 1
            "6f1c1f44-3b1e-4b8e-1a53-2f6f1d1b9e10", // wrong variant
            "6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e1g",
            "00000000-0000-0000-0000-000000000000",
        ] {
            assert_eq!(Uid::parse(bad), Err(MalformedUid), "{bad:?}");
        }
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_uid_bytes_and_differs_per_uid() {
        let uid = Uid::parse("6f1c1f44-3b1e-4b8e-9a53-2f6f1d1b9e10").unwrap();
        let expected: [u8; 32] = Sha256::digest(uid.as_bytes()).into();
        assert_eq!(uid.digest().as_bytes(), &expected);
        assert_ne!(uid.digest(), Uid::generate().digest());
        assert!(!expected.windows(16).any(|w| w == uid.as_bytes()));
    }

    #[test]
    fn debug_never_shows_the_value() {
        let uid = Uid::generate();
        let shown = format!("{uid:?}");
        assert!(!shown.contains(&uid.expose()[..8]), "{shown}");
        assert_eq!(shown, "Uid(<redacted>)");
    }
}
