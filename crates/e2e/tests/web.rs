//! The web app (web/) in a real browser against the real platform: `deploy/local/up` with
//! the workspace's debug binaries and the built app (web/dist, which deploy/local/test
//! builds before the suite), driven by `web/e2e/run.mjs` (playwright-core) in Debian's
//! Chromium, headless. Every flow of issue 21 runs: sign up and upload with live
//! transcoding progress, playback (hls.js levels, captions, storyboard), live likes and
//! comments across two users with one of them offline for a while, a private video, trending
//! and typo-tolerant search, an upload resumed after a reload, the account itself
//! (settings, a password change, a session ended elsewhere, deleting it), and account
//! recovery: email verification and a password reset through the links auth mailed, read
//! from the local stack's SMTP sink (`KINO_MAIL_DIR`, inherited from deploy/local/lib.sh).
//!
//! The flows print one JSON line per step; they are copied to this test's output. Set
//! `KINO_WEB_SCREENSHOTS` to a directory to keep the screenshots (the README's come from
//! here).

use std::{path::Path, process::Stdio, time::Duration};

use e2e::local_up::{self, LocalUp, repo_root};
use testkit::TestEnv;
use tokio::process::Command;

/// An 8 s clip (moving test pattern and a tone), made the way a user's phone would not, but
/// decoded and transcoded like any other upload.
async fn clip(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=8",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=8"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&path)
        .status()
        .await
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg made the clip");
    path
}

#[tokio::test]
async fn every_flow_of_the_web_app_works_in_chromium() {
    let web_root = repo_root().join("web/dist");
    assert!(
        web_root.join("index.html").exists(),
        "web/dist is built by deploy/local/test (or `cd web && npm ci && npm run build`)"
    );
    let env = TestEnv::with_databases("web", local_up::DATABASES);
    let mut up = LocalUp::start(&env, &web_root).await;
    let scratch = up.state.join("web-test");
    std::fs::create_dir_all(&scratch).unwrap();
    let clip = clip(&scratch).await;
    let screenshots = std::env::var("KINO_WEB_SCREENSHOTS")
        .map(Into::into)
        .unwrap_or_else(|_| scratch.join("screenshots"));

    let run = Command::new("node")
        .arg(repo_root().join("web/e2e/run.mjs"))
        .env("KINO_URL", up.url(""))
        .env("KINO_CLIP", &clip)
        .env("KINO_SCREENSHOTS", &screenshots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (web/e2e needs `npm ci` in web/)");
    let output = tokio::time::timeout(Duration::from_secs(600), run.wait_with_output())
        .await
        .expect("the browser flows finish within 10 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "a browser flow failed (see above)");
    // The last line is the summary: all eight flows ran, none failed.
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a summary line")).unwrap();
    assert_eq!(summary["failed"], 0);
    assert_eq!(
        summary["flows"].as_array().map(Vec::len),
        Some(8),
        "{summary}"
    );

    assert_eq!(up.stop_with("TERM").await.code(), Some(0));
}
