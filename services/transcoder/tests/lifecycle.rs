//! How a job ends when its worker does not simply succeed, with the real binary, broker,
//! S3 and ffmpeg:
//!
//! * SIGTERM while a job runs that can finish within the grace period: it finishes, is
//!   acknowledged, and the process exits 0 afterwards;
//! * SIGTERM while a job runs that cannot: it is stopped (ffmpeg killed, scratch
//!   removed) and handed back at once, its delivery counted, and the process exits 0;
//! * a job whose worker is SIGKILLed every time: after the delivery limit it is given
//!   up, parked in `transcode.dead` and the video failed with a reason;
//! * a job past its `TRANSCODE_TIMEOUT`: ffmpeg is killed and the attempt fails.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use events::{Envelope, transcode::DELIVERY_LIMIT, video::TranscodeJob};
use lapin::{
    BasicProperties, Channel,
    message::BasicGetMessage,
    options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use serde_json::Value;
use testkit::{TestEnv, process::ServiceProcess};
use transcoder::queues::Names;
use uuid::Uuid;

/// A test pattern with a tone, `seconds` long.
fn generate(path: &Path, size: &str, seconds: u32) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=25")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// One video's job on a test's own queues, and the events about it.
struct Harness {
    env: TestEnv,
    prefix: String,
    names: Names,
    work_dir: PathBuf,
    source: PathBuf,
    video_id: Uuid,
    rabbit: std::sync::Arc<events::Rabbit>,
    channel: Channel,
    events: events::tap::Tap,
}

impl Harness {
    /// Stores a `seconds`-long source, listens to its video's events and queues its job
    /// as the video service would.
    async fn new(size: &str, seconds: u32) -> Self {
        let env = TestEnv::new("transcoder");
        let prefix = env.queue_prefix.clone();
        let names = Names::new(&prefix);
        let work_dir = std::env::temp_dir().join(format!("kino-transcoder-life-{}", env.id));
        let source = work_dir.with_extension("mp4");
        generate(&source, size, seconds);
        let s3 = platform::s3::client(&env.s3);
        platform::s3::ensure_bucket(&s3, &env.s3.bucket)
            .await
            .unwrap();
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

        // The transcoder publishes under the test's prefix; so the tap binds.
        let namespace = events::Namespace::new(&prefix);
        let bindings = ["video.progress", "video.ready", "video.failed"]
            .map(|t| (events::topology::VIDEO_EVENTS, namespace.routing_key(t)));
        let events = events::tap::Tap::bind(&env.amqp_url, "transcoder-lifecycle-test", bindings)
            .await
            .unwrap();
        let rabbit = events::Rabbit::new(&env.amqp_url, "transcoder-lifecycle-test");
        let channel = rabbit.channel().await.unwrap();
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
        Self {
            env,
            prefix,
            names,
            work_dir,
            source,
            video_id,
            rabbit,
            channel,
            events,
        }
    }

    /// Starts the transcoder binary on this test's bucket and queues.
    async fn start(&self, extra: &[(&str, &str)]) -> ServiceProcess {
        let mut vars = vec![
            ("S3_ENDPOINT", self.env.s3.endpoint.clone()),
            ("S3_BUCKET", self.env.s3.bucket.clone()),
            ("S3_ACCESS_KEY", self.env.s3.access_key.clone()),
            ("S3_SECRET_KEY", self.env.s3.secret_key.clone()),
            ("AMQP_URL", self.env.amqp_url.clone()),
            ("QUEUE_PREFIX", self.prefix.clone()),
            ("TRANSCODE_WORK_DIR", self.work_dir.display().to_string()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        ServiceProcess::start(env!("CARGO_BIN_EXE_transcoder"), &vars).await
    }

    /// The next event about this video.
    async fn next_event(&mut self, within: Duration) -> Value {
        loop {
            let event = tokio::time::timeout(within, self.events.next_json())
                .await
                .unwrap_or_else(|_| panic!("an event within {within:?}"))
                .expect("the tap open");
            if event["data"]["video_id"] == self.video_id.to_string() {
                return event;
            }
        }
    }

    /// The events about this video that arrive until none has for half a second.
    async fn pending_events(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        let quiet = Duration::from_millis(500);
        while let Ok(event) =
            tokio::time::timeout(quiet, self.next_event(Duration::from_secs(3600))).await
        {
            seen.push(event);
        }
        seen
    }

    /// Waits until ffmpeg is encoding this video.
    async fn until_transcoding(&mut self) {
        loop {
            let event = self.next_event(Duration::from_secs(60)).await;
            assert_eq!(event["type"], "video.progress", "{event}");
            if event["data"]["stage"] == "transcoding" {
                return;
            }
        }
    }

    /// Takes one message from queue `name` (acknowledged at once), if there is one.
    async fn take(&self, name: &str) -> Option<BasicGetMessage> {
        self.channel
            .basic_get(name.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
    }

    async fn ready_messages(&self, name: &str) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.channel
            .queue_declare(name.into(), passive, FieldTable::default())
            .await
            .unwrap()
            .message_count()
    }

    /// Files left under the scratch directory, and ffmpeg processes still working in it.
    fn leftovers(&self) -> (usize, bool) {
        let ffmpeg = std::process::Command::new("pgrep")
            .args(["-f", &self.work_dir.display().to_string()])
            .output()
            .unwrap();
        (files_under(&self.work_dir), !ffmpeg.stdout.is_empty())
    }

    async fn close(self) {
        self.rabbit.close().await;
        std::fs::remove_file(&self.source).ok();
        std::fs::remove_dir_all(&self.work_dir).ok();
    }
}

fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() { files_under(&path) } else { 1 }
        })
        .sum()
}

