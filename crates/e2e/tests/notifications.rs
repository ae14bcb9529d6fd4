//! Notifications through the gateway: a subscriber hears of a channel's new video live
//! (the graphql-ws npm client, token in `connection_init`) within a second, once however
//! often `video.ready` is delivered, and finds the list and unread count right after a
//! reconnect; every other kind reaches whom it concerns and nobody else; preferences turn
//! a kind off; bad input and other people's notifications are refused and change nothing.

use std::time::{Duration, Instant};

use e2e::{
    Stack,
    ws::{graphql_ws, graphql_ws_refusal, graphql_ws_results},
};
use events::{
    Envelope,
    video::{VideoCreated, VideoFailed, VideoMetadata, VideoUploaded},
    webhook::EndpointDisabled,
};
use serde_json::{Value, json};
use uuid::Uuid;

const NOTIFICATION: &str = "id kind read detail commentId actor { id } video { id }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// A registered user (so `actor` resolves to a profile): id and token.
async fn user(stack: &Stack, name: &str) -> (Uuid, String) {
    let registered = stack.register(name, "correct horse battery").await;
    let id = Uuid::parse_str(registered["id"].as_str().unwrap()).unwrap();
    (id, stack.token_for(id, name))
}

/// The user's notifications, newest first.
async fn list(stack: &Stack, token: &str, unread_only: bool) -> Vec<Value> {
    let data = stack
        .graphql_ok(
            Some(token),
            &format!(
                "query($u: Boolean!) {{ notifications(first: 50, unreadOnly: $u) {{
                    edges {{ node {{ {NOTIFICATION} }} }} }} }}"
            ),
            json!({ "u": unread_only }),
        )
        .await;
    data["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn kinds(notifications: &[Value]) -> Vec<&str> {
    notifications
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect()
}

async fn unread(stack: &Stack, token: &str) -> i64 {
    let data = stack
        .graphql_ok(Some(token), "{ unreadNotificationCount }", json!({}))
        .await;
    data["unreadNotificationCount"].as_i64().unwrap()
}

/// Waits until the user has `n` notifications; returns them.
async fn wait_for_count(stack: &Stack, token: &str, n: usize) -> Vec<Value> {
    testkit::wait_for(
        &format!("{n} notifications"),
        Duration::from_secs(20),
        || async move {
            let all = list(stack, token, false).await;
            (all.len() == n).then_some(all)
        },
    )
    .await
}

async fn follow(stack: &Stack, token: &str, channel: Uuid) {
    stack
        .graphql_ok(
            Some(token),
            "mutation($c: ID!) { subscribe(channelId: $c) { id } }",
            json!({ "c": channel }),
        )
        .await;
}

/// Waits until media's hub watches `n` channels (a live subscription is in place).
async fn subscribed(stack: &Stack, n: usize) {
    testkit::wait_for("subscription live", Duration::from_secs(20), || async {
        (stack.media.realtime.hub.stats().channels >= n).then_some(())
    })
    .await;
}

const LIVE: &str = "subscription { notificationAdded { id kind actor { id } video { id } } }";

/// Makes every channel "large" for this test's stack: a new video is one post that each
/// subscriber reads (fan-in on read) rather than a row written to each. Nextest runs each
/// test in a process of its own, and this runs before anything reads the environment.
fn every_channel_fans_in() {
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("NOTIFICATION_FANIN_SUBSCRIBERS", "0") };
}

#[tokio::test]
async fn subscribers_hear_of_a_new_video_live_once_and_read_it_after_a_reconnect() {
    new_videos_live_once_and_after_a_reconnect(false).await;
}

#[tokio::test]
async fn a_large_channels_subscribers_hear_of_a_new_video_live_once_and_read_it_after_a_reconnect()
{
    every_channel_fans_in();
    let stack = new_videos_live_once_and_after_a_reconnect(true).await;
    // Three posts, no row per subscriber.
    let pool = stack.media.db.pool();
    let posts: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_posts")
        .fetch_one(pool)
        .await
        .unwrap();
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE kind = 'new_video'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!((posts, rows), (3, 0));
}

