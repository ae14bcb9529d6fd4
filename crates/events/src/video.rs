//! Events about videos, published on [`VIDEO_EVENTS`], and the transcode job.
//!
//! The lifecycle, in order: `created` (an upload began; carries the metadata the uploader
//! gave) → `uploaded` (all bytes stored; a transcode job was queued) → `progress`* →
//! `ready` | `failed`. `deleted` ends it at any point; `updated` announces metadata edits
//! made in the catalogue. Consumers must accept these out of order and more than once: a
//! status never goes backwards (see [`VideoStatus::rank`]).
//!
//! `video.progress` is the only event not sent through an outbox: it is frequent, disposable
//! (a newer one supersedes it) and published straight from the transcoder.
//!
//! The types' names are spelled once, in [`VideoEventKind`]: each payload's
//! [`Event::TYPE`], the routing keys consumers bind, and [`VideoEvent`], the enum a consumer
//! decodes a delivery into (by the envelope's `type`) and matches on.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Envelope, Event,
    envelope::{DecodeError, RawEnvelope},
    topology::{TRANSCODE_JOBS, VIDEO_EVENTS},
};

/// The type of a video event, which is also its routing key on [`VIDEO_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoEventKind {
    Created,
    Uploaded,
    Progress,
    Ready,
    Failed,
    Deleted,
    Updated,
    Captions,
}

impl VideoEventKind {
    pub const ALL: [Self; 8] = [
        Self::Created,
        Self::Uploaded,
        Self::Progress,
        Self::Ready,
        Self::Failed,
        Self::Deleted,
        Self::Updated,
        Self::Captions,
    ];

    /// The envelope's `type`, e.g. `video.ready`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "video.created",
            Self::Uploaded => "video.uploaded",
            Self::Progress => "video.progress",
            Self::Ready => "video.ready",
            Self::Failed => "video.failed",
            Self::Deleted => "video.deleted",
            Self::Updated => "video.updated",
            Self::Captions => "video.captions",
        }
    }

    /// The routing key it is published with on [`VIDEO_EVENTS`] (its type), to bind to.
    pub const fn routing_key(self) -> &'static str {
        self.as_str()
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// A video event of whichever type its envelope says.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoEvent {
    Created(VideoCreated),
    Uploaded(VideoUploaded),
    Progress(VideoProgress),
    Ready(VideoReady),
    Failed(VideoFailed),
    Deleted(VideoDeleted),
    Updated(VideoUpdated),
    Captions(VideoCaptions),
}

impl VideoEvent {
    /// Decodes a delivery's body by its envelope's `type`: one way for every consumer.
    /// [`DecodeError::UnknownType`] for a type that is not a video event;
    /// [`DecodeError::NewerVersion`] for one newer than this build knows.
    pub fn decode(body: &[u8]) -> Result<Envelope<Self>, DecodeError> {
        let raw = RawEnvelope::parse(body)?;
        let Some(kind) = VideoEventKind::parse(&raw.kind) else {
            return raw.unknown();
        };
        match kind {
            VideoEventKind::Created => raw.decode_as(Self::Created),
            VideoEventKind::Uploaded => raw.decode_as(Self::Uploaded),
            VideoEventKind::Progress => raw.decode_as(Self::Progress),
            VideoEventKind::Ready => raw.decode_as(Self::Ready),
            VideoEventKind::Failed => raw.decode_as(Self::Failed),
            VideoEventKind::Deleted => raw.decode_as(Self::Deleted),
            VideoEventKind::Updated => raw.decode_as(Self::Updated),
            VideoEventKind::Captions => raw.decode_as(Self::Captions),
        }
    }

    pub fn kind(&self) -> VideoEventKind {
        match self {
            Self::Created(_) => VideoEventKind::Created,
            Self::Uploaded(_) => VideoEventKind::Uploaded,
            Self::Progress(_) => VideoEventKind::Progress,
            Self::Ready(_) => VideoEventKind::Ready,
            Self::Failed(_) => VideoEventKind::Failed,
            Self::Deleted(_) => VideoEventKind::Deleted,
            Self::Updated(_) => VideoEventKind::Updated,
            Self::Captions(_) => VideoEventKind::Captions,
        }
    }
}

/// Who may see a video. `unlisted` videos are reachable by id but not listed in feeds or
/// search; `private` ones only by their owner.
///
/// One spelling everywhere: the same lowercase word in events (serde), in PostgreSQL `text`
/// columns (`sqlx::Type`; decoding any other word is an error, never a default) and, through
/// `as_str`, in SQL literals and HTTP bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Unlisted,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "unlisted" => Some(Self::Unlisted),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// Where a video is in its lifecycle. Spelt as [`Visibility`] is: one lowercase word in
/// events, `text` columns and SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum VideoStatus {
    Uploading,
    Processing,
    Ready,
    Failed,
}

