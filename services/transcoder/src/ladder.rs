//! The ABR ladder: which renditions a source gets.
//!
//! Rungs are named by their short side (a portrait 1080x1920 source gets "1080p" at
//! 1080x1920) so phones' vertical videos are treated like landscape ones. A source gets
//! every rung at or below its own size, never an upscale; a source smaller than the
//! lowest rung gets one rendition at its own size. Bitrates are caps (`-maxrate`) on a
//! constant-quality encode: simple content stays small, busy content stays bounded.

/// `(short side, video kbit/s cap)`, lowest first.
const LADDER: [(u32, u32); 8] = [
    (144, 200),
    (240, 400),
    (360, 800),
    (480, 1400),
    (720, 2800),
    (1080, 5000),
    (1440, 9000),
    (2160, 16000),
];

/// AAC audio bitrate of every rendition, kbit/s.
pub const AUDIO_KBPS: u32 = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// e.g. `720p`: the directory and the `name` in ffmpeg's stream map.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

impl Rung {
    /// Peak bits per second with audio, as advertised in the master playlist.
    pub fn bandwidth(&self, with_audio: bool) -> u64 {
        let audio = if with_audio { AUDIO_KBPS } else { 0 };
        u64::from(self.video_kbps + audio) * 1000
    }
}

/// Nearest even number, at least 2 (x264 wants even dimensions for 4:2:0).
fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32).max(1) * 2
}

/// The rungs for a `width`x`height` source, highest first.
pub fn choose(width: u32, height: u32) -> Vec<Rung> {
    let short = width.min(height);
    let scaled = |target: u32| -> (u32, u32) {
        let factor = f64::from(target) / f64::from(short);
        if width >= height {
            (even(f64::from(width) * factor), even(f64::from(target)))
        } else {
            (even(f64::from(target)), even(f64::from(height) * factor))
        }
    };
    let mut rungs: Vec<Rung> = LADDER
        .iter()
        .filter(|(side, _)| *side <= short)
        .map(|&(side, kbps)| {
            let (w, h) = scaled(side);
            Rung {
                name: format!("{side}p"),
                width: w,
                height: h,
                video_kbps: kbps,
            }
        })
        .collect();
    if rungs.is_empty() {
        let (w, h) = (even(f64::from(width)), even(f64::from(height)));
        rungs.push(Rung {
            name: format!("{}p", w.min(h)),
            width: w,
            height: h,
            video_kbps: LADDER[0].1,
        });
    }
    rungs.reverse();
    rungs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(rungs: &[Rung]) -> Vec<&str> {
        rungs.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn every_rung_at_or_below_the_source_and_no_upscale() {
        let rungs = choose(1280, 720);
        assert_eq!(names(&rungs), ["720p", "480p", "360p", "240p", "144p"]);
        assert_eq!((rungs[0].width, rungs[0].height), (1280, 720));
        assert_eq!((rungs[1].width, rungs[1].height), (854, 480));
        assert_eq!((rungs[4].width, rungs[4].height), (256, 144));
        assert_eq!(names(&choose(3840, 2160)).len(), 8);
        assert_eq!(names(&choose(1920, 1080))[0], "1080p");
    }

    #[test]
    fn an_odd_size_between_rungs_gets_the_rungs_below() {
        assert_eq!(names(&choose(1000, 700)), ["480p", "360p", "240p", "144p"]);
    }

    #[test]
    fn portrait_sources_are_laddered_by_their_short_side() {
        let rungs = choose(1080, 1920);
        assert_eq!(rungs[0].name, "1080p");
        assert_eq!((rungs[0].width, rungs[0].height), (1080, 1920));
        assert_eq!((rungs[2].width, rungs[2].height), (480, 854));
    }

    #[test]
    fn a_tiny_source_gets_one_rendition_at_its_own_even_size() {
        let rungs = choose(161, 101);
        assert_eq!(rungs.len(), 1);
        assert_eq!((rungs[0].width, rungs[0].height), (162, 102));
        assert_eq!(rungs[0].name, "102p");
    }

    #[test]
    fn dimensions_are_always_even() {
        for (w, h) in [(1279, 719), (640, 360), (426, 240), (720, 1280), (333, 777)] {
            for rung in choose(w, h) {
                assert!(rung.width % 2 == 0 && rung.height % 2 == 0, "{rung:?}");
            }
        }
    }

    #[test]
    fn bandwidth_counts_audio_when_there_is_audio() {
        let rung = &choose(640, 360)[0];
        assert_eq!(rung.bandwidth(true), 928_000);
        assert_eq!(rung.bandwidth(false), 800_000);
    }
}
