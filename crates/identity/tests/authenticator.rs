//! Two replicas, one Redis: a revocation made on one is honoured by the other within a
//! second, although the other caches its answers.

use std::time::{Duration, Instant};

use identity::{AuthError, Authenticator, Revocations, Signer, SigningKey, Verifier, VerifyError};
use testkit::TestEnv;

#[tokio::test]
async fn a_revocation_on_one_replica_reaches_the_other_within_a_second() {
    let env = TestEnv::new("identity");
    let key = SigningKey::generate();
    let replica = || {
        let redis = platform::redis::connect(&env.redis_url).unwrap();
        let verifier = Verifier::for_keys([&key], "kino-auth", "kino", Duration::from_secs(5));
        Authenticator::new(
            verifier,
            Revocations::new(redis, &env.redis_prefix),
            Duration::from_secs(5),
        )
    };
    let (a, b) = (replica(), replica());
    let (token, claims) = Signer::new(&key, "kino-auth", "kino", Duration::from_secs(60))
        .issue(uuid::Uuid::now_v7(), "u");

    // Both have verified (and cached) the token.
    assert_eq!(a.authenticate(&token).await.unwrap(), claims);
    assert_eq!(b.authenticate(&token).await.unwrap(), claims);

    let revoked_at = Instant::now();
    a.revoke(claims.jti, claims.exp).await.unwrap();
    assert!(
        matches!(
            a.authenticate(&token).await,
            Err(AuthError::Invalid(VerifyError::Revoked))
        ),
        "at once where revoked"
    );
    loop {
        match b.authenticate(&token).await {
            Err(AuthError::Invalid(VerifyError::Revoked)) => break,
            Ok(_) => assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "the other replica still accepts it after 1 s"
            ),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
