//! A test's environment takes its Redis keys with it.

#[tokio::test]
async fn a_dropped_env_deletes_its_redis_keys_and_no_others() {
    let env = testkit::TestEnv::new("testkit");
    let other = testkit::TestEnv::new("testkit");
    let mut conn = platform::redis::connect(&env.redis_url).unwrap();
    let (mine, theirs) = (
        format!("{}marks:1", env.redis_prefix),
        format!("{}marks:1", other.redis_prefix),
    );
    for key in [&mine, &theirs] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("1")
            .arg("EX")
            .arg(3600)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    drop(env);
    let exists = |key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(exists(mine).await, 0, "the dropped env's key is gone");
    assert_eq!(exists(theirs.clone()).await, 1, "another env's key stays");
    drop(other);
    assert_eq!(exists(theirs).await, 0);
}
