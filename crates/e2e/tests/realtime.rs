//! Live updates: GraphQL subscriptions over graphql-transport-ws, fanned out through Redis
//! across media replicas. Replicas run in-process on their own ports with the same
//! stores, as two pods would; clients connect to them directly (the gateway is covered by
//! the graphql-ws test at the end).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use e2e::{
    Stack, ready_event as ready,
    ws::{Received, WsClient, media_ws_url},
};
use events::video::{ProgressStage, VideoMetadata, VideoProgress, Visibility};
use media::realtime::{ChangeKind, CommentChange, Event};
use serde_json::{Value, json};
use uuid::Uuid;

const COMMENT_EVENTS: &str = "subscription($v: ID!, $after: String) {
    commentEvents(videoId: $v, after: $after) { kind cursor comment { id body deleted } }
}";
const PROGRESS: &str = "subscription($v: ID!) {
    uploadProgress(videoId: $v) { videoId stage percent speed etaSeconds failureReason }
}";
const STATS: &str =
    "subscription($v: ID!) { videoStats(videoId: $v) { likeCount commentCount viewCount } }";
const ADD_COMMENT: &str =
    "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }";

/// A ready video of `owner` in the catalogue.
async fn ready_video(stack: &Stack, owner: Uuid, visibility: Visibility) -> Uuid {
    let metadata = VideoMetadata {
        title: "live".into(),
        visibility,
        ..Default::default()
    };
    let video_id = stack.publish_video(owner, metadata).await;
    let token = stack.token_for(owner, "owner");
    stack.wait_video_ready(Some(&token), video_id).await;
    video_id
}

