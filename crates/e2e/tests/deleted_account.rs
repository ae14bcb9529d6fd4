//! Deleting an account through the gateway removes what it left: its videos (catalogue,
//! HLS, thumbnail, S3 objects), its likes and subscriptions both ways (counters exact),
//! its comments' author and text (thread kept), and its notifications, received and
//! caused. A redelivered `user.deleted` changes
//! nothing.

mod video_common;

use std::time::Duration;

use e2e::Stack;
use futures::StreamExt;
use mongodb::bson::{Document, doc};
use reqwest::Client;
use serde_json::{Value, json};
use video_common::*;

const VIDEO: &str = "query($id: ID!) { video(id: $id) { id hlsUrl thumbnailUrl likeCount \
    owner { id subscriberCount } } }";
const THREAD: &str = "query($v: ID!) { comments(videoId: $v) { edges { node { id deleted body \
    author { username } replyCount replies { edges { node { id body author { username } } } } } } } }";

async fn media_db(stack: &Stack) -> sqlx::PgPool {
    sqlx::PgPool::connect(&format!("{}_media", stack.env.database_url))
        .await
        .unwrap()
}

/// The comments of a video as stored, oldest first.
async fn stored_comments(stack: &Stack, video: &str) -> Vec<Document> {
    let client = platform::mongo::connect(&stack.env.mongodb_uri, "e2e")
        .await
        .unwrap();
    let cursor = client
        .database(&stack.env.mongodb_database)
        .collection::<Document>("comments")
        .find(doc! { "video_id": video })
        .sort(doc! { "_id": 1 })
        .await
        .unwrap();
    cursor.map(Result::unwrap).collect().await
}

/// (likeCount, its rows) of a video and (subscriberCount, its rows) of a channel.
async fn counters(stack: &Stack, video: &str, channel: &str) -> ((i64, i64), (i64, i64)) {
    let data = stack.graphql_ok(None, VIDEO, json!({ "id": video })).await;
    let db = media_db(stack).await;
    let video_id: uuid::Uuid = video.parse().unwrap();
    let channel_id: uuid::Uuid = channel.parse().unwrap();
    let like_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM likes WHERE video_id = $1")
        .bind(video_id)
        .fetch_one(&db)
        .await
        .unwrap();
    let follow_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM follows WHERE channel_id = $1")
        .bind(channel_id)
        .fetch_one(&db)
        .await
        .unwrap();
    (
        (data["video"]["likeCount"].as_i64().unwrap(), like_rows),
        (
            data["video"]["owner"]["subscriberCount"].as_i64().unwrap(),
            follow_rows,
        ),
    )
}

