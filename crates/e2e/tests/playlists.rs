//! Playlists through the gateway: every mutation and query, owner-only changes, bad input
//! that changes nothing, hidden videos keeping the order, "Watch later", and concurrent
//! adds and moves from two clients leaving one consistent order.

use e2e::Stack;
use events::video::VideoMetadata;
use serde_json::{Value, json};
use uuid::Uuid;

const PLAYLIST: &str = "id title description visibility kind itemCount owner { id }
    items(first: 100) { edges { node { position video { id } } } pageInfo { hasNextPage } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The ids of a playlist's items, in order.
fn items(playlist: &Value) -> Vec<String> {
    playlist["items"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["video"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `v`'s ids at `at`, in that order.
fn order(v: &[String], at: &[usize]) -> Vec<String> {
    at.iter().map(|&i| v[i].clone()).collect()
}

async fn videos(stack: &Stack, owner: Uuid, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let metadata = VideoMetadata {
            title: format!("Clip {i}"),
            ..Default::default()
        };
        ids.push(stack.publish_video(owner, metadata).await);
    }
    for id in &ids {
        stack.wait_video_ready(None, *id).await;
    }
    ids.iter().map(Uuid::to_string).collect()
}

async fn create(stack: &Stack, token: &str, title: &str, visibility: &str) -> Value {
    let data = stack
        .graphql_ok(
            Some(token),
            &format!(
                "mutation($t: String!, $v: PlaylistVisibility!) {{
                   createPlaylist(title: $t, description: \"d\", visibility: $v) {{ {PLAYLIST} }} }}"
            ),
            json!({ "t": title, "v": visibility }),
        )
        .await;
    data["createPlaylist"].clone()
}

async fn add(
    stack: &Stack,
    token: &str,
    playlist: &str,
    video: &str,
    position: Option<i32>,
) -> Value {
    stack
        .graphql(
            Some(token),
            &format!(
                "mutation($p: ID!, $v: ID!, $at: Int) {{
                   addToPlaylist(playlistId: $p, videoId: $v, position: $at) {{ {PLAYLIST} }} }}"
            ),
            json!({ "p": playlist, "v": video, "at": position }),
        )
        .await
}

async fn move_to(stack: &Stack, token: &str, playlist: &str, video: &str, position: i32) -> Value {
    stack
        .graphql(
            Some(token),
            &format!(
                "mutation($p: ID!, $v: ID!, $at: Int!) {{
                   movePlaylistItem(playlistId: $p, videoId: $v, position: $at) {{ {PLAYLIST} }} }}"
            ),
            json!({ "p": playlist, "v": video, "at": position }),
        )
        .await
}

async fn get(stack: &Stack, token: Option<&str>, playlist: &str) -> Value {
    let data = stack
        .graphql_ok(
            token,
            &format!("query($p: ID!) {{ playlist(id: $p) {{ {PLAYLIST} }} }}"),
            json!({ "p": playlist }),
        )
        .await;
    data["playlist"].clone()
}

