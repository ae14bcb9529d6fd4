//! Email verification and password reset, through the gateway, with mail delivered over
//! SMTP to the local stack's sink (deploy/local/smtp_sink.py, started by
//! deploy/local/deps): the tests read the links out of the messages the sink received,
//! as a user would from their mailbox. Every test uses addresses of its own, so tests
//! running at once never read each other's mail.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use e2e::Stack;
use platform::rate_limit::Rate;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "staple grass orange";
const VERIFY_SUBJECT: &str = "Confirm your email address for Kino";
const RESET_SUBJECT: &str = "Reset your Kino password";

/// Where the sink keeps mail: `KINO_MAIL_DIR` (deploy/local/lib.sh), else the machine
/// cache's (its default there).
fn mail_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KINO_MAIL_DIR") {
        return dir.into();
    }
    let cache = std::env::var_os("KINO_CACHE_DIR").unwrap_or_else(|| "/var/tmp/kino".into());
    PathBuf::from(cache).join("mail")
}

/// A new username and its address (`Stack::register` registers `<username>@example.com`).
fn someone(prefix: &str) -> (String, String) {
    let username = format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let email = format!("{username}@example.com");
    (username, email)
}

/// Every message the sink received for `address`, oldest first.
fn mails(address: &str) -> Vec<Value> {
    let dir = mail_dir().join(address.to_lowercase());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    // <nanoseconds>-<n>.json: the sink's arrival order.
    names.sort_by_key(|p| {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let (ns, n) = name.split_once('-').unwrap();
        (ns.parse::<u128>().unwrap(), n.parse::<u64>().unwrap())
    });
    names
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// The messages with `subject` for `address`, once there are at least `n`.
async fn wait_mails(address: &str, subject: &str, n: usize) -> Vec<Value> {
    testkit::wait_for(
        &format!("{n} mail(s) '{subject}' for {address} at the SMTP sink (deploy/local/deps)"),
        Duration::from_secs(30),
        || async move {
            let found: Vec<Value> = mails(address)
                .into_iter()
                .filter(|m| m["subject"] == subject)
                .collect();
            (found.len() >= n).then_some(found)
        },
    )
    .await
}

/// The token of the link to `page` in a mail.
fn token_in(mail: &Value, page: &str) -> String {
    let text = mail["text"].as_str().unwrap();
    let marker = format!("/{page}?token=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {text}"))
        + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "a 256-bit token, base64url: {text}");
    token
}

