//! Password hashing with argon2id, off the async runtime and bounded.
//!
//! Each hash takes 19 MiB and tens of milliseconds of CPU. Running it on the async workers
//! would stall every other request, and running unboundedly many at once would let a login
//! flood exhaust memory; so hashing happens on the blocking pool behind a semaphore.

use std::sync::Arc;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

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

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        // The semaphore is never closed, so acquire only fails if it were.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Task)?;
        tokio::task::spawn_blocking(work)
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

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let passwords = Passwords::new(1).unwrap();
        let dummy = "solotab dummy password, never valid".to_owned();
        assert!(!passwords.verify(dummy, None).await.unwrap());
    }
}
