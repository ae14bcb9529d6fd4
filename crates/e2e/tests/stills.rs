//! A ready video's stills, as a web player gets them through the gateway: the poster in
//! two widths (a representative frame, not the black opening), and the storyboard of
//! seek previews (a WebVTT file whose cues point into sprite sheets). Every image is
//! fetched and decoded; sizes are what GraphQL states.

mod video_common;

use std::path::Path;

use e2e::Stack;
use serde_json::{Value, json};
use video_common::*;

/// 1.5 s of black, then 4.5 s of a colourful test pattern (640×360).
fn generate_black_opening(path: &Path) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "color=c=black:s=640x360:r=25:d=1.5"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=25:d=4.5"])
        .args(["-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

/// Fetches `url` through the gateway into `file`; its content type.
async fn fetch(stack: &Stack, url: &str, file: &Path) -> String {
    let response = reqwest::get(stack.url(url)).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    std::fs::write(file, response.bytes().await.unwrap()).unwrap();
    kind
}

/// The decoded size of an image, by ffprobe.
fn size(file: &Path) -> (u64, u64) {
    let output = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{} decodes", file.display());
    let probed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &probed["streams"][0];
    (
        stream["width"].as_u64().unwrap(),
        stream["height"].as_u64().unwrap(),
    )
}

/// The mean luma (0–255) of an image, by ffmpeg's signalstats.
fn brightness(file: &Path) -> f64 {
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(file)
        .args([
            "-vf",
            "signalstats,metadata=print:key=lavfi.signalstats.YAVG",
        ])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    log.lines()
        .find_map(|l| l.split("lavfi.signalstats.YAVG=").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no YAVG in {log}"))
}

/// `hh:mm:ss.mmm` in seconds.
fn seconds(timestamp: &str) -> f64 {
    let parts: Vec<f64> = timestamp.split(':').map(|p| p.parse().unwrap()).collect();
    parts.iter().fold(0.0, |total, p| total * 60.0 + p)
}

const FEED: &str = "{ feed(first: 10) { edges { node { id durationSeconds thumbnailUrl \
    thumbnails { url width height } \
    storyboard { vttUrl intervalSeconds tileWidth tileHeight } } } } }";

#[tokio::test]
async fn posters_and_storyboards_of_the_feed_resolve_to_images_of_their_stated_sizes() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "director").await;
    let dir = scratch(&stack);
    let source = dir.join("source.mp4");
    generate_black_opening(&source);
    let report = tus(&stack, &token, &source, 1 << 20, &["--meta", "title=Dawn"]).await;
    let id = video_id(report["url"].as_str().unwrap());
    stack
        .wait_video_ready(Some(&token), id.parse().unwrap())
        .await;

    let feed = stack.graphql_ok(None, FEED, json!({})).await;
    let videos = feed["feed"]["edges"].as_array().unwrap();
    assert_eq!(videos.len(), 1, "{feed}");
    for edge in videos {
        let video = &edge["node"];

        // Posters: two widths, never upscaled, smallest first; thumbnailUrl the largest.
        let posters = video["thumbnails"].as_array().unwrap();
        let sizes: Vec<(u64, u64)> = posters
            .iter()
            .map(|p| (p["width"].as_u64().unwrap(), p["height"].as_u64().unwrap()))
            .collect();
        assert_eq!(sizes, [(320, 180), (640, 360)], "{video}");
        assert_eq!(video["thumbnailUrl"], posters[1]["url"]);
        for (n, poster) in posters.iter().enumerate() {
            let file = dir.join(format!("poster-{n}.jpg"));
            let kind = fetch(&stack, poster["url"].as_str().unwrap(), &file).await;
            assert_eq!(kind, "image/jpeg");
            assert_eq!(size(&file), sizes[n], "{poster}");
            // A frame of the pattern, not of the black opening (black is about 16).
            let luma = brightness(&file);
            assert!(luma > 60.0, "poster {n} is dark: mean luma {luma}");
        }

        // The storyboard: every cue points inside a sprite sheet that decodes, and the
        // cues cover the video from 0 to its end without gaps.
        let board = &video["storyboard"];
        let vtt_url = board["vttUrl"].as_str().unwrap();
        let vtt_file = dir.join("storyboard.vtt");
        let kind = fetch(&stack, vtt_url, &vtt_file).await;
        assert!(kind.starts_with("text/vtt"), "{kind}");
        let vtt = std::fs::read_to_string(&vtt_file).unwrap();
        assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
        let (tile_w, tile_h) = (
            board["tileWidth"].as_u64().unwrap(),
            board["tileHeight"].as_u64().unwrap(),
        );
        assert_eq!((tile_w, tile_h), (160, 90));
        let base = vtt_url.rsplit_once('/').unwrap().0;
        let mut sheets = std::collections::HashMap::new();
        let mut end_of_last = 0.0;
        let lines: Vec<&str> = vtt.lines().collect();
        let mut cues = 0;
        for (i, line) in lines.iter().enumerate() {
            let Some((start, end)) = line.split_once(" --> ") else {
                continue;
            };
            cues += 1;
            let (start, end) = (seconds(start), seconds(end));
            assert!((start - end_of_last).abs() < 1e-6, "gap before {line}");
            assert!(end > start, "{line}");
            end_of_last = end;
            let (sheet, rect) = lines[i + 1].split_once("#xywh=").unwrap();
            let [x, y, w, h]: [u64; 4] = rect
                .split(',')
                .map(|v| v.parse().unwrap())
                .collect::<Vec<_>>()
                .try_into()
                .unwrap();
            assert_eq!((w, h), (tile_w, tile_h), "{rect}");
            if !sheets.contains_key(sheet) {
                let file = dir.join(sheet);
                let kind = fetch(&stack, &format!("{base}/{sheet}"), &file).await;
                assert_eq!(kind, "image/jpeg");
                sheets.insert(sheet.to_owned(), size(&file));
            }
            let (sheet_w, sheet_h) = sheets[sheet];
            assert!(
                x + w <= sheet_w && y + h <= sheet_h,
                "{rect} outside {sheet_w}×{sheet_h}"
            );
        }
        let duration = video["durationSeconds"].as_f64().unwrap();
        assert!(cues >= 2, "{vtt}");
        assert!(
            (end_of_last - duration).abs() < 0.1,
            "cues end at {end_of_last}, video at {duration}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}
