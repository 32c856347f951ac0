//! Password verification on a small, fixed pool of threads that reuse their argon2 memory.
//!
//! argon2id with the default parameters needs 19 MiB per verification. Run on tokio's blocking
//! pool, every one of its (up to 512) threads ends up holding such a block in its allocator arena
//! after a burst of logins: the measured server grew to 3 GiB after about 1,100 logins. Here a
//! fixed number of workers each keep one block and reuse it, so memory for hashing is bounded by
//! `workers × 19 MiB` whatever the login rate, and hashing never competes with store reads for
//! blocking threads. The queue in front of the workers is bounded too (back-pressure on logins).
//!
//! A job owns the password as the [`Secret`] the client's bytes were wrapped in; the worker
//! drops it (zeroising it) as soon as the hash is computed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use postfach_secret::Secret;
use tokio::sync::{mpsc, oneshot};

use crate::crypto;

/// Verifications waiting for a worker before logins wait to enqueue.
const QUEUE: usize = 256;
/// Largest argon2 memory a stored hash may ask for (a hash with absurd parameters is refused
/// rather than allocated).
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// One verification request.
struct Job {
    hash: String,
    password: Secret,
    reply: oneshot::Sender<bool>,
}

/// The worker pool. Dropping it ends the workers once the queue is drained.
pub(crate) struct Hasher {
    tx: mpsc::Sender<Job>,
    /// Verifications handed to the workers so far (see [`Hasher::jobs`]).
    jobs: AtomicU64,
}

impl Hasher {
    /// Starts `workers` threads (at least one).
    pub(crate) fn new(workers: usize) -> Hasher {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new().name(format!("postfach-hash-{n}")).spawn(move || {
                let mut blocks: Vec<Block> = Vec::new();
                loop {
                    // One worker waits on the queue at a time; the others wait for the lock.
                    let job = match rx.lock() {
                        Ok(mut rx) => rx.blocking_recv(),
                        Err(_) => None,
                    };
                    let Some(job) = job else { return };
                    let Job { hash, password, reply } = job;
                    let ok = verify_with_memory(&hash, &password, &mut blocks);
                    drop(password);
                    let _ = reply.send(ok);
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hasher { tx, jobs: AtomicU64::new(0) }
    }

    /// How many verifications were handed to the workers since the pool started.
    pub(crate) fn jobs(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// True when `password` matches the PHC string `hash`.
    pub(crate) async fn verify(&self, hash: String, password: Secret) -> Result<bool, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Job { hash, password, reply })
            .await
            .map_err(|_| "hashing workers are gone".to_owned())?;
        answer.await.map_err(|_| "a hashing worker failed".to_owned())
    }
}

/// argon2 verification into caller-owned memory, grown once and reused.
pub(crate) fn verify_with_memory(hash: &str, password: &Secret, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else { return false };
    let Ok(algorithm) = Algorithm::new(parsed.algorithm.as_str()) else { return false };
    let version = match parsed.version {
        Some(v) => match Version::try_from(v) {
            Ok(v) => v,
            Err(_) => return false,
        },
        None => Version::default(),
    };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let need = params.block_count();
    if blocks.len() < need {
        blocks.resize(need, Block::default());
    }
    let mut out = vec![0u8; expected.as_bytes().len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(
            password.expose_secret(),
            salt.as_ref(),
            &mut out,
            &mut blocks[..need],
        )
        .is_err()
    {
        return false;
    }
    crypto::ct_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password;

    #[test]
    fn matches_the_library_verifier() {
        let secret = |s: &[u8]| Secret::from(s.to_vec());
        let h = password::hash(&secret(b"correct horse")).expect("hash");
        let mut blocks = Vec::new();
        assert!(verify_with_memory(&h, &secret(b"correct horse"), &mut blocks));
        assert!(!verify_with_memory(&h, &secret(b"wrong horse"), &mut blocks));
        assert!(!verify_with_memory("not a hash", &secret(b"correct horse"), &mut blocks));
        // The memory is kept for the next verification.
        let kept = blocks.len();
        assert!(kept > 0);
        assert!(verify_with_memory(&h, &secret(b"correct horse"), &mut blocks));
        assert_eq!(blocks.len(), kept);
    }

    #[test]
    fn hashes_asking_for_too_much_memory_are_refused() {
        let pw = Secret::from(b"correct horse".to_vec());
        let h = password::hash(&pw).expect("hash");
        let greedy = h.replace("m=19456", &format!("m={}", MAX_MEMORY_KIB + 1));
        assert_ne!(greedy, h);
        let mut blocks = Vec::new();
        assert!(!verify_with_memory(&greedy, &pw, &mut blocks));
        assert!(blocks.is_empty(), "nothing was allocated for it");
    }

    #[tokio::test]
    async fn pool_answers_concurrent_requests() {
        let hasher = Arc::new(Hasher::new(2));
        let h = password::hash(&Secret::from(b"pw".to_vec())).expect("hash");
        let mut tasks = Vec::new();
        for i in 0..6 {
            let hasher = Arc::clone(&hasher);
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let pw: &[u8] = if i % 2 == 0 { b"pw" } else { b"nope" };
                (i, hasher.verify(h, Secret::from(pw.to_vec())).await)
            }));
        }
        for t in tasks {
            let (i, r) = t.await.expect("task");
            assert_eq!(r, Ok(i % 2 == 0));
        }
    }
}
