//! Password hashing with argon2id, off the async runtime and bounded.
//!
//! Each hash takes 19 MiB and tens of milliseconds of CPU. Running it on the async workers
//! would stall every other request, and running unboundedly many at once would let a login
//! flood exhaust memory; so hashing happens on threads of its own, behind a semaphore, at a
//! lower CPU priority than the rest of the server: under a login flood the scheduler runs
//! request handling first, and logins take what is left.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

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
    #[error("could not start a password hashing thread: {0}")]
    Spawn(#[from] std::io::Error),
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// The hashing threads' queue; never holds more jobs than there are permits.
    jobs: mpsc::Sender<Job>,
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
        let concurrency = concurrency.max(1);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs: spawn_hashing_threads(concurrency)?,
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
                Ok::<_, PasswordError>(
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok(),
                )
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
        // The permit is owned by the job, not by this future: a caller that gives up (a
        // client hanging up mid-login) drops the future, but the hash keeps running and must
        // keep its place until it is done. A caller that gives up while still waiting for a
        // permit costs nothing. The semaphore is never closed, so acquiring only fails if it
        // were.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Task)?;
        let (running, computed) = (self.running.clone(), self.computed.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            running.fetch_add(1, Ordering::SeqCst);
            let done = work();
            running.fetch_sub(1, Ordering::SeqCst);
            computed.fetch_add(1, Ordering::SeqCst);
            let _ = done_tx.send(done);
        });
        self.jobs.send(job).map_err(|_| PasswordError::Task)?;
        done_rx.await.map_err(|_| PasswordError::Task)
    }
}

/// `count` threads that run hashing jobs, at lower priority; they end when the last
/// [`Passwords`] clone (and so the queue's sender) is dropped.
fn spawn_hashing_threads(count: usize) -> Result<mpsc::Sender<Job>, PasswordError> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for n in 0..count {
        let queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name(format!("solotab-hash-{n}"))
            .spawn(move || {
                lower_this_threads_priority();
                loop {
                    // The lock is released before the job runs (end of statement).
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = next else { return };
                    // A panicking job drops its permit and its answer; the thread stays.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })?;
    }
    Ok(jobs)
}

/// Raises this thread's nice value (Linux keeps one per thread) by 10 steps: the CFS
/// scheduler then gives it about a tenth of the CPU share of a normal thread when both want
/// to run. Best effort: a server that cannot still hashes, only without the preference.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        const HASHING_NICENESS: i32 = 10;
        use rustix::process::{getpriority_process, setpriority_process};
        let me = Some(rustix::thread::gettid());
        let lowered = getpriority_process(me)
            .and_then(|nice| setpriority_process(me, (nice + HASHING_NICENESS).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(error = %e, "could not lower the password hashing threads' priority");
        }
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
        // One login that waits for its answer, so that the sampling below has a hash to see
        // even when a loaded machine lets every abandoned one give up before it starts.
        let patient = tokio::spawn({
            let (passwords, hash) = (passwords.clone(), hash.clone());
            async move { passwords.verify("correct horse".into(), Some(hash)).await }
        });
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
        assert!(patient.await.unwrap().unwrap());
        assert!(peak >= 1, "the sampling saw no hash at all");
        assert_eq!(
            peak, 1,
            "more hashes ran at once than --hash-concurrency allows"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_at_a_lower_priority_than_the_server() {
        use rustix::process::getpriority_process;
        let nice_here = || getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let server = nice_here();
        let passwords = Passwords::new(1).unwrap();
        let hashing = passwords.blocking(nice_here).await.unwrap();
        assert_eq!(hashing, (server + 10).min(19));
        assert!(server == 19 || hashing > server);
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies_even_with_the_dummy_password() {
        let passwords = Passwords::new(1).unwrap();
        let dummy = "solotab dummy password, never valid".to_owned();
        assert!(!passwords.verify(dummy, None).await.unwrap());
    }
}
