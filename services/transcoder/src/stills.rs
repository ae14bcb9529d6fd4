//! Still images of a video, written next to its HLS ladder (so they are served, signed and
//! removed with it): the poster in two widths, and the storyboard that players show while
//! seeking.
//!
//! * **Posters** (`poster-320.jpg`, `poster-1280.jpg`): ffmpeg's `thumbnail` filter picks
//!   the most representative frame (the one closest to the average colour histogram) of a
//!   few seconds starting a tenth into the video, so a black or fading first frame is not
//!   the poster. Never upscaled: a narrow source gives narrower posters.
//! * **Storyboard** (`storyboard-N.jpg` sprite sheets, `storyboard.vtt`): a frame every
//!   `interval` seconds, scaled to [`TILE_WIDTH`], tiled [`COLUMNS`]×[`ROWS`] per sheet; one
//!   WebVTT cue per frame whose text is `storyboard-N.jpg#xywh=x,y,w,h` (relative to the
//!   VTT), the format hls.js-based players and video.js' thumbnail plugins read.
//!
//! Every size is computed here and given to ffmpeg explicitly, so what the `video.ready`
//! event states is what the files are.

use std::{ffi::OsString, fmt::Write as _, path::Path};

use crate::ffmpeg::Source;

/// Poster widths, smallest first.
pub const POSTER_WIDTHS: [u32; 2] = [320, 1280];
pub const TILE_WIDTH: u32 = 160;
pub const COLUMNS: u32 = 5;
pub const ROWS: u32 = 5;
pub const VTT: &str = "storyboard.vtt";

/// An image file and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Still {
    /// Relative to the HLS directory, e.g. `poster-320.jpg`.
    pub file: String,
    pub width: u32,
    pub height: u32,
}

/// `width` scaled from the source's aspect ratio, both even (as encoders want them).
fn scaled(source: &Source, width: u32) -> (u32, u32) {
    let width = width.min(source.width).max(2) & !1;
    let height = (f64::from(width) * f64::from(source.height) / f64::from(source.width.max(1)))
        .round() as u32;
    (width, height.max(2) & !1)
}

/// The posters for `source`, smallest first.
pub fn posters(source: &Source) -> Vec<Still> {
    POSTER_WIDTHS
        .iter()
        .map(|&w| {
            let (width, height) = scaled(source, w);
            Still {
                file: format!("poster-{w}.jpg"),
                width,
                height,
            }
        })
        .collect()
}

/// One ffmpeg run writing every poster into `dir`.
pub fn poster_args(input: &Path, dir: &Path, source: &Source, posters: &[Still]) -> Vec<OsString> {
    let start = (source.duration * 0.1).min(10.0);
    // About four seconds of frames (at 25 fps) to choose from, fewer in a short video.
    let batch = ((source.duration - start).max(0.04) * 25.0).clamp(1.0, 100.0) as u32;
    let outputs: String = (0..posters.len()).map(|i| format!("[p{i}]")).collect();
    let mut graph = format!("[0:v]thumbnail={batch},split={}{outputs}", posters.len());
    for (i, still) in posters.iter().enumerate() {
        let _ = write!(graph, ";[p{i}]scale={}:{}[o{i}]", still.width, still.height);
    }
    let mut args: Vec<OsString> = [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-ss",
    ]
    .map(OsString::from)
    .to_vec();
    args.push(format!("{start:.3}").into());
    args.extend([
        "-i".into(),
        input.into(),
        "-filter_complex".into(),
        graph.into(),
    ]);
    for (i, still) in posters.iter().enumerate() {
        args.extend(
            ["-map", &format!("[o{i}]"), "-frames:v", "1", "-q:v", "3"].map(OsString::from),
        );
        args.push(dir.join(&still.file).into());
    }
    args
}

/// What the storyboard of a video is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub interval: f64,
    pub tile_width: u32,
    pub tile_height: u32,
    /// Frames (and cues): one per interval, the last one cut at the video's end.
    pub frames: u32,
}

impl Plan {
    /// About twenty frames for a short video, one every 10 s at most for a long one.
    pub fn for_source(source: &Source) -> Self {
        let interval = (source.duration / 20.0).round().clamp(1.0, 10.0);
        let (tile_width, tile_height) = scaled(source, TILE_WIDTH);
        let frames = (source.duration / interval).ceil().max(1.0) as u32;
        Self {
            interval,
            tile_width,
            tile_height,
            frames,
        }
    }

    pub fn sheets(&self) -> u32 {
        self.frames.div_ceil(COLUMNS * ROWS)
    }