async fn post(stack: &Stack, path: &str, body: Value) -> Response {
    Client::new()
        .post(stack.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn forgot(stack: &Stack, email: &str) -> Response {
    post(stack, "/auth/password/forgot", json!({ "email": email })).await
}

async fn reset(stack: &Stack, token: &str, password: &str) -> Response {
    post(
        stack,
        "/auth/password/reset",
        json!({ "token": token, "password": password }),
    )
    .await
}

async fn verify(stack: &Stack, token: &str) -> Response {
    post(stack, "/auth/email/verify", json!({ "token": token })).await
}

async fn login(stack: &Stack, login: &str, password: &str) -> Response {
    post(
        stack,
        "/auth/login",
        json!({ "login": login, "password": password }),
    )
    .await
}

async fn profile(stack: &Stack, token: &str) -> Response {
    Client::new()
        .get(stack.url("/user/profile"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Asserts a problem+json answer of `status` (and `kind`, if given); returns its body.
async fn problem(response: Response, status: u16, kind: Option<&str>) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    if let Some(kind) = kind {
        assert!(
            body["type"].as_str().unwrap().ends_with(kind),
            "{kind}: {body}"
        );
    }
    body
}

/// Waits until auth's mail outbox is empty: every mail asked for so far was sent (or
/// found unneeded), so what has not reached the sink never will.
async fn outbox_drained(stack: &Stack) {
    let pool = sqlx::PgPool::connect(&stack.auth_database_url())
        .await
        .unwrap();
    testkit::wait_for(
        "auth's mail outbox to drain",
        Duration::from_secs(30),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox")
                .fetch_one(&pool)
                .await
                .unwrap();
            (n == 0).then_some(())
        },
    )
    .await;
    pool.close().await;
}

/// tus creation of a small upload through the gateway.
async fn create_upload(stack: &Stack, path: &str, token: &str) -> Response {
    Client::new()
        .post(stack.url(path))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1000")
        .header(
            "Upload-Metadata",
            format!("title {}", STANDARD.encode("gated")),
        )
        .send()
        .await
        .unwrap()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn forgot_answers_alike_for_every_address_and_mails_only_accounts() {
    let stack = Stack::start().await;
    let (username, email) = someone("known");
    let (_, unknown) = someone("nobody");
    stack.register(&username, PASSWORD).await;
    // Registration mails a verification link, pointing at the web app.
    let welcome = wait_mails(&email, VERIFY_SUBJECT, 1).await;
    assert!(
        welcome[0]["text"]
            .as_str()
            .unwrap()
            .contains("http://localhost:8080/verify-email?token="),
        "{}",
        welcome[0]
    );

    let known = forgot(&stack, &email).await;
    let nobody = forgot(&stack, &unknown).await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(nobody.status(), known.status());
    assert_eq!(
        nobody.headers()["content-type"],
        known.headers()["content-type"]
    );
    let (known, nobody) = (known.bytes().await.unwrap(), nobody.bytes().await.unwrap());
    assert_eq!(known, nobody, "byte for byte the same answer");
    // The address's case is the account's business, not the caller's.
    let shouting = forgot(
        &stack,
        &email.to_uppercase().replace("EXAMPLE.COM", "example.com"),
    )
    .await;
    assert_eq!(shouting.bytes().await.unwrap(), known);

    let resets = wait_mails(&email, RESET_SUBJECT, 2).await;
    assert!(
        resets[0]["text"]
            .as_str()
            .unwrap()
            .contains("http://localhost:8080/reset-password?token="),
        "{}",
        resets[0]
    );
    assert_eq!(resets[0]["rcpt_tos"], json!([email]));
    outbox_drained(&stack).await;
    assert!(
        mails(&unknown).is_empty(),
        "no mail for an address without an account"
    );

    // A malformed address is refused as such (it says nothing about accounts).
    problem(forgot(&stack, "not-an-address").await, 422, None).await;

    // Timing: the request does the same work for both (one outbox row); measured
    // interleaved so load on the machine falls on both alike.
    let (mut known_times, mut nobody_times) = (Vec::new(), Vec::new());
    for _ in 0..25 {
        for (address, times) in [(&email, &mut known_times), (&unknown, &mut nobody_times)] {
            let started = Instant::now();
            let response = forgot(&stack, address).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            response.bytes().await.unwrap();
            times.push(started.elapsed());
        }
    }
    let (known_median, nobody_median) = (median(known_times), median(nobody_times));
    println!(
        "forgot through the gateway, median of 25: account {known_median:?}, no account {nobody_median:?}"
    );
    let gap = known_median.abs_diff(nobody_median);
    assert!(
        gap < Duration::from_millis(10),
        "forgot takes {gap:?} longer for one kind of address (account {known_median:?}, none {nobody_median:?})"
    );
}

#[tokio::test]
async fn a_reset_link_works_once_and_ends_every_session() {
    let stack = Stack::start().await;
    let (username, email) = someone("reset");
    stack.register(&username, PASSWORD).await;
    // Two sessions, as on two devices.
    let phone = stack.login(&username, PASSWORD).await;
    let laptop = stack.login(&email, PASSWORD).await;
    let phone_access = phone["access_token"].as_str().unwrap();
    assert_eq!(profile(&stack, phone_access).await.status(), 200);
    let before: Value = profile(&stack, phone_access).await.json().await.unwrap();
    assert_eq!(before["email_verified"], false, "{before}");

    // Two links asked for; the newer one is used, the older dies with it.
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let older = token_in(
        &wait_mails(&email, RESET_SUBJECT, 1).await[0],
        "reset-password",
    );
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let newer = token_in(
        &wait_mails(&email, RESET_SUBJECT, 2).await[1],
        "reset-password",
    );
    assert_ne!(older, newer);

    // A password that breaks the rules is refused, and the link still works after.
    problem(reset(&stack, &newer, "short").await, 422, None).await;
    // A made-up token changes nothing either.
    let forged = "A".repeat(43);
    problem(
        reset(&stack, &forged, NEW_PASSWORD).await,
        400,
        Some("invalid-token"),
    )
    .await;
    assert_eq!(login(&stack, &username, PASSWORD).await.status(), 200);

    assert_eq!(reset(&stack, &newer, NEW_PASSWORD).await.status(), 204);
    // Once only, and the older link is dead too.
    problem(
        reset(&stack, &newer, "yet another password").await,
        400,
        Some("invalid-token"),
    )
    .await;
    problem(
        reset(&stack, &older, "yet another password").await,
        400,
        Some("invalid-token"),
    )
    .await;

    problem(login(&stack, &username, PASSWORD).await, 401, None).await;
    let fresh: Value = login(&stack, &username, NEW_PASSWORD)
        .await
        .json()
        .await
        .unwrap();

    // Every session from before has ended: access tokens at once, refresh tokens too.
    problem(profile(&stack, phone_access).await, 401, None).await;
    let laptop_access = laptop["access_token"].as_str().unwrap();
    problem(profile(&stack, laptop_access).await, 401, None).await;
    for session in [&phone, &laptop] {
        let refreshed = post(
            &stack,
            "/auth/refresh",
            json!({ "refresh_token": session["refresh_token"] }),
        )
        .await;
        problem(refreshed, 401, None).await;
    }
    // The new session works, and the address counts as verified (the mail reached it).
    let after: Value = profile(&stack, fresh["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["email_verified"], true, "{after}");

    // Single use holds under a race: of two resets with one link, exactly one wins.
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let raced = token_in(
        &wait_mails(&email, RESET_SUBJECT, 3).await[2],
        "reset-password",
    );
    let (a, b) = tokio::join!(
        reset(&stack, &raced, "first racer password"),
        reset(&stack, &raced, "second racer password")
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 400]);
    let winners = [
        login(&stack, &username, "first racer password")
            .await
            .status(),
        login(&stack, &username, "second racer password")
            .await
            .status(),
    ];
    assert_eq!(
        winners.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{winners:?}"
    );
}

#[tokio::test]
async fn links_expire() {
    // Long enough for a link to be used in time on a loaded machine (the new password's
    // hash included), short enough to wait out.
    let stack = Stack::start_with(|auth| auth.mail.token_ttl = Duration::from_secs(5)).await;
    let (username, email) = someone("expiry");
    stack.register(&username, PASSWORD).await;
    let verification = token_in(
        &wait_mails(&email, VERIFY_SUBJECT, 1).await[0],
        "verify-email",
    );
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let mail = wait_mails(&email, RESET_SUBJECT, 1).await.remove(0);
    let token = token_in(&mail, "reset-password");
    tokio::time::sleep(Duration::from_secs(6)).await;

    problem(
        reset(&stack, &token, NEW_PASSWORD).await,
        400,
        Some("invalid-token"),
    )
    .await;
    problem(
        verify(&stack, &verification).await,
        400,
        Some("invalid-token"),
    )
    .await;
    // Nothing changed: the old password still works, the address is still unverified.
    let tokens = stack.login(&username, PASSWORD).await;
    let me: Value = profile(&stack, tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], false);

    // A new link, used in time, works.
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let token = token_in(
        &wait_mails(&email, RESET_SUBJECT, 2).await[1],
        "reset-password",
    );
    assert_eq!(reset(&stack, &token, NEW_PASSWORD).await.status(), 204);
}

#[tokio::test]
async fn unverified_accounts_cannot_upload_until_they_follow_the_link() {
    let stack = Stack::start_with(|auth| auth.mail.upload_requires_verified_email = true).await;
    let (username, email) = someone("gate");
    stack.register(&username, PASSWORD).await;
    let tokens = stack.login(&username, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let first = token_in(
        &wait_mails(&email, VERIFY_SUBJECT, 1).await[0],
        "verify-email",
    );

    // Refused at the gateway, in any spelling of the creation route.
    let refused = problem(
        create_upload(&stack, "/video/upload", access).await,
        403,
        Some("email-unverified"),
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("verify"),
        "{refused}"
    );
    for path in ["/video/upload/", "/video/upload?x=1", "/video/%75pload"] {
        let response = create_upload(&stack, path, access).await;
        assert_ne!(response.status(), StatusCode::CREATED, "{path}");
    }
    // Watching (and everything else) is not gated.
    let me: Value = profile(&stack, access).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);
    stack
        .graphql_ok(
            Some(access),
            "{ feed(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await;

    // Another link on request; then the newer one verifies, and only once.
    let resent = Client::new()
        .post(stack.url("/user/email/verification"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(resent.status(), 202);
    let second = token_in(
        &wait_mails(&email, VERIFY_SUBJECT, 2).await[1],
        "verify-email",
    );
    assert_eq!(verify(&stack, &second).await.status(), 204);
    problem(verify(&stack, &second).await, 400, Some("invalid-token")).await;
    problem(verify(&stack, &first).await, 400, Some("invalid-token")).await;

    // Counts at once, with the same access token (the gate reads the database).
    let me: Value = profile(&stack, access).await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);
    assert_eq!(
        create_upload(&stack, "/video/upload", access)
            .await
            .status(),
        201
    );
    let again = Client::new()
        .post(stack.url("/user/email/verification"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    problem(again, 409, None).await;

    // A new address is unverified until its own link is followed; links mailed to the
    // old address do not verify it.
    let (_, moved) = someone("moved");
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let old_reset = token_in(
        &wait_mails(&email, RESET_SUBJECT, 1).await[0],
        "reset-password",
    );
    let changed = Client::new()
        .patch(stack.url("/user/profile"))
        .bearer_auth(access)
        .json(&json!({ "email": moved, "current_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["email_verified"], false, "{changed}");
    problem(
        create_upload(&stack, "/video/upload", access).await,
        403,
        Some("email-unverified"),
    )
    .await;
    problem(
        reset(&stack, &old_reset, NEW_PASSWORD).await,
        400,
        Some("invalid-token"),
    )
    .await;
    let new_link = token_in(
        &wait_mails(&moved, VERIFY_SUBJECT, 1).await[0],
        "verify-email",
    );
    assert_eq!(verify(&stack, &new_link).await.status(), 204);
    assert_eq!(
        create_upload(&stack, "/video/upload", access)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn mail_requests_are_throttled_without_telling_addresses_apart() {
    let hour = Duration::from_secs(3600);
    let stack = Stack::start_with(|auth| {
        auth.mail.address_rate = Some(Rate {
            max: 2,
            window: hour,
        });
        auth.mail.ip_rate = Some(Rate {
            max: 6,
            window: hour,
        });
    })
    .await;
    let (username, email) = someone("throttle");
    let (_, unknown) = someone("nobody");
    stack.register(&username, PASSWORD).await;
    wait_mails(&email, VERIFY_SUBJECT, 1).await;

    // Per address: past the limit still 202, the same answer, but no more mail.
    let mut answers = Vec::new();
    for address in [&email, &email, &email, &unknown, &unknown, &unknown] {
        let response = forgot(&stack, address).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{address}");
        answers.push(response.bytes().await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    outbox_drained(&stack).await;
    let resets = mails(&email)
        .into_iter()
        .filter(|m| m["subject"] == RESET_SUBJECT)
        .count();
    assert_eq!(resets, 2, "two mails per address, however often asked");

    // Per client IP: 429 with Retry-After, for any address, and for the resend too.
    let throttled = forgot(&stack, &someone("other").1).await;
    assert!(throttled.headers().contains_key("retry-after"));
    problem(throttled, 429, None).await;
    let tokens = stack.login(&username, PASSWORD).await;
    let resend = Client::new()
        .post(stack.url("/user/email/verification"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    problem(resend, 429, None).await;
}

#[tokio::test]
async fn mail_survives_an_smtp_outage_and_a_slow_server_slows_no_request() {
    // The sink behind a gate: down at first, then up but slow to answer.
    let smtp = testkit::Gate::start("127.0.0.1:2525", false).await;
    let stack = Stack::start_with(|auth| {
        auth.mail.smtp_url = auth::mail::SmtpUrl(format!("smtp://{}", smtp.authority()));
        auth.mail.smtp_timeout = Duration::from_secs(2);
    })
    .await;
    let (username, email) = someone("outage");
    // Registration does not wait for (or fail with) the SMTP server.
    stack.register(&username, PASSWORD).await;
    let pool = sqlx::PgPool::connect(&stack.auth_database_url())
        .await
        .unwrap();
    let error: String = testkit::wait_for(
        "a failed delivery recorded in the outbox",
        Duration::from_secs(30),
        || async {
            sqlx::query_scalar(
                "SELECT last_error FROM mail_outbox WHERE attempts > 0 AND last_error IS NOT NULL",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
        },
    )
    .await;
    println!("delivery while the SMTP server was down: {error}");
    assert!(mails(&email).is_empty());

    // Back, but every connection waits 900 ms: the API does not.
    smtp.set_delay(Duration::from_millis(900));
    smtp.open();
    let started = Instant::now();
    assert_eq!(forgot(&stack, &email).await.status(), 202);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(800), "forgot took {took:?}");
    // Both mails arrive: the reset at once, the verification at its retry.
    let reset = wait_mails(&email, RESET_SUBJECT, 1).await;
    token_in(&reset[0], "reset-password");
    let welcome = wait_mails(&email, VERIFY_SUBJECT, 1).await;
    let token = token_in(&welcome[0], "verify-email");
    assert_eq!(verify(&stack, &token).await.status(), 204);
    outbox_drained(&stack).await;
    pool.close().await;
}