fn header(message: &BasicGetMessage, name: &str) -> Option<AMQPValue> {
    message
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned())
}

fn as_int(value: &AMQPValue) -> i64 {
    match value {
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        other => panic!("not an integer: {other:?}"),
    }
}

async fn exit_code(service: &mut ServiceProcess, within: Duration) -> Option<i32> {
    tokio::time::timeout(within, service.child.wait())
        .await
        .expect("the process exits")
        .unwrap()
        .code()
}

#[tokio::test]
async fn sigterm_lets_the_job_in_flight_finish_then_exits_zero() {
    let mut job = Harness::new("854x480", 8).await;
    let mut worker = job
        .start(&[
            ("SHUTDOWN_GRACE_SECS", "60"),
            ("TRANSCODE_PRESET", "veryfast"),
        ])
        .await;
    job.until_transcoding().await;
    worker.signal("TERM");

    // The job goes on to the end and is announced.
    loop {
        let event = job.next_event(Duration::from_secs(60)).await;
        assert_ne!(event["type"], "video.failed", "{event}");
        if event["type"] == "video.ready" {
            break;
        }
    }
    assert_eq!(
        exit_code(&mut worker, Duration::from_secs(30)).await,
        Some(0),
        "clean exit after draining"
    );
    // Acknowledged: nothing came back to the queue when the connection closed.
    assert_eq!(job.ready_messages(&job.names.jobs).await, 0);
    assert!(job.take(&job.names.jobs).await.is_none());
    assert_eq!(
        job.leftovers(),
        (0, false),
        "scratch removed, no encoder left"
    );
    job.close().await;
}

