//! Caption tracks through the gateway: the owner adds SRT and WebVTT tracks to a ready
//! (private) video, and they appear in the master playlist as a subtitle group, in
//! ffprobe's streams read from the signed playback URL alone, and in `GET /video/{id}`;
//! replacing and removing work without re-transcoding; every bad file is refused with a
//! 4xx problem+json and changes nothing.

mod video_common;

use std::time::Duration;

use e2e::Stack;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use video_common::*;

const SRT: &str = "1\r\n00:00:00,500 --> 00:00:02,000\r\nHello from SRT\r\n\r\n2\r\n00:00:02,500 --> 00:00:03,500\r\n<i>Still here</i>\r\n";
const VTT: &str = "WEBVTT\n\n00:00.500 --> 00:02.000\nBonjour\n";

async fn put_caption(stack: &Stack, token: &str, id: &str, path: &str, body: &str) -> Response {
    Client::new()
        .put(stack.url(&format!("/video/{id}/captions/{path}")))
        .bearer_auth(token)
        .header("Content-Type", "text/vtt")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn text(stack: &Stack, path: &str, token: &str) -> String {
    let response = Client::new()
        .get(stack.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn caption_tracks_join_the_master_and_bad_files_change_nothing() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "subtitler").await;
    let (_, other) = user(&stack, "meddler").await;
    let dir = scratch(&stack);
    let file = dir.join("source.mp4");
    generate_video(&file, "640x360", 4, "600k", false);
    let meta = ["--meta", "title=Spoken", "--meta", "visibility=private"];
    let report = tus(&stack, &token, &file, 1 << 20, &meta).await;
    let id = video_id(report["url"].as_str().unwrap());
    wait_for_status(&stack, &id, &token, "ready", Duration::from_secs(60)).await;
    let master_path = format!("/video/{id}/hls/master.m3u8");
    let original = text(&stack, &master_path, &token).await;
    assert!(!original.contains("SUBTITLES"));

    // An SRT track (converted) and a WebVTT one.
    let added = put_caption(&stack, &token, &id, "en?label=English", SRT).await;
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["language"], "en");
    let vtt = text(&stack, added["url"].as_str().unwrap(), &token).await;
    assert!(
        vtt.starts_with("WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello from SRT\n"),
        "{vtt}"
    );
    assert_eq!(
        put_caption(&stack, &token, &id, "fr?label=Fran%C3%A7ais", VTT)
            .await
            .status(),
        201
    );
    let master = text(&stack, &master_path, &token).await;
    assert!(
        master.contains("TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\""),
        "{master}"
    );
    assert!(
        master.contains("NAME=\"Français\",LANGUAGE=\"fr\""),
        "{master}"
    );
    let variants = master.matches("#EXT-X-STREAM-INF:").count();
    assert_eq!(
        master.matches("SUBTITLES=\"subs\"").count(),
        variants,
        "{master}"
    );

    // GraphQL lists them (video.captions), with URLs signed like the video's playback.
    let listed = testkit::wait_for("the tracks in GraphQL", Duration::from_secs(10), || async {
        let data = stack
            .graphql_ok(
                Some(&token),
                "query($v: ID!) { video(id: $v) { captions { language label url } } }",
                json!({ "v": id }),
            )
            .await;
        let captions = data["video"]["captions"].as_array().cloned()?;
        (captions.len() == 2).then_some(captions)
    })
    .await;
    assert_eq!(listed[0]["language"], "en");
    assert_eq!(listed[1]["label"], "Français");
    let track_url = listed[0]["url"].as_str().unwrap();
    assert!(track_url.contains("/signed/"), "{track_url}");
    let track = Client::new()
        .get(stack.url(track_url))
        .send()
        .await
        .unwrap();
    assert_eq!(track.status(), 200);
    assert!(track.text().await.unwrap().contains("Hello from SRT"));

    // A player knowing only the signed URL finds the subtitles too.
    let data = stack
        .graphql_ok(
            Some(&token),
            "query($v: ID!) { video(id: $v) { playback { url } } }",
            json!({ "v": id }),
        )
        .await;
    let url = stack.url(data["video"]["playback"]["url"].as_str().unwrap());
    let streams = probe_streams(&url).await;
    let subtitles: Vec<&Value> = streams
        .iter()
        .filter(|s| s["codec_type"] == "subtitle")
        .collect();
    assert!(!subtitles.is_empty(), "no subtitle stream in {streams:?}");
    assert!(
        subtitles.iter().all(|s| s["codec_name"] == "webvtt"),
        "{subtitles:?}"
    );
    assert!(streams.iter().any(|s| s["codec_type"] == "video"));

    // Replacing keeps the group; the listing follows.
    assert_eq!(
        put_caption(&stack, &token, &id, "en?label=English", VTT)
            .await
            .status(),
        200
    );
    let listed: Value =
        serde_json::from_str(&text(&stack, &format!("/video/{id}"), &token).await).unwrap();
    let languages: Vec<&str> = listed["captions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["en", "fr"]);

    // Bad files, tags and callers: a 4xx problem+json each, and nothing changes.
    let before = text(&stack, &master_path, &token).await;
    let oversized = format!(
        "WEBVTT\n\n00:00.000 --> 00:01.000\n{}\n",
        "x".repeat(600 * 1024)
    );
    let refusals: Vec<(&str, String, u16)> = vec![
        ("de", "just a text file".into(), 400),
        (
            "de",
            "WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nbackwards\n".into(),
            400,
        ),
        (
            "de",
            "1\n00:00:01,000 --> 00:00:99,000\nbroken clock\n".into(),
            400,
        ),
        (
            "de",
            "WEBVTT\n\n00:00.000 --> 00:01.000\n<script>alert(1)</script>\n".into(),
            400,
        ),
        (
            "de",
            "WEBVTT\n\nSTYLE\n::cue { background: url(x) }\n\n00:00.000 --> 00:01.000\nhi\n".into(),
            400,
        ),
        ("de", oversized, 413),
        ("DE", VTT.into(), 400),
        ("de-", VTT.into(), 400),
    ];
    for (language, body, status) in refusals {
        let response = put_caption(&stack, &token, &id, language, &body).await;
        assert_eq!(
            response.status(),
            status,
            "{language}: {}",
            &body[..body.len().min(60)]
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    assert_eq!(
        put_caption(&stack, &other, &id, "de", VTT).await.status(),
        404
    );
    assert_eq!(
        text(&stack, &master_path, &token).await,
        before,
        "a refusal changed the master"
    );
    assert!(
        keys(&stack, &format!("hls/{id}/captions/de"))
            .await
            .is_empty()
    );

    // Removing a track takes it out of the master; removing the last restores it.
    for language in ["en", "fr"] {
        let removed = Client::new()
            .delete(stack.url(&format!("/video/{id}/captions/{language}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), 204);
    }
    assert_eq!(text(&stack, &master_path, &token).await, original);
    assert!(
        keys(&stack, &format!("hls/{id}/captions/"))
            .await
            .is_empty()
    );
    testkit::wait_for("no tracks in GraphQL", Duration::from_secs(10), || async {
        let data = stack
            .graphql_ok(
                Some(&token),
                "query($v: ID!) { video(id: $v) { captions { language } } }",
                json!({ "v": id }),
            )
            .await;
        (data["video"]["captions"] == json!([])).then_some(())
    })
    .await;
    std::fs::remove_dir_all(dir).ok();
}
