//! Password hashing with argon2id (OWASP parameters: m = 19 MiB, t = 2, p = 1, or stronger
//! by configuration).
//!
//! Hashing is deliberately slow CPU work, so it never runs on the async workers: it goes to
//! the blocking pool, behind a semaphore that caps how many hashes run at once. A login
//! storm then queues on the semaphore instead of starving every other request (token
//! verification in particular) of CPU.
//!
//! A login for an unknown user verifies against a dummy hash made at start-up with the same
//! parameters, so "no such user" costs the same time as "wrong password".

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use super::domain::Password;

#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    /// `ARGON2_MEMORY_KIB` (at least 19,456).
    pub memory_kib: u32,
    /// `ARGON2_ITERATIONS` (at least 2).
    pub iterations: u32,
    /// `ARGON2_CONCURRENCY`: hashes running at once (default: half the CPUs, at least 1).
    pub concurrency: usize,
}

#[derive(Clone)]
pub struct Hasher {
    argon: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new(params: HashParams) -> Self {
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(params.memory_kib, params.iterations, 1, None)
                .expect("valid argon2 parameters"),
        );
        let dummy = argon
            .hash_password(
                b"kino-dummy-password-for-unknown-users",
                &SaltString::generate(&mut OsRng),
            )
            .expect("hashing works")
            .to_string();
        Self {
            argon: Arc::new(argon),
            permits: Arc::new(Semaphore::new(params.concurrency.max(1))),
            dummy: dummy.into(),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: Password) -> String {
        let argon = self.argon.clone();
        self.run(move || {
            argon
                .hash_password(
                    password.expose().as_bytes(),
                    &SaltString::generate(&mut OsRng),
                )
                .expect("hashing works")
                .to_string()
        })
        .await
    }

    /// Whether `password` matches `stored`; with `None` (unknown user) it checks against the
    /// dummy hash and returns false, taking the same time.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> bool {
        let argon = self.argon.clone();
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.to_string());
        let matches = self
            .run(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        argon
                            .verify_password(password.expose().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await;
        known && matches
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        tokio::task::spawn_blocking(work)
            .await
            .expect("hashing does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> Hasher {
        Hasher::new(HashParams {
            memory_kib: 19_456,
            iterations: 2,
            concurrency: 2,
        })
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = hasher();
        let hash = hasher.hash(Password::parse("correct horse").unwrap()).await;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify(Password::for_login("correct horse"), Some(hash.clone()))
                .await
        );
        assert!(
            !hasher
                .verify(Password::for_login("wrong horse"), Some(hash))
                .await
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = hasher();
        assert!(
            !hasher
                .verify(
                    Password::for_login("kino-dummy-password-for-unknown-users"),
                    None
                )
                .await
        );
    }
}
