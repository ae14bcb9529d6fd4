//! The ffmpeg and ffprobe executables the transcoder drives, and the commands it gives them.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
};

use tokio::process::Command;

use crate::ladder::Rung;

/// A command for ffmpeg or ffprobe that never outlives the transcoder: killed when its
/// future is dropped (a cancelled job, shutdown), and by the kernel when the transcoder
/// dies without running any code (SIGKILL, OOM). Without the second, a killed worker's
/// encoder would go on writing into the scratch directory its restart removes, using the
/// CPU the next job needs. Stdin is closed: the tools never read it.
pub fn command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.stdin(Stdio::null()).kill_on_drop(true);
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            // PR_SET_PDEATHSIG follows the thread that forked, which here is a runtime
            // worker thread: those live as long as the process.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody will send the signal.
            // (No allocation here, between fork and exec: an OS error code, not a message.)
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command
}

#[derive(Debug, Clone)]
pub struct Tools {
    /// `FFMPEG_PATH`.
    pub ffmpeg: PathBuf,
    /// `FFPROBE_PATH`.
    pub ffprobe: PathBuf,
}

/// Runs `<tool> -version`: the executable exists and starts.
async fn runs(tool: &Path) -> Result<(), String> {
    let status = command(tool)
        .args(["-hide_banner", "-version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} -version: {status}", tool.display()))
    }
}

/// Readiness: both executables run.
impl platform::health::Check for Tools {
    async fn check(&self) -> Result<(), String> {
        runs(&self.ffmpeg).await?;
        runs(&self.ffprobe).await
    }
}

/// What the transcoder needs to know about a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub width: u32,
    pub height: u32,
    pub duration: f64,
    pub has_audio: bool,
}

/// Runs ffprobe; the error is readable by the uploader.
pub async fn probe(tools: &Tools, path: &Path) -> Result<Source, String> {
    let output = command(&tools.ffprobe)
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .await
        .map_err(|e| format!("ffprobe could not run: {e}"))?;
    if !output.status.success() {
        let why = last_line(&String::from_utf8_lossy(&output.stderr));
        return Err(format!("the file is not a readable video ({why})"));
    }
    parse_probe(&output.stdout)
}

pub fn parse_probe(json: &[u8]) -> Result<Source, String> {
    let probe: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("unreadable ffprobe output: {e}"))?;
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    // Cover art is a video stream too, but a single still frame: skip attached pictures.
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video" && s["disposition"]["attached_pic"] != 1)
        .ok_or("the file has no video stream")?;
    let width = video["width"].as_u64().unwrap_or(0) as u32;
    let height = video["height"].as_u64().unwrap_or(0) as u32;
    if width == 0 || height == 0 {
        return Err("the video stream has no picture size".into());
    }
    let number = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let duration = number(&probe["format"]["duration"])
        .or_else(|| number(&video["duration"]))
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or("the video has no duration")?;
    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
    Ok(Source {
        width,
        height,
        duration,
        has_audio,
    })
}

pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no detail")
        .chars()
        .take(300)
        .collect()
}

/// HLS segment length, seconds; keyframes are forced on this grid in every rendition so
/// segments align across the ladder (players switch at segment boundaries).
pub const SEGMENT_SECONDS: u32 = 4;

