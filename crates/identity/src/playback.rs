//! Signed playback: a short-lived token that opens one video's HLS tree (playlists,
//! segments, posters, storyboard) to whoever holds the URL, with no header.
//!
//! Native players (Safari's, a `<video src>`, a TV app, ffprobe) cannot add an
//! `Authorization` header to every playlist and segment request, so private and unlisted
//! videos are played from `/video/{id}/signed/{token}/master.m3u8`: every URI inside the
//! playlists is relative, so the whole tree resolves under the token's path segment.
//!
//! The token is `{payload}.{mac}` (base64url, no padding). The payload says when it expires
//! and for which viewer it was made (`-` for an anonymous viewer of an unlisted video); the
//! MAC is HMAC-SHA256 with `PLAYBACK_SIGNING_KEY` (shared by media, which issues, and video,
//! which checks) over a version tag, the video id and the payload. So a token opens only the
//! video it was made for, only until it expires, and cannot be altered; it does not depend
//! on the viewer's access token, so a film outlives the access token it was started with.
//! The video service still checks the video exists and the viewer may still see it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: a MAC made for anything else never verifies here.
const TAG: &[u8] = b"kino-playback-v1";

/// The shortest key accepted (bytes).
pub const MIN_KEY_LEN: usize = 32;

/// The shared secret (`PLAYBACK_SIGNING_KEY`).
#[derive(Clone)]
pub struct PlaybackKey(Vec<u8>);

impl std::fmt::Debug for PlaybackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlaybackKey(…)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlaybackError {
    #[error("PLAYBACK_SIGNING_KEY must be at least {MIN_KEY_LEN} bytes")]
    ShortKey,
    #[error("not a playback token for this video")]
    Invalid,
    #[error("the playback token has expired")]
    Expired,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The viewer it was made for (`None`: anonymous).
    pub viewer: Option<Uuid>,
    pub expires: OffsetDateTime,
}

impl PlaybackKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, PlaybackError> {
        let secret = secret.into();
        if secret.len() < MIN_KEY_LEN {
            return Err(PlaybackError::ShortKey);
        }
        Ok(Self(secret))
    }

    fn mac(&self, video: Uuid, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(TAG);
        mac.update(video.as_bytes());
        mac.update(payload.as_bytes());
        mac
    }

    /// A token opening `video` for `viewer` until `expires`.
    pub fn sign(&self, video: Uuid, viewer: Option<Uuid>, expires: OffsetDateTime) -> String {
        let viewer = viewer.map_or_else(|| "-".to_owned(), |v| v.simple().to_string());
        let payload = URL_SAFE_NO_PAD.encode(format!("{}:{viewer}", expires.unix_timestamp()));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(video, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// Checks `token` for `video` at `now`: who it was made for, or why it opens nothing.
    /// The MAC is compared in constant time before anything in the payload is believed.
    pub fn verify(
        &self,
        token: &str,
        video: Uuid,
        now: OffsetDateTime,
    ) -> Result<Grant, PlaybackError> {
        let (payload, tag) = token.split_once('.').ok_or(PlaybackError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| PlaybackError::Invalid)?;
        self.mac(video, payload)
            .verify_slice(&tag)
            .map_err(|_| PlaybackError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(PlaybackError::Invalid)?;
        let (expires, viewer) = payload.split_once(':').ok_or(PlaybackError::Invalid)?;
        let expires = expires
            .parse()
            .ok()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .ok_or(PlaybackError::Invalid)?;
        let viewer = match viewer {
            "-" => None,
            id => Some(Uuid::parse_str(id).map_err(|_| PlaybackError::Invalid)?),
        };
        if now >= expires {
            return Err(PlaybackError::Expired);
        }
        Ok(Grant { viewer, expires })
    }
}

/// `PLAYBACK_SIGNING_KEY` (at least [`MIN_KEY_LEN`] bytes; e.g. `openssl rand -base64 48`),
/// when set. Unset, signed playback is off: media gives no playback URL for private and
/// unlisted videos, and video's signed paths answer 404.
pub fn key_from_env() -> Result<Option<PlaybackKey>, platform::config::ConfigError> {
    let Some(secret) = platform::config::var_opt::<String>("PLAYBACK_SIGNING_KEY")? else {
        return Ok(None);
    };
    PlaybackKey::new(secret)
        .map(Some)
        .map_err(|e| platform::config::ConfigError {
            name: "PLAYBACK_SIGNING_KEY".into(),
            value: String::new(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn key(secret: &str) -> PlaybackKey {
        PlaybackKey::new(secret.repeat(32)).unwrap()
    }

    #[test]
    fn a_token_opens_its_video_for_its_viewer_until_it_expires() {
        let (key, video, viewer) = (key("k"), Uuid::now_v7(), Uuid::now_v7());
        let now = OffsetDateTime::now_utc();
        let expires = (now + Duration::hours(4)).replace_nanosecond(0).unwrap();
        let token = key.sign(video, Some(viewer), expires);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        assert_eq!(
            key.verify(&token, video, now),
            Ok(Grant {
                viewer: Some(viewer),
                expires
            })
        );
        let anonymous = key.sign(video, None, expires);
        assert_eq!(key.verify(&anonymous, video, now).unwrap().viewer, None);

        assert_eq!(
            key.verify(&token, Uuid::now_v7(), now),
            Err(PlaybackError::Invalid)
        );
        assert_eq!(
            key.verify(&token, video, expires),
            Err(PlaybackError::Expired)
        );
        assert_eq!(
            super::tests::key("other").verify(&token, video, now),
            Err(PlaybackError::Invalid)
        );
    }

    #[test]
    fn an_altered_token_opens_nothing() {
        let (key, video) = (key("k"), Uuid::now_v7());
        let now = OffsetDateTime::now_utc();
        let token = key.sign(video, None, now + Duration::minutes(5));
        // A longer expiry written into the payload breaks the MAC.
        let (_, tag) = token.split_once('.').unwrap();
        let later = URL_SAFE_NO_PAD.encode(format!(
            "{}:-",
            (now + Duration::days(365)).unix_timestamp()
        ));
        for forged in [
            format!("{later}.{tag}"),
            token.replace('.', ""),
            String::new(),
            "a.b".into(),
        ] {
            assert_eq!(
                key.verify(&forged, video, now),
                Err(PlaybackError::Invalid),
                "{forged}"
            );
        }
        assert_eq!(
            PlaybackKey::new("short").err(),
            Some(PlaybackError::ShortKey)
        );
    }
}
