//! Trust and safety through the gateway: reports, the moderators' queue, hiding a video
//! (gone from feed, search, trending, related, its page and its HLS; back when unhidden),
//! bans (the WebSocket closes, the tokens die, login is refused, the content is gone;
//! back when lifted), and an audit log only admins read and nobody can edit. Roles come
//! from auth alone: a user who claims one in a header gets nothing.

mod video_common;

use std::time::{Duration, Instant};

use e2e::Stack;
use reqwest::Client;
use serde_json::{Value, json};
use tokio::process::Command;
use uuid::Uuid;
use video_common::*;

const REPORT: &str = "mutation($kind: ReportTargetKind!, $id: ID!, $reason: ReportReason!, $details: String) {
    report(input: { targetKind: $kind, targetId: $id, reason: $reason, details: $details }) { id state } }";
const QUEUE: &str = "query($state: ReportState!) { moderationQueue(state: $state) { edges { node {
    id targetKind targetId reason details state reporter { username } video { id title } } } } }";
const HIDE: &str = "mutation($id: ID!, $why: String!, $report: ID) {
    hideVideo(videoId: $id, reason: $why, reportId: $report) { id action targetId reason moderator { username } } }";
const UNHIDE: &str =
    "mutation($id: ID!, $why: String!) { unhideVideo(videoId: $id, reason: $why) { id action } }";
const BAN: &str =
    "mutation($id: ID!, $why: String!) { banUser(userId: $id, reason: $why) { id action } }";
const UNBAN: &str =
    "mutation($id: ID!, $why: String!) { unbanUser(userId: $id, reason: $why) { id action } }";
const LOG: &str = "{ moderationLog(first: 10) { edges { node { action targetId reason reportId moderator { username } } } } }";
const VIDEO: &str = "query($id: ID!) { video(id: $id) { id hlsUrl hidden { reason } } }";

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Makes `username` an admin with the operator's command (`auth grant-admin`).
async fn grant_admin(stack: &Stack, username: &str) {
    let made = Command::new(e2e::service_binary("auth"))
        .args(["grant-admin", username])
        .env("DATABASE_URL", stack.auth_database_url())
        .output()
        .await
        .unwrap();
    assert!(made.status.success(), "{made:?}");
}

