//! Shared by the video end-to-end tests: test media made with ffmpeg, the tuspy client,
//! direct looks at the test's bucket and queues, and a listener for video events.
#![allow(dead_code)] // each test file uses its own subset

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use e2e::Stack;
use lapin::options::BasicGetOptions;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const PASSWORD: &str = "correct horse battery";

/// A signed-in user: (id, access token).
pub async fn user(stack: &Stack, name: &str) -> (String, String) {
    let registered = stack.register(name, PASSWORD).await;
    let tokens = stack.login(name, PASSWORD).await;
    (
        registered["id"].as_str().unwrap().to_owned(),
        tokens["access_token"].as_str().unwrap().to_owned(),
    )
}

/// A scratch directory for this test's files.
pub fn scratch(stack: &Stack) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kino-e2e-video-{}", stack.env.id));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An H.264/AAC MP4 of ffmpeg's test pattern and a tone. `noisy` adds grain so the
/// encoder really spends the bitrate (a file of a predictable, large size).
pub fn generate_video(path: &Path, size: &str, seconds: u32, video_bitrate: &str, noisy: bool) {
    let filter = if noisy {
        "noise=alls=30:allf=t"
    } else {
        "null"
    };
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=25")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-vf", filter])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-b:v",
            video_bitrate,
            "-maxrate",
            video_bitrate,
            "-bufsize",
            video_bitrate,
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .expect("ffmpeg runs (deploy/local/deps installs it)");
    assert!(status.success(), "generating {}", path.display());
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Runs tuspy (tus_upload.py) and returns its JSON report.
pub async fn tus(
    stack: &Stack,
    token: &str,
    file: &Path,
    chunk_size: usize,
    extra: &[&str],
) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tus_upload.py");
    let output = tokio::process::Command::new("/var/tmp/kino/venv/bin/python")
        .arg(script)
        .args([
            "--endpoint",
            &stack.url("/video/upload"),
            "--token",
            token,
            "--file",
        ])
        .arg(file)
        .args(["--chunk-size", &chunk_size.to_string()])
        .args(extra)
        .output()
        .await
        .expect("python venv at /var/tmp/kino/venv (deploy/local/deps)");
    assert!(
        output.status.success(),
        "tuspy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The video id at the end of an upload URL.
pub fn video_id(upload_url: &str) -> String {
    upload_url.rsplit('/').next().unwrap().to_owned()
}

pub fn s3(stack: &Stack) -> aws_sdk_s3::Client {
    platform::s3::client(&stack.env.s3)
}

pub async fn object(stack: &Stack, key: &str) -> Option<Vec<u8>> {
    let object = s3(stack)
        .get_object()
        .bucket(&stack.env.s3.bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(object.body.collect().await.unwrap().to_vec())
}

pub async fn keys(stack: &Stack, prefix: &str) -> Vec<String> {
    keys_in(&stack.env, prefix).await
}

/// The keys under `prefix` in the test's bucket, sorted.
pub async fn keys_in(env: &testkit::TestEnv, prefix: &str) -> Vec<String> {
    let s3 = platform::s3::client(&env.s3);
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&env.s3.bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .unwrap();
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    keys.sort();
    keys
}

/// `GET /video/{id}` as `token`'s user (anonymous without).
pub async fn status(stack: &Stack, id: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(stack.url(&format!("/video/{id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn wait_for_status(
    stack: &Stack,
    id: &str,
    token: &str,
    want: &str,
    timeout: Duration,
) -> Value {
    testkit::wait_for(&format!("video {id} {want}"), timeout, || async {
        let (_, body) = status(stack, id, Some(token)).await;
        (body["status"] == want).then_some(body)
    })
    .await
}

/// This stack's video events of the given types, from an exclusive queue of the test's own
/// (events::tap), bound under the stack's namespace as its services bind theirs.
pub struct Events {
    tap: events::tap::Tap,
}

impl Events {
    pub async fn listen(stack: &Stack, types: &[&str]) -> Self {
        let namespace = stack.namespace();
        let bindings = types
            .iter()
            .map(|t| (events::topology::VIDEO_EVENTS, namespace.routing_key(t)));
        let tap = events::tap::Tap::bind(&stack.env.amqp_url, "e2e-video-events", bindings)
            .await
            .unwrap();
        Self { tap }
    }

    /// Events about `video_id` until (and including) the first of type `last`.
    pub async fn until(&mut self, video_id: &str, last: &str, timeout: Duration) -> Vec<Value> {
        let mut seen = Vec::new();
        let collect = async {
            while let Some(event) = self.tap.next_json().await {
                if event["data"]["video_id"] == video_id {
                    let done = event["type"] == last;
                    seen.push(event);
                    if done {
                        return;
                    }
                }
            }
        };
        tokio::time::timeout(timeout, collect)
            .await
            .unwrap_or_else(|_| panic!("no {last} for {video_id} within {timeout:?}"));
        seen
    }
}

/// Takes one message from a queue of the stack's broker (None when empty).
pub async fn basic_get(stack: &Stack, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    let rabbit = events::Rabbit::new(&stack.env.amqp_url, "e2e-video-get");
    let channel = rabbit.channel().await.unwrap();
    let message = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .ok()
        .flatten();
    rabbit.close().await;
    message
}

/// The streams ffprobe finds through `url` (a master playlist lists every variant's, and
/// its subtitle renditions: FFmpeg's HLS demuxer reads those only with
/// `-strict experimental`). Async: the services answering run on the test's runtime.
pub async fn probe_streams(url: &str) -> Vec<Value> {
    let output = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-strict", "experimental"])
        .args(["-show_streams", "-of", "json", url])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    probed["streams"].as_array().unwrap().clone()
}