/// Runs GraphQL straight against one replica, as the gateway would call it for `user`.
async fn graphql_on(
    addr: std::net::SocketAddr,
    user: Uuid,
    query: &str,
    variables: Value,
) -> Value {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/media/graphql"))
        .header("x-user-id", user.to_string())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

async fn add_comment(addr: std::net::SocketAddr, user: Uuid, video: Uuid, body: &str) -> String {
    let data = graphql_on(addr, user, ADD_COMMENT, json!({ "v": video, "b": body })).await;
    data["addComment"]["id"].as_str().unwrap().to_owned()
}

fn progress(video_id: Uuid, owner: Uuid, stage: &str, percent: f64) -> VideoProgress {
    VideoProgress {
        video_id,
        owner_id: owner,
        stage: ProgressStage::parse(stage).expect("a progress stage"),
        percent,
        speed: Some(2.0),
        eta_seconds: Some(1.0),
    }
}

#[tokio::test]
async fn events_reach_subscribers_on_every_replica_whichever_replica_produced_them() {
    let stack = Stack::start().await;
    // Replica B shares every store with A; its progress queue is its own here, so the
    // test decides which replica consumes each progress event (in production they share
    // one queue and the broker picks).
    let (b_addr, _b) = stack
        .spawn_media_replica(|c| c.queue_prefix = format!("{}b.", c.queue_prefix))
        .await;
    let b_config = {
        let mut c = stack.media_config.clone();
        c.queue_prefix = format!("{}b.", c.queue_prefix);
        c
    };
    let owner = Uuid::now_v7();
    let viewer = Uuid::now_v7();
    let video = ready_video(&stack, owner, Visibility::Public).await;

    let mut on_a = WsClient::connect_init(
        &media_ws_url(stack.media_addr),
        Some(&stack.token_for(owner, "o")),
    )
    .await;
    on_a.subscribe("c", COMMENT_EVENTS, json!({ "v": video }))
        .await;
    on_a.subscribe("p", PROGRESS, json!({ "v": video })).await;
    // A second viewer on A, to see one Redis message fan out locally.
    let mut also_on_a = WsClient::connect_init(&media_ws_url(stack.media_addr), None).await;
    also_on_a
        .subscribe("c", COMMENT_EVENTS, json!({ "v": video }))
        .await;
    wait_channels(&stack.media, 2).await;

    // A comment posted through replica B reaches A's subscribers.
    let id = add_comment(b_addr, viewer, video, "hello from B").await;
    for client in [&mut on_a, &mut also_on_a] {
        let data = client.next_data("c").await;
        let event = &data["commentEvents"];
        assert_eq!(event["kind"], "ADDED");
        assert_eq!(event["comment"]["id"], id.as_str());
        assert_eq!(event["comment"]["body"], "hello from B");
    }

    // Progress consumed by B, then by A, then by B again: A's owner gets all of it.
    let consumers = [&b_config, &stack.media_config, &b_config];
    for (i, config) in consumers.into_iter().enumerate() {
        let percent = 10.0 * (i + 1) as f64;
        stack
            .deliver_to_media_queue(
                config,
                "media.progress",
                progress(video, owner, "transcoding", percent),
            )
            .await;
        let data = on_a.next_data("p").await;
        assert_eq!(data["uploadProgress"]["percent"], percent);
        assert_eq!(data["uploadProgress"]["stage"], "transcoding");
        assert_eq!(data["uploadProgress"]["videoId"], video.to_string());
    }
    // Someone else's progress on this channel never reaches the owner's subscription.
    stack
        .deliver_to_media_queue(
            &b_config,
            "media.progress",
            progress(video, viewer, "transcoding", 99.0),
        )
        .await;
    // `video.ready` ends it.
    stack
        .deliver_to_media_queue(&b_config, "media.progress", ready(video, owner))
        .await;
    let data = on_a.next_data("p").await;
    assert_eq!(data["uploadProgress"]["stage"], "ready");
    assert_eq!(data["uploadProgress"]["percent"], 100.0);
    assert_eq!(
        on_a.recv().await,
        Received::Json(json!({ "id": "p", "type": "complete" }))
    );

    // Redis carries each channel once per replica: A watches exactly its one comment
    // channel now; B watches nothing.
    wait_channels(&stack.media, 1).await;
    assert_eq!(_b.realtime.hub.stats().channels, 0);
    drop(on_a);
    drop(also_on_a);
    wait_channels(&stack.media, 0).await;
}

/// Waits until replica `ctx` watches `n` channels.
async fn wait_channels(ctx: &media::Context, n: usize) {
    testkit::wait_for(
        &format!("{n} hub channels"),
        Duration::from_secs(10),
        || async move { (ctx.realtime.hub.stats().channels == n).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_resumed_subscription_replays_exactly_what_it_missed_then_goes_live() {
    let stack = Stack::start().await;
    let (b_addr, _b) = stack.spawn_media_replica(|_| {}).await;
    let owner = Uuid::now_v7();
    let author = Uuid::now_v7();
    let video = ready_video(&stack, owner, Visibility::Public).await;
    let url = media_ws_url(stack.media_addr);

    let mut client = WsClient::connect_init(&url, None).await;
    client
        .subscribe("1", COMMENT_EVENTS, json!({ "v": video }))
        .await;
    wait_channels(&stack.media, 1).await;
    add_comment(b_addr, author, video, "seen").await;
    let cursor = client.next_data("1").await["commentEvents"]["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(client);
    wait_channels(&stack.media, 0).await;

    // Twenty comments while the subscriber is away, alternating replicas.
    let mut missed = Vec::new();
    for i in 0..20 {
        let addr = if i % 2 == 0 { b_addr } else { stack.media_addr };
        missed.push(add_comment(addr, author, video, &format!("missed {i}")).await);
    }

    // It comes back with its cursor while more comments keep arriving: the replay and
    // the live feed meet without a gap or a duplicate.
    let posting = tokio::spawn({
        async move {
            let mut ids = Vec::new();
            for i in 0..10 {
                ids.push(add_comment(b_addr, author, video, &format!("live {i}")).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        }
    });
    let mut client = WsClient::connect_init(&url, None).await;
    client
        .subscribe("2", COMMENT_EVENTS, json!({ "v": video, "after": cursor }))
        .await;
    let mut received = Vec::new();
    while received.len() < 30 {
        let data = client.next_data("2").await;
        let event = &data["commentEvents"];
        assert_eq!(event["kind"], "ADDED", "{event}");
        received.push(event["comment"]["id"].as_str().unwrap().to_owned());
    }
    let live = posting.await.unwrap();
    assert_eq!(
        received[..20],
        missed[..],
        "exactly the missed ones first, in order"
    );
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(unique.len(), 30, "no duplicates: {received:?}");
    let expected: HashSet<&String> = missed.iter().chain(live.iter()).collect();
    assert_eq!(unique, expected);
    // The live ones came in the order they were posted (one poster, one replica).
    assert_eq!(received[20..], live[..]);
    // And nothing more than that.
    assert_eq!(client.recv_within(Duration::from_millis(500)).await, None);

    // Edits and deletions while away are replayed too (as the comment now is).
    let cursor = {
        add_comment(stack.media_addr, author, video, "last").await;
        let data = client.next_data("2").await;
        data["commentEvents"]["cursor"].as_str().unwrap().to_owned()
    };
    drop(client);
    let edit = "mutation($id: ID!) { editComment(id: $id, body: \"edited\") { id } }";
    graphql_on(b_addr, author, edit, json!({ "id": missed[0] })).await;
    let delete = "mutation($id: ID!) { deleteComment(id: $id) }";
    graphql_on(b_addr, author, delete, json!({ "id": missed[1] })).await;
    let mut client = WsClient::connect_init(&url, None).await;
    client
        .subscribe("3", COMMENT_EVENTS, json!({ "v": video, "after": cursor }))
        .await;
    let edited = client.next_data("3").await;
    assert_eq!(edited["commentEvents"]["kind"], "EDITED");
    assert_eq!(edited["commentEvents"]["comment"]["body"], "edited");
    let deleted = client.next_data("3").await;
    assert_eq!(deleted["commentEvents"]["kind"], "DELETED");
    assert_eq!(
        deleted["commentEvents"]["comment"]["id"],
        missed[1].as_str()
    );
    assert_eq!(deleted["commentEvents"]["comment"]["body"], Value::Null);

    // A cursor that is not one is refused with the operation's `error`.
    client
        .subscribe(
            "4",
            COMMENT_EVENTS,
            json!({ "v": video, "after": "garbage" }),
        )
        .await;
    match client.recv().await {
        Received::Json(m) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["id"], "4");
            assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
        }
        other => panic!("{other:?}"),
    }
}

/// The resident memory of this test process (all services run in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_client_that_reads_nothing_costs_bounded_memory_and_slows_nobody() {
    const EVENTS: usize = 10_000;
    const CAPACITY: usize = 64;
    // The connection-level guards against a client that stops reading (missed pongs, a
    // send that does not complete) are pushed past the test's length: on a loaded machine
    // reading 10,000 events takes longer than their defaults, and this test is about the
    // hub's bound and the RESYNC that follows it, not about those guards.
    let stack = Stack::start_configured(
        |_| {},
        |m| {
            m.realtime.channel_capacity = CAPACITY;
            m.realtime.keepalive = Duration::from_secs(300);
            m.realtime.send_timeout = Duration::from_secs(600);
        },
    )
    .await;
    let owner = Uuid::now_v7();
    let video = ready_video(&stack, owner, Visibility::Public).await;
    let url = media_ws_url(stack.media_addr);
    let query = "subscription($v: ID!) { commentEvents(videoId: $v) { kind comment { body } } }";

    // The stalled client: a small receive buffer, and after subscribing it reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(stack.media_addr).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    let mut stalled = WsClient { socket };
    stalled.init(None).await;
    stalled.subscribe("s", query, json!({ "v": video })).await;

    let mut reader = WsClient::connect_init(&url, None).await;
    reader.subscribe("r", query, json!({ "v": video })).await;
    wait_channels(&stack.media, 1).await;
    testkit::wait_for("two subscribers", Duration::from_secs(10), || async {
        (stack.media.realtime.hub.stats().subscribers == 2).then_some(())
    })
    .await;

    // 10,000 comment events of 4 KiB each (40 MB in all), published through Redis.
    let hub = stack.media.realtime.hub.clone();
    let body = "x".repeat(4096);
    let before = rss();
    let publisher = tokio::spawn(async move {
        for i in 0..EVENTS {
            let id = Uuid::now_v7().to_string();
            let event = Event::Comment(CommentChange {
                kind: ChangeKind::Added,
                comment: media::comments::store::CommentDoc {
                    id: id.clone(),
                    video_id: video.to_string(),
                    parent_id: None,
                    author_id: owner.to_string(),
                    body: format!("{i:05}{body}"),
                    created_at: mongodb::bson::DateTime::now(),
                    edited_at: None,
                    deleted: false,
                    reply_count: 0,
                    version: Some(id),
                    author_hidden: false,
                    held: false,
                },
            });
            hub.publish(&media::realtime::channels::comments(&video), &event)
                .await
                .unwrap();
        }
    });

    // The reading client gets every event, in order, while the other one stalls.
    let mut max_buffered = 0;
    for i in 0..EVENTS {
        let data = reader.next_data("r").await;
        let body = data["commentEvents"]["comment"]["body"].as_str().unwrap();
        assert_eq!(&body[..5], format!("{i:05}"), "in order, none missing");
        if i % 100 == 0 {
            max_buffered = max_buffered.max(stack.media.realtime.hub.stats().buffered);
        }
    }
    publisher.await.unwrap();
    let stats = stack.media.realtime.hub.stats();
    let grown = rss().saturating_sub(before);
    // What the hub holds for the stalled subscriber never exceeds the channel's capacity…
    assert!(max_buffered <= CAPACITY, "buffered {max_buffered}");
    assert!(stats.buffered <= CAPACITY, "{stats:?}");
    // Both are still subscribed: the stalled one is only behind.
    assert_eq!(stats.subscribers, 2, "{stats:?}");
    // …and the process did not keep the 40 MB that went by (measured over the whole
    // process, which also holds Redis, GraphQL and socket buffers).
    assert!(
        grown < 24 * 1024 * 1024,
        "RSS grew by {} MiB while 40 MB were published",
        grown / (1024 * 1024)
    );

    // When the stalled client reads again, it gets what fit in the buffers, then a
    // RESYNC (with the cursor to resume from), and the subscription ends.
    let mut got = 0;
    let resync = loop {
        match stalled.recv().await {
            Received::Json(m) if m["type"] == "next" => {
                let event = &m["payload"]["data"]["commentEvents"];
                if event["kind"] == "RESYNC" {
                    break event.clone();
                }
                got += 1;
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(
        got < EVENTS / 2,
        "the stalled client was not buffered for: {got}"
    );
    assert_eq!(resync["comment"], Value::Null);
    assert_eq!(
        stalled.recv().await,
        Received::Json(json!({ "id": "s", "type": "complete" }))
    );
    let metrics = platform::metrics::render();
    assert!(
        metrics.contains("media_realtime_resyncs_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_protocol_violation_gets_its_close_code() {
    let stack = Stack::start_configured(
        |_| {},
        |m| {
            m.realtime.init_timeout = Duration::from_millis(300);
            m.realtime.keepalive = Duration::from_secs(1);
        },
    )
    .await;
    let url = media_ws_url(stack.media_addr);
    let video = ready_video(&stack, Uuid::now_v7(), Visibility::Public).await;
    let sub = |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": COMMENT_EVENTS, "variables": { "v": video } } });

    // No connection_init in time: 4408.
    let mut c = WsClient::connect(&url).await;
    assert_eq!(c.closed().await.0, 4408);

    // Subscribe before connection_ack: 4401.
    let mut c = WsClient::connect(&url).await;
    c.send(sub("1")).await;
    assert_eq!(c.closed().await.0, 4401);

    // A second connection_init: 4429.
    let mut c = WsClient::connect_init(&url, None).await;
    c.send(json!({ "type": "connection_init" })).await;
    assert_eq!(c.closed().await.0, 4429);

    // Two operations with one id: 4409.
    let mut c = WsClient::connect_init(&url, None).await;
    c.send(sub("same")).await;
    c.send(sub("same")).await;
    let (code, reason) = c.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (4409, "Subscriber for same already exists")
    );

    // Malformed messages: 4400.
    for bad in [
        "not json",
        r#"{"type":"subscribe"}"#,
        r#"{"type":"no_such_type"}"#,
        r#"{"id":"1","type":"subscribe","payload":"nope"}"#,
        r#"{"type":"connection_init","payload":"nope"}"#,
    ] {
        let mut c = WsClient::connect(&url).await;
        if !bad.contains("connection_init") {
            c.init(None).await;
        }
        c.send_text(bad).await;
        assert_eq!(c.closed().await.0, 4400, "{bad}");
    }
    let mut c = WsClient::connect_init(&url, None).await;
    futures::SinkExt::send(
        &mut c.socket,
        tokio_tungstenite::tungstenite::Message::Binary(vec![1, 2, 3].into()),
    )
    .await
    .unwrap();
    assert_eq!(c.closed().await.0, 4400);

    // A client that does not speak graphql-transport-ws: 4406.
    let mut c = WsClient::connect_with(&url, &[], None).await;
    assert_eq!(c.closed().await.0, 4406);

    // Keep-alive: ping is answered with pong; the server pings too, and a client that
    // answers nothing is closed.
    let mut c = WsClient::connect_init(&url, None).await;
    c.send(json!({ "type": "ping", "payload": { "n": 1 } }))
        .await;
    assert_eq!(
        c.recv().await,
        Received::Json(json!({ "type": "pong", "payload": { "n": 1 } }))
    );
    let frame = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut c.socket),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    assert_eq!(frame.to_text().unwrap(), r#"{"type":"ping"}"#);
    // (recv() would answer pings; read raw frames and stay silent.)
    let code = loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures::StreamExt::next(&mut c.socket),
        )
        .await
        .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                break u16::from(f.code);
            }
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, 1001);

    // Operations that fail before they start end with `error` and the connection stays.
    let mut c = WsClient::connect_init(&url, None).await;
    c.subscribe("bad", "subscription { noSuchField }", json!({}))
        .await;
    match c.recv().await {
        Received::Json(m) => {
            assert_eq!(m["type"], "error");
            assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
        }
        other => panic!("{other:?}"),
    }
    // uploadProgress needs a signed-in owner.
    c.subscribe("anon", PROGRESS, json!({ "v": video })).await;
    match c.recv().await {
        Received::Json(m) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
        other => panic!("{other:?}"),
    }
    // The connection still works; `complete` from the client stops an operation.
    c.subscribe("ok", COMMENT_EVENTS, json!({ "v": video }))
        .await;
    wait_channels(&stack.media, 1).await;
    c.complete("ok").await;
    wait_channels(&stack.media, 0).await;

    // Somebody else's upload: FORBIDDEN.
    let stranger = stack.token_for(Uuid::now_v7(), "stranger");
    let mut c = WsClient::connect_init(&url, Some(&stranger)).await;
    c.subscribe("p", PROGRESS, json!({ "v": video })).await;
    match c.recv().await {
        Received::Json(m) => assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn only_valid_unrevoked_tokens_open_subscriptions() {
    let stack = Stack::start().await;
    let url = media_ws_url(stack.media_addr);
    let profile = stack.register("livewire", "correct horse battery").await;
    let user: Uuid = profile["id"].as_str().unwrap().parse().unwrap();
    let tokens = stack.login("livewire", "correct horse battery").await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let video = ready_video(&stack, user, Visibility::Private).await;

    // A real token: the owner may follow the private video's upload.
    let mut c = WsClient::connect_init(&url, Some(&token)).await;
    c.subscribe("p", PROGRESS, json!({ "v": video })).await;
    wait_channels(&stack.media, 1).await;

    // Forged, malformed, not-a-bearer: 4403.
    let other_key = identity::SigningKey::generate();
    let forged = identity::Signer::new(&other_key, "kino-auth", "kino", Duration::from_secs(60))
        .issue(user, "livewire")
        .0;
    for payload in [
        json!({ "authorization": format!("Bearer {forged}") }),
        json!({ "authorization": "Bearer not.a.jwt" }),
        json!({ "authorization": format!("Basic {token}") }),
    ] {
        let mut bad = WsClient::connect(&url).await;
        bad.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        assert_eq!(bad.closed().await.0, 4403, "{payload}");
    }
    // A token for someone else than the gateway's identity header: 4403.
    let mut bad = WsClient::connect_with(
        &url,
        &[("x-user-id", &Uuid::now_v7().to_string())],
        Some("graphql-transport-ws"),
    )
    .await;
    bad.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }))
        .await;
    assert_eq!(bad.closed().await.0, 4403);

    // Log out: the token is revoked everywhere.
    stack.logout(&token).await;
    // It opens no new connection…
    let mut revoked = WsClient::connect(&url).await;
    revoked
        .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }))
        .await;
    assert_eq!(revoked.closed().await.0, 4403);
    // …and no new subscription on the connection it opened before.
    c.subscribe("p2", STATS, json!({ "v": video })).await;
    assert_eq!(c.closed().await.0, 4403);
}

#[tokio::test]
async fn a_connection_is_closed_once_its_token_is_revoked_or_expired() {
    let stack = Stack::start_configured(
        |_| {},
        |m| {
            m.realtime.keepalive = Duration::from_secs(1);
            m.realtime.jwt.leeway = Duration::from_secs(0);
        },
    )
    .await;
    let url = media_ws_url(stack.media_addr);
    stack.register("leaver", "correct horse battery").await;
    let tokens = stack.login("leaver", "correct horse battery").await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let user: Uuid = stack.register("expiring", "correct horse battery").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let video = ready_video(&stack, user, Visibility::Public).await;

    // A connection runs a subscription; logout revokes its token, and it closes at the
    // next keep-alive (the client answers the pings while it waits: it is alive).
    let mut revoked = WsClient::connect_init(&url, Some(&token)).await;
    revoked.subscribe("s", STATS, json!({ "v": video })).await;
    let logged_out = Instant::now();
    stack.logout(&token).await;
    assert_eq!(revoked.closed().await.0, 4403);
    assert!(
        logged_out.elapsed() < Duration::from_secs(3),
        "{:?}",
        logged_out.elapsed()
    );

    // A token valid for 3 s: its connection closes once it expires, not before.
    let short = stack.token_expiring_in(user, "expiring", Duration::from_secs(3));
    let opened = Instant::now();
    let mut expiring = WsClient::connect_init(&url, Some(&short)).await;
    expiring.subscribe("s", STATS, json!({ "v": video })).await;
    assert_eq!(expiring.closed().await.0, 4403);
    assert!(
        opened.elapsed() >= Duration::from_secs(2),
        "{:?}",
        opened.elapsed()
    );
}

#[tokio::test]
async fn video_stats_are_live_and_coalesced() {
    let stack = Stack::start_configured(
        |_| {},
        |m| m.realtime.stats_interval = Duration::from_millis(300),
    )
    .await;
    let owner = Uuid::now_v7();
    let video = ready_video(&stack, owner, Visibility::Public).await;
    let mut c = WsClient::connect_init(&media_ws_url(stack.media_addr), None).await;
    c.subscribe("s", STATS, json!({ "v": video })).await;
    let first = c.next_data("s").await;
    assert_eq!(
        first["videoStats"],
        json!({ "likeCount": 0, "commentCount": 0, "viewCount": 0 })
    );

    // A burst of 30 likes and 5 comments within a moment.
    let like = "mutation($v: ID!) { likeVideo(videoId: $v) { likeCount } }";
    let mut writes = Vec::new();
    for _ in 0..30 {
        let addr = stack.media_addr;
        writes.push(tokio::spawn(async move {
            graphql_on(addr, Uuid::now_v7(), like, json!({ "v": video })).await
        }));
    }
    for i in 0..5 {
        add_comment(stack.media_addr, owner, video, &format!("c{i}")).await;
    }
    for w in writes {
        w.await.unwrap();
    }
    // Updates arrive until the final counts, far fewer than the 35 changes. (Their arrival
    // gaps are not asserted: updates sent while the writes above still ran wait in the
    // socket and are read back to back.)
    let started = tokio::time::Instant::now();
    let mut updates = Vec::new();
    loop {
        let data = c.next_data("s").await;
        updates.push((tokio::time::Instant::now(), data["videoStats"].clone()));
        if data["videoStats"] == json!({ "likeCount": 30, "commentCount": 5, "viewCount": 0 }) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{updates:?}");
    }
    assert!(
        updates.len() <= 10,
        "{} updates for 35 changes",
        updates.len()
    );
    // Nothing further once the counts are final.
    assert_eq!(c.recv_within(Duration::from_millis(800)).await, None);
}

#[tokio::test]
async fn identical_subscriptions_share_one_execution_per_event() {
    let stack = Stack::start().await;
    let owner = Uuid::now_v7();
    let video = ready_video(&stack, owner, Visibility::Public).await;
    let url = media_ws_url(stack.media_addr);
    let bodies =
        "subscription($v: ID!) { commentEvents(videoId: $v) { kind cursor comment { id body } } }";
    let ids_only = "subscription($v: ID!) { commentEvents(videoId: $v) { cursor comment { id } } }";

    // Three anonymous clients run the same document with the same variables (under
    // different operation ids), a fourth a different selection, and a signed-in viewer
    // the first document: the three share one execution; the other two execute their own.
    let mut same = Vec::new();
    for i in 0..3 {
        let mut client = WsClient::connect_init(&url, None).await;
        client
            .subscribe(&format!("s{i}"), bodies, json!({ "v": video }))
            .await;
        same.push(client);
    }
    let mut other = WsClient::connect_init(&url, None).await;
    other.subscribe("o", ids_only, json!({ "v": video })).await;
    let mut signed_in = WsClient::connect_init(&url, Some(&stack.token_for(owner, "owner"))).await;
    signed_in
        .subscribe("u", bodies, json!({ "v": video }))
        .await;
    testkit::wait_for("5 subscribers", Duration::from_secs(10), || async {
        (stack.media.realtime.hub.stats().subscribers == 5).then_some(())
    })
    .await;

    let counters = &stack.media.realtime.memo;
    for round in 0..2u64 {
        let (executed, shared) = (counters.executed(), counters.shared());
        let body = format!("shared {round}");
        let id = add_comment(stack.media_addr, Uuid::now_v7(), video, &body).await;
        let mut payloads = Vec::new();
        for (i, client) in same.iter_mut().enumerate() {
            payloads.push(client.next_data(&format!("s{i}")).await);
        }
        assert!(payloads.iter().all(|p| *p == payloads[0]), "{payloads:?}");
        let event = &payloads[0]["commentEvents"];
        assert_eq!(event["kind"], "ADDED");
        assert_eq!(event["comment"], json!({ "id": id, "body": body }));
        // A different selection over the same event gets its own payload.
        let mine = other.next_data("o").await;
        assert_eq!(
            mine["commentEvents"],
            json!({ "cursor": event["cursor"], "comment": { "id": id } })
        );
        assert_eq!(signed_in.next_data("u").await, payloads[0]);
        // One execution for the three identical ones, one each for the others.
        assert_eq!(counters.executed() - executed, 3, "round {round}");
        assert_eq!(counters.shared() - shared, 2, "round {round}");
    }
}
