//! Signed playback, as a native player meets it: a private video plays from the URL
//! GraphQL gives its owner, with no header (ffprobe and ffmpeg read the master, every
//! variant and their segments; posters and storyboard load like `<img src>` would), and
//! the URL opens nothing else: not another video, not once expired or altered, not for a
//! viewer who may no longer see the video, not after the video is deleted. It outlives the
//! access token it was obtained with.

mod video_common;

use std::{collections::BTreeSet, time::Duration};

use e2e::Stack;
use reqwest::Client;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use video_common::*;

const PLAYBACK: &str = "query($v: ID!) { video(id: $v) { playback { url expiresAt } hlsUrl \
    thumbnails { url } storyboard { vttUrl } } }";

async fn get(stack: &Stack, path: &str) -> reqwest::Response {
    Client::new().get(stack.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn a_private_video_plays_from_its_signed_url_alone_and_the_url_opens_nothing_else() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (owner, token) = user(&stack, "auteur").await;
    let (_, other_token) = user(&stack, "stranger").await;
    let dir = scratch(&stack);
    let file = dir.join("private.mp4");
    generate_video(&file, "640x360", 4, "600k", false);
    let meta = ["--meta", "title=Secret", "--meta", "visibility=private"];
    let report = tus(&stack, &token, &file, 1 << 20, &meta).await;
    let id = video_id(report["url"].as_str().unwrap());
    wait_for_status(&stack, &id, &token, "ready", Duration::from_secs(60)).await;
    stack
        .wait_video_ready(Some(&token), id.parse().unwrap())
        .await;

    let data = stack
        .graphql_ok(Some(&token), PLAYBACK, json!({ "v": id }))
        .await;
    let video = &data["video"];
    let url = video["playback"]["url"].as_str().unwrap().to_owned();
    assert!(url.contains("/signed/"), "{url}");
    assert_eq!(video["hlsUrl"], video["playback"]["url"]);
    let expires = OffsetDateTime::parse(
        video["playback"]["expiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - OffsetDateTime::now_utc();
    assert!(left > time::Duration::hours(3), "expires in {left}");
    // Without the token, no header: nothing.
    assert_eq!(
        get(&stack, &format!("/video/{id}/hls/master.m3u8"))
            .await
            .status(),
        404
    );
    // Another user cannot even get a URL.
    let theirs = stack
        .graphql_ok(Some(&other_token), PLAYBACK, json!({ "v": id }))
        .await;
    assert!(theirs["video"].is_null(), "{theirs}");

    // ffprobe and ffmpeg, given only the URL: the master, every variant, their segments.
    let streams = probe_streams(&stack.url(&url)).await;
    let heights: BTreeSet<u64> = streams
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .filter_map(|s| s["height"].as_u64())
        .collect();
    assert!(heights.len() >= 2, "variants {heights:?}");
    assert!(streams.iter().any(|s| s["codec_type"] == "audio"));
    let decoded = tokio::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-i",
            &stack.url(&url),
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ])
        .status()
        .await
        .unwrap();
    assert!(
        decoded.success(),
        "every variant decodes from the signed URL"
    );
    let master = get(&stack, &url).await;
    assert_eq!(master.status(), 200);
    assert_eq!(master.headers()["cache-control"], "private, no-store");
    // Stills resolve under the same kind of URL, as an <img src> loads them.
    for still in [
        video["thumbnails"][0]["url"].as_str().unwrap(),
        video["storyboard"]["vttUrl"].as_str().unwrap(),
    ] {
        assert!(still.contains("/signed/"), "{still}");
        let response = get(&stack, still).await;
        assert_eq!(response.status(), 200, "{still}");
        assert_eq!(response.headers()["cache-control"], "private, no-store");
    }

    // The token opens this video only, unaltered, and only until it expires.
    let (prefix, rest) = url.split_once("/signed/").unwrap();
    let (signed, _) = rest.split_once('/').unwrap();
    let other_video = Uuid::now_v7();
    let elsewhere = format!("/video/{other_video}/signed/{signed}/master.m3u8");
    assert_eq!(get(&stack, &elsewhere).await.status(), 403);
    let altered = format!("{prefix}/signed/{}x/master.m3u8", signed);
    assert_eq!(get(&stack, &altered).await.status(), 403);
    let key = e2e::playback_key();
    let video_uuid: Uuid = id.parse().unwrap();
    let owner_uuid: Uuid = owner.parse().unwrap();
    let expired = key.sign(
        video_uuid,
        Some(owner_uuid),
        OffsetDateTime::now_utc() - time::Duration::seconds(1),
    );
    let expired_url = format!("/video/{id}/signed/{expired}/master.m3u8");
    let refused = get(&stack, &expired_url).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    // A token for a viewer who may not see the video (as if issued while it was unlisted).
    let strangers = key.sign(
        video_uuid,
        None,
        OffsetDateTime::now_utc() + time::Duration::hours(1),
    );
    let stranger_url = format!("/video/{id}/signed/{strangers}/master.m3u8");
    assert_eq!(get(&stack, &stranger_url).await.status(), 403);
    // Nothing outside the video's tree, and not the upload API.
    for path in ["../sources", "%2e%2e/sources"] {
        let sneaky = format!("/video/{id}/signed/{signed}/{path}");
        assert_eq!(get(&stack, &sneaky).await.status(), 404, "{sneaky}");
    }
    let upload = Client::new()
        .head(stack.url(&format!("/video/upload/{id}")))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_ne!(
        upload.status(),
        200,
        "the upload API is not opened by a playback URL"
    );

    // The film outlives the access token it started with.
    stack.logout(&token).await;
    assert_eq!(get(&stack, &url).await.status(), 200);

    // A deleted video's token finds nothing.
    let tokens = stack.login("auteur", PASSWORD).await;
    let fresh = tokens["access_token"].as_str().unwrap();
    let deleted = Client::new()
        .delete(stack.url(&format!("/video/{id}")))
        .bearer_auth(fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(get(&stack, &url).await.status(), 404);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_public_video_plays_from_its_plain_url_and_an_unlisted_one_for_anyone_with_its_link() {
    let stack = Stack::start().await;
    let owner = Uuid::now_v7();
    let token = stack.token_for(owner, "lister");
    let public = stack
        .publish_video(
            owner,
            events::video::VideoMetadata {
                title: "Open".into(),
                ..Default::default()
            },
        )
        .await;
    stack.wait_video_ready(None, public).await;
    let data = stack
        .graphql_ok(None, PLAYBACK, json!({ "v": public }))
        .await;
    assert_eq!(
        data["video"]["playback"],
        json!({ "url": format!("/video/{public}/hls/master.m3u8"), "expiresAt": null })
    );

    // Unlisted: anyone with the id gets a signed URL (for no viewer in particular).
    let unlisted = stack
        .publish_video(
            owner,
            events::video::VideoMetadata {
                title: "By link".into(),
                visibility: events::video::Visibility::Unlisted,
                ..Default::default()
            },
        )
        .await;
    stack.wait_video_ready(Some(&token), unlisted).await;
    let data = stack
        .graphql_ok(None, PLAYBACK, json!({ "v": unlisted }))
        .await;
    let url = data["video"]["playback"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("/video/{unlisted}/signed/")),
        "{url}"
    );
    assert!(data["video"]["playback"]["expiresAt"].is_string());
}