/// One channel, one subscriber, three videos (the scenario of the two tests above). A
/// large channel's subscriber listens to the channel's posts besides their own topic.
async fn new_videos_live_once_and_after_a_reconnect(large: bool) -> Stack {
    let topics = 1 + usize::from(large);
    let stack = Stack::start().await;
    let (channel, owner) = user(&stack, "channel").await;
    let (_, fan) = user(&stack, "fan").await;
    follow(&stack, &fan, channel).await;

    // The video is uploaded; the fan is listening when it becomes ready.
    let first = Uuid::now_v7();
    stack
        .deliver_video_event(VideoCreated {
            video_id: first,
            owner_id: channel,
            metadata: VideoMetadata {
                title: "Episode 1".into(),
                ..Default::default()
            },
        })
        .await;
    stack
        .deliver_video_event(VideoUploaded {
            video_id: first,
            owner_id: channel,
            size_bytes: 1000,
        })
        .await;
    let live = graphql_ws(&stack, LIVE, json!({}), Some(&fan), 1);
    subscribed(&stack, topics).await;
    let ready = Envelope::new(e2e::ready_event(first, channel));
    let sent = Instant::now();
    stack.deliver_raw_video_event("video.ready", &ready).await;
    let received = graphql_ws_results(live).await;
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(1), "notified after {took:?}");
    let added = &received[0]["data"]["notificationAdded"];
    assert_eq!(added["kind"], "NEW_VIDEO", "{received:?}");
    assert_eq!(added["video"]["id"], first.to_string());
    assert_eq!(added["actor"]["id"], channel.to_string());

    // Redelivered as the broker would (same envelope) and re-sent as a publisher
    // retrying would (a new envelope of the same fact): nobody is told twice.
    stack.deliver_raw_video_event("video.ready", &ready).await;
    stack
        .deliver_video_event(e2e::ready_event(first, channel))
        .await;
    // Away (no subscription), a second video comes out.
    let second = stack
        .publish_video(
            channel,
            VideoMetadata {
                title: "Episode 2".into(),
                ..Default::default()
            },
        )
        .await;
    let got = wait_for_count(&stack, &fan, 2).await;
    assert_eq!(kinds(&got), ["NEW_VIDEO", "NEW_VIDEO"]);
    assert_eq!(
        [&got[0]["video"]["id"], &got[1]["video"]["id"]],
        [&json!(second.to_string()), &json!(first.to_string())]
    );
    assert_eq!(unread(&stack, &fan).await, 2);

    // Back online: live again for the third, and the list and count agree.
    let live = graphql_ws(&stack, LIVE, json!({}), Some(&fan), 1);
    subscribed(&stack, topics).await;
    let third = stack
        .publish_video(
            channel,
            VideoMetadata {
                title: "Episode 3".into(),
                ..Default::default()
            },
        )
        .await;
    let received = graphql_ws_results(live).await;
    assert_eq!(
        received[0]["data"]["notificationAdded"]["video"]["id"],
        third.to_string()
    );
    let got = list(&stack, &fan, false).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(unread(&stack, &fan).await, 3);
    // Duplicates delivered before the second and third videos stayed out.
    assert_eq!(
        got.iter()
            .filter(|n| n["video"]["id"] == first.to_string())
            .count(),
        1
    );

    // Read up to the second: the third stays unread.
    let data = stack
        .graphql_ok(
            Some(&fan),
            "mutation($n: ID!) { markNotificationsRead(upTo: $n) }",
            json!({ "n": got[1]["id"] }),
        )
        .await;
    assert_eq!(data["markNotificationsRead"], 2);
    assert_eq!(unread(&stack, &fan).await, 1);
    let unread_list = list(&stack, &fan, true).await;
    assert_eq!(unread_list.len(), 1);
    assert_eq!(unread_list[0]["video"]["id"], third.to_string());

    // The channel makes the third private: it leaves its subscribers' notifications.
    stack
        .graphql_ok(
            Some(&owner),
            "mutation($v: ID!) { updateVideo(id: $v, input: { visibility: PRIVATE }) { id } }",
            json!({ "v": third }),
        )
        .await;
    assert_eq!(unread(&stack, &fan).await, 0);
    assert_eq!(list(&stack, &fan, false).await.len(), 2);
    // Its owner was told of each upload and of the subscriber, nothing else.
    let own = list(&stack, &owner, false).await;
    assert_eq!(
        kinds(&own),
        [
            "VIDEO_READY",
            "VIDEO_READY",
            "VIDEO_READY",
            "NEW_SUBSCRIBER"
        ]
    );
    stack
}

