//! Caption files: WebVTT or SRT in, one normalised WebVTT out, or a reason for refusing.
//!
//! What is kept is what players need and nothing a browser could be tricked by: cues with a
//! start before their end, within 100 hours, and text lines. Cue settings, identifiers,
//! `NOTE` comments are dropped; `STYLE` and `REGION` blocks (CSS and layout a page did not
//! ask for) and any markup other than WebVTT's own cue tags (`b i u c v lang ruby rt`) are
//! refused, so a track can never carry `<script>`, `<img onerror=…>` or a stylesheet into a
//! player that renders cue text as HTML.

use std::fmt::Write as _;

/// The largest caption file accepted.
pub const MAX_BYTES: usize = 512 * 1024;
/// Cues in one track at most (a three-hour film has about 2,000).
pub const MAX_CUES: usize = 20_000;
const MAX_MILLIS: u64 = 100 * 3_600_000;
const CUE_TAGS: [&str; 8] = ["b", "i", "u", "c", "v", "lang", "ruby", "rt"];

#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: Vec<String>,
}

/// Parses `bytes` as WebVTT (it starts with `WEBVTT`) or else SRT.
pub fn parse(bytes: &[u8]) -> Result<Vec<Cue>, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "a caption file may be at most {} KiB",
            MAX_BYTES / 1024
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "a caption file must be UTF-8 text")?;
    let text = text
        .trim_start_matches('\u{feff}')
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    if text.chars().any(|c| c == '\0') {
        return Err("a caption file must not contain NUL characters".into());
    }
    let vtt = text.starts_with("WEBVTT");
    let mut blocks = text
        .split("\n\n")
        .map(|b| b.trim_matches('\n'))
        .filter(|b| !b.is_empty());
    if vtt {
        let header = blocks.next().unwrap_or_default();
        let first = header.lines().next().unwrap_or_default();
        if first != "WEBVTT" && !first.starts_with("WEBVTT ") && !first.starts_with("WEBVTT\t") {
            return Err("not a WebVTT file (the first line must be WEBVTT)".into());
        }
    }
    let mut cues = Vec::new();
    for block in blocks {
        let mut lines = block.lines().peekable();
        let first = *lines.peek().unwrap_or(&"");
        if vtt && (first.starts_with("NOTE")) {
            continue;
        }
        if vtt && (first.starts_with("STYLE") || first.starts_with("REGION")) {
            return Err("STYLE and REGION blocks are not accepted".into());
        }
        // An identifier (SRT's cue number, WebVTT's optional id) before the timing line.
        if !first.contains("-->") {
            lines.next();
        }
        let timing = lines
            .next()
            .filter(|l| l.contains("-->"))
            .ok_or_else(|| format!("a cue without a timing line: {:?}", preview(block)))?;
        let (start, rest) = timing.split_once("-->").expect("checked above");
        let end = rest.split_whitespace().next().unwrap_or_default();
        let start_ms = timestamp(start.trim(), vtt)?;
        let end_ms = timestamp(end, vtt)?;
        if end_ms <= start_ms {
            return Err(format!("a cue must end after it starts: {timing:?}"));
        }
        let text: Vec<String> = lines.map(str::to_owned).collect();
        if text.is_empty() {
            return Err(format!("a cue without text: {timing:?}"));
        }
        for line in &text {
            check_text(line)?;
        }
        cues.push(Cue {
            start_ms,
            end_ms,
            text,
        });
        if cues.len() > MAX_CUES {
            return Err(format!("a track may have at most {MAX_CUES} cues"));
        }
    }
    if cues.is_empty() {
        return Err("no cues: not a WebVTT or SRT file".into());
    }
    Ok(cues)
}

fn preview(block: &str) -> String {
    block.chars().take(40).collect()
}

