//! `Upload-Metadata`: comma-separated `key base64(value)` pairs (tus 1.0 creation).
//! Recognised keys: filename, title, description, tags (comma-separated), category,
//! visibility. Others (tus clients add `filetype`, `name`…) are ignored.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use events::video::{VideoMetadata, Visibility};

const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 5000;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 50;
const MAX_CATEGORY: usize = 50;
const MAX_FILENAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadMetadata {
    pub filename: Option<String>,
    pub metadata: VideoMetadata,
}

pub fn parse(header: Option<&str>) -> Result<UploadMetadata, String> {
    let mut filename = None;
    let mut metadata = VideoMetadata::default();
    let mut title = None;
    for pair in header.unwrap_or("").split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        let value = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("Upload-Metadata: the value of {key:?} is not base64 UTF-8"))?;
        let value = value.trim().to_owned();
        match key {
            "filename" => filename = Some(limited("filename", value, MAX_FILENAME)?),
            "title" => title = Some(limited("title", value, MAX_TITLE)?),
            "description" => metadata.description = limited("description", value, MAX_DESCRIPTION)?,
            "category" => {
                metadata.category =
                    Some(limited("category", value, MAX_CATEGORY)?).filter(|c| !c.is_empty())
            }
            "tags" => metadata.tags = tags(&value)?,
            "visibility" => {
                metadata.visibility = Visibility::parse(&value).ok_or_else(|| {
                    format!("visibility must be public, unlisted or private, not {value:?}")
                })?
            }
            _ => {}
        }
    }
    // A title is what the catalogue shows; the file name is a fair default.
    metadata.title = title
        .filter(|t| !t.is_empty())
        .or_else(|| filename.clone())
        .unwrap_or_else(|| "Untitled".to_owned());
    Ok(UploadMetadata { filename, metadata })
}

fn limited(key: &str, value: String, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        Err(format!("{key} is longer than {max} characters"))
    } else if value.chars().any(char::is_control) && key != "description" {
        Err(format!("{key} contains control characters"))
    } else {
        Ok(value)
    }
}

fn tags(value: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in value.split(',').map(|t| t.trim().to_lowercase()) {
        if tag.is_empty() || tags.contains(&tag) {
            continue;
        }
        tags.push(limited("tag", tag, MAX_TAG)?);
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn all_known_keys_are_read() {
        let header = format!(
            "filename {},title {},description {},tags {},category {},visibility {},filetype {}",
            b64("clip.mp4"),
            b64("My clip"),
            b64("A test\nclip"),
            b64("Cats, dogs,cats,"),
            b64("pets"),
            b64("unlisted"),
            b64("video/mp4"),
        );
        let parsed = parse(Some(&header)).unwrap();
        assert_eq!(parsed.filename.as_deref(), Some("clip.mp4"));
        assert_eq!(parsed.metadata.title, "My clip");
        assert_eq!(parsed.metadata.description, "A test\nclip");
        assert_eq!(parsed.metadata.tags, ["cats", "dogs"]);
        assert_eq!(parsed.metadata.category.as_deref(), Some("pets"));
        assert_eq!(parsed.metadata.visibility, Visibility::Unlisted);
    }

    #[test]
    fn title_defaults_to_the_file_name_and_keys_may_have_no_value() {
        let parsed = parse(Some(&format!("filename {},is_draft", b64("a.mov")))).unwrap();
        assert_eq!(parsed.metadata.title, "a.mov");
        assert_eq!(parsed.metadata.visibility, Visibility::Public);
        assert_eq!(parse(None).unwrap().metadata.title, "Untitled");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(Some("title %%%")).is_err());
        assert!(parse(Some(&format!("visibility {}", b64("secret")))).is_err());
        assert!(parse(Some(&format!("title {}", b64(&"x".repeat(201))))).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(parse(Some(&format!("tags {}", b64(&many.join(","))))).is_err());
    }
}