#[tokio::test]
async fn a_large_channels_posts_reach_who_followed_before_them_merge_with_rows_and_are_marked_read()
{
    every_channel_fans_in();
    let stack = Stack::start().await;
    let (channel, owner) = user(&stack, "bigchannel").await;
    let (_, fan) = user(&stack, "loyalfan").await;
    let (_, quiet) = user(&stack, "quietfan").await;
    let (_, late) = user(&stack, "latecomer").await;
    let (_, stranger) = user(&stack, "stranger").await;
    follow(&stack, &fan, channel).await;
    follow(&stack, &quiet, channel).await;
    stack
        .graphql_ok(
            Some(&quiet),
            "mutation { setNotificationDelivery(kind: NEW_VIDEO, delivery: OFF) { kind } }",
            json!({}),
        )
        .await;

    let first = stack.publish_video(channel, VideoMetadata::default()).await;
    let got = wait_for_count(&stack, &fan, 1).await;
    assert_eq!(got[0]["video"]["id"], first.to_string());
    assert_eq!(got[0]["actor"]["id"], channel.to_string());
    // Whoever turned new videos off, follows only now, or never followed: nothing.
    follow(&stack, &late, channel).await;
    for token in [&quiet, &late, &stranger] {
        assert_eq!(list(&stack, token, false).await, Vec::<Value>::new());
        assert_eq!(unread(&stack, token).await, 0);
    }

    // A reply (a row of the fan's own) lands between two posts, in time order.
    let comment = stack
        .graphql_ok(
            Some(&fan),
            "mutation($v: ID!) { addComment(videoId: $v, body: \"First!\") { id } }",
            json!({ "v": first }),
        )
        .await;
    stack
        .graphql_ok(
            Some(&owner),
            "mutation($v: ID!, $p: ID!) { addComment(videoId: $v, body: \"Thanks\", parentId: $p) { id } }",
            json!({ "v": first, "p": comment["addComment"]["id"] }),
        )
        .await;
    let second = stack.publish_video(channel, VideoMetadata::default()).await;
    let got = wait_for_count(&stack, &fan, 3).await;
    assert_eq!(kinds(&got), ["NEW_VIDEO", "COMMENT_REPLY", "NEW_VIDEO"]);
    assert_eq!(got[0]["video"]["id"], second.to_string());
    assert_eq!(unread(&stack, &fan).await, 3);
    assert_eq!(
        kinds(&wait_for_count(&stack, &late, 1).await),
        ["NEW_VIDEO"]
    );

    // Pages walk the merged order.
    let page = |after: Option<String>| {
        let fan = fan.clone();
        let stack = &stack;
        async move {
            let data = stack
                .graphql_ok(
                    Some(&fan),
                    "query($a: String) { notifications(first: 2, after: $a) {
                        edges { node { id } } pageInfo { endCursor hasNextPage } } }",
                    json!({ "a": after }),
                )
                .await;
            data["notifications"].clone()
        }
    };
    let one = page(None).await;
    assert_eq!(one["pageInfo"]["hasNextPage"], true);
    let two = page(one["pageInfo"]["endCursor"].as_str().map(str::to_owned)).await;
    let ids: Vec<&Value> = [&one, &two]
        .iter()
        .flat_map(|p| p["edges"].as_array().unwrap())
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(ids, got.iter().map(|n| &n["id"]).collect::<Vec<_>>());
    assert_eq!(two["pageInfo"]["hasNextPage"], false);

    // Someone else's post is not theirs to mark, and marking it changes nothing.
    let mark = "mutation($n: ID!) { markNotificationsRead(upTo: $n) }";
    let body = stack
        .graphql(Some(&stranger), mark, json!({ "n": got[0]["id"] }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(unread(&stack, &fan).await, 3);
    // Read up to the reply: it and the older post; the newer post stays unread.
    let data = stack
        .graphql_ok(Some(&fan), mark, json!({ "n": got[1]["id"] }))
        .await;
    assert_eq!(data["markNotificationsRead"], 2);
    assert_eq!(unread(&stack, &fan).await, 1);
    let unread_list = list(&stack, &fan, true).await;
    assert_eq!(unread_list.len(), 1);
    assert_eq!(unread_list[0]["video"]["id"], second.to_string());
    let reads: Vec<Value> = list(&stack, &fan, false)
        .await
        .iter()
        .map(|n| n["read"].clone())
        .collect();
    assert_eq!(reads, [json!(false), json!(true), json!(true)]);
    // Marking an older one again moves nothing back.
    let data = stack
        .graphql_ok(Some(&fan), mark, json!({ "n": got[2]["id"] }))
        .await;
    assert_eq!(data["markNotificationsRead"], 0);
    assert_eq!(unread(&stack, &fan).await, 1);
    // The other follower's copy of the same post is still unread.
    assert_eq!(unread(&stack, &late).await, 1);

    // Unsubscribed: the channel's posts leave the list; the fan's own rows stay.
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($c: ID!) { unsubscribe(channelId: $c) { id } }",
            json!({ "c": channel }),
        )
        .await;
    assert_eq!(kinds(&list(&stack, &fan, false).await), ["COMMENT_REPLY"]);
    assert_eq!(unread(&stack, &fan).await, 0);
}