/// An admin (made by the operator's command) and a moderator the admin appointed:
/// (admin token, moderator token).
async fn staff(stack: &Stack) -> (String, String) {
    stack.register("root", PASSWORD).await;
    let warden = stack.register("warden", PASSWORD).await;
    grant_admin(stack, "root").await;
    let root = stack.login("root", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let granted = Client::new()
        .put(stack.url(&format!(
            "/user/admin/moderators/{}",
            warden["id"].as_str().unwrap()
        )))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 200);
    let warden = stack.login("warden", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (root, warden)
}

/// Uploads a short clip as `token`'s user, through tus, and waits until it plays.
async fn upload(stack: &Stack, token: &str, title: &str) -> String {
    let file = scratch(stack).join(format!("{title}.mp4").replace(' ', "_"));
    generate_video(&file, "256x144", 2, "200k", false);
    let meta = format!("title={title}");
    let report = tus(stack, token, &file, 1 << 20, &["--meta", &meta]).await;
    let id = video_id(report["url"].as_str().unwrap());
    wait_for_status(stack, &id, token, "ready", Duration::from_secs(90)).await;
    stack
        .wait_video_ready(Some(token), id.parse().unwrap())
        .await;
    id
}

/// HTTP status of a GET through the gateway, as `token`'s user (anonymous without).
async fn get(stack: &Stack, path: &str, token: Option<&str>) -> u16 {
    let mut request = Client::new().get(stack.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

fn ids(list: &Value) -> Vec<String> {
    let items = list.get("edges").map_or(list, |edges| edges);
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| {
            let video = item.get("node").unwrap_or(item);
            video["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Where an anonymous viewer finds videos: feed, search, trending, related (to `other`).
async fn listed_in(stack: &Stack, video: &str, other: &str) -> Vec<&'static str> {
    let data = stack
        .graphql_ok(
            None,
            "query($other: ID!) {
                feed(first: 50) { edges { node { id } } }
                search(query: \"lighthouse\", first: 50) { edges { node { id } } }
                trending(window: HOUR, limit: 50) { id }
                related(videoId: $other, first: 20) { id } }",
            json!({ "other": other }),
        )
        .await;
    ["feed", "search", "trending", "related"]
        .into_iter()
        .filter(|list| ids(&data[*list]).iter().any(|id| id == video))
        .collect()
}

#[tokio::test]
async fn reported_video_is_hidden_from_every_list_and_playback_then_restored() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stack = Stack::start_configured(
        |_| {},
        |media| media.recommender_url = format!("http://{addr}"),
    )
    .await;
    stack
        .start_recommender(stack.recommender_config(), listener)
        .await;
    stack.start_ranker(stack.ranker_config()).await;
    stack.start_transcoder().await;
    let (_, creator) = user(&stack, "creator").await;
    let (_, reporter) = user(&stack, "reporter").await;
    let (admin, moderator) = staff(&stack).await;

    let video = upload(&stack, &creator, "Lighthouse at dusk").await;
    let other = upload(&stack, &creator, "Lighthouse keeper stories").await;
    let view = "mutation($id: ID!) { recordView(videoId: $id) }";
    stack
        .graphql_ok(Some(&reporter), view, json!({ "id": video }))
        .await;
    let everywhere = vec!["feed", "search", "trending", "related"];
    testkit::wait_for("listed everywhere", Duration::from_secs(120), || async {
        (listed_in(&stack, &video, &other).await == everywhere).then_some(())
    })
    .await;
    let data = stack.graphql_ok(None, VIDEO, json!({ "id": video })).await;
    let hls = data["video"]["hlsUrl"].as_str().unwrap().to_owned();
    assert_eq!(get(&stack, &hls, None).await, 200);
    assert_eq!(data["video"]["hidden"], Value::Null);

    // A user reports it; reporting again is the same open report. Bad input changes
    // nothing.
    let vars = json!({ "kind": "VIDEO", "id": video, "reason": "SPAM", "details": "link farm" });
    let first = stack
        .graphql_ok(Some(&reporter), REPORT, vars.clone())
        .await;
    let again = stack.graphql_ok(Some(&reporter), REPORT, vars).await;
    assert_eq!(first["report"]["id"], again["report"]["id"]);
    assert_eq!(first["report"]["state"], "OPEN");
    let report = first["report"]["id"].as_str().unwrap().to_owned();
    let long = "x".repeat(2_001);
    for (vars, want) in [
        (
            json!({ "kind": "VIDEO", "id": video, "reason": "SPAM", "details": long }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "kind": "VIDEO", "id": Uuid::now_v7(), "reason": "SPAM" }),
            "NOT_FOUND",
        ),
        (
            json!({ "kind": "USER", "id": "not-an-id", "reason": "OTHER" }),
            "BAD_USER_INPUT",
        ),
    ] {
        let body = stack.graphql(Some(&reporter), REPORT, vars).await;
        assert_eq!(code(&body), want, "{body}");
    }
    let body = stack
        .graphql(
            None,
            REPORT,
            json!({ "kind": "VIDEO", "id": video, "reason": "SPAM" }),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // Users reach no moderator query or action, whatever header they send: the gateway
    // strips their X-User-Roles, in any spelling.
    let hide_vars = json!({ "id": video, "why": "spam", "report": report });
    for header in ["X-User-Roles", "x_user_roles", "X-USER-ROLES"] {
        for (query, vars) in [
            (QUEUE, json!({ "state": "OPEN" })),
            (HIDE, hide_vars.clone()),
            (LOG, json!({})),
        ] {
            let body: Value = Client::new()
                .post(stack.url("/media/graphql"))
                .bearer_auth(&reporter)
                .header(header, "moderator,admin")
                .json(&json!({ "query": query, "variables": vars }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(code(&body), "FORBIDDEN", "{header}: {body}");
        }
    }
    assert_eq!(listed_in(&stack, &video, &other).await, everywhere);

    // The moderator's queue has it, with the reporter and the video.
    let data = stack
        .graphql_ok(Some(&moderator), QUEUE, json!({ "state": "OPEN" }))
        .await;
    let queued = &data["moderationQueue"]["edges"][0]["node"];
    assert_eq!(queued["id"], report.as_str(), "{data}");
    assert_eq!(queued["reporter"]["username"], "reporter");
    assert_eq!(queued["video"]["title"], "Lighthouse at dusk");
    assert_eq!(queued["details"], "link farm");

    // Hidden: gone from every list, its page and its HLS for everyone but the owner,
    // who reads why.
    let data = stack.graphql_ok(Some(&moderator), HIDE, hide_vars).await;
    let decided = Instant::now();
    assert_eq!(data["hideVideo"]["action"], "HIDE_VIDEO");
    assert_eq!(data["hideVideo"]["moderator"]["username"], "warden");
    testkit::wait_for("hidden everywhere", Duration::from_secs(5), || async {
        (listed_in(&stack, &video, &other).await.is_empty()
            && get(&stack, &hls, None).await == 404
            && get(&stack, &hls, Some(&reporter)).await == 404)
            .then_some(())
    })
    .await;
    // Recorded, not asserted (timings belong to bench/): the issue asks for < 1 s.
    eprintln!(
        "hidden everywhere {:?} after hideVideo answered",
        decided.elapsed()
    );
    let seen = stack
        .graphql_ok(Some(&reporter), VIDEO, json!({ "id": video }))
        .await;
    assert_eq!(seen["video"], Value::Null);
    let owned = stack
        .graphql_ok(Some(&creator), VIDEO, json!({ "id": video }))
        .await;
    assert_eq!(owned["video"]["hidden"]["reason"], "spam");
    // The owner is told, with the reason.
    assert_eq!(
        moderation_notices(&stack, &creator).await,
        [json!({ "kind": "VIDEO_HIDDEN", "detail": "spam", "video": { "id": video } })]
    );
    assert_eq!(get(&stack, &hls, Some(&creator)).await, 200);
    let open = stack
        .graphql_ok(Some(&moderator), QUEUE, json!({ "state": "OPEN" }))
        .await;
    assert_eq!(ids(&open["moderationQueue"]), Vec::<String>::new());
    let resolved = stack
        .graphql_ok(Some(&moderator), QUEUE, json!({ "state": "RESOLVED" }))
        .await;
    assert_eq!(ids(&resolved["moderationQueue"]), vec![report.clone()]);

    // Unhidden: back everywhere.
    stack
        .graphql_ok(
            Some(&moderator),
            UNHIDE,
            json!({ "id": video, "why": "appeal upheld" }),
        )
        .await;
    testkit::wait_for("listed again", Duration::from_secs(5), || async {
        (listed_in(&stack, &video, &other).await == everywhere
            && get(&stack, &hls, None).await == 200)
            .then_some(())
    })
    .await;
    // The owner is told of that too, with the reason. Unhiding a visible video is bad
    // input and changes nothing (no notice; the log below has one UNHIDE_VIDEO).
    let told = [
        json!({ "kind": "VIDEO_RESTORED", "detail": "appeal upheld", "video": { "id": video } }),
        json!({ "kind": "VIDEO_HIDDEN", "detail": "spam", "video": { "id": video } }),
    ];
    assert_eq!(
        moderation_notices(&stack, &creator).await,
        told,
        "newest first"
    );
    let again = stack
        .graphql(
            Some(&moderator),
            UNHIDE,
            json!({ "id": video, "why": "again" }),
        )
        .await;
    assert_eq!(code(&again), "BAD_USER_INPUT", "{again}");
    assert_eq!(moderation_notices(&stack, &creator).await, told);

    // A reported comment is removed; another report is dismissed.
    let comment = "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }";
    let data = stack
        .graphql_ok(
            Some(&creator),
            comment,
            json!({ "v": other, "b": "click my link" }),
        )
        .await;
    let spam = data["addComment"]["id"].as_str().unwrap().to_owned();
    let reported = stack
        .graphql_ok(
            Some(&reporter),
            REPORT,
            json!({ "kind": "COMMENT", "id": spam, "reason": "SPAM" }),
        )
        .await;
    let comment_report = reported["report"]["id"].as_str().unwrap().to_owned();
    let reported = stack
        .graphql_ok(
            Some(&reporter),
            REPORT,
            json!({ "kind": "VIDEO", "id": other, "reason": "COPYRIGHT" }),
        )
        .await;
    let video_report = reported["report"]["id"].as_str().unwrap().to_owned();
    let remove = "mutation($id: ID!, $why: String!, $report: ID) {
        removeComment(commentId: $id, reason: $why, reportId: $report) { action } }";
    let body = stack
        .graphql(
            Some(&reporter),
            remove,
            json!({ "id": spam, "why": "spam" }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let data = stack
        .graphql_ok(
            Some(&moderator),
            remove,
            json!({ "id": spam, "why": "spam", "report": comment_report }),
        )
        .await;
    assert_eq!(data["removeComment"]["action"], "REMOVE_COMMENT");
    let data = stack
        .graphql_ok(
            None,
            "query($v: ID!) { comments(videoId: $v) { edges { node { deleted body } } } }",
            json!({ "v": other }),
        )
        .await;
    assert_eq!(
        data["comments"]["edges"][0]["node"],
        json!({ "deleted": true, "body": null })
    );
    let dismiss = "mutation($id: ID!, $why: String!) { dismissReport(reportId: $id, reason: $why) { action } }";
    stack
        .graphql_ok(
            Some(&moderator),
            dismiss,
            json!({ "id": video_report, "why": "own work" }),
        )
        .await;
    let body = stack
        .graphql(
            Some(&moderator),
            dismiss,
            json!({ "id": video_report, "why": "twice" }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let dismissed = stack
        .graphql_ok(Some(&moderator), QUEUE, json!({ "state": "DISMISSED" }))
        .await;
    assert_eq!(
        ids(&dismissed["moderationQueue"]),
        vec![video_report.clone()]
    );
    assert_eq!(listed_in(&stack, &other, &video).await, everywhere);

    // The audit log: admins read it (newest first), moderators do not, nobody edits it.
    let body = stack.graphql(Some(&moderator), LOG, json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN");
    let data = stack.graphql_ok(Some(&admin), LOG, json!({})).await;
    let entries: Vec<&Value> = data["moderationLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "DISMISS_REPORT",
            "REMOVE_COMMENT",
            "UNHIDE_VIDEO",
            "HIDE_VIDEO"
        ],
        "{data}"
    );
    assert_eq!(entries[2]["reason"], "appeal upheld");
    assert_eq!(entries[3]["reportId"], report.as_str());
    assert_eq!(entries[3]["moderator"]["username"], "warden");
    assert_eq!(entries[1]["reportId"], comment_report.as_str());
    let db = sqlx::PgPool::connect(&format!("{}_media", stack.env.database_url))
        .await
        .unwrap();
    for statement in [
        "UPDATE moderation_log SET reason = 'nothing happened'",
        "DELETE FROM moderation_log",
        "TRUNCATE moderation_log",
    ] {
        let refused = sqlx::query(statement).execute(&db).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{refused}");
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM moderation_log")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(kept, 4);
}

#[tokio::test]
async fn a_ban_closes_the_socket_kills_the_tokens_and_hides_the_content_until_lifted() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (offender, offender_token) = user(&stack, "offender").await;
    let (_, viewer) = user(&stack, "viewer").await;
    let (_, moderator) = staff(&stack).await;
    let offender_session = stack.login("offender", PASSWORD).await;
    let refresh = offender_session["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let video = upload(&stack, &offender_token, "Offending clip").await;
    let viewers_video = upload(&stack, &viewer, "Innocent clip").await;
    let comment = "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }";
    stack
        .graphql_ok(
            Some(&offender_token),
            comment,
            json!({ "v": viewers_video, "b": "rude words" }),
        )
        .await;
    stack
        .graphql_ok(
            Some(&viewer),
            comment,
            json!({ "v": viewers_video, "b": "nice" }),
        )
        .await;
    let thread = "query($v: ID!) { comments(videoId: $v) { edges { node { body } } } }";
    let bodies = |data: Value| -> Vec<String> {
        data["comments"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["body"].as_str().unwrap().to_owned())
            .collect()
    };
    let feed = "{ feed(first: 50) { edges { node { id } } } }";
    let data = stack.graphql_ok(None, VIDEO, json!({ "id": video })).await;
    let hls = data["video"]["hlsUrl"].as_str().unwrap().to_owned();

    // The offender is connected live (graphql-ws, the token in connection_init).
    let mut socket = e2e::ws::WsClient::connect_init(
        &stack.url("/media/graphql/ws").replace("http://", "ws://"),
        Some(&offender_token),
    )
    .await;
    socket
        .subscribe("n", "subscription { notificationAdded { id } }", json!({}))
        .await;

    let data = stack
        .graphql_ok(
            Some(&moderator),
            BAN,
            json!({ "id": offender, "why": "harassment" }),
        )
        .await;
    assert_eq!(data["banUser"]["action"], "BAN_USER");

    // The socket closes; the tokens die; login and refresh are refused.
    let (close, reason) = tokio::time::timeout(Duration::from_secs(5), socket.closed())
        .await
        .expect("the banned user's socket closed");
    assert_eq!(close, 4403, "{reason}");
    testkit::wait_for("tokens denied", Duration::from_secs(5), || async {
        let body = Client::new()
            .post(stack.url("/media/graphql"))
            .bearer_auth(&offender_token)
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .unwrap();
        (body.status() == 401).then_some(())
    })
    .await;
    let login = Client::new()
        .post(stack.url("/auth/login"))
        .json(&json!({ "login": "offender", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403);
    let refreshed = Client::new()
        .post(stack.url("/auth/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 401);

    // The content is gone: the video from the feed, its page and its HLS; the comment
    // from the thread.
    testkit::wait_for("content hidden", Duration::from_secs(5), || async {
        let listed = ids(&stack.graphql_ok(None, feed, json!({})).await["feed"]);
        let thread = bodies(
            stack
                .graphql_ok(Some(&viewer), thread, json!({ "v": viewers_video }))
                .await,
        );
        (!listed.contains(&video)
            && listed.contains(&viewers_video)
            && thread == ["nice"]
            && get(&stack, &hls, Some(&viewer)).await == 404)
            .then_some(())
    })
    .await;
    let seen = stack
        .graphql_ok(Some(&viewer), VIDEO, json!({ "id": video }))
        .await;
    assert_eq!(seen["video"], Value::Null);

    // Lifted: the account signs in again and everything is back.
    stack
        .graphql_ok(
            Some(&moderator),
            UNBAN,
            json!({ "id": offender, "why": "served" }),
        )
        .await;
    testkit::wait_for("ban lifted", Duration::from_secs(5), || async {
        let login = Client::new()
            .post(stack.url("/auth/login"))
            .json(&json!({ "login": "offender", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let listed = ids(&stack.graphql_ok(None, feed, json!({})).await["feed"]);
        let thread = bodies(
            stack
                .graphql_ok(Some(&viewer), thread, json!({ "v": viewers_video }))
                .await,
        );
        (login.status() == 200
            && listed.contains(&video)
            && thread.len() == 2
            && get(&stack, &hls, None).await == 200)
            .then_some(())
    })
    .await;
    // The old token stays dead.
    let old = Client::new()
        .post(stack.url("/media/graphql"))
        .bearer_auth(&offender_token)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
}

/// Staff are banned only by those above them: a moderator bans neither an admin nor
/// another moderator, an admin bans a moderator, nobody bans an admin. The target's roles
/// are asked of auth at the time: a role granted after media cached the profile counts.
#[tokio::test]
async fn staff_are_banned_only_by_those_above_them() {
    let stack = Stack::start().await;
    let (root, warden) = staff(&stack).await;
    let deputy = stack.register("deputy", PASSWORD).await;
    let deputy = deputy["id"].as_str().unwrap().to_owned();
    let id_of = |token: String| {
        let stack = &stack;
        async move {
            stack
                .graphql_ok(Some(&token), "{ me { id } }", json!({}))
                .await["me"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let root_id = id_of(root.clone()).await;
    // Media caches deputy's profile while deputy holds no role.
    let cached = stack
        .graphql_ok(
            None,
            "query($id: ID!) { user(id: $id) { username } }",
            json!({ "id": deputy }),
        )
        .await;
    assert_eq!(cached["user"]["username"], "deputy");
    let granted = Client::new()
        .put(stack.url(&format!("/user/admin/moderators/{deputy}")))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 200);

    for (who, whom, why) in [
        (&warden, &root_id, "an admin"),
        (&warden, &deputy, "another moderator"),
    ] {
        let body = ban(&stack, who, whom).await;
        assert_eq!(
            code(&body),
            "FORBIDDEN",
            "a moderator banning {why}: {body}"
        );
    }
    // Refused changes nothing: the log (written in the ban's transaction) has no ban.
    let log = stack.graphql_ok(Some(&root), LOG, json!({})).await;
    assert_eq!(log["moderationLog"]["edges"], json!([]), "{log}");

    // An admin bans a moderator, but not another admin.
    let banned = ban(&stack, &root, &deputy).await;
    assert_eq!(banned["data"]["banUser"]["action"], "BAN_USER", "{banned}");
    let second = stack.register("root2", PASSWORD).await;
    grant_admin(&stack, "root2").await;
    let body = ban(&stack, &root, second["id"].as_str().unwrap()).await;
    assert_eq!(
        code(&body),
        "FORBIDDEN",
        "an admin banning an admin: {body}"
    );
    let body = ban(&stack, &root, &root_id).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "banning oneself: {body}");
}

/// The moderation notices of `token`'s user (`VIDEO_HIDDEN`, `VIDEO_RESTORED`), newest
/// first.
async fn moderation_notices(stack: &Stack, token: &str) -> Vec<Value> {
    let told = stack
        .graphql_ok(
            Some(token),
            "{ notifications(first: 10) { edges { node { kind detail video { id } } } } }",
            json!({}),
        )
        .await;
    told["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|n| n["kind"] == "VIDEO_HIDDEN" || n["kind"] == "VIDEO_RESTORED")
        .collect()
}

/// `banUser` as `token`'s user; the whole answer.
async fn ban(stack: &Stack, token: &str, user: &str) -> Value {
    let variables = json!({ "id": user, "why": "testing who may ban whom" });
    stack.graphql(Some(token), BAN, variables).await
}

const COMMENT: &str =
    "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id held } }";
const THREAD: &str = "query($v: ID!) { comments(videoId: $v) { edges { node { body held } } } }";
const COUNT: &str = "query($v: ID!) { video(id: $v) { commentCount } }";

/// The bodies of a video's comments as `token`'s user sees them.
async fn thread(stack: &Stack, token: Option<&str>, video: Uuid) -> Vec<String> {
    let data = stack.graphql_ok(token, THREAD, json!({ "v": video })).await;
    data["comments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn held_comments_wait_for_the_owner_and_blocks_keep_users_out() {
    let stack = Stack::start().await;
    let (host_id, host) = user(&stack, "host").await;
    let (troll_id, troll) = user(&stack, "troll").await;
    let (_, fan) = user(&stack, "fan").await;
    let video = stack
        .publish_video(
            host_id.parse().unwrap(),
            events::video::VideoMetadata {
                title: "Season finale".into(),
                ..Default::default()
            },
        )
        .await;
    stack.wait_video_ready(None, video).await;

    let set = "mutation($w: [String!]!) { setHeldWords(words: $w) }";
    let data = stack
        .graphql_ok(
            Some(&host),
            set,
            json!({ "w": ["Spoiler", "buy  NOW", "spoiler"] }),
        )
        .await;
    assert_eq!(data["setHeldWords"], json!(["buy now", "spoiler"]));
    let body = stack
        .graphql(Some(&host), set, json!({ "w": ["  !! "] }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let data = stack
        .graphql_ok(Some(&host), "{ heldWords }", json!({}))
        .await;
    assert_eq!(data["heldWords"], json!(["buy now", "spoiler"]));

    // A fan watches the thread live (graphql-ws, as browsers do).
    let live = e2e::ws::graphql_ws(
        &stack,
        "subscription($v: ID!) { commentEvents(videoId: $v) { kind comment { body } } }",
        json!({ "v": video }),
        Some(&fan),
        2,
    );
    testkit::wait_for("watching live", Duration::from_secs(20), || async {
        (stack.media.realtime.hub.stats().channels >= 1).then_some(())
    })
    .await;

    // The troll's comment is held: its author and the host see it, nobody else does,
    // and it is not counted.
    let data = stack
        .graphql_ok(
            Some(&troll),
            COMMENT,
            json!({ "v": video, "b": "Huge SPOILER: the butler did it" }),
        )
        .await;
    assert_eq!(data["addComment"]["held"], true);
    let held = data["addComment"]["id"].as_str().unwrap().to_owned();
    let spoiler = vec!["Huge SPOILER: the butler did it".to_owned()];
    assert_eq!(thread(&stack, Some(&troll), video).await, spoiler);
    assert_eq!(thread(&stack, Some(&host), video).await, spoiler);
    assert!(thread(&stack, Some(&fan), video).await.is_empty());
    assert!(thread(&stack, None, video).await.is_empty());
    let count = stack.graphql_ok(None, COUNT, json!({ "v": video })).await;
    assert_eq!(count["video"]["commentCount"], 0);

    // The fan comments; then the host approves the held one, which appears live.
    stack
        .graphql_ok(
            Some(&fan),
            COMMENT,
            json!({ "v": video, "b": "What an ending" }),
        )
        .await;
    let approve = "mutation($id: ID!) { approveComment(id: $id) { held } }";
    let body = stack
        .graphql(Some(&troll), approve, json!({ "id": held }))
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let data = stack
        .graphql_ok(Some(&host), approve, json!({ "id": held }))
        .await;
    assert_eq!(data["approveComment"]["held"], false);
    let body = stack
        .graphql(Some(&host), approve, json!({ "id": held }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    let received = e2e::ws::graphql_ws_results(live).await;
    let seen: Vec<(&str, &str)> = received
        .iter()
        .map(|r| {
            let event = &r["data"]["commentEvents"];
            (
                event["kind"].as_str().unwrap(),
                event["comment"]["body"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED", "What an ending"),
            ("ADDED", "Huge SPOILER: the butler did it")
        ]
    );
    assert_eq!(thread(&stack, None, video).await.len(), 2);
    let count = stack.graphql_ok(None, COUNT, json!({ "v": video })).await;
    assert_eq!(count["video"]["commentCount"], 2);

    // The host blocks the troll from commenting; lifting it lets them back.
    let block = "mutation($u: ID!) { blockFromChannel(userId: $u) }";
    let unblock = "mutation($u: ID!) { unblockFromChannel(userId: $u) }";
    stack
        .graphql_ok(Some(&host), block, json!({ "u": troll_id }))
        .await;
    let body = stack
        .graphql(
            Some(&troll),
            COMMENT,
            json!({ "v": video, "b": "let me in" }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let data = stack
        .graphql_ok(Some(&host), "{ channelBlocks { username } }", json!({}))
        .await;
    assert_eq!(data["channelBlocks"], json!([{ "username": "troll" }]));
    stack
        .graphql_ok(Some(&host), unblock, json!({ "u": troll_id }))
        .await;
    stack
        .graphql_ok(
            Some(&troll),
            COMMENT,
            json!({ "v": video, "b": "behaving now" }),
        )
        .await;

    // The fan blocks the troll: the troll's comments are gone for the fan alone.
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($u: ID!) { blockUser(userId: $u) }",
            json!({ "u": troll_id }),
        )
        .await;
    assert_eq!(thread(&stack, Some(&fan), video).await, ["What an ending"]);
    assert_eq!(thread(&stack, None, video).await.len(), 3);
    let body = stack
        .graphql(
            Some(&fan),
            "mutation($u: ID!) { blockUser(userId: $u) }",
            json!({ "u": Uuid::now_v7() }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($u: ID!) { unblockUser(userId: $u) }",
            json!({ "u": troll_id }),
        )
        .await;
    assert_eq!(thread(&stack, Some(&fan), video).await.len(), 3);
}