#[tokio::test]
async fn owners_build_ordered_playlists_and_nobody_else_changes_them() {
    let stack = Stack::start().await;
    // A real account, so that `user(id)` finds its profile.
    let owner = stack.register("list_maker", "correct horse battery").await;
    let owner = Uuid::parse_str(owner["id"].as_str().unwrap()).unwrap();
    let token = stack.token_for(owner, "list_maker");
    let stranger = stack.token_for(Uuid::now_v7(), "stranger");
    let v = videos(&stack, Uuid::now_v7(), 4).await;

    let list = create(&stack, &token, "  Road trip  ", "PUBLIC").await;
    assert_eq!(list["title"], "Road trip");
    assert_eq!(
        (list["kind"].as_str(), list["itemCount"].as_i64()),
        (Some("CUSTOM"), Some(0))
    );
    let id = list["id"].as_str().unwrap().to_owned();

    // Appended, then one at the top.
    for video in &v[..3] {
        let body = add(&stack, &token, &id, video, None).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let body = add(&stack, &token, &id, &v[3], Some(0)).await;
    let list = &body["data"]["addToPlaylist"];
    assert_eq!(items(list), order(&v, &[3, 0, 1, 2]));
    assert_eq!(list["itemCount"], 4);
    // Move the first to the end.
    let body = move_to(&stack, &token, &id, &v[3], 3).await;
    assert_eq!(
        items(&body["data"]["movePlaylistItem"]),
        order(&v, &[0, 1, 2, 3])
    );

    // Bad input and other people: refused, nothing changes.
    let before = get(&stack, Some(&token), &id).await;
    for (body, expected) in [
        (
            add(&stack, &token, &id, &v[0], None).await,
            "BAD_USER_INPUT",
        ), // already in
        (
            add(&stack, &token, &id, &Uuid::now_v7().to_string(), None).await,
            "BAD_USER_INPUT",
        ),
        (
            add(&stack, &token, &id, "not-an-id", None).await,
            "BAD_USER_INPUT",
        ),
        (
            move_to(&stack, &token, &id, &v[0], 4).await,
            "BAD_USER_INPUT",
        ), // out of range
        (
            move_to(&stack, &token, &id, &v[0], -1).await,
            "BAD_USER_INPUT",
        ),
        (add(&stack, &stranger, &id, &v[0], None).await, "FORBIDDEN"),
        (move_to(&stack, &stranger, &id, &v[0], 2).await, "FORBIDDEN"),
    ] {
        assert_eq!(code(&body), expected, "{body}");
    }
    for (mutation, who) in [
        (
            "removeFromPlaylist(playlistId: $p, videoId: $v) { id }",
            Some(&stranger),
        ),
        (
            "removeFromPlaylist(playlistId: $p, videoId: $v) { id }",
            None,
        ),
    ] {
        let body = stack
            .graphql(
                who.map(String::as_str),
                &format!("mutation($p: ID!, $v: ID!) {{ {mutation} }}"),
                json!({ "p": id, "v": v[0] }),
            )
            .await;
        let expected = if who.is_some() {
            "FORBIDDEN"
        } else {
            "UNAUTHENTICATED"
        };
        assert_eq!(code(&body), expected, "{body}");
    }
    for (who, expected) in [
        (Some(stranger.as_str()), "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ] {
        let body = stack
            .graphql(
                who,
                "mutation($p: ID!) { updatePlaylist(id: $p, title: \"mine\") { id } }",
                json!({ "p": id }),
            )
            .await;
        assert_eq!(code(&body), expected, "{body}");
        let body = stack
            .graphql(
                who,
                "mutation($p: ID!) { deletePlaylist(id: $p) }",
                json!({ "p": id }),
            )
            .await;
        assert_eq!(code(&body), expected, "{body}");
    }
    let body = stack
        .graphql(
            Some(&token),
            "mutation($p: ID!) { updatePlaylist(id: $p, title: \"   \") { id } }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        get(&stack, Some(&token), &id).await,
        before,
        "nothing changed"
    );

    // The stranger sees it (public), also among the owner's playlists; private hides it.
    assert_eq!(items(&get(&stack, Some(&stranger), &id).await).len(), 4);
    let secret = create(&stack, &token, "Secret", "PRIVATE").await;
    let listed = |who: Option<String>| {
        let stack = &stack;
        async move {
            let data = stack
                .graphql_ok(
                    who.as_deref(),
                    "query($u: ID!) { user(id: $u) { playlists { edges { node { id } } } } }",
                    json!({ "u": owner }),
                )
                .await;
            data["user"]["playlists"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(listed(Some(stranger.clone())).await, vec![id.clone()]);
    assert_eq!(listed(None).await, vec![id.clone()]);
    let secret = secret["id"].as_str().unwrap().to_owned();
    assert_eq!(
        listed(Some(token.clone())).await,
        [secret, id.clone()],
        "newest first"
    );
    let data = stack
        .graphql_ok(
            Some(&token),
            "mutation($p: ID!) { updatePlaylist(id: $p, visibility: PRIVATE, description: \"new\") {
               visibility description title } }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(
        data["updatePlaylist"],
        json!({ "visibility": "PRIVATE", "description": "new", "title": "Road trip" })
    );
    assert!(get(&stack, Some(&stranger), &id).await.is_null());
    assert!(get(&stack, None, &id).await.is_null());

    // Remove (idempotent), then inPlaylists, then delete.
    for _ in 0..2 {
        let data = stack
            .graphql_ok(
                Some(&token),
                "mutation($p: ID!, $v: ID!) { removeFromPlaylist(playlistId: $p, videoId: $v) { itemCount } }",
                json!({ "p": id, "v": v[1] }),
            )
            .await;
        assert_eq!(data["removeFromPlaylist"]["itemCount"], 3);
    }
    assert_eq!(
        items(&get(&stack, Some(&token), &id).await),
        order(&v, &[0, 2, 3])
    );
    let in_playlists = |who: &str, video: &str| {
        let (who, video) = (who.to_owned(), video.to_owned());
        let stack = &stack;
        async move {
            let data = stack
                .graphql_ok(
                    Some(&who),
                    "query($v: ID!) { video(id: $v) { inPlaylists { id } } }",
                    json!({ "v": video }),
                )
                .await;
            data["video"]["inPlaylists"].as_array().unwrap().len()
        }
    };
    assert_eq!(in_playlists(&token, &v[0]).await, 1);
    assert_eq!(in_playlists(&token, &v[1]).await, 0);
    assert_eq!(in_playlists(&stranger, &v[0]).await, 0);
    let data = stack
        .graphql_ok(
            Some(&token),
            "mutation($p: ID!) { deletePlaylist(id: $p) }",
            json!({ "p": id }),
        )
        .await;
    assert_eq!(data["deletePlaylist"], true);
    assert!(get(&stack, Some(&token), &id).await.is_null());
}

#[tokio::test]
async fn hidden_videos_keep_the_order_and_watch_later_is_built_in() {
    let stack = Stack::start().await;
    let (owner, uploader) = (Uuid::now_v7(), Uuid::now_v7());
    let token = stack.token_for(owner, "owner");
    let uploader_token = stack.token_for(uploader, "uploader");
    let v = videos(&stack, uploader, 3).await;
    let id = create(&stack, &token, "Mix", "UNLISTED").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for video in &v {
        add(&stack, &token, &id, video, None).await;
    }
    // The middle video turns private: gone for the playlist's owner and anonymous
    // viewers, still there for its uploader, positions unchanged.
    stack
        .graphql_ok(
            Some(&uploader_token),
            "mutation($v: ID!) { updateVideo(id: $v, input: { visibility: PRIVATE }) { id } }",
            json!({ "v": v[1] }),
        )
        .await;
    testkit::wait_for(
        "the video hidden",
        std::time::Duration::from_secs(20),
        || async { (items(&get(&stack, None, &id).await).len() == 2).then_some(()) },
    )
    .await;
    let seen = get(&stack, Some(&token), &id).await;
    assert_eq!(items(&seen), order(&v, &[0, 2]));
    let positions: Vec<i64> = seen["items"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [0, 2]);
    assert_eq!(seen["itemCount"], 3);
    assert_eq!(
        items(&get(&stack, Some(&uploader_token), &id).await).len(),
        3
    );
    // A private video of someone else cannot be added.
    let other = create(&stack, &token, "Other", "PRIVATE").await;
    let body = add(&stack, &token, other["id"].as_str().unwrap(), &v[1], None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // Watch later: null until used, then private, fixed, listed among the viewer's own.
    let data = stack
        .graphql_ok(Some(&token), "{ watchLater { id } }", json!({}))
        .await;
    assert!(data["watchLater"].is_null());
    let body = stack
        .graphql(None, "{ watchLater { id } }", json!({}))
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    for video in order(&v, &[2, 0]) {
        stack
            .graphql_ok(
                Some(&token),
                "mutation($v: ID!) { addToWatchLater(videoId: $v) { id } }",
                json!({ "v": video }),
            )
            .await;
    }
    let data = stack
        .graphql_ok(
            Some(&token),
            &format!("{{ watchLater {{ {PLAYLIST} }} }}"),
            json!({}),
        )
        .await;
    let later = &data["watchLater"];
    assert_eq!(
        (later["kind"].as_str(), later["visibility"].as_str()),
        (Some("WATCH_LATER"), Some("PRIVATE"))
    );
    assert_eq!(items(later), order(&v, &[2, 0]));
    let later_id = later["id"].as_str().unwrap();
    for mutation in [
        "updatePlaylist(id: $p, title: \"x\") { id }",
        "deletePlaylist(id: $p)",
    ] {
        let body = stack
            .graphql(
                Some(&token),
                &format!("mutation($p: ID!) {{ {mutation} }}"),
                json!({ "p": later_id }),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    assert!(get(&stack, Some(&uploader_token), later_id).await.is_null());
}

#[tokio::test]
async fn concurrent_adds_and_moves_from_two_clients_leave_one_order() {
    let stack = Stack::start().await;
    let owner = Uuid::now_v7();
    let token = stack.token_for(owner, "owner");
    let v = videos(&stack, Uuid::now_v7(), 12).await;
    let id = create(&stack, &token, "Busy", "PRIVATE").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for video in &v[..4] {
        add(&stack, &token, &id, video, None).await;
    }
    // Two clients at once: one adds the other eight (some twice, at the top), the other
    // keeps moving the first four around.
    let adder = async {
        for (i, video) in v[4..].iter().chain(v[4..8].iter()).enumerate() {
            add(&stack, &token, &id, video, Some((i % 3) as i32)).await;
        }
    };
    let mover = async {
        for round in 0..24 {
            let video = &v[round % 4];
            move_to(&stack, &token, &id, video, (round % 4) as i32).await;
        }
    };
    tokio::join!(adder, mover);
    let list = get(&stack, Some(&token), &id).await;
    let got = items(&list);
    let unique: std::collections::HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 12, "{got:?}");
    assert_eq!(unique.len(), 12, "no duplicates: {got:?}");
    let positions: Vec<i64> = list["items"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["position"].as_i64().unwrap())
        .collect();
    assert_eq!(
        positions,
        (0..12).collect::<Vec<_>>(),
        "positions without gaps"
    );
    assert_eq!(list["itemCount"], 12);
}

#[tokio::test]
async fn the_ten_thousand_and_first_item_is_refused_and_changes_nothing() {
    let stack = Stack::start().await;
    let owner = Uuid::now_v7();
    let token = stack.token_for(owner, "owner");
    let v = videos(&stack, Uuid::now_v7(), 1).await;
    let id = create(&stack, &token, "Full", "PRIVATE").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 10,000 items straight into the table (adding them one by one would take minutes);
    // their videos are unknown to the catalogue, so nobody sees them, as with deleted ones.
    let playlist = Uuid::parse_str(&id).unwrap();
    let pool = stack.media.db.pool();
    sqlx::query(
        "INSERT INTO playlist_items (playlist_id, video_id, position)
         SELECT $1, gen_random_uuid(), p FROM generate_series(0, 9999) AS p",
    )
    .bind(playlist)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE playlists SET item_count = 10000 WHERE id = $1")
        .bind(playlist)
        .execute(pool)
        .await
        .unwrap();

    let body = add(&stack, &token, &id, &v[0], None).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("10000"), "{message}");
    let after = get(&stack, Some(&token), &id).await;
    assert_eq!(after["itemCount"], 10_000);
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM playlist_items WHERE playlist_id = $1")
            .bind(playlist)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(stored, 10_000);
    // Room again after one leaves.
    let gone: Uuid = sqlx::query_scalar(
        "SELECT video_id FROM playlist_items WHERE playlist_id = $1 AND position = 0",
    )
    .bind(playlist)
    .fetch_one(pool)
    .await
    .unwrap();
    stack
        .graphql_ok(
            Some(&token),
            "mutation($p: ID!, $v: ID!) { removeFromPlaylist(playlistId: $p, videoId: $v) { id } }",
            json!({ "p": id, "v": gone }),
        )
        .await;
    let body = add(&stack, &token, &id, &v[0], Some(0)).await;
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["addToPlaylist"]["itemCount"], 10_000);
    assert_eq!(items(&body["data"]["addToPlaylist"]), v);
}
