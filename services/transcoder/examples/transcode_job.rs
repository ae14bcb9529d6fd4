//! Bench helper (bench/video/run): stores a source in S3, queues a transcode job for it
//! the way the video service does, and waits for `video.ready`. Prints the seconds from
//! queueing the job to `video.ready`: the transcoder's whole wall time for the job
//! (download, probe, encode, thumbnail, upload, events).
//!
//! Usage: `S3_BUCKET=… QUEUE_PREFIX=… transcode_job <source file>` (a transcoder must be
//! consuming the same prefix).

use std::time::{Duration, Instant};

use events::{
    Envelope, topology,
    video::{TranscodeJob, VideoEventKind},
};
use lapin::{BasicProperties, options::BasicPublishOptions};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        anyhow::bail!("usage: transcode_job <source file>");
    };
    let s3 = platform::s3::S3Config::from_env()?;
    let client = platform::s3::client(&s3);
    platform::s3::ensure_bucket(&client, &s3.bucket)
        .await
        .map_err(anyhow::Error::msg)?;
    let video_id = Uuid::now_v7();
    let source_key = format!("sources/{video_id}");
    client
        .put_object()
        .bucket(&s3.bucket)
        .key(&source_key)
        .body(aws_sdk_s3::primitives::ByteStream::from_path(&path).await?)
        .send()
        .await?;

    let amqp_url = platform::config::amqp_url()?;
    let prefix: String = platform::config::var("QUEUE_PREFIX", "")?;
    let namespace = events::Namespace::new(&prefix);
    let bindings = [VideoEventKind::Ready, VideoEventKind::Failed].map(|kind| {
        (
            topology::VIDEO_EVENTS,
            namespace.routing_key(kind.routing_key()),
        )
    });
    let mut tap = events::tap::Tap::bind(&amqp_url, "bench-transcode-events", bindings).await?;
    let rabbit = events::Rabbit::new(amqp_url, "bench-transcode");
    let channel = rabbit.channel().await?;
    let names = transcoder::queues::Names::new(&prefix);
    names.jobs_queue().declare(&channel).await?;
    let job = Envelope::new(TranscodeJob {
        video_id,
        owner_id: Uuid::now_v7(),
        source_key,
    });
    let started = Instant::now();
    channel
        .basic_publish(
            "".into(),
            names.jobs.as_str().into(),
            BasicPublishOptions::default(),
            &serde_json::to_vec(&job)?,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(1800), tap.next_json())
            .await?
            .ok_or_else(|| anyhow::anyhow!("event stream ended"))?;
        if event["data"]["video_id"] != video_id.to_string() {
            continue;
        }
        anyhow::ensure!(
            event["type"] == VideoEventKind::Ready.as_str(),
            "transcode failed: {event}"
        );
        println!("{:.3}", started.elapsed().as_secs_f64());
        rabbit.close().await;
        tap.close().await;
        return Ok(());
    }
}
