//! SIGKILL of the transcoder mid-job: the unacknowledged job goes back to the queue, the
//! restarted process removes the scratch files the dead one left, transcodes again into
//! the same keys, and the video becomes ready exactly once.

use std::{collections::BTreeSet, path::Path, time::Duration};

use events::{Envelope, video::TranscodeJob};
use lapin::{BasicProperties, options::BasicPublishOptions};
use serde_json::Value;
use testkit::{TestEnv, process::ServiceProcess};
use uuid::Uuid;

fn generate(path: &Path) {
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=854x480:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "8",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn start(env: &TestEnv, prefix: &str, work_dir: &Path) -> impl Future<Output = ServiceProcess> {
    let vars = [
        ("S3_ENDPOINT", env.s3.endpoint.clone()),
        ("S3_BUCKET", env.s3.bucket.clone()),
        ("S3_ACCESS_KEY", env.s3.access_key.clone()),
        ("S3_SECRET_KEY", env.s3.secret_key.clone()),
        ("AMQP_URL", env.amqp_url.clone()),
        ("QUEUE_PREFIX", prefix.to_owned()),
        ("TRANSCODE_WORK_DIR", work_dir.display().to_string()),
        ("TRANSCODE_PRESET", "veryfast".to_owned()),
    ];
    async move {
        let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
        ServiceProcess::start(env!("CARGO_BIN_EXE_transcoder"), &vars).await
    }
}

/// The processes whose parent is `pid` (from /proc: field 4 of `stat`, after the command
/// name in parentheses).
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if parent == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// Whether `pid` is a running process: it exists and is not a zombie (state `Z`, dead but
/// not yet reaped by whoever adopted it).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

fn files_under(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_job_interrupted_by_sigkill_completes_once_after_restart() {
    let env = TestEnv::new("transcoder");
    let prefix = env.queue_prefix.clone();
    let work_dir = std::env::temp_dir().join(format!("kino-transcoder-kill-{}", env.id));
    let s3 = platform::s3::client(&env.s3);
    platform::s3::ensure_bucket(&s3, &env.s3.bucket)
        .await
        .unwrap();
    let source = work_dir.with_extension("mp4");
    generate(&source);
    let video_id = Uuid::now_v7();
    s3.put_object()
        .bucket(&env.s3.bucket)
        .key(format!("sources/{video_id}"))
        .body(
            aws_sdk_s3::primitives::ByteStream::from_path(&source)
                .await
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // Listen to this video's events (under the test's prefix, as the transcoder publishes
    // them), then queue its job as the video service would.
    let namespace = events::Namespace::new(&prefix);
    let bindings = ["video.progress", "video.ready", "video.failed"]
        .map(|t| (events::topology::VIDEO_EVENTS, namespace.routing_key(t)));
    let mut tap = events::tap::Tap::bind(&env.amqp_url, "transcoder-kill-test", bindings)
        .await
        .unwrap();
    let rabbit = events::Rabbit::new(&env.amqp_url, "transcoder-kill-test");
    let channel = rabbit.channel().await.unwrap();
    let names = transcoder::queues::Names::new(&prefix);
    names.jobs_queue().declare(&channel).await.unwrap();
    let job = Envelope::new(TranscodeJob {
        video_id,
        owner_id: Uuid::now_v7(),
        source_key: format!("sources/{video_id}"),
    });
    channel
        .basic_publish(
            "".into(),
            names.jobs.as_str().into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&job).unwrap(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap();
    let mut next_event = async move || -> Value {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(60), tap.next_json())
                .await
                .expect("an event within 60 s")
                .expect("the tap open");
            if event["data"]["video_id"] == video_id.to_string() {
                return event;
            }
        }
    };

    let mut first = start(&env, &prefix, &work_dir).await;
    loop {
        let event = next_event().await;
        assert_eq!(event["type"], "video.progress");
        if event["data"]["stage"] == "transcoding"
            && event["data"]["percent"].as_f64().unwrap() > 0.0
        {
            break;
        }
    }
    let worker = first.child.id().expect("the worker runs");
    let tools = children_of(worker);
    assert!(!tools.is_empty(), "ffmpeg runs under the worker");
    first.child.start_kill().unwrap(); // SIGKILL: no cleanup, no ack
    first.child.wait().await.unwrap();
    // Its tools die with it (the kernel signals them at once; a moment for it to land),
    // rather than writing on into files the restart removes.
    let mut left: Vec<u32> = tools.iter().copied().filter(|p| running(*p)).collect();
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left.retain(|p| running(*p));
    }
    assert_eq!(
        left,
        Vec::<u32>::new(),
        "the killed worker's ffmpeg still running"
    );
    assert!(
        files_under(&work_dir) > 0,
        "the killed worker left its scratch files"
    );

    let _second = start(&env, &prefix, &work_dir).await;
    let mut readies = 0;
    let mut ready = Value::Null;
    while readies == 0 {
        let event = next_event().await;
        assert_ne!(event["type"], "video.failed", "{event}");
        if event["type"] == "video.ready" {
            readies += 1;
            ready = event;
        }
    }
    // No second announcement follows.
    let late = tokio::time::timeout(Duration::from_secs(2), next_event()).await;
    assert!(late.is_err(), "ready once, nothing after it: {late:?}");
    assert_eq!(files_under(&work_dir), 0, "scratch files removed");

    let listed = s3
        .list_objects_v2()
        .bucket(&env.s3.bucket)
        .prefix(format!("hls/{video_id}/"))
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len());
    let renditions: Vec<&str> = ready["data"]["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(renditions, ["480p", "360p", "240p", "144p"]);
    for name in renditions {
        // 8 s in 4 s segments: exactly two per rendition, plus its playlist.
        let of_rung: Vec<&String> = keys
            .iter()
            .filter(|k| k.contains(&format!("/{name}/")))
            .collect();
        assert_eq!(of_rung.len(), 3, "{of_rung:?}");
    }
    assert!(keys.contains(&format!("hls/{video_id}/master.m3u8")));
    rabbit.close().await;
    std::fs::remove_file(&source).ok();
    std::fs::remove_dir_all(&work_dir).ok();
}