#[tokio::test]
async fn every_kind_reaches_whom_it_concerns_and_preferences_turn_kinds_off() {
    let stack = Stack::start().await;
    let (owner_id, owner) = user(&stack, "creator").await;
    let (fan_id, fan) = user(&stack, "regular").await;
    let (other_id, other) = user(&stack, "passerby").await;

    // A new subscriber; then the owner turns those off, and the next one is not told.
    follow(&stack, &fan, owner_id).await;
    let data = stack
        .graphql_ok(
            Some(&owner),
            "mutation { setNotificationDelivery(kind: NEW_SUBSCRIBER, delivery: OFF) {
                kind delivery } }",
            json!({}),
        )
        .await;
    assert_eq!(data["setNotificationDelivery"]["delivery"], "OFF");
    follow(&stack, &other, owner_id).await;
    let got = list(&stack, &owner, false).await;
    assert_eq!(kinds(&got), ["NEW_SUBSCRIBER"]);
    assert_eq!(got[0]["actor"]["id"], fan_id.to_string());
    let data = stack
        .graphql_ok(
            Some(&owner),
            "{ notificationSettings { kind delivery } }",
            json!({}),
        )
        .await;
    for setting in data["notificationSettings"].as_array().unwrap() {
        let off = setting["kind"] == "NEW_SUBSCRIBER";
        assert_eq!(setting["delivery"], if off { "OFF" } else { "IN_APP" });
    }
    stack
        .graphql_ok(
            Some(&owner),
            "mutation { setNotificationDelivery(kind: NEW_SUBSCRIBER, delivery: IN_APP) { kind } }",
            json!({}),
        )
        .await;

    // The owner's uploads: one ready, one failed.
    let video = stack
        .publish_video(owner_id, VideoMetadata::default())
        .await;
    stack.wait_video_ready(None, video).await;
    let broken = Uuid::now_v7();
    stack
        .deliver_video_event(VideoCreated {
            video_id: broken,
            owner_id,
            metadata: VideoMetadata::default(),
        })
        .await;
    stack
        .deliver_video_event(VideoFailed {
            video_id: broken,
            owner_id,
            reason: "the file is not a video".into(),
        })
        .await;
    let got = wait_for_count(&stack, &owner, 3).await;
    assert_eq!(
        kinds(&got),
        ["VIDEO_FAILED", "VIDEO_READY", "NEW_SUBSCRIBER"]
    );
    assert_eq!(got[0]["detail"], "the file is not a video");
    assert_eq!(got[0]["video"]["id"], broken.to_string());
    assert!(got[0]["actor"].is_null());
    // The failed video's subscribers hear nothing of it (nor of the ready one's
    // duplicate paths); the fan was told of the ready one.
    let fan_got = wait_for_count(&stack, &fan, 1).await;
    assert_eq!(kinds(&fan_got), ["NEW_VIDEO"]);

    // Comments: the owner hears of a comment on their video, the fan of replies to theirs.
    let comment = |token: &str, body: &str, parent: Option<&str>| {
        let token = token.to_owned();
        let variables = json!({ "v": video, "b": body, "p": parent });
        let stack = &stack;
        async move {
            let data = stack
                .graphql_ok(
                    Some(&token),
                    "mutation($v: ID!, $b: String!, $p: ID) {
                       addComment(videoId: $v, body: $b, parentId: $p) { id } }",
                    variables,
                )
                .await;
            data["addComment"]["id"].as_str().unwrap().to_owned()
        }
    };
    let long = "Great video! ".repeat(20);
    let fans = comment(&fan, &long, None).await;
    let got = list(&stack, &owner, false).await;
    assert_eq!(got[0]["kind"], "VIDEO_COMMENT");
    assert_eq!(got[0]["commentId"], fans);
    assert_eq!(got[0]["actor"]["id"], fan_id.to_string());
    let detail = got[0]["detail"].as_str().unwrap();
    assert!(
        detail.ends_with('…') && detail.chars().count() == 141,
        "{detail}"
    );

    // The owner replies: the fan is told, the owner is not told of their own reply.
    comment(&owner, "Thanks!", Some(&fans)).await;
    let fan_got = list(&stack, &fan, false).await;
    assert_eq!(kinds(&fan_got), ["COMMENT_REPLY", "NEW_VIDEO"]);
    assert_eq!(fan_got[0]["actor"]["id"], owner_id.to_string());
    assert_eq!(list(&stack, &owner, false).await.len(), 4);
    // A third person replies: the fan (reply) and the owner (comment on their video).
    comment(&other, "Agreed", Some(&fans)).await;
    assert_eq!(
        kinds(&list(&stack, &fan, false).await),
        ["COMMENT_REPLY", "COMMENT_REPLY", "NEW_VIDEO"]
    );
    let got = list(&stack, &owner, false).await;
    assert_eq!(got[0]["kind"], "VIDEO_COMMENT");
    assert_eq!(got[0]["actor"]["id"], other_id.to_string());
    // Replying to oneself tells only the owner.
    comment(&fan, "Edit: typo", Some(&fans)).await;
    assert_eq!(list(&stack, &fan, false).await.len(), 3);
    assert_eq!(list(&stack, &owner, false).await.len(), 6);

    // The webhooks service disabled an endpoint: its owner is told once, even when the
    // event is delivered twice.
    let disabled = Envelope::new(EndpointDisabled {
        endpoint_id: Uuid::now_v7(),
        owner_id,
        url: "https://hooks.example.com/kino".into(),
        reason: "the endpoint answered 410 Gone".into(),
    });
    let payload = serde_json::to_vec(&disabled).unwrap();
    for _ in 0..2 {
        stack
            .deliver_raw_to_media_queue("media.notifications", &payload)
            .await;
    }
    let got = wait_for_count(&stack, &owner, 7).await;
    assert_eq!(got[0]["kind"], "WEBHOOK_DISABLED");
    assert_eq!(
        got[0]["detail"],
        "https://hooks.example.com/kino: the endpoint answered 410 Gone"
    );
    // A second delivery of it was consumed too, and added nothing.
    stack
        .deliver_raw_to_media_queue("media.notifications", &payload)
        .await;
    let later = Envelope::new(EndpointDisabled {
        endpoint_id: Uuid::now_v7(),
        owner_id: fan_id,
        url: "https://fan.example.com/".into(),
        reason: "failing for 3 days".into(),
    });
    stack
        .deliver_raw_to_media_queue("media.notifications", &serde_json::to_vec(&later).unwrap())
        .await;
    wait_for_count(&stack, &fan, 4).await;
    assert_eq!(list(&stack, &owner, false).await.len(), 7);
}