impl VideoStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "uploading" => Some(Self::Uploading),
            "processing" => Some(Self::Processing),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// Statuses only move to a higher rank: an event that would lower it arrived late and
    /// is ignored. `ready` and `failed` are both final.
    pub fn rank(self) -> i16 {
        match self {
            Self::Uploading => 0,
            Self::Processing => 1,
            Self::Ready | Self::Failed => 2,
        }
    }
}

/// The metadata an uploader gives (tus `Upload-Metadata`) and the catalogue edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VideoMetadata {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
}

/// An upload began: the video exists, with status `uploading`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoCreated {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    #[serde(flatten)]
    pub metadata: VideoMetadata,
}

impl Event for VideoCreated {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Created.as_str();
}

/// All bytes are stored (`sources/{id}`) and a transcode job is queued: `processing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoUploaded {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    pub size_bytes: u64,
}

impl Event for VideoUploaded {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Uploaded.as_str();
}

/// What a transcoding job is doing, in order: `probing` the source, `transcoding` the ladder,
/// `uploading` the outputs to storage, `done`. The end of a video's processing is not a
/// stage: it is `video.ready` or `video.failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressStage {
    Probing,
    Transcoding,
    Uploading,
    Done,
}

impl ProgressStage {
    pub const ALL: [Self; 4] = [
        Self::Probing,
        Self::Transcoding,
        Self::Uploading,
        Self::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Probing => "probing",
            Self::Transcoding => "transcoding",
            Self::Uploading => "uploading",
            Self::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|stage| stage.as_str() == s)
    }
}

/// Transcoding progress, at most every 500 ms per job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoProgress {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    /// Where the job is (travels as its word, [`ProgressStage::as_str`]).
    pub stage: ProgressStage,
    /// 0.0 ..= 100.0, never decreasing within one attempt.
    pub percent: f64,
    /// Encoding speed relative to real time (ffmpeg's `speed`), when known.
    pub speed: Option<f64>,
    /// Estimated seconds left, when known.
    pub eta_seconds: Option<f64>,
}

impl VideoProgress {
    pub fn new(
        video_id: Uuid,
        owner_id: Uuid,
        stage: ProgressStage,
        percent: f64,
        speed: Option<f64>,
        eta_seconds: Option<f64>,
    ) -> Self {
        Self {
            video_id,
            owner_id,
            stage,
            percent,
            speed,
            eta_seconds,
        }
    }
}

impl Event for VideoProgress {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Progress.as_str();
}

/// One rung of the ABR ladder as it was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendition {
    /// e.g. `720p`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second, as in the master playlist's `BANDWIDTH`.
    pub bandwidth: u64,
    /// Key of the variant playlist, e.g. `hls/{id}/720p/index.m3u8`.
    pub playlist_key: String,
}

/// A still image of a video (a poster in one width), stored under its HLS prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Still {
    /// e.g. `hls/{id}/poster-320.jpg`.
    pub key: String,
    pub width: u32,
    pub height: u32,
}

/// Seek previews: sprite sheets of frames every `interval_seconds`, and a WebVTT file whose
/// cues point into them with `#xywh=` fragments (relative to the VTT's own URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Storyboard {
    /// e.g. `hls/{id}/storyboard.vtt`.
    pub vtt_key: String,
    pub interval_seconds: f64,
    pub tile_width: u32,
    pub tile_height: u32,
}

/// Transcoding finished: HLS is playable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoReady {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    /// e.g. `hls/{id}/master.m3u8`.
    pub manifest_key: String,
    /// The largest poster (`posters`' last), for clients that want one image.
    pub thumbnail_key: Option<String>,
    pub duration_seconds: f64,
    pub renditions: Vec<Rendition>,
    /// The poster in each width, smallest first (absent from older transcoders: empty).
    #[serde(default)]
    pub posters: Vec<Still>,
    #[serde(default)]
    pub storyboard: Option<Storyboard>,
}

impl Event for VideoReady {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Ready.as_str();
}

/// Transcoding gave up (corrupt or non-video source, or retries exhausted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFailed {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    /// Readable by the uploader, e.g. "the file is not a video".
    pub reason: String,
}

impl Event for VideoFailed {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Failed.as_str();
}

/// The video is gone (deleted by its owner through video or media, or with its account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoDeleted {
    pub video_id: Uuid,
    pub owner_id: Uuid,
}

impl Event for VideoDeleted {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Deleted.as_str();
}

/// The owner edited the metadata in the catalogue (media's `updateVideo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoUpdated {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    #[serde(flatten)]
    pub metadata: VideoMetadata,
}

impl Event for VideoUpdated {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Updated.as_str();
}

/// A caption track of a video, stored under its HLS prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptionTrack {
    /// A BCP 47 tag, e.g. `en`, `pt-BR`.
    pub language: String,
    /// Its name in players' menus.
    pub label: String,
    /// e.g. `hls/{id}/captions/en.vtt`.
    pub vtt_key: String,
}

