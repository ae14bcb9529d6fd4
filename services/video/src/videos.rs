//! The `videos` table: one row per video, shared by the upload, asset and HLS features.

use events::video::{Rendition, VideoMetadata, Visibility};
use sqlx::{PgExecutor, types::Json};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Video {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub status: AssetStatus,
    pub failure_reason: Option<String>,
    pub metadata: Json<VideoMetadata>,
    pub filename: Option<String>,
    pub upload_length: i64,
    pub upload_offset: i64,
    pub part_size: i64,
    pub s3_upload_id: Option<String>,
    pub expires_at: OffsetDateTime,
    pub duration_seconds: Option<f64>,
    pub manifest_key: Option<String>,
    pub thumbnail_key: Option<String>,
    pub renditions: Json<Vec<Rendition>>,
    pub created_at: OffsetDateTime,
    /// Hidden by a moderator (assets::moderation).
    pub hidden: bool,
    /// Its owner is banned (read with the row by [`Video::find`]; false where a query
    /// does not ask).
    #[sqlx(default)]
    pub owner_banned: bool,
}

/// Where an asset is: the catalogue's lifecycle (`events::video::VideoStatus`: `uploading`
/// → `processing` → `ready` | `failed`) plus `deleted`, a row whose objects wait to be
/// purged before the row itself goes. Stored as the lowercase word in the `text` column
/// (whose CHECK constraint allows exactly these) and shown as it in `GET /video/{id}`; a
/// row holding any other word fails to decode rather than passing for some state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum AssetStatus {
    Uploading,
    Processing,
    Ready,
    Failed,
    Deleted,
}

impl Video {
    pub async fn find(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Self>, sqlx::Error> {
        sqlx::query_as(
            "SELECT v.*, COALESCE(b.banned, false) AS owner_banned
             FROM videos v LEFT JOIN banned_owners b ON b.owner_id = v.owner_id
             WHERE v.id = $1",
        )
        .bind(id)
        .fetch_optional(db)
        .await
    }

    pub fn is_deleted(&self) -> bool {
        self.status == AssetStatus::Deleted
    }

    pub fn is_expired(&self) -> bool {
        self.status == AssetStatus::Uploading && self.expires_at < OffsetDateTime::now_utc()
    }

    /// Whether `viewer` may see this video (and its media): private, hidden and banned
    /// owners' ones only to their owner, deleted ones to nobody.
    pub fn visible_to(&self, viewer: Option<Uuid>) -> bool {
        !self.is_deleted()
            && (viewer == Some(self.owner_id)
                || (self.metadata.visibility != Visibility::Private
                    && !self.hidden
                    && !self.owner_banned))
    }
}

/// S3 keys this service owns for a video.
pub mod keys {
    use uuid::Uuid;

    pub fn source(id: Uuid) -> String {
        format!("sources/{id}")
    }

    /// Staged pieces of an unfinished upload (bytes not yet in a complete part).
    pub fn staging_prefix(id: Uuid) -> String {
        format!("staging/{id}/")
    }

    /// Named by where the piece starts, so a retry after a crash overwrites the orphan.
    pub fn piece(id: Uuid, start: i64) -> String {
        format!("staging/{id}/{start:020}")
    }

    pub fn hls_prefix(id: Uuid) -> String {
        format!("hls/{id}/")
    }

    pub fn thumbnail(id: Uuid) -> String {
        format!("thumbnails/{id}.jpg")
    }
}
