//! Password hashing with argon2id, off the async runtime and bounded.
//!
//! Each hash takes 19 MiB and tens of milliseconds of CPU. Running it on the async workers
//! would stall every other request, and running unboundedly many at once would let a login
//! flood exhaust memory; so hashing happens on the blocking pool behind a semaphore.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

mod common;

pub use common::is_common;

/// OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task was cancelled")]
    Task,
}

#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Hashes running now, and computed since start (for metrics, logs and tests).
    running: Arc<AtomicUsize>,
    computed: Arc<AtomicU64>,
    /// Verified against when the username is unknown, so that costs what a wrong password
    /// costs and response times do not reveal which usernames exist.
    dummy_hash: Arc<str>,
}

impl Passwords {
    /// At most `concurrency` hashes run at once (each holds 19 MiB while it runs).
    pub fn new(concurrency: usize) -> Result<Self, PasswordError> {
        let dummy_hash = hash_now("solotab dummy password, never valid")?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            running: Arc::default(),
            computed: Arc::default(),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A PHC-format argon2id hash with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.blocking(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `stored`; with no stored hash, verifies against the dummy
    /// hash (same cost) and answers false.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .blocking(move || {
                let parsed =
                    PasswordHash::new(&hash).map_err(|e| PasswordError::Hash(e.to_string()))?;
                Ok(argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await??;
        Ok(known && matches)
    }

    /// How many hashes are being computed right now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// How many hashes (and verifications) have been computed since start.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::SeqCst)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // The permit is owned by the blocking closure, not by this future: a caller that gives
        // up (a client hanging up mid-login) drops the future, but the hash keeps running on
        // the blocking pool and must keep its place until it is done. The semaphore is never
        // closed, so acquiring only fails if it were.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Task)?;
        let (running, computed) = (self.running.clone(), self.computed.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            running.fetch_add(1, Ordering::SeqCst);
            let done = work();
            running.fetch_sub(1, Ordering::SeqCst);
            computed.fetch_add(1, Ordering::SeqCst);
            done
        })
        .await
        .map_err(|_| PasswordError::Task)
    }
}

fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_owasp_parameters() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("wrong horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert_ne!(
            hash,
            passwords.hash("correct horse".into()).await.unwrap(),
            "salted"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_that_give_up_never_push_hashing_past_the_limit() {
        let passwords = Passwords::new(1).unwrap();
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        // Attackers' logins, each abandoned after a few milliseconds (a client hanging up).
        for _ in 0..16 {
            let (passwords, hash) = (passwords.clone(), hash.clone());
            tokio::spawn(async move {
                let verify = passwords.verify("wrong".into(), Some(hash));
                let _ = tokio::time::timeout(std::time::Duration::from_millis(2), verify).await;
            });
        }
        let mut peak = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1_500);
        while std::time::Instant::now() < deadline {
            peak = peak.max(passwords.running());
            tokio::time::sleep(std::time::Duration::from_micros(500)).await;
        }
        assert!(peak >= 1, "the sampling saw no hash at all");
        assert_eq!(
            peak, 1,
            "more hashes ran at once than --hash-concurrency allows"
        );
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let passwords = Passwords::new(1).unwrap();
        let dummy = "solotab dummy password, never valid".to_owned();
        assert!(!passwords.verify(dummy, None).await.unwrap());
    }
}
