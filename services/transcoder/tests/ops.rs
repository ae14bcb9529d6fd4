//! The transcoder's readiness follows each of its dependencies, ffmpeg included.

use std::{path::PathBuf, time::Duration};

use platform::{Shutdown, config::HttpConfig};
use testkit::{
    TestEnv,
    ops::{Dependency, get_json, readiness_follows},
    wait_for,
};
use transcoder::ffmpeg::Tools;

const DEPENDENCIES: &[&str] = &["rabbitmq", "s3", "ffmpeg"];

fn config(env: &TestEnv, ffmpeg: Tools) -> transcoder::Config {
    transcoder::Config {
        http: HttpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            shutdown_grace: Duration::from_secs(5),
        },
        s3: env.s3.clone(),
        amqp_url: env.amqp_url.clone(),
        ffmpeg,
        jobs: transcoder::JobConfig {
            queue_prefix: env.queue_prefix.clone(),
            work_dir: std::env::temp_dir().join(format!("kino-transcoder-{}", env.id)),
            ..Default::default()
        },
    }
}

fn system_tools() -> Tools {
    Tools {
        ffmpeg: "ffmpeg".into(),
        ffprobe: "ffprobe".into(),
    }
}

fn spawn_with(env: &TestEnv, ffmpeg: Tools) -> impl Future<Output = String> + use<> {
    let config = config(env, ffmpeg);
    async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(transcoder::run(config, listener, Shutdown::new()));
        format!("http://{addr}")
    }
}

fn spawn_app(env: &TestEnv) -> impl Future<Output = String> + use<> {
    spawn_with(env, system_tools())
}

#[tokio::test]
async fn readiness_follows_rabbitmq() {
    readiness_follows(
        Dependency::RabbitMq,
        DEPENDENCIES,
        TestEnv::new("transcoder"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_s3() {
    readiness_follows(
        Dependency::S3,
        DEPENDENCIES,
        TestEnv::new("transcoder"),
        spawn_app,
    )
    .await;
}

/// ffmpeg is a dependency too: configured at a path where it is missing, the worker is
/// unready; once the executable appears there, readiness returns without a restart.
#[tokio::test]
async fn readiness_follows_ffmpeg() {
    let env = TestEnv::new("transcoder");
    let dir = std::env::temp_dir().join(format!("kino-ffmpeg-{}", env.id));
    std::fs::create_dir_all(&dir).unwrap();
    let tools = Tools {
        ffmpeg: dir.join("ffmpeg"),
        ffprobe: dir.join("ffprobe"),
    };
    let base = spawn_with(&env, tools).await;

    let body = wait_for("other dependencies up", Duration::from_secs(30), || async {
        let (status, body) = get_json(&format!("{base}/readyz")).await;
        assert_eq!(status, 503, "{body}");
        (body["checks"]["rabbitmq"]["status"] == "up" && body["checks"]["s3"]["status"] == "up")
            .then_some(body)
    })
    .await;
    assert_eq!(body["checks"]["ffmpeg"]["status"], "down", "{body}");
    assert!(
        body["checks"]["ffmpeg"]["error"]
            .as_str()
            .unwrap()
            .contains("ffmpeg"),
        "{body}"
    );
    assert_eq!(get_json(&format!("{base}/healthz")).await.0, 200);

    for tool in ["ffmpeg", "ffprobe"] {
        let real = which(tool);
        std::os::unix::fs::symlink(real, dir.join(tool)).unwrap();
    }
    wait_for(
        "ready once ffmpeg is installed",
        // Generous: the suite runs transcodes beside this test, and a loaded machine
        // takes seconds to start `ffmpeg -version`.
        Duration::from_secs(30),
        || async { (get_json(&format!("{base}/readyz")).await.0 == 200).then_some(()) },
    )
    .await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH (deploy/local/deps installs it)"))
}
