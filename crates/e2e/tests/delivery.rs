//! `HLS_DELIVERY=redirect`: a public video's segments and posters answer with a redirect to
//! a presigned S3 URL (the bytes come from S3, not through the video service), playlists
//! are still served through the gateway, and a private video's files still stream through,
//! checked per request. ffmpeg plays the public video from its master URL, following the
//! redirects.
//!
//! `HLS_DELIVERY=proxy` (the default) with the segment cache (video::hls_cache): a hot
//! segment comes from memory, byte for byte the stored object, and only while the viewer
//! may see its video.

mod video_common;

use std::time::Duration;

use e2e::Stack;
use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::json;
use testkit::wait_for;
use video_common::*;

/// Uploads `file` with tuspy through the gateway (1 MiB chunks): the new video's id.
async fn upload(stack: &Stack, token: &str, file: &std::path::Path, meta: &[&str]) -> String {
    video_id(
        tus(stack, token, file, 1 << 20, meta).await["url"]
            .as_str()
            .unwrap(),
    )
}

#[tokio::test]
async fn public_segments_redirect_to_s3_and_private_ones_stream_through() {
    let stack = Stack::start_with_video(|config| {
        config.delivery = video::Delivery::Redirect {
            public_endpoint: config.s3.endpoint.clone(),
            ttl: Duration::from_secs(300),
        };
    })
    .await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "broadcaster").await;
    let dir = scratch(&stack);
    let file = dir.join("source.mp4");
    generate_video(&file, "640x360", 4, "600k", false);
    let public = upload(&stack, &token, &file, &["--meta", "title=Open"]).await;
    let private_meta = ["--meta", "title=Closed", "--meta", "visibility=private"];
    let private = upload(&stack, &token, &file, &private_meta).await;
    for id in [&public, &private] {
        wait_for_status(&stack, id, &token, "ready", Duration::from_secs(60)).await;
    }

    let no_follow = Client::builder().redirect(Policy::none()).build().unwrap();
    let get = |path: String, auth: bool| {
        let mut request = no_follow.get(stack.url(&path));
        if auth {
            request = request.bearer_auth(&token);
        }
        request.send()
    };
    // Playlists come through the gateway; their segments redirect to S3.
    let master = get(format!("/video/{public}/hls/master.m3u8"), false)
        .await
        .unwrap();
    assert_eq!(master.status(), 200);
    let master = master.text().await.unwrap();
    let variant = master
        .lines()
        .find(|l| l.ends_with(".m3u8"))
        .unwrap()
        .to_owned();
    let playlist = get(format!("/video/{public}/hls/{variant}"), false)
        .await
        .unwrap();
    assert_eq!(playlist.status(), 200);
    let playlist = playlist.text().await.unwrap();
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let rung = variant.rsplit_once('/').unwrap().0;
    let segment_key = format!("hls/{public}/{rung}/{segment}");
    let redirected = get(format!("/video/{public}/hls/{rung}/{segment}"), false)
        .await
        .unwrap();
    assert_eq!(redirected.status(), 302);
    let location = redirected.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.starts_with(&stack.env.s3.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    // The presigned URL serves exactly the stored object, to anyone holding it.
    let from_s3 = Client::new().get(&location).send().await.unwrap();
    assert_eq!(from_s3.status(), 200);
    let bytes = from_s3.bytes().await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        object(&stack, &segment_key).await.unwrap().as_slice()
    );
    let poster = get(format!("/video/{public}/hls/poster-320.jpg"), false)
        .await
        .unwrap();
    assert_eq!(poster.status(), 302);

    // A player follows the redirects: ffmpeg decodes the whole public video.
    let decoded = tokio::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            &stack.url(&format!("/video/{public}/hls/master.m3u8")),
        ])
        .args(["-map", "0", "-f", "null", "-"])
        .status()
        .await
        .unwrap();
    assert!(decoded.success());

    // A private video's segment streams through (its owner's header is checked each time).
    let private_playlist = get(format!("/video/{private}/hls/{variant}"), true)
        .await
        .unwrap();
    assert_eq!(private_playlist.status(), 200);
    let private_segment = get(format!("/video/{private}/hls/{rung}/{segment}"), true)
        .await
        .unwrap();
    assert_eq!(private_segment.status(), 200);
    assert_eq!(
        private_segment.headers()["cache-control"],
        "private, no-store"
    );
    assert_eq!(
        get(format!("/video/{private}/hls/{rung}/{segment}"), false)
            .await
            .unwrap()
            .status(),
        404
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn cached_segments_are_the_stored_bytes_and_follow_the_videos_visibility() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "streamer").await;
    let dir = scratch(&stack);
    let file = dir.join("source.mp4");
    generate_video(&file, "640x360", 4, "600k", false);
    let id = upload(&stack, &token, &file, &["--meta", "title=Hot"]).await;
    wait_for_status(&stack, &id, &token, "ready", Duration::from_secs(60)).await;
    let get = |path: String, token: Option<&str>| {
        let mut request = Client::new().get(stack.url(&path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let master = get(format!("/video/{id}/hls/master.m3u8"), None)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let variant = master.lines().find(|l| l.ends_with(".m3u8")).unwrap();
    let rung = variant.rsplit_once('/').unwrap().0;
    let playlist = get(format!("/video/{id}/hls/{variant}"), None)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let path = format!("/video/{id}/hls/{rung}/{segment}");
    let key = format!("hls/{id}/{rung}/{segment}");
    let stored = object(&stack, &key).await.unwrap();

    // Read twice (a miss, then a hit): the stored bytes with the same headers each time.
    let mut e_tags = Vec::new();
    for _ in 0..2 {
        let response = get(path.clone(), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "video/mp2t");
        assert_eq!(headers["content-length"], stored.len().to_string().as_str());
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        e_tags.push(headers["etag"].clone());
        assert_eq!(response.bytes().await.unwrap().as_ref(), stored.as_slice());
    }
    assert_eq!(e_tags[0], e_tags[1]);
    // A range still comes from S3, as a 206 of exactly those bytes.
    let partial = Client::new()
        .get(stack.url(&path))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.bytes().await.unwrap().as_ref(), &stored[10..20]);

    // Proof the hit is from memory: with the object gone from S3, it is still served
    // (segments never change under their key, so this is what a CDN would do too).
    s3(&stack)
        .delete_object()
        .bucket(&stack.env.s3.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let response = get(path.clone(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), stored.as_slice());

    // The cache holds bytes, not decisions: made private, the video's cached segment is
    // refused to anyone but its owner at once (the owner gets it uncacheable).
    stack
        .graphql_ok(
            Some(&token),
            "mutation($v: ID!) { updateVideo(id: $v, input: { visibility: PRIVATE }) { id } }",
            json!({ "v": id }),
        )
        .await;
    wait_for(
        "the segment refused to strangers",
        Duration::from_secs(10),
        || async {
            let status = get(path.clone(), None).await.unwrap().status();
            (status == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    let owned = get(path.clone(), Some(&token)).await.unwrap();
    assert_eq!(owned.status(), StatusCode::OK);
    assert_eq!(owned.headers()["cache-control"], "private, no-store");
    assert_eq!(owned.bytes().await.unwrap().as_ref(), stored.as_slice());

    // Deleted: gone for its owner too, although its bytes may still be in memory.
    let deleted = Client::new()
        .delete(stack.url(&format!("/video/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(path.clone(), Some(&token)).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    std::fs::remove_dir_all(dir).ok();
}
