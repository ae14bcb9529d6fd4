//! Upload → transcode → HLS through the gateway, validated with ffprobe and ffmpeg;
//! progress events; owner-only private media; deletion; corrupt sources.

mod video_common;

use std::time::Duration;

use tokio::process::Command;

use e2e::Stack;
use reqwest::Client;
use serde_json::Value;
use video_common::*;

/// ffprobe's duration of an HLS playlist (or any media) at `url`. Async: the services
/// it fetches from run on this test's runtime.
async fn probe_duration(url: &str) -> f64 {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

/// Every segment of the playlist decodes without error.
async fn decodes(url: &str) {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "decoding {url}");
    assert!(
        output.stderr.is_empty(),
        "decode errors in {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn an_upload_becomes_a_valid_hls_ladder_with_live_progress() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "creator").await;
    let file = scratch(&stack).join("source.mp4");
    generate_video(&file, "640x360", 6, "1M", false);
    let mut events =
        Events::listen(&stack, &["video.progress", "video.ready", "video.failed"]).await;

    let report = tus(&stack, &token, &file, 1 << 20, &["--meta", "title=Ladder"]).await;
    let id = video_id(report["url"].as_str().unwrap());
    let seen = events
        .until(&id, "video.ready", Duration::from_secs(60))
        .await;

    // Progress: never backwards, ending at 100, all before ready.
    let (ready, progress) = seen.split_last().unwrap();
    assert_eq!(ready["type"], "video.ready");
    assert!(
        progress.iter().all(|e| e["type"] == "video.progress"),
        "{progress:?}"
    );
    let percents: Vec<f64> = progress
        .iter()
        .map(|e| e["data"]["percent"].as_f64().unwrap())
        .collect();
    assert!(percents.len() >= 2, "{percents:?}");
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "not monotonic: {percents:?}"
    );
    assert_eq!(*percents.last().unwrap(), 100.0);
    assert!(progress.iter().any(|e| e["data"]["stage"] == "transcoding"));

    let body = wait_for_status(&stack, &id, &token, "ready", Duration::from_secs(10)).await;
    let names: Vec<&str> = body["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["360p", "240p", "144p"]);
    let duration = body["duration_seconds"].as_f64().unwrap();
    assert!((duration - 6.0).abs() < 0.1, "{duration}");

    // The master playlist lists every rendition; each variant lasts as long as the source
    // and decodes; anonymous viewers may watch a public video.
    let master_url = stack.url(body["manifest_url"].as_str().unwrap());
    let master = reqwest::get(&master_url).await.unwrap();
    assert_eq!(master.status(), 200);
    assert_eq!(
        master.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let master = master.text().await.unwrap();
    for (name, resolution) in [
        ("360p", "640x360"),
        ("240p", "426x240"),
        ("144p", "256x144"),
    ] {
        assert!(master.contains(&format!("{name}/index.m3u8")), "{master}");
        assert!(
            master.contains(&format!("RESOLUTION={resolution}")),
            "{master}"
        );
        let variant = stack.url(&format!("/video/{id}/hls/{name}/index.m3u8"));
        let variant_duration = probe_duration(&variant).await;
        assert!(
            (variant_duration - duration).abs() <= 0.5,
            "{name}: {variant_duration} vs {duration}"
        );
        decodes(&variant).await;
    }

    // Segments are served with Range support and long-lived cache headers.
    let segment = stack.url(&format!("/video/{id}/hls/360p/seg_00000.ts"));
    let whole = reqwest::get(&segment).await.unwrap();
    assert_eq!(whole.status(), 200);
    assert!(
        whole.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let whole = whole.bytes().await.unwrap();
    let part = Client::new()
        .get(&segment)
        .header("Range", "bytes=100-299")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-299/{}", whole.len())
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(100..300));
    let thumbnail = reqwest::get(stack.url(&format!("/video/{id}/thumbnail.jpg")))
        .await
        .unwrap();
    assert_eq!(thumbnail.status(), 200);
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    std::fs::remove_dir_all(scratch(&stack)).ok();
}

#[tokio::test]
async fn private_media_is_for_its_owner_and_deletion_removes_everything() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "private").await;
    let (_, other) = user(&stack, "other").await;
    let file = scratch(&stack).join("private.mp4");
    generate_video(&file, "256x144", 3, "300k", false);
    let report = tus(
        &stack,
        &token,
        &file,
        1 << 20,
        &["--meta", "visibility=private"],
    )
    .await;
    let id = video_id(report["url"].as_str().unwrap());
    wait_for_status(&stack, &id, &token, "ready", Duration::from_secs(60)).await;

    let master = format!("/video/{id}/hls/master.m3u8");
    let get = |token: Option<&str>| {
        let mut request = Client::new().get(stack.url(&master));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 404);
    assert_eq!(get(Some(&other)).await.unwrap().status(), 404);
    let own = get(Some(&token)).await.unwrap();
    assert_eq!(own.status(), 200);
    assert!(
        own.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    assert_eq!(status(&stack, &id, None).await.0, 404);
    assert_eq!(status(&stack, &id, Some(&other)).await.0, 404);
    assert!(!keys(&stack, &format!("hls/{id}/")).await.is_empty());

    // Deletion: owner only; every object goes and video.deleted is announced.
    let mut events = Events::listen(&stack, &["video.deleted"]).await;
    let delete = |token: &str| {
        Client::new()
            .delete(stack.url(&format!("/video/{id}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(delete(&other).await.unwrap().status(), 404);
    assert_eq!(delete(&token).await.unwrap().status(), 204);
    events
        .until(&id, "video.deleted", Duration::from_secs(10))
        .await;
    assert_eq!(status(&stack, &id, Some(&token)).await.0, 404);
    for prefix in [
        format!("hls/{id}/"),
        format!("sources/{id}"),
        format!("thumbnails/{id}"),
        format!("staging/{id}/"),
    ] {
        assert!(
            keys(&stack, &prefix).await.is_empty(),
            "{prefix} left behind"
        );
    }
    std::fs::remove_dir_all(scratch(&stack)).ok();
}

#[tokio::test]
async fn a_corrupt_file_fails_after_the_retries_and_its_job_is_parked() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "corrupt").await;
    let file = scratch(&stack).join("corrupt.mp4");
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&file, noise).unwrap();
    let mut events = Events::listen(&stack, &["video.failed", "video.ready"]).await;
    let report = tus(&stack, &token, &file, 1 << 20, &[]).await;
    let id = video_id(report["url"].as_str().unwrap());

    let seen = events
        .until(&id, "video.failed", Duration::from_secs(30))
        .await;
    assert!(seen.iter().all(|e| e["type"] != "video.ready"));
    let body = wait_for_status(&stack, &id, &token, "failed", Duration::from_secs(10)).await;
    let reason = body["failure_reason"].as_str().unwrap();
    assert!(reason.contains("not a readable video"), "{reason}");

    let dead = basic_get(&stack, &format!("{}transcode.dead", stack.queue_prefix()))
        .await
        .expect("the job is parked in transcode.dead");
    let job: Value = serde_json::from_slice(&dead.delivery.data).unwrap();
    assert_eq!(job["data"]["video_id"], id.as_str());
    let headers = dead.delivery.properties.headers().clone().unwrap();
    let attempts = headers.inner().get("x-attempt").cloned().unwrap();
    assert_eq!(
        attempts,
        lapin::types::AMQPValue::LongLongInt(2),
        "max_attempts is 2 in tests"
    );
    std::fs::remove_dir_all(scratch(&stack)).ok();
}
