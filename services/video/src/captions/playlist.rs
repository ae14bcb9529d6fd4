//! Captions in HLS: each track is a one-segment WebVTT media playlist
//! (`captions/{language}.m3u8` naming `captions/{language}.vtt`), and the master playlist
//! lists the tracks as a `TYPE=SUBTITLES` rendition group that every variant refers to,
//! which is how hls.js and Safari find them. Adding or removing a track rewrites the master
//! from what it says now, without touching the ladder (no re-transcode).

use std::fmt::Write as _;

pub const GROUP: &str = "subs";

/// A caption track as the master lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub language: String,
    pub label: String,
}

/// The media playlist of one track: a single WebVTT segment as long as the video.
pub fn media_playlist(language: &str, duration_seconds: f64) -> String {
    let duration = duration_seconds.max(0.001);
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration:.3},\n{language}.vtt\n#EXT-X-ENDLIST\n",
        duration.ceil() as u64
    )
}

/// `master` with its subtitle group replaced by `tracks` (none: the group is removed).
pub fn with_tracks(master: &str, tracks: &[Track]) -> String {
    let mut out = String::new();
    let mut media_written = false;
    for line in master.lines() {
        if line.starts_with("#EXT-X-MEDIA:") && line.contains("TYPE=SUBTITLES") {
            continue; // the old group
        }
        if let Some(attributes) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            if !media_written {
                for (i, track) in tracks.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{GROUP}\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={},AUTOSELECT=YES,FORCED=NO,URI=\"captions/{}.m3u8\"",
                        track.label,
                        track.language,
                        if i == 0 { "YES" } else { "NO" },
                        track.language
                    );
                }
                media_written = true;
            }
            let attributes = strip_subtitles(attributes);
            out.push_str("#EXT-X-STREAM-INF:");
            out.push_str(&attributes);
            if !tracks.is_empty() {
                let _ = write!(out, ",SUBTITLES=\"{GROUP}\"");
            }
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// An attribute list without its `SUBTITLES=…` attribute (commas inside quotes kept).
fn strip_subtitles(attributes: &str) -> String {
    let mut kept = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in attributes.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                kept.push(&attributes[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    kept.push(&attributes[start..]);
    kept.retain(|a| !a.starts_with("SUBTITLES="));
    kept.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\"\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=426x240,CODECS=\"avc1.640015,mp4a.40.2\"\n240p/index.m3u8\n";

    fn track(language: &str, label: &str) -> Track {
        Track {
            language: language.into(),
            label: label.into(),
        }
    }

    #[test]
    fn tracks_become_a_subtitle_group_every_variant_refers_to() {
        let with = with_tracks(MASTER, &[track("en", "English"), track("fr", "Français")]);
        assert!(with.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI=\"captions/en.m3u8\"\n"));
        assert!(with.contains("LANGUAGE=\"fr\",DEFAULT=NO"));
        assert_eq!(with.matches(",SUBTITLES=\"subs\"\n").count(), 2);
        assert!(
            with.contains("CODECS=\"avc1.64001e,mp4a.40.2\",SUBTITLES=\"subs\"\n360p/index.m3u8")
        );
        // Rewriting is idempotent, and removing the last track restores the master.
        assert_eq!(
            with_tracks(&with, &[track("en", "English"), track("fr", "Français")]),
            with
        );
        assert_eq!(with_tracks(&with, &[]), MASTER);
    }

    #[test]
    fn a_track_is_one_segment_as_long_as_the_video() {
        assert_eq!(
            media_playlist("en", 6.04),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:7\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.040,\nen.vtt\n#EXT-X-ENDLIST\n"
        );
    }
}