    /// The sprite sheet of frame `n`, and the frame's rectangle on it.
    fn place(&self, n: u32) -> (u32, [u32; 4]) {
        let per_sheet = COLUMNS * ROWS;
        let (sheet, at) = (n / per_sheet, n % per_sheet);
        let (column, row) = (at % COLUMNS, at / COLUMNS);
        let rect = [
            column * self.tile_width,
            row * self.tile_height,
            self.tile_width,
            self.tile_height,
        ];
        (sheet, rect)
    }
}

/// ffmpeg writing the sprite sheets `storyboard-0.jpg`… into `dir`. The `tile` filter pads
/// the last sheet, so every sheet is `COLUMNS × ROWS` tiles.
pub fn storyboard_args(input: &Path, dir: &Path, plan: &Plan) -> Vec<OsString> {
    let filter = format!(
        "fps=1/{},scale={}:{},tile={COLUMNS}x{ROWS}",
        plan.interval, plan.tile_width, plan.tile_height
    );
    let mut args: Vec<OsString> = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i"]
        .map(OsString::from)
        .to_vec();
    args.push(input.into());
    args.extend(["-an", "-vf", &filter, "-q:v", "5", "-start_number", "0"].map(OsString::from));
    args.push(dir.join("storyboard-%d.jpg").into());
    args
}

/// The WebVTT index of the storyboard: one cue per frame, up to `duration`, pointing only
/// into the `sheets` sprite sheets ffmpeg wrote.
pub fn vtt(plan: &Plan, duration: f64, sheets: u32) -> String {
    let mut out = String::from("WEBVTT\n");
    for n in 0..plan.frames {
        let (sheet, [x, y, w, h]) = plan.place(n);
        if sheet >= sheets {
            break;
        }
        let start = f64::from(n) * plan.interval;
        let end = (start + plan.interval).min(duration);
        if end <= start {
            break;
        }
        let _ = write!(
            out,
            "\n{} --> {}\nstoryboard-{sheet}.jpg#xywh={x},{y},{w},{h}\n",
            timestamp(start),
            timestamp(end)
        );
    }
    out
}

/// `hh:mm:ss.mmm`.
fn timestamp(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(width: u32, height: u32, duration: f64) -> Source {
        Source {
            width,
            height,
            duration,
            has_audio: false,
        }
    }

    #[test]
    fn posters_keep_the_aspect_ratio_and_never_upscale() {
        let wide = posters(&source(1920, 1080, 60.0));
        assert_eq!(
            wide.iter().map(|s| (s.width, s.height)).collect::<Vec<_>>(),
            [(320, 180), (1280, 720)]
        );
        let small = posters(&source(640, 360, 6.0));
        assert_eq!((small[1].width, small[1].height), (640, 360));
        let odd = posters(&source(853, 480, 6.0));
        assert!(odd.iter().all(|s| s.width % 2 == 0 && s.height % 2 == 0));
    }

    #[test]
    fn cues_cover_the_video_and_stay_inside_their_sheets() {
        let plan = Plan::for_source(&source(1280, 720, 95.0));
        assert_eq!((plan.interval, plan.frames), (5.0, 19));
        assert_eq!((plan.tile_width, plan.tile_height), (160, 90));
        let vtt = super::vtt(&plan, 95.0, plan.sheets());
        assert!(vtt.starts_with("WEBVTT\n"));
        assert!(vtt.contains("00:00:00.000 --> 00:00:05.000\nstoryboard-0.jpg#xywh=0,0,160,90\n"));
        assert!(
            vtt.contains("00:01:30.000 --> 00:01:35.000\nstoryboard-0.jpg#xywh=480,270,160,90\n")
        );
        assert_eq!(vtt.matches(" --> ").count(), 19);

        // A long video spans sheets; the last cue ends with the video.
        let plan = Plan::for_source(&source(1280, 720, 612.5));
        assert_eq!((plan.interval, plan.frames, plan.sheets()), (10.0, 62, 3));
        let vtt = super::vtt(&plan, 612.5, plan.sheets());
        assert!(vtt.contains("00:04:10.000 --> 00:04:20.000\nstoryboard-1.jpg#xywh=0,0,160,90\n"));
        assert!(
            vtt.trim_end()
                .ends_with("storyboard-2.jpg#xywh=160,180,160,90")
        );
        assert!(vtt.contains("00:10:10.000 --> 00:10:12.500"));
        // Cues never point into a sheet ffmpeg did not write.
        assert!(!super::vtt(&plan, 612.5, 2).contains("storyboard-2.jpg"));
    }
}