/// The owner changed a video's caption tracks (the video service): the whole list as it
/// now is, with a `revision` that grows with every change of this video's tracks, so a
/// consumer keeps the newest list whatever order the events arrive in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoCaptions {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    pub revision: i64,
    pub tracks: Vec<CaptionTrack>,
}

impl Event for VideoCaptions {
    const EXCHANGE: &'static str = VIDEO_EVENTS;
    const TYPE: &'static str = VideoEventKind::Captions.as_str();
}

/// A job on the [`TRANSCODE_JOBS`] work queue (published to the default exchange, whose
/// routing key is the queue name). The video service enqueues it through its outbox in the
/// transaction that marks the upload complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscodeJob {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    /// e.g. `sources/{id}`.
    pub source_key: String,
}

impl Event for TranscodeJob {
    const EXCHANGE: &'static str = "";
    const TYPE: &'static str = TRANSCODE_JOBS;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_flattens_metadata_into_the_payload() {
        let event = VideoCreated {
            video_id: Uuid::nil(),
            owner_id: Uuid::nil(),
            metadata: VideoMetadata {
                title: "t".into(),
                tags: vec!["a".into()],
                visibility: Visibility::Unlisted,
                ..Default::default()
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["title"], "t");
        assert_eq!(json["visibility"], "unlisted");
        assert_eq!(json["tags"][0], "a");
        let back: VideoCreated = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn statuses_only_move_forward() {
        use VideoStatus::*;
        assert!(Uploading.rank() < Processing.rank());
        assert!(Processing.rank() < Ready.rank());
        assert_eq!(Ready.rank(), Failed.rank());
        for s in [Uploading, Processing, Ready, Failed] {
            assert_eq!(VideoStatus::parse(s.as_str()), Some(s));
        }
    }

    /// `as_str`, `parse` and serde spell every state the same way (the SQL side is the
    /// `sqlx::Type` derive's `rename_all`, which is serde's).
    #[test]
    fn states_have_one_spelling() {
        fn same<T: Serialize + Copy>(value: T, word: &str) {
            assert_eq!(serde_json::to_value(value).unwrap(), word);
        }
        for s in [
            VideoStatus::Uploading,
            VideoStatus::Processing,
            VideoStatus::Ready,
            VideoStatus::Failed,
        ] {
            same(s, s.as_str());
        }
        for v in [
            Visibility::Public,
            Visibility::Unlisted,
            Visibility::Private,
        ] {
            same(v, v.as_str());
            assert_eq!(Visibility::parse(v.as_str()), Some(v));
        }
        for stage in ProgressStage::ALL {
            same(stage, stage.as_str());
            assert_eq!(ProgressStage::parse(stage.as_str()), Some(stage));
        }
        assert_eq!(VideoStatus::parse("deleted"), None);
        assert_eq!(ProgressStage::parse("ready"), None);
    }

    #[test]
    fn every_kind_names_its_payload_type_and_parses_back() {
        let types = [
            VideoCreated::TYPE,
            VideoUploaded::TYPE,
            VideoProgress::TYPE,
            VideoReady::TYPE,
            VideoFailed::TYPE,
            VideoDeleted::TYPE,
            VideoUpdated::TYPE,
            VideoCaptions::TYPE,
        ];
        for (kind, ty) in VideoEventKind::ALL.into_iter().zip(types) {
            assert_eq!(kind.as_str(), ty);
            assert_eq!(kind.routing_key(), ty);
            assert_eq!(VideoEventKind::parse(ty), Some(kind));
        }
        assert_eq!(VideoEventKind::parse("video.archived"), None);
    }

    #[test]
    fn an_event_decodes_by_its_envelope_type() {
        let deleted = Envelope::new(VideoDeleted {
            video_id: Uuid::now_v7(),
            owner_id: Uuid::now_v7(),
        });
        let body = serde_json::to_vec(&deleted).unwrap();
        let decoded = VideoEvent::decode(&body).unwrap();
        assert_eq!(decoded.id, deleted.id);
        assert_eq!(decoded.data, VideoEvent::Deleted(deleted.data.clone()));
        assert_eq!(decoded.data.kind(), VideoEventKind::Deleted);

        let mut json = serde_json::to_value(&deleted).unwrap();
        json["type"] = "video.archived".into();
        assert!(matches!(
            VideoEvent::decode(&serde_json::to_vec(&json).unwrap()),
            Err(DecodeError::UnknownType(kind)) if kind == "video.archived"
        ));
        json["type"] = "video.deleted".into();
        json["version"] = 2.into();
        assert!(matches!(
            VideoEvent::decode(&serde_json::to_vec(&json).unwrap()),
            Err(DecodeError::NewerVersion { version: 2, .. })
        ));
        json["version"] = 1.into();
        json["data"] = serde_json::json!({"video_id": "not a uuid"});
        assert!(matches!(
            VideoEvent::decode(&serde_json::to_vec(&json).unwrap()),
            Err(DecodeError::Malformed(_))
        ));
    }
}