/// `hh:mm:ss.mmm` or `mm:ss.mmm` (WebVTT), `hh:mm:ss,mmm` (SRT).
fn timestamp(value: &str, vtt: bool) -> Result<u64, String> {
    let bad = || {
        format!(
            "not a {} timestamp: {value:?}",
            if vtt { "WebVTT" } else { "SRT" }
        )
    };
    let separator = if vtt { '.' } else { ',' };
    let (clock, millis) = value.split_once(separator).ok_or_else(bad)?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [h, m, s] => (*h, *m, *s),
        [m, s] if vtt => ("0", *m, *s),
        _ => return Err(bad()),
    };
    let number = |s: &str, max: u64| -> Result<u64, String> {
        let digits_ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let n: u64 = s.parse().ok().filter(|_| digits_ok).ok_or_else(bad)?;
        if n > max { Err(bad()) } else { Ok(n) }
    };
    let (minutes, seconds) = (number(minutes, 59)?, number(seconds, 59)?);
    let total =
        number(hours, 99)? * 3_600_000 + minutes * 60_000 + seconds * 1000 + number(millis, 999)?;
    if total > MAX_MILLIS {
        return Err(bad());
    }
    Ok(total)
}

/// Cue text may carry WebVTT's own tags only, and never `-->`.
fn check_text(line: &str) -> Result<(), String> {
    if line.contains("-->") {
        return Err(format!("cue text may not contain -->: {line:?}"));
    }
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after
            .find('>')
            .ok_or_else(|| format!("an unclosed tag in cue text: {line:?}"))?;
        let tag = &after[..close];
        let name = tag
            .trim_start_matches('/')
            .split(['.', ' '])
            .next()
            .unwrap_or_default();
        let timestamp_tag = tag.bytes().next().is_some_and(|b| b.is_ascii_digit());
        let attributes_ok = !tag.contains(['"', '\'', '=', '(', ')']);
        if !(timestamp_tag || CUE_TAGS.contains(&name) && attributes_ok) {
            return Err(format!(
                "markup other than WebVTT cue tags in cue text: <{tag}>"
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// The normalised WebVTT of `cues`.
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for cue in cues {
        let _ = write!(out, "\n{} --> {}\n", clock(cue.start_ms), clock(cue.end_ms));
        for line in &cue.text {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn clock(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_becomes_webvtt() {
        let srt = "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello <i>there</i>\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nTwo\r\nlines\r\n";
        let cues = parse(srt.as_bytes()).unwrap();
        assert_eq!(
            to_vtt(&cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello <i>there</i>\n\n00:00:03.000 --> 00:00:04.000\nTwo\nlines\n"
        );
    }

    #[test]
    fn webvtt_is_normalised_and_its_settings_and_notes_dropped() {
        let vtt = "\u{feff}WEBVTT - a film\n\nNOTE made by hand\n\nintro\n00:01.000 --> 00:02.000 align:start\n<v Bob>Hi</v> <c.loud>there</c> <00:01.500>now\n";
        let cues = parse(vtt.as_bytes()).unwrap();
        assert_eq!(cues.len(), 1);
        assert_eq!(
            to_vtt(&cues),
            "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Bob>Hi</v> <c.loud>there</c> <00:01.500>now\n"
        );
    }

    #[test]
    fn broken_or_hostile_files_are_refused() {
        for (file, why) in [
            ("", "empty"),
            ("just some text\n", "not captions"),
            (
                "WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nbackwards\n",
                "ends before it starts",
            ),
            (
                "WEBVTT\n\n00:00:61.000 --> 00:01:02.000\nsixty-one seconds\n",
                "bad timestamp",
            ),
            (
                "WEBVTT\n\n00:00:01,000 --> 00:00:02,000\ncomma in vtt\n",
                "SRT timestamp in WebVTT",
            ),
            (
                "1\n00:00:01.000 --> 00:00:02.000\ndot in srt\n",
                "WebVTT timestamp in SRT",
            ),
            (
                "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script>\n",
                "script",
            ),
            (
                "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<img src=x onerror=alert(1)>\n",
                "img",
            ),
            (
                "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<b onclick=\"x\">hi</b>\n",
                "attributes",
            ),
            (
                "WEBVTT\n\nSTYLE\n::cue { color: red }\n\n00:00:01.000 --> 00:00:02.000\nhi\n",
                "style",
            ),
            ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n", "no text"),
            (
                "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nunclosed <b\n",
                "unclosed tag",
            ),
        ] {
            assert!(parse(file.as_bytes()).is_err(), "{why}: {file:?}");
        }
        assert!(parse(&[0xff, 0xfe, 0x00]).is_err(), "not UTF-8");
        assert!(parse(&vec![b'a'; MAX_BYTES + 1]).is_err(), "too large");
    }
}
