//! tus uploads through the gateway with a real client (tuspy): chunked, cut off and
//! resumed across a restart of the video service, and refused when malformed.

mod video_common;

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use e2e::Stack;
use reqwest::{Client, StatusCode};
use tokio::io::AsyncWriteExt;
use video_common::*;

const MIB: usize = 1024 * 1024;

/// A 720p, 20 s video (about 15 MB: one full 8 MiB part and a short last one) sent in
/// 512 KiB chunks, so most requests end between part boundaries and are staged.
#[tokio::test]
async fn a_tus_client_uploads_a_720p_video_in_small_chunks() {
    let stack = Stack::start().await;
    let (owner, token) = user(&stack, "uploader").await;
    let file = scratch(&stack).join("720p.mp4");
    generate_video(&file, "1280x720", 20, "6M", true);
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 8 * MIB, "the file spans more than one part");
    let mut events = Events::listen(&stack, &["video.created", "video.uploaded"]).await;

    let report = tus(
        &stack,
        &token,
        &file,
        512 * 1024,
        &[
            "--meta",
            "filename=720p.mp4",
            "--meta",
            "title=Test pattern",
            "--meta",
            "tags=test,pattern",
        ],
    )
    .await;
    assert_eq!(report["offset"], bytes.len());
    let id = video_id(report["url"].as_str().unwrap());

    let seen = events
        .until(&id, "video.uploaded", Duration::from_secs(20))
        .await;
    let types: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["video.created", "video.uploaded"]);
    assert_eq!(seen[0]["data"]["title"], "Test pattern");
    assert_eq!(
        seen[0]["data"]["tags"],
        serde_json::json!(["test", "pattern"])
    );
    assert_eq!(seen[0]["data"]["owner_id"], owner.as_str());
    assert_eq!(seen[1]["data"]["size_bytes"], bytes.len());

    let stored = object(&stack, &format!("sources/{id}"))
        .await
        .expect("source stored");
    assert_eq!(sha256(&stored), sha256(&bytes));
    let (code, body) = status(&stack, &id, Some(&token)).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "processing");
    assert_eq!(body["size_bytes"], bytes.len());

    // The transcode job went through the outbox to this stack's queue.
    let job = testkit::wait_for("the transcode job", Duration::from_secs(10), || async {
        basic_get(&stack, &format!("{}transcode.jobs", stack.queue_prefix())).await
    })
    .await;
    let job: serde_json::Value = serde_json::from_slice(&job.delivery.data).unwrap();
    assert_eq!(job["data"]["video_id"], id.as_str());
    assert_eq!(job["data"]["source_key"], format!("sources/{id}"));

    // Staged pieces are cleaned up once the upload is complete.
    testkit::wait_for("staging emptied", Duration::from_secs(10), || async {
        keys(&stack, &format!("staging/{id}/"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    std::fs::remove_dir_all(scratch(&stack)).ok();
}

/// Sends `Content-Length: declared` but only `sent` bytes, then drops the connection: a
/// client whose network died mid-request.
async fn patch_cut_off(
    stack: &Stack,
    token: &str,
    url: &str,
    offset: usize,
    body: &[u8],
    declared: usize,
) {
    let gateway = stack.gateway.base.trim_start_matches("http://").to_owned();
    let path = url.split_once(&gateway).unwrap().1;
    let mut socket = tokio::net::TcpStream::connect(&gateway).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {gateway}\r\nAuthorization: Bearer {token}\r\n\
         Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    socket.flush().await.unwrap();
    // Give the bytes time to cross the gateway before the line goes dead.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(socket);
}

async fn head_offset(stack: &Stack, token: &str, url: &str) -> (StatusCode, Option<usize>) {
    let response = Client::new()
        .head(url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    let _ = stack;
    let offset = response
        .headers()
        .get("upload-offset")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status(), offset)
}

#[tokio::test]
async fn an_upload_cut_off_midway_resumes_after_a_restart() {
    let mut stack = Stack::start().await;
    let (_, token) = user(&stack, "resumer").await;
    let file = scratch(&stack).join("resume.mp4");
    generate_video(&file, "640x360", 10, "8M", true);
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        bytes.len() > 9 * MIB,
        "spans more than one part: {}",
        bytes.len()
    );

    // The first 3 MiB in 1 MiB chunks, then the client stops.
    let report = tus(
        &stack,
        &token,
        &file,
        MIB,
        &["--stop-at", &(3 * MIB).to_string()],
    )
    .await;
    let url = report["url"].as_str().unwrap().to_owned();
    assert_eq!(report["offset"], 3 * MIB);

    // A 4 MiB chunk breaks off after 2.5 MiB: what arrived is kept, nothing more.
    let sent = 5 * MIB / 2;
    patch_cut_off(
        &stack,
        &token,
        &url,
        3 * MIB,
        &bytes[3 * MIB..3 * MIB + sent],
        4 * MIB,
    )
    .await;
    let offset = testkit::wait_for(
        "the broken request to settle",
        Duration::from_secs(15),
        || async {
            let (_, offset) = head_offset(&stack, &token, &url).await;
            offset.filter(|o| *o > 3 * MIB)
        },
    )
    .await;
    assert!(
        offset <= 3 * MIB + sent,
        "offset {offset} beyond what was sent"
    );
    let (code, cache) = {
        let response = Client::new()
            .head(&url)
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.headers().get("cache-control").cloned(),
        )
    };
    assert_eq!(code, 200);
    assert_eq!(cache.unwrap(), "no-store");

    // Restart the service: the upload's state is all in PostgreSQL and S3.
    stack.restart_video().await;
    assert_eq!(head_offset(&stack, &token, &url).await.1, Some(offset));

    // The same client resumes from the server's offset and finishes.
    let report = tus(&stack, &token, &file, 3 * MIB, &["--url", &url]).await;
    assert_eq!(report["offset"], bytes.len());
    let id = video_id(&url);
    let stored = object(&stack, &format!("sources/{id}"))
        .await
        .expect("source stored");
    assert_eq!(
        sha256(&stored),
        sha256(&bytes),
        "the stored source is the file"
    );
    wait_for_status(&stack, &id, &token, "processing", Duration::from_secs(10)).await;
    std::fs::remove_dir_all(scratch(&stack)).ok();
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

#[tokio::test]
async fn malformed_tus_requests_get_clear_errors_and_change_nothing() {
    let stack = Stack::start().await;
    let (_, token) = user(&stack, "owner").await;
    let (_, stranger) = user(&stack, "stranger").await;
    let client = Client::new();
    let endpoint = stack.url("/video/upload");

    // Capabilities, without a token.
    let response = client
        .request(reqwest::Method::OPTIONS, &endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["tus-version"], "1.0.0");
    assert!(
        response.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("creation-with-upload")
    );
    assert!(response.headers().contains_key("tus-max-size"));

    let create = |length: &str, metadata: String, version: &'static str| {
        client
            .post(&endpoint)
            .bearer_auth(&token)
            .header("Tus-Resumable", version)
            .header("Upload-Length", length)
            .header("Upload-Metadata", metadata)
            .send()
    };
    let problem = |response: reqwest::Response, code: u16| async move {
        assert_eq!(response.status().as_u16(), code);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        body
    };
    problem(create("100", String::new(), "0.2.2").await.unwrap(), 412).await;
    problem(create("-1", String::new(), "1.0.0").await.unwrap(), 400).await;
    problem(
        create("100000000000000", String::new(), "1.0.0")
            .await
            .unwrap(),
        413,
    )
    .await;
    problem(
        create("100", format!("visibility {}", b64("secret")), "1.0.0")
            .await
            .unwrap(),
        400,
    )
    .await;
    let anonymous = client
        .post(&endpoint)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "100")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // A good creation with its first bytes (creation-with-upload).
    let response = client
        .post(&endpoint)
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1000")
        .header("Upload-Metadata", format!("title {}", b64("ok")))
        .header("Content-Type", "application/offset+octet-stream")
        .body(vec![7u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["tus-resumable"], "1.0.0");
    assert_eq!(response.headers()["upload-offset"], "100");
    assert!(
        response.headers()["upload-expires"]
            .to_str()
            .unwrap()
            .ends_with("GMT")
    );
    let url = stack.url(response.headers()["location"].to_str().unwrap());

    let patch = |token: &str,
                 offset: &str,
                 content_type: &'static str,
                 version: &'static str,
                 body: Vec<u8>| {
        client
            .patch(&url)
            .bearer_auth(token)
            .header("Tus-Resumable", version)
            .header("Upload-Offset", offset)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    const OCTETS: &str = "application/offset+octet-stream";
    problem(
        patch(&token, "0", OCTETS, "1.0.0", vec![1; 10])
            .await
            .unwrap(),
        409,
    )
    .await;
    problem(
        patch(&token, "100", OCTETS, "1.0.0", vec![1; 901])
            .await
            .unwrap(),
        413,
    )
    .await;
    problem(
        patch(&token, "100", "application/json", "1.0.0", vec![1; 10])
            .await
            .unwrap(),
        415,
    )
    .await;
    problem(
        patch(&token, "100", OCTETS, "0.2.2", vec![1; 10])
            .await
            .unwrap(),
        412,
    )
    .await;
    problem(
        patch(&stranger, "100", OCTETS, "1.0.0", vec![1; 10])
            .await
            .unwrap(),
        404,
    )
    .await;
    let (code, _) = head_offset(&stack, &stranger, &url).await;
    assert_eq!(code, 404, "someone else's upload does not exist for them");
    assert_eq!(
        head_offset(&stack, &token, &url).await,
        (StatusCode::OK, Some(100))
    );

    // Termination (owner only) removes it.
    let delete = |token: &str| {
        client
            .delete(&url)
            .bearer_auth(token)
            .header("Tus-Resumable", "1.0.0")
            .send()
    };
    assert_eq!(delete(&stranger).await.unwrap().status(), 404);
    assert_eq!(delete(&token).await.unwrap().status(), 204);
    assert_eq!(head_offset(&stack, &token, &url).await.0, 404);
    let id = video_id(&url);
    testkit::wait_for("staged bytes removed", Duration::from_secs(10), || async {
        keys(&stack, &format!("staging/{id}/"))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}