#[tokio::test]
async fn anonymous_callers_and_other_peoples_notifications_are_refused_and_change_nothing() {
    let stack = Stack::start().await;
    let (owner_id, owner) = user(&stack, "host").await;
    let (_, fan) = user(&stack, "guest").await;
    follow(&stack, &fan, owner_id).await;
    let mine = list(&stack, &owner, false).await;
    assert_eq!(mine.len(), 1);
    let id = mine[0]["id"].as_str().unwrap();

    for query in [
        "{ notifications { edges { node { id } } } }",
        "{ unreadNotificationCount }",
        "{ notificationSettings { kind } }",
        "mutation { setNotificationDelivery(kind: NEW_VIDEO, delivery: OFF) { kind } }",
    ] {
        let body = stack.graphql(None, query, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{query}: {body}");
    }
    let mark = "mutation($n: ID!) { markNotificationsRead(upTo: $n) }";
    let body = stack.graphql(None, mark, json!({ "n": id })).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    // Someone else's notification, or no notification at all: refused alike.
    for (token, upto) in [
        (&fan, json!(id)),
        (&owner, json!("not-an-id")),
        (&owner, json!(Uuid::now_v7())),
    ] {
        let body = stack.graphql(Some(token), mark, json!({ "n": upto })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    for (query, variables) in [
        (
            "query($a: String) { notifications(after: $a) { edges { node { id } } } }",
            json!({ "a": "garbage" }),
        ),
        (
            "query($f: Int) { notifications(first: $f) { edges { node { id } } } }",
            json!({ "f": 0 }),
        ),
    ] {
        let body = stack.graphql(Some(&owner), query, variables).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    // Nothing changed.
    assert_eq!(unread(&stack, &owner).await, 1);
    assert_eq!(list(&stack, &owner, false).await, mine);

    // A live subscription needs an identity too: the npm client's operation fails.
    let refused = graphql_ws(&stack, LIVE, json!({}), None, 1);
    let stderr = graphql_ws_refusal(refused).await;
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
}