#[tokio::test]
async fn a_job_that_cannot_finish_within_the_grace_is_handed_back_at_once() {
    // 60 s of 720p at a slow preset: far more than the 2 s grace on any machine.
    let mut job = Harness::new("1280x720", 60).await;
    let grace = Duration::from_secs(2);
    let mut worker = job
        .start(&[("SHUTDOWN_GRACE_SECS", "2"), ("TRANSCODE_PRESET", "medium")])
        .await;
    job.until_transcoding().await;
    let signalled = Instant::now();
    worker.signal("TERM");
    assert_eq!(
        exit_code(&mut worker, grace + Duration::from_secs(3)).await,
        Some(0),
        "clean exit within the grace period"
    );
    let took = signalled.elapsed();
    // It kept working until the hand-back point (it might have finished), not dropped
    // at the signal.
    assert!(
        took >= transcoder::limits::handback_after(grace),
        "worked on until the hand-back point: {took:?}"
    );

    // Back in the queue at once, for the next worker, with its delivery counted.
    let message = job
        .take(&job.names.jobs)
        .await
        .expect("the job is back in the queue");
    assert!(message.delivery.redelivered);
    let count = header(&message, "x-delivery-count").expect("a quorum queue counts it");
    assert_eq!(as_int(&count), 1);
    let back: Value = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(back["data"]["video_id"], job.video_id.to_string());
    assert_eq!(
        job.leftovers(),
        (0, false),
        "ffmpeg killed, scratch removed"
    );
    // Neither ready nor failed: the job is not over.
    for event in job.pending_events().await {
        assert_eq!(event["type"], "video.progress", "{event}");
    }
    job.close().await;
}

#[tokio::test]
async fn a_job_that_kills_every_worker_ends_failed_after_the_delivery_limit() {
    let mut job = Harness::new("854x480", 8).await;
    for kill in 1..=DELIVERY_LIMIT {
        let mut worker = job.start(&[]).await;
        // Killed the way the OOM killer would, as soon as it started on the job.
        let started = job.next_event(Duration::from_secs(60)).await;
        assert_eq!(started["type"], "video.progress", "kill {kill}: {started}");
        worker.child.start_kill().unwrap();
        worker.child.wait().await.unwrap();
        // Back in the queue, and whatever the dead worker published is read, so the next
        // event comes from the next worker.
        testkit::wait_for(
            "the job back in the queue",
            Duration::from_secs(10),
            || async { (job.ready_messages(&job.names.jobs).await == 1).then_some(()) },
        )
        .await;
        job.pending_events().await;
    }

    // The next worker gets the broker's last delivery and gives the job up.
    let _worker = job.start(&[]).await;
    let failed = loop {
        let event = job.next_event(Duration::from_secs(60)).await;
        assert_ne!(event["type"], "video.ready", "{event}");
        if event["type"] == "video.failed" {
            break event;
        }
    };
    let reason = failed["data"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("stopped {DELIVERY_LIMIT} times")),
        "{reason}"
    );
    let dead = job
        .take(&job.names.dead)
        .await
        .expect("the job is parked in transcode.dead");
    let error = header(&dead, "x-error").unwrap();
    assert_eq!(error, AMQPValue::LongString(reason.into()));
    assert!(
        job.take(&job.names.jobs).await.is_none(),
        "not queued again"
    );
    job.close().await;
}

#[tokio::test]
async fn a_job_past_its_transcode_timeout_fails() {
    let mut job = Harness::new("1280x720", 20).await;
    // A limit of half a second whatever the duration: no ladder is encoded in that time.
    let _worker = job
        .start(&[
            ("TRANSCODE_TIMEOUT_FLOOR_SECS", "0.5"),
            ("TRANSCODE_TIMEOUT_FACTOR", "0"),
            ("TRANSCODE_MAX_ATTEMPTS", "1"),
            ("TRANSCODE_PRESET", "medium"),
        ])
        .await;
    let failed = loop {
        let event = job.next_event(Duration::from_secs(60)).await;
        assert_ne!(event["type"], "video.ready", "{event}");
        if event["type"] == "video.failed" {
            break event;
        }
    };
    let reason = failed["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("took longer than its limit"), "{reason}");
    let dead = job.take(&job.names.dead).await.expect("parked");
    assert_eq!(as_int(&header(&dead, "x-attempt").unwrap()), 1);
    assert_eq!(
        job.leftovers(),
        (0, false),
        "ffmpeg killed, scratch removed"
    );
    job.close().await;
}