/// One ffmpeg process for the whole ladder: decode once, `split` the picture, scale and
/// encode each rung, mux each as HLS, write the master playlist. Progress on stdout.
pub fn ladder_args(
    input: &Path,
    out_dir: &Path,
    rungs: &[Rung],
    has_audio: bool,
    preset: &str,
) -> Vec<OsString> {
    let n = rungs.len();
    let mut graph = if n == 1 {
        String::from("[0:v]null[s0]")
    } else {
        let outs: String = (0..n).map(|i| format!("[s{i}]")).collect();
        format!("[0:v]split={n}{outs}")
    };
    for (i, rung) in rungs.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={}:{},setsar=1,format=yuv420p[v{i}]",
            rung.width, rung.height
        ));
    }
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-nostats",
        "-progress",
        "pipe:1",
        "-i",
    ]
    .map(String::from)
    .to_vec();
    args.push(input.display().to_string());
    args.extend(["-filter_complex".into(), graph]);
    for (i, rung) in rungs.iter().enumerate() {
        args.extend([
            "-map".into(),
            format!("[v{i}]"),
            format!("-maxrate:v:{i}"),
            format!("{}k", rung.video_kbps),
            format!("-bufsize:v:{i}"),
            format!("{}k", rung.video_kbps * 2),
        ]);
        if has_audio {
            args.extend(["-map".into(), "0:a:0".into()]);
        }
    }
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-crf",
            "23",
            "-profile:v",
            "high",
            "-force_key_frames:v",
        ]
        .map(String::from),
    );
    args.push(format!("expr:gte(t,n_forced*{SEGMENT_SECONDS})"));
    args.extend(["-sc_threshold".into(), "0".into()]);
    if has_audio {
        args.extend(["-c:a", "aac", "-b:a"].map(String::from));
        args.push(format!("{}k", crate::ladder::AUDIO_KBPS));
        args.extend(["-ac", "2"].map(String::from));
    }
    let stream_map: Vec<String> = rungs
        .iter()
        .enumerate()
        .map(|(i, rung)| {
            if has_audio {
                format!("v:{i},a:{i},name:{}", rung.name)
            } else {
                format!("v:{i},name:{}", rung.name)
            }
        })
        .collect();
    args.extend([
        "-f".into(),
        "hls".into(),
        "-hls_time".into(),
        SEGMENT_SECONDS.to_string(),
        "-hls_playlist_type".into(),
        "vod".into(),
        "-hls_flags".into(),
        "independent_segments".into(),
        "-hls_segment_type".into(),
        "mpegts".into(),
        "-hls_segment_filename".into(),
        out_dir.join("%v/seg_%05d.ts").display().to_string(),
        "-master_pl_name".into(),
        "master.m3u8".into(),
        "-var_stream_map".into(),
        stream_map.join(" "),
    ]);
    args.push(out_dir.join("%v/index.m3u8").display().to_string());
    args.into_iter().map(OsString::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_reads_size_duration_and_audio() {
        let json = br#"{"streams":[{"codec_type":"video","width":1280,"height":720,"disposition":{"attached_pic":0}},
            {"codec_type":"audio"}],"format":{"duration":"20.0400"}}"#;
        let source = parse_probe(json).unwrap();
        assert_eq!(
            source,
            Source {
                width: 1280,
                height: 720,
                duration: 20.04,
                has_audio: true
            }
        );
    }

    #[test]
    fn probe_refuses_what_is_not_a_video() {
        let audio_only = br#"{"streams":[{"codec_type":"audio"}],"format":{"duration":"3.0"}}"#;
        assert_eq!(
            parse_probe(audio_only).unwrap_err(),
            "the file has no video stream"
        );
        let cover_art = br#"{"streams":[{"codec_type":"video","width":600,"height":600,
            "disposition":{"attached_pic":1}}],"format":{"duration":"3.0"}}"#;
        assert!(parse_probe(cover_art).is_err());
        let still = br#"{"streams":[{"codec_type":"video","width":600,"height":600}],"format":{}}"#;
        assert_eq!(parse_probe(still).unwrap_err(), "the video has no duration");
    }

    #[test]
    fn one_process_maps_every_rung_with_its_audio() {
        let rungs = crate::ladder::choose(640, 360);
        let args: Vec<String> =
            ladder_args(Path::new("in"), Path::new("out"), &rungs, true, "veryfast")
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect();
        let joined = args.join(" ");
        assert!(joined.contains("[0:v]split=3[s0][s1][s2]"), "{joined}");
        assert!(
            joined.contains("v:0,a:0,name:360p v:1,a:1,name:240p v:2,a:2,name:144p"),
            "{joined}"
        );
        assert_eq!(args.iter().filter(|a| *a == "0:a:0").count(), 3);
        assert!(joined.contains("expr:gte(t,n_forced*4)"));
        assert_eq!(args.last().unwrap(), "out/%v/index.m3u8");
    }
}