async fn get(stack: &Stack, path: &str) -> u16 {
    Client::new()
        .get(stack.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The `user.deleted` envelopes this stack's auth publishes, as sent (to deliver one
/// again).
struct Deletions(events::tap::Tap);

impl Deletions {
    async fn listen(stack: &Stack) -> Self {
        let key = stack.namespace().routing_key("user.deleted");
        let bindings = [(events::topology::USER_EVENTS, key)];
        let tap = events::tap::Tap::bind(&stack.env.amqp_url, "e2e-user-deleted", bindings)
            .await
            .unwrap();
        Self(tap)
    }

    /// The body of the `user.deleted` of `user` (the stack's other deletions pass by).
    async fn of(&mut self, user: &str) -> Vec<u8> {
        let find = async {
            while let Some(body) = self.0.next().await {
                let event: Value = serde_json::from_slice(&body).unwrap();
                if event["data"]["user_id"] == user {
                    return body;
                }
            }
            panic!("the listener stopped");
        };
        tokio::time::timeout(Duration::from_secs(10), find)
            .await
            .expect("user.deleted published within 10 s")
    }
}

#[tokio::test]
async fn a_deleted_account_is_gone_and_a_redelivered_deletion_changes_nothing() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (a, a_token) = user(&stack, "erased").await;
    let (b, b_token) = user(&stack, "stays").await;
    let (_, c_token) = user(&stack, "witness").await;

    // A and B each upload a video; both become ready.
    let file = scratch(&stack).join("clip.mp4");
    generate_video(&file, "256x144", 2, "200k", false);
    let upload = |token: String, title: &'static str| {
        let (stack, file) = (&stack, &file);
        async move {
            let title = format!("title={title}");
            let report = tus(stack, &token, file, 1 << 20, &["--meta", &title]).await;
            video_id(report["url"].as_str().unwrap())
        }
    };
    let a_video = upload(a_token.clone(), "Farewell").await;
    let b_video = upload(b_token.clone(), "Remains").await;
    for (id, token) in [(&a_video, &a_token), (&b_video, &b_token)] {
        wait_for_status(&stack, id, token, "ready", Duration::from_secs(60)).await;
        stack
            .wait_video_ready(Some(token.as_str()), id.parse().unwrap())
            .await;
    }

    // A likes B's video, subscribes to B and comments on it, B replies; B likes A's video
    // and follows A. C likes and follows B too, so B's counters must drop by exactly one.
    let like = "mutation($id: ID!) { likeVideo(videoId: $id) { likeCount } }";
    let follow = "mutation($c: ID!) { subscribe(channelId: $c) { subscriberCount } }";
    let comment = "mutation($v: ID!, $b: String!, $p: ID) { addComment(videoId: $v, body: $b, parentId: $p) { id } }";
    for token in [&a_token, &c_token] {
        stack
            .graphql_ok(Some(token), like, json!({ "id": b_video }))
            .await;
        stack
            .graphql_ok(Some(token), follow, json!({ "c": b }))
            .await;
    }
    stack
        .graphql_ok(Some(&b_token), like, json!({ "id": a_video }))
        .await;
    stack
        .graphql_ok(Some(&b_token), follow, json!({ "c": a }))
        .await;
    let data = stack
        .graphql_ok(
            Some(&a_token),
            comment,
            json!({ "v": b_video, "b": "first!" }),
        )
        .await;
    let a_comment = data["addComment"]["id"].as_str().unwrap().to_owned();
    let data = stack
        .graphql_ok(
            Some(&b_token),
            comment,
            json!({ "v": b_video, "b": "thanks", "p": a_comment }),
        )
        .await;
    let b_reply = data["addComment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(counters(&stack, &b_video, &b).await, ((2, 2), (2, 2)));

    let data = stack
        .graphql_ok(Some(&a_token), VIDEO, json!({ "id": a_video }))
        .await;
    let hls = data["video"]["hlsUrl"].as_str().unwrap().to_owned();
    let thumbnail = format!("/video/{a_video}/thumbnail.jpg");
    assert_eq!(get(&stack, &hls).await, 200);
    assert_eq!(get(&stack, &thumbnail).await, 200);
    assert!(!keys(&stack, &format!("hls/{a_video}/")).await.is_empty());

    // Notifications to and from A: B's of A's subscription and comment, A's of B's reply
    // and of A's own upload.
    let notifications_of_a =
        "SELECT count(*) FROM notifications WHERE recipient_id = $1 OR actor_id = $1";
    let a_id: uuid::Uuid = a.parse().unwrap();
    let involved: i64 = sqlx::query_scalar(notifications_of_a)
        .bind(a_id)
        .fetch_one(&media_db(&stack).await)
        .await
        .unwrap();
    assert!(involved >= 4, "{involved} notifications involve A");

    // A deletes their account.
    let mut deletions = Deletions::listen(&stack).await;
    let response = Client::new()
        .delete(stack.url("/user/profile"))
        .bearer_auth(&a_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let deletion = deletions.of(&a).await;

    // Within seconds: A's video is gone everywhere, with its files.
    let in_feed = "{ feed(first: 100) { edges { node { id } } } }";
    let searched = "query($q: String) { search(query: $q, first: 100) { edges { node { id } } } }";
    let listed = |data: &Value, list: &str| {
        data[list]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"]["id"] == a_video.as_str())
    };
    testkit::wait_for("A's video gone", Duration::from_secs(10), || async {
        let video = stack
            .graphql_ok(Some(&b_token), VIDEO, json!({ "id": a_video }))
            .await;
        let feed = stack.graphql_ok(None, in_feed, json!({})).await;
        let search = stack
            .graphql_ok(None, searched, json!({ "q": "Farewell" }))
            .await;
        (video["video"].is_null() && !listed(&feed, "feed") && !listed(&search, "search"))
            .then_some(())
    })
    .await;
    testkit::wait_for("A's files gone", Duration::from_secs(10), || async {
        for prefix in [
            format!("hls/{a_video}/"),
            format!("sources/{a_video}"),
            format!("thumbnails/{a_video}"),
        ] {
            if !keys(&stack, &prefix).await.is_empty() {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert_eq!(get(&stack, &hls).await, 404);
    assert_eq!(get(&stack, &thumbnail).await, 404);
    assert_eq!(status(&stack, &a_video, Some(&b_token)).await.0, 404);

    // B's like count and subscriber count drop by exactly one and match their rows.
    testkit::wait_for(
        "B's counters corrected",
        Duration::from_secs(10),
        || async { (counters(&stack, &b_video, &b).await == ((1, 1), (1, 1))).then_some(()) },
    )
    .await;

    // A's comment is anonymised in place; B's reply still hangs under it.
    let thread = testkit::wait_for("A's comment anonymised", Duration::from_secs(10), || {
        let stack = &stack;
        let b_video = &b_video;
        async move {
            let data = stack
                .graphql_ok(None, THREAD, json!({ "v": b_video }))
                .await;
            let node = data["comments"]["edges"][0]["node"].clone();
            (node["deleted"] == true).then_some(node)
        }
    })
    .await;
    assert_eq!(thread["id"], a_comment.as_str());
    assert_eq!(thread["body"], Value::Null);
    assert_eq!(thread["author"], Value::Null);
    let replies = thread["replies"]["edges"].as_array().unwrap();
    assert_eq!(replies.len(), 1, "{thread}");
    assert_eq!(replies[0]["node"]["id"], b_reply.as_str());
    assert_eq!(replies[0]["node"]["body"], "thanks");
    assert_eq!(replies[0]["node"]["author"]["username"], "stays");
    let stored = stored_comments(&stack, &b_video).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].get_str("author_id").unwrap(),
        "",
        "no author stored"
    );
    assert_eq!(stored[0].get_str("body").unwrap(), "", "no text stored");
    assert_eq!(stored[1].get_str("parent_id").unwrap(), a_comment);
    let data = stack
        .graphql_ok(
            None,
            VIDEO.replace("likeCount", "commentCount").as_str(),
            json!({ "id": b_video }),
        )
        .await;
    assert_eq!(data["video"]["commentCount"], 1, "only B's reply is live");
    let db = media_db(&stack).await;
    let rows_of_a: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM likes WHERE user_id = $1)
              + (SELECT count(*) FROM follows WHERE follower_id = $1 OR channel_id = $1)
              + (SELECT count(*) FROM videos WHERE owner_id = $1 AND deleted_at IS NULL)",
    )
    .bind(a.parse::<uuid::Uuid>().unwrap())
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(rows_of_a, 0);
    // Notifications are the erasure's last step.
    testkit::wait_for(
        "A's notifications gone",
        Duration::from_secs(10),
        || async {
            let left: i64 = sqlx::query_scalar(notifications_of_a)
                .bind(a_id)
                .fetch_one(&db)
                .await
                .unwrap();
            (left == 0).then_some(())
        },
    )
    .await;

    // The same event delivered again changes nothing. C's deletion, delivered after it on
    // the same queue, tells when it has been handled (one consumer takes them in order).
    stack
        .deliver_raw_to_media_queue("media.erasure", &deletion)
        .await;
    let response = Client::new()
        .delete(stack.url("/user/profile"))
        .bearer_auth(&c_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // The consumer first runs A's whole erasure again (finding nothing to change), then
    // C's: on a loaded CI machine that has taken over 10 s. The wait is for the order,
    // not a latency figure.
    testkit::wait_for("C's deletion handled", Duration::from_secs(30), || async {
        (counters(&stack, &b_video, &b).await == ((0, 0), (0, 0))).then_some(())
    })
    .await;
    assert_eq!(
        stored_comments(&stack, &b_video).await,
        stored,
        "the comments are untouched (every write restamps `version`)"
    );
    let data = stack
        .graphql_ok(None, THREAD, json!({ "v": b_video }))
        .await;
    assert_eq!(data["comments"]["edges"][0]["node"], thread);
    assert!(
        stack
            .graphql_ok(Some(&b_token), VIDEO, json!({ "id": b_video }))
            .await["video"]["id"]
            == b_video.as_str()
    );
    std::fs::remove_dir_all(scratch(&stack)).ok();
}

/// More rows than one erasure transaction takes: the erasure loops over bounded batches
/// and removes them all with every counter exact; run again it finds nothing; and a video
/// of the account announced afterwards (a late upload) is buried on arrival.
#[tokio::test]
async fn a_deleted_accounts_erasure_spans_batches_and_buries_late_videos() {
    use media::erasure::{Erased, erase, rows::BATCH};
    use uuid::Uuid;

    let stack = Stack::start().await;
    let db = media_db(&stack).await;
    let (gone, other, fan) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let n = 2 * BATCH + BATCH / 2;
    let ready = events::video::VideoStatus::Ready.rank();
    // n videos of the erased account; n of another, each liked by the erased account and
    // the first also by a fan; n channels it follows; n followers of its channel.
    for owner in [gone, other] {
        sqlx::query(
            "INSERT INTO videos (id, owner_id, title, status, status_rank, created_at, published_at)
             SELECT gen_random_uuid(), $1, 'bulk', 'ready', $2, now(), now()
             FROM generate_series(1, $3)",
        )
        .bind(owner)
        .bind(ready)
        .bind(n)
        .execute(&db)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO likes (user_id, video_id) SELECT $1, id FROM videos WHERE owner_id = $2",
    )
    .bind(gone)
    .bind(other)
    .execute(&db)
    .await
    .unwrap();
    let liked_twice: Uuid =
        sqlx::query_scalar("SELECT id FROM videos WHERE owner_id = $1 ORDER BY id LIMIT 1")
            .bind(other)
            .fetch_one(&db)
            .await
            .unwrap();
    sqlx::query("INSERT INTO likes (user_id, video_id) VALUES ($1, $2)")
        .bind(fan)
        .bind(liked_twice)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE videos v SET likes_count = (SELECT count(*) FROM likes l WHERE l.video_id = v.id)",
    )
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "WITH c AS (SELECT gen_random_uuid() AS id FROM generate_series(1, $2)),
              f AS (INSERT INTO follows (follower_id, channel_id) SELECT $1, id FROM c)
         INSERT INTO channels (id, subscriber_count) SELECT id, 1 FROM c",
    )
    .bind(gone)
    .bind(n)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO follows (follower_id, channel_id)
         SELECT gen_random_uuid(), $1 FROM generate_series(1, $2)",
    )
    .bind(gone)
    .bind(n)
    .execute(&db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO channels (id, subscriber_count) VALUES ($1, $2)")
        .bind(gone)
        .bind(n)
        .execute(&db)
        .await
        .unwrap();

    let n = n as u64;
    let erased = erase(&stack.media, gone).await.unwrap();
    assert_eq!(
        erased,
        Erased {
            videos: n,
            likes: n,
            follows: n,
            followers: n,
            comments: 0,
            playlists: 0,
            notifications: 0,
            history: 0,
            comment_rules: 0,
        }
    );
    let left: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM videos WHERE owner_id = $1 AND deleted_at IS NULL),
                (SELECT count(*) FROM likes WHERE user_id = $1),
                (SELECT count(*) FROM follows WHERE follower_id = $1 OR channel_id = $1),
                (SELECT count(*) FROM channels WHERE id = $1)",
    )
    .bind(gone)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0, 0));
    // Every counter equals its rows: the fan's like and nothing else is left.
    let likes: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT likes_count, (SELECT count(*) FROM likes l WHERE l.video_id = v.id)
         FROM videos v WHERE owner_id = $1",
    )
    .bind(other)
    .fetch_all(&db)
    .await
    .unwrap();
    assert!(likes.iter().all(|(count, rows)| count == rows), "{likes:?}");
    assert_eq!(likes.iter().map(|(count, _)| count).sum::<i64>(), 1);
    let subscribers: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(subscriber_count), 0)::bigint FROM channels")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(subscribers, 0);
    // Again: nothing left to do.
    assert_eq!(erase(&stack.media, gone).await.unwrap(), Erased::default());

    // A late upload of the erased account never shows.
    let late = stack
        .publish_video(
            gone,
            events::video::VideoMetadata {
                title: "late".into(),
                ..Default::default()
            },
        )
        .await;
    let buried = testkit::wait_for("the late video buried", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
                "SELECT deleted_at FROM videos WHERE id = $1 AND status = 'ready'",
            )
            .bind(late)
            .fetch_optional(&db)
            .await
            .unwrap()
        }
    })
    .await;
    assert!(buried.is_some(), "ready but not deleted");
    let owner_view = stack.token_for(gone, "gone");
    let data = stack
        .graphql_ok(Some(&owner_view), VIDEO, json!({ "id": late }))
        .await;
    assert!(data["video"].is_null(), "{data}");
}
