//! A single server's ranker state from before the shards is moved, not lost: the sorted
//! sets (renamed) with their landmarks, and the view counters not yet reported.

mod common;

use std::collections::HashMap;

use events::trending::{Scope, Window, trending_key};
use ranker::store::Store;
use testkit::TestEnv;

#[tokio::test]
async fn the_unsharded_layout_is_moved_to_the_window_shards() {
    let env = TestEnv::new("ranker");
    let redis = common::redis(&env);
    let p = &env.redis_prefix;
    let mut conn = redis.clone();
    // The old layout: `{p}trending:{window}:{scope}`, one `{p}trending:t0`, `{p}counters:*`.
    let old_day = format!("{p}trending:day:global");
    let old_week = format!("{p}trending:week:category:music");
    let () = redis::pipe()
        .zadd(&old_day, "video-a", 3.5)
        .zadd(&old_day, "video-b", 1.25)
        .zadd(&old_week, "video-a", 2.0)
        .hset(format!("{p}trending:t0"), &old_day, "1700000000.5")
        .hset(format!("{p}trending:t0"), &old_week, "1690000000")
        .hset(format!("{p}counters:pending"), "v:video-a", 7)
        .hset(format!("{p}counters:flushing"), "v:video-b", 2)
        .set(format!("{p}counters:flushing-id"), "report-1")
        .ignore()
        .query_async(&mut conn)
        .await
        .unwrap();
    // A pending counter the new layout already holds is added to, not replaced.
    let store = Store::new(redis.clone(), p);
    assert_eq!(store.shards.len(), 1, "a single server: one shard");
    let counters = format!("{}counters:", store.shards[0].marks_prefix());
    let () = redis::cmd("HSET")
        .arg(format!("{counters}pending"))
        .arg("v:video-a")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();

    assert_eq!(store.upgrade_unsharded().await.unwrap(), 2);

    let day = trending_key(p, Window::Day, &Scope::Global);
    let week = trending_key(p, Window::Week, &Scope::Category("music".into()));
    assert_eq!(
        common::scores(&redis, &day).await,
        HashMap::from([("video-a".into(), 3.5), ("video-b".into(), 1.25)])
    );
    assert_eq!(
        common::scores(&redis, &week).await,
        HashMap::from([("video-a".into(), 2.0)])
    );
    let landmark = |key: String| {
        let (mut conn, t0) = (redis.clone(), store.shards[0].t0_key());
        async move {
            redis::cmd("HGET")
                .arg(t0)
                .arg(key)
                .query_async::<Option<String>>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(landmark(day.clone()).await.as_deref(), Some("1700000000.5"));
    assert_eq!(landmark(week).await.as_deref(), Some("1690000000"));
    let pending: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(format!("{counters}pending"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending, HashMap::from([("v:video-a".into(), 8)]));
    // The report taken before the upgrade keeps its id, so media applies it once.
    assert_eq!(
        store.take_counters("fresh").await.unwrap(),
        Some(("report-1".into(), vec![("v:video-b".into(), 2)]))
    );
    let old: Vec<String> = redis.keys(&format!("{p}trending:*")).await.unwrap();
    let old_counters: Vec<String> = redis.keys(&format!("{p}counters:*")).await.unwrap();
    assert!(
        old.is_empty() && old_counters.is_empty(),
        "{old:?} {old_counters:?}"
    );

    // Once moved, nothing is left to move.
    assert_eq!(store.upgrade_unsharded().await.unwrap(), 0);
    assert_eq!(common::scores(&redis, &day).await.len(), 2);
}
