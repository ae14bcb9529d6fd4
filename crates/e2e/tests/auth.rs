//! The auth service through the gateway: accounts, tokens, ForwardAuth, and everything a
//! hostile client can send.

use std::time::Duration;

use tokio::process::Command;

use e2e::Stack;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use testkit::gateway::{Gateway, Upstreams};

const PASSWORD: &str = "correct horse battery";

fn python() -> String {
    let cache = std::env::var("KINO_CACHE_DIR").unwrap_or_else(|_| "/var/tmp/kino".into());
    format!("{cache}/venv/bin/python3")
}

/// Runs the PyJWT helper. Async: the services under test share this test's runtime, and
/// the helper may call them.
async fn jwt_tool(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jwt_tool.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .await
        .expect("run python (deploy/local/deps)");
    assert!(
        out.status.success(),
        "jwt_tool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}

async fn user_count(stack: &Stack) -> i64 {
    let pool = sqlx::PgPool::connect(&stack.auth_database_url())
        .await
        .unwrap();
    let n = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

async fn refresh(stack: &Stack, refresh_token: &str) -> Response {
    let body = json!({ "refresh_token": refresh_token });
    Client::new()
        .post(stack.url("/auth/refresh"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn profile(stack: &Stack, token: &str) -> Response {
    Client::new()
        .get(stack.url("/user/profile"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn register_login_and_manage_the_profile() {
    let stack = Stack::start().await;
    let client = Client::new();
    let created = stack.register("Ada_L", PASSWORD).await;
    assert_eq!(
        created["username"], "ada_l",
        "usernames are case-insensitive, stored lower-case"
    );
    assert!(
        created.get("email").is_none() && created.get("password_hash").is_none(),
        "{created}"
    );

    // Login by username in any case, or by email.
    stack.login("ADA_L", PASSWORD).await;
    let tokens = stack.login("ada_l@example.com", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();

    let me: Value = profile(&stack, access).await.json().await.unwrap();
    assert_eq!(me["email"], "Ada_L@example.com");
    assert_eq!(me["id"], created["id"]);

    let updated: Value = client
        .patch(stack.url("/user/profile"))
        .bearer_auth(access)
        .json(&json!({"display_name": "Ada Lovelace", "bio": "analyst", "avatar_url": "https://cdn.example/ada.png"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["display_name"], "Ada Lovelace");
    assert_eq!(updated["bio"], "analyst");

    // Changing the password needs the current one.
    let response = client
        .patch(stack.url("/user/profile"))
        .bearer_auth(access)
        .json(&json!({"password": "a whole new password"}))
        .send()
        .await
        .unwrap();
    problem(response, 403).await;
    let response = client
        .patch(stack.url("/user/profile"))
        .bearer_auth(access)
        .json(&json!({"password": "a whole new password", "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    stack.login("ada_l", "a whole new password").await;

    // Public profiles for other services, over gRPC: unknown ids omitted, no emails.
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = stack
        .profiles(vec![id.clone(), uuid_like(), id.clone()])
        .await
        .unwrap();
    assert_eq!(listed.profiles.len(), 1, "{listed:?}");
    assert_eq!(listed.profiles[0].id, id);
    assert_eq!(
        listed.profiles[0].display_name.as_deref(),
        Some("Ada Lovelace")
    );
    assert!(!format!("{listed:?}").contains('@'), "no email: {listed:?}");
    let too_many: Vec<String> = (0..101).map(|_| uuid_like()).collect();
    let status = stack.profiles(too_many).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    let status = stack.profiles(vec!["not-an-id".into()]).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(stack.profiles(vec![]).await.unwrap().profiles.is_empty());

    // Deleting the account ends every token.
    let other_session = stack.login("ada_l", "a whole new password").await;
    let response = client
        .delete(stack.url("/user/profile"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    problem(
        profile(&stack, other_session["access_token"].as_str().unwrap()).await,
        401,
    )
    .await;
    let response = client
        .post(stack.url("/auth/login"))
        .json(&json!({"login": "ada_l", "password": "a whole new password"}))
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
}

fn uuid_like() -> String {
    format!("0190a000-0000-7000-8000-{:012x}", rand_suffix())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        & 0xffff_ffff_ffff
}

#[tokio::test]
async fn bad_registrations_get_clear_problems_and_change_nothing() {
    let stack = Stack::start().await;
    stack.register("taken", PASSWORD).await;
    let before = user_count(&stack).await;
    let client = Client::new();
    let post = |body: String| {
        client
            .post(stack.url("/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let valid = |overrides: Value| {
        let mut body =
            json!({"username": "newbie", "email": "newbie@example.com", "password": PASSWORD});
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };

    problem(post("{not json".into()).await.unwrap(), 400).await;
    problem(
        post(json!({"username": "newbie"}).to_string())
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        post(json!({"username": 7, "email": "a@b.co", "password": PASSWORD}).to_string())
            .await
            .unwrap(),
        422,
    )
    .await;
    problem(
        post(valid(json!({"bio": "x".repeat(40_000)})))
            .await
            .unwrap(),
        413,
    )
    .await;
    for (field, value) in [
        ("email", json!("not-an-email")),
        ("email", json!("a@localhost")),
        ("password", json!("short")),
        ("password", json!("p".repeat(129))),
        ("username", json!("no spaces please")),
        ("username", json!("ab")),
    ] {
        let body = problem(post(valid(json!({ field: value }))).await.unwrap(), 422).await;
        assert!(
            body["detail"].as_str().unwrap().contains(field),
            "{field}: {body}"
        );
    }
    let body = problem(
        post(valid(json!({"username": "TAKEN"}))).await.unwrap(),
        409,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("username"),
        "{body}"
    );
    let body = problem(
        post(valid(json!({"email": "Taken@Example.com"})))
            .await
            .unwrap(),
        409,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");

    assert_eq!(
        user_count(&stack).await,
        before,
        "no bad request created anything"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same_and_logins_are_throttled() {
    let stack = Stack::start_with(|auth| auth.login_limits.account_failures = 3).await;
    stack.register("victim", PASSWORD).await;
    let client = Client::new();
    let attempt = |login: &'static str, password: &'static str| {
        client
            .post(stack.url("/auth/login"))
            .json(&json!({"login": login, "password": password}))
            .send()
    };

    let wrong = attempt("victim", "not the password").await.unwrap();
    let (wrong_status, wrong_body) = (wrong.status(), wrong.text().await.unwrap());
    let unknown = attempt("nobody_here", "not the password").await.unwrap();
    let (unknown_status, unknown_body) = (unknown.status(), unknown.text().await.unwrap());
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (wrong_status, &wrong_body),
        (unknown_status, &unknown_body),
        "indistinguishable"
    );

    // Two more failures reach the account's limit of 3; then even the right password waits.
    attempt("victim", "still wrong").await.unwrap();
    attempt("victim", "wrong again").await.unwrap();
    let throttled = attempt("victim", PASSWORD).await.unwrap();
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    problem(throttled, 429).await;
    // Another account is not affected.
    stack.register("bystander", PASSWORD).await;
    stack.login("bystander", PASSWORD).await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let stack = Stack::start().await;
    stack.register("rotor", PASSWORD).await;
    let token = |pair: &Value, which: &str| pair[which].as_str().unwrap().to_owned();
    let first = stack.login("rotor", PASSWORD).await;

    let second: Value = refresh(&stack, &token(&first, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        profile(&stack, &token(&second, "access_token"))
            .await
            .status(),
        200
    );

    // The first refresh token was rotated: presenting it again is reuse.
    problem(refresh(&stack, &token(&first, "refresh_token")).await, 401).await;
    // The whole family is dead now: the newest refresh token and its access token too.
    problem(refresh(&stack, &token(&second, "refresh_token")).await, 401).await;
    problem(profile(&stack, &token(&second, "access_token")).await, 401).await;
    // Garbage is just invalid.
    problem(refresh(&stack, "garbage").await, 401).await;
    // Another session of the same user is untouched.
    let other = stack.login("rotor", PASSWORD).await;
    assert_eq!(
        profile(&stack, &token(&other, "access_token"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn logout_revokes_the_access_token_within_a_second_and_the_refresh_family() {
    let stack = Stack::start().await;
    stack.register("leaver", PASSWORD).await;
    let tokens = stack.login("leaver", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(profile(&stack, access).await.status(), 200);

    let response = Client::new()
        .post(stack.url("/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let started = std::time::Instant::now();
    let verify = Client::new()
        .get(format!("http://{}/user/token_verify", stack.auth_addr))
        .bearer_auth(access)
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", "/media/graphql")
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    problem(verify, 401).await;
    problem(profile(&stack, access).await, 401).await;
    let response = Client::new()
        .post(stack.url("/auth/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
}

#[tokio::test]
async fn credentials_that_are_not_a_bearer_token_are_refused_even_on_public_routes() {
    let stack = Stack::start().await;
    let graphql = json!({"query": "{ __typename }"});
    // Without credentials a public route is open (anonymous)…
    let response = Client::new()
        .post(stack.url("/media/graphql"))
        .json(&graphql)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // …but credentials that are not `Bearer <token>` are refused, not ignored: the caller
    // expects them to count (the same rule media applies to `connection_init`).
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Token abc",
        "Bearer a b",
    ] {
        let verify = Client::new()
            .get(format!("http://{}/user/token_verify", stack.auth_addr))
            .header("Authorization", value)
            .header("X-Forwarded-Method", "POST")
            .header("X-Forwarded-Uri", "/media/graphql")
            .send()
            .await
            .unwrap();
        assert!(
            verify.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{value:?}"
        );
        problem(verify, 401).await;
        let response = Client::new()
            .post(stack.url("/media/graphql"))
            .header("Authorization", value)
            .json(&graphql)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value:?}");
    }
}

#[tokio::test]
async fn forged_expired_foreign_and_revoked_tokens_are_refused() {
    let stack = Stack::start().await;
    let user = stack.register("target", PASSWORD).await;
    let good = stack.login("target", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_file = std::env::temp_dir().join(format!("kino-e2e-key-{}.pem", stack.env.id));
    std::fs::write(&key_file, stack.signing_key.pem()).unwrap();
    let pem = key_file.to_str().unwrap();
    let kid = stack.signing_key.kid();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |iss: &str, aud: &str, exp: i64| {
        json!({"sub": user["id"], "name": "target", "jti": "0190a000-0000-7000-8000-000000000001",
               "iss": iss, "aud": aud, "iat": now - 10, "exp": exp})
        .to_string()
    };

    // A token PyJWT signs with our key and the right claims is accepted (the forge works)…
    let forged_ok = jwt_tool(&["forge", pem, kid, &claims("kino-auth", "kino", now + 60)]).await;
    assert_eq!(profile(&stack, &forged_ok).await.status(), 200);
    // …and each single defect is refused.
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&base64_url_decode(parts[1])).unwrap();
    payload["name"] = "admin".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64_url_encode(payload.to_string().as_bytes()),
        parts[2]
    );
    let other_key = identity::SigningKey::generate();
    let other_file = std::env::temp_dir().join(format!("kino-e2e-other-{}.pem", stack.env.id));
    std::fs::write(&other_file, other_key.pem()).unwrap();
    let bad_tokens = [
        ("tampered", tampered),
        (
            "alg none",
            jwt_tool(&[
                "forge",
                pem,
                kid,
                &claims("kino-auth", "kino", now + 60),
                "none",
            ])
            .await,
        ),
        (
            "unknown kid",
            jwt_tool(&[
                "forge",
                other_file.to_str().unwrap(),
                other_key.kid(),
                &claims("kino-auth", "kino", now + 60),
            ])
            .await,
        ),
        (
            "foreign key, our kid",
            jwt_tool(&[
                "forge",
                other_file.to_str().unwrap(),
                kid,
                &claims("kino-auth", "kino", now + 60),
            ])
            .await,
        ),
        (
            "expired",
            jwt_tool(&["forge", pem, kid, &claims("kino-auth", "kino", now - 60)]).await,
        ),
        (
            "wrong audience",
            jwt_tool(&[
                "forge",
                pem,
                kid,
                &claims("kino-auth", "elsewhere", now + 60),
            ])
            .await,
        ),
        (
            "wrong issuer",
            jwt_tool(&["forge", pem, kid, &claims("evil", "kino", now + 60)]).await,
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, token) in &bad_tokens {
        let response = profile(&stack, token).await;
        assert_eq!(response.status(), 401, "{what}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        // Through ForwardAuth too, even on a public route.
        let response = Client::new()
            .post(stack.url("/media/graphql"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        problem(response, 401).await;
    }
    // Revoked: log the good token out.
    stack.logout(&good).await;
    problem(profile(&stack, &good).await, 401).await;
    std::fs::remove_file(key_file).unwrap();
    std::fs::remove_file(other_file).unwrap();
}

#[tokio::test]
async fn pyjwt_verifies_kino_tokens_with_only_the_jwks_document() {
    let stack = Stack::start().await;
    let user = stack.register("interop", PASSWORD).await;
    let tokens = stack.login("interop", PASSWORD).await;
    let jwks: Value = reqwest::get(stack.url("/auth/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    let claims: Value = serde_json::from_str(
        &jwt_tool(&[
            "verify",
            &stack.url("/auth/.well-known/jwks.json"),
            tokens["access_token"].as_str().unwrap(),
            "kino-auth",
            "kino",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["name"], "interop");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
}

/// A client-supplied `X-User-Id` never reaches an upstream: stripped on public routes,
/// replaced by the token's identity on authenticated ones.
#[tokio::test]
async fn identity_headers_from_clients_never_reach_upstreams() {
    let stack = Stack::start().await;
    let alice = stack.register("alice", PASSWORD).await;
    stack.register("mallory", PASSWORD).await;
    let mallory = stack.login("mallory", PASSWORD).await;
    let (echo, gateway) = echo_gateway(&stack).await;
    let client = Client::new();

    // Anonymous, on a public route, pretending to be alice.
    let request = client
        .post(format!("{}/media/graphql", gateway.base))
        .header("X-User-Id", alice["id"].as_str().unwrap())
        .header("X-User-Name", "alice");
    let seen = seen_by_upstream(request).await;
    assert!(
        !seen.contains("x-user-id") && !seen.contains("x-user-name"),
        "{seen}"
    );

    // Mallory's valid token, pretending to be alice.
    let request = client
        .post(format!("{}/media/graphql", gateway.base))
        .bearer_auth(mallory["access_token"].as_str().unwrap())
        .header("X-User-Id", alice["id"].as_str().unwrap());
    let seen = seen_by_upstream(request).await;
    let ids: Vec<&str> = seen
        .lines()
        .filter(|l| l.starts_with("x-user-id:"))
        .collect();
    assert_eq!(ids.len(), 1, "{seen}");
    assert!(!ids[0].contains(alice["id"].as_str().unwrap()), "{seen}");
    assert!(seen.contains("x-user-name: mallory"), "{seen}");

    // No token on a protected route: the gateway answers 401 and the upstream sees nothing.
    let response = client
        .get(format!("{}/media/private", gateway.base))
        .send()
        .await
        .unwrap();
    problem(response, 401).await;
    assert_eq!(
        echo.requests(),
        2,
        "the refused request never reached the upstream"
    );
}

/// The request head the echo upstream received, lower-cased.
async fn seen_by_upstream(request: reqwest::RequestBuilder) -> String {
    request
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .to_lowercase()
}

/// A gateway in front of `stack`'s auth whose `/media` upstream is an [`EchoServer`]
/// (kept alive by the first value), so a test sees exactly what an upstream receives.
async fn echo_gateway(stack: &Stack) -> (EchoServer, Gateway) {
    let echo = EchoServer::start().await;
    let gateway = Gateway::start(Upstreams {
        auth: Some(stack.auth_addr.to_string()),
        media: Some(echo.addr.to_string()),
        video: None,
        webhooks: None,
    })
    .await;
    (echo, gateway)
}

/// A minimal HTTP upstream that answers every request with its request head.
struct EchoServer {
    addr: std::net::SocketAddr,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl EchoServer {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = count.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = String::from_utf8_lossy(&head).replace("\r\n", "\n");
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { addr, count }
    }

    fn requests(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn base64_url_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The roles header an upstream saw, if any.
fn roles_seen(seen: &str) -> Vec<&str> {
    seen.lines()
        .filter(|l| l.starts_with("x-user-roles:") || l.starts_with("x_user"))
        .collect()
}

/// Roles come from auth alone: the first admin by the documented command, moderators by
/// an admin; the gateway passes a moderator's roles on and strips whatever a client sends
/// (any case, `_` for `-`); a revoked moderator's token stops at once.
#[tokio::test]
async fn roles_come_from_auth_alone_and_only_admins_grant_moderator() {
    let stack = Stack::start().await;
    stack.register("root", PASSWORD).await;
    let moderator = stack.register("warden", PASSWORD).await;
    let mallory = stack.register("mallory", PASSWORD).await;
    let (_echo, gateway) = echo_gateway(&stack).await;
    let client = Client::new();

    // The operator's command makes the first admin (and says so for an unknown name).
    let command = |args: [&str; 2]| {
        Command::new(e2e::service_binary("auth"))
            .args(args)
            .env("DATABASE_URL", stack.auth_database_url())
            .output()
    };
    let made = command(["grant-admin", "root"]).await.unwrap();
    assert!(made.status.success(), "{made:?}");
    assert_eq!(
        String::from_utf8_lossy(&made.stdout).trim(),
        "root: Granted"
    );
    let again = command(["grant-admin", "root"]).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "root: Unchanged"
    );
    assert!(
        !command(["grant-admin", "nobody"])
            .await
            .unwrap()
            .status
            .success()
    );
    let root = stack.login("root", PASSWORD).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let mallory_token = stack.login("mallory", PASSWORD).await;
    let mallory_token = mallory_token["access_token"].as_str().unwrap().to_owned();

    // An ordinary user can neither grant nor list: 403, and nothing changes.
    let grant = |token: &str, user: &Value| {
        client
            .put(stack.url(&format!(
                "/user/admin/moderators/{}",
                user["id"].as_str().unwrap()
            )))
            .bearer_auth(token)
            .send()
    };
    problem(grant(&mallory_token, &mallory).await.unwrap(), 403).await;
    let listed = client
        .get(stack.url("/user/admin/moderators"))
        .bearer_auth(&mallory_token)
        .send()
        .await
        .unwrap();
    problem(listed, 403).await;
    let profile: Value = client
        .get(stack.url("/user/profile"))
        .bearer_auth(&mallory_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["roles"], json!([]), "{profile}");

    // A spoofed roles header, however spelt, never reaches an upstream.
    for name in [
        "X-User-Roles",
        "x-user-roles",
        "X-USER-ROLES",
        "X_User_Roles",
        "x_user_roles",
        "X-User_Roles",
        "X_User-Roles",
    ] {
        for token in [None, Some(&mallory_token)] {
            let mut request = client
                .post(format!("{}/media/graphql", gateway.base))
                .header(name, "admin,moderator");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let seen = seen_by_upstream(request).await;
            assert!(roles_seen(&seen).is_empty(), "{name}: {seen}");
        }
    }

    // The admin grants moderator; the moderator's next login carries it to upstreams.
    let granted = grant(&root, &moderator).await.unwrap();
    assert_eq!(granted.status(), 200);
    let listed: Value = client
        .get(stack.url("/user/admin/moderators"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["username"], "warden", "{listed}");
    let tokens = stack.login("warden", PASSWORD).await;
    let warden = tokens["access_token"].as_str().unwrap().to_owned();
    let seen = seen_by_upstream(
        client
            .post(format!("{}/media/graphql", gateway.base))
            .bearer_auth(&warden)
            .header("X-User-Roles", "admin"),
    )
    .await;
    assert_eq!(roles_seen(&seen), ["x-user-roles: moderator"], "{seen}");

    // Revoked: the moderator's token stops at once; a refresh carries no role.
    let revoked = client
        .delete(stack.url(&format!(
            "/user/admin/moderators/{}",
            moderator["id"].as_str().unwrap()
        )))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let refused = client
        .post(format!("{}/media/graphql", gateway.base))
        .bearer_auth(&warden)
        .send()
        .await
        .unwrap();
    problem(refused, 401).await;
    let refreshed: Value = client
        .post(stack.url("/auth/refresh"))
        .json(&json!({ "refresh_token": tokens["refresh_token"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen = seen_by_upstream(
        client
            .post(format!("{}/media/graphql", gateway.base))
            .bearer_auth(refreshed["access_token"].as_str().unwrap()),
    )
    .await;
    assert!(seen.contains("x-user-name: warden"), "{seen}");
    assert!(roles_seen(&seen).is_empty(), "{seen}");
    // Nobody can make an admin through the API: there is no such endpoint.
    let admin = client
        .put(stack.url(&format!(
            "/user/admin/admins/{}",
            mallory["id"].as_str().unwrap()
        )))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 404);
}
