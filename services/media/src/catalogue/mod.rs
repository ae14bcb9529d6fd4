//! The catalogue: media's copy of every video, filled from the video service's events
//! ([`events`]), read by the feed, search and everything else, and edited by owners
//! ([`graphql`]).

pub mod events;
pub mod graphql;
pub mod store;

/// Feed pages shared by all viewers for a moment, by (the `after` cursor as sent, page size).
pub type FeedPages = crate::page_cache::PageCache<(Option<String>, usize), VideoRow>;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, connection::Connection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    context::{AppContext, viewer},
    cursor::{Cursor, Page},
    error::Error,
    likes,
    users::User,
};

/// A row of `videos`, as every query selects it ([`store::COLUMNS`]). `visibility` and
/// `status` are decoded from their `text` columns into the event types (the migration's
/// CHECK constraints hold them to the same words), so a row in hand is always a known state.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VideoRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub visibility: ::events::video::Visibility,
    pub status: ::events::video::VideoStatus,
    pub failure_reason: Option<String>,
    pub duration_seconds: Option<f64>,
    pub manifest_key: Option<String>,
    pub thumbnail_key: Option<String>,
    /// The poster in each width, smallest first (empty for videos made before posters).
    pub posters: sqlx::types::Json<Vec<::events::video::Still>>,
    pub storyboard: Option<sqlx::types::Json<::events::video::Storyboard>>,
    /// Caption tracks (video.captions), in the master's order.
    pub captions: sqlx::types::Json<Vec<::events::video::CaptionTrack>>,
    pub created_at: OffsetDateTime,
    pub published_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
    pub likes_count: i64,
    pub comments_count: i64,
    pub views_count: i64,
    pub watch_seconds: i64,
    /// Hidden by a moderator (crate::moderation), and why: only the owner sees it.
    pub hidden_at: Option<OffsetDateTime>,
    pub hidden_reason: Option<String>,
    /// Its owner is banned.
    pub owner_banned_at: Option<OffsetDateTime>,
}

impl VideoRow {
    /// Owners see their videos in every state (hidden ones too, with the reason); others
    /// only ready, non-private ones that moderation does not withhold.
    pub fn visible_to(&self, viewer: Option<Uuid>) -> bool {
        self.deleted_at.is_none()
            && (viewer == Some(self.owner_id)
                || (self.status == ::events::video::VideoStatus::Ready
                    && self.visibility != ::events::video::Visibility::Private
                    && !self.withheld()))
    }

    /// Listed: what [`store::LISTED`] selects in SQL (ready, public, not deleted, not
    /// withheld), for rows read without it.
    pub fn listed(&self) -> bool {
        self.deleted_at.is_none()
            && self.status == ::events::video::VideoStatus::Ready
            && self.visibility == ::events::video::Visibility::Public
            && !self.withheld()
    }

    /// Hidden by a moderator, or its owner banned.
    pub fn withheld(&self) -> bool {
        self.hidden_at.is_some() || self.owner_banned_at.is_some()
    }

    /// Feed and search order: newest published first.
    pub fn feed_cursor(&self) -> Cursor {
        Cursor::new(self.published_at.unwrap_or(self.created_at), self.id)
    }

    /// A creator's own list: newest created first.
    pub fn created_cursor(&self) -> Cursor {
        Cursor::new(self.created_at, self.id)
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "::events::video::Visibility")]
pub enum Visibility {
    /// Listed in feeds and search.
    Public,
    /// Reachable by id, never listed.
    Unlisted,
    /// Only its owner sees it.
    Private,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "::events::video::VideoStatus")]
pub enum VideoStatus {
    Uploading,
    Processing,
    Ready,
    Failed,
}

/// Where to play a video (see `Video.playback`).
#[derive(SimpleObject, Clone, Debug)]
pub struct Playback {
    /// Relative to the gateway's origin, like every URL of the API.
    pub url: String,
    /// When a signed URL stops working; null for a public video's.
    pub expires_at: Option<OffsetDateTime>,
}

/// A caption track of a video.
#[derive(SimpleObject, Clone, Debug)]
pub struct Caption {
    /// A BCP 47 language tag (`en`, `pt-BR`).
    pub language: String,
    pub label: String,
    /// The WebVTT file, through the gateway (signed like `playback` when it must be).
    pub url: String,
}

/// An image of a video, through the gateway.
#[derive(SimpleObject, Clone, Debug)]
pub struct Image {
    pub url: String,
    pub width: u32,
    pub height: u32,
}

/// Seek previews: a WebVTT file whose cues name a sprite sheet and a rectangle on it
/// (`storyboard-0.jpg#xywh=160,0,160,90`, relative to the VTT's URL), one cue per
/// `intervalSeconds`; what hls.js-based players and video.js' thumbnail plugins read.
#[derive(SimpleObject, Clone, Debug)]
pub struct Storyboard {
    pub vtt_url: String,
    pub interval_seconds: f64,
    pub tile_width: u32,
    pub tile_height: u32,
}

/// A video as clients see it.
#[derive(Clone, Debug)]
pub struct Video {
    pub row: VideoRow,
    /// Search relevance, when the video came from a search (part of the cursor).
    pub rank: Option<f64>,
}

impl From<VideoRow> for Video {
    fn from(row: VideoRow) -> Self {
        Self { row, rank: None }
    }
}

#[Object]
impl Video {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The uploader; null if their account is gone.
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        AppContext::get(ctx).users.load_one(self.row.owner_id).await
    }

    /// The viewer's playlists holding this video (none when signed out).
    async fn in_playlists(&self, ctx: &Context<'_>) -> Result<Vec<crate::playlists::Playlist>> {
        crate::playlists::holding(ctx, self.row.id).await
    }

    async fn title(&self) -> &str {
        &self.row.title
    }

    async fn description(&self) -> &str {
        &self.row.description
    }

    async fn tags(&self) -> &[String] {
        &self.row.tags
    }

    async fn category(&self) -> Option<&str> {
        self.row.category.as_deref()
    }

    async fn visibility(&self) -> Visibility {
        self.row.visibility.into()
    }

    async fn status(&self) -> VideoStatus {
        self.row.status.into()
    }

    /// Why a moderator hid it (its owner and moderators only; null when it is not hidden).
    async fn hidden(&self, ctx: &Context<'_>) -> Option<crate::moderation::HiddenNotice> {
        let may_know =
            viewer(ctx).is(self.row.owner_id) || crate::context::staff(ctx).may_moderate();
        let at = self.row.hidden_at.filter(|_| may_know)?;
        Some(crate::moderation::HiddenNotice {
            hidden_at: at,
            reason: self.row.hidden_reason.clone().unwrap_or_default(),
        })
    }

    /// Why processing failed (owner only).
    async fn failure_reason(&self, ctx: &Context<'_>) -> Option<&str> {
        viewer(ctx)
            .is(self.row.owner_id)
            .then_some(self.row.failure_reason.as_deref())
            .flatten()
    }

    async fn duration_seconds(&self) -> Option<f64> {
        self.row.duration_seconds
    }

    /// The HLS master playlist, through the gateway (signed like `playback` for private
    /// and unlisted videos); null until ready.
    async fn hls_url(&self, ctx: &Context<'_>) -> Option<String> {
        let (base, _) = self.media_base(ctx)?;
        self.media_url(&base, self.row.manifest_key.as_deref()?)
    }

    /// Where a player plays this video, through the gateway: the HLS master of a public
    /// video; for a private or unlisted one, a signed URL under which the master and every
    /// playlist, segment and still it names resolve with no header (for native players),
    /// for this viewer, until `expiresAt` (ask again for a fresh one). Null until ready,
    /// and for private and unlisted videos when signed playback is not configured.
    async fn playback(&self, ctx: &Context<'_>) -> Option<Playback> {
        let key = self.row.manifest_key.as_deref()?;
        let (base, expires_at) = self.media_base(ctx)?;
        Some(Playback {
            url: self.media_url(&base, key)?,
            expires_at,
        })
    }

    /// The largest poster, through the gateway (with the video's visibility rules); null
    /// until ready.
    async fn thumbnail_url(&self, ctx: &Context<'_>) -> Option<String> {
        let key = self.row.thumbnail_key.as_deref()?;
        // Videos transcoded before posters kept their one thumbnail outside the HLS tree,
        // served by the video service under a path of its own.
        if key == format!("thumbnails/{}.jpg", self.row.id) {
            return Some(format!("/video/{}/thumbnail.jpg", self.row.id));
        }
        let (base, _) = self.media_base(ctx)?;
        self.media_url(&base, key)
    }

    /// The poster in every width, smallest first (empty until ready).
    async fn thumbnails(&self, ctx: &Context<'_>) -> Vec<Image> {
        let Some((base, _)) = self.media_base(ctx) else {
            return Vec::new();
        };
        self.row
            .posters
            .iter()
            .filter_map(|still| {
                Some(Image {
                    url: self.media_url(&base, &still.key)?,
                    width: still.width,
                    height: still.height,
                })
            })
            .collect()
    }

    /// Caption tracks (WebVTT), as the HLS master lists them (players find them there;
    /// these URLs are for players that load tracks themselves). The owner manages them
    /// with `PUT`/`DELETE /video/{id}/captions/{language}`.
    async fn captions(&self, ctx: &Context<'_>) -> Vec<Caption> {
        let Some((base, _)) = self.media_base(ctx) else {
            return Vec::new();
        };
        self.row
            .captions
            .iter()
            .filter_map(|track| {
                Some(Caption {
                    language: track.language.clone(),
                    label: track.label.clone(),
                    url: self.media_url(&base, &track.vtt_key)?,
                })
            })
            .collect()
    }

    /// Seek previews (null until ready, and for videos transcoded before storyboards).
    async fn storyboard(&self, ctx: &Context<'_>) -> Option<Storyboard> {
        let board = self.row.storyboard.as_deref()?;
        let (base, _) = self.media_base(ctx)?;
        Some(Storyboard {
            vtt_url: self.media_url(&base, &board.vtt_key)?,
            interval_seconds: board.interval_seconds,
            tile_width: board.tile_width,
            tile_height: board.tile_height,
        })
    }

    async fn created_at(&self) -> OffsetDateTime {
        self.row.created_at
    }

    async fn published_at(&self) -> Option<OffsetDateTime> {
        self.row.published_at
    }

    async fn like_count(&self) -> i64 {
        self.row.likes_count
    }

    async fn comment_count(&self) -> i64 {
        self.row.comments_count
    }

    async fn view_count(&self) -> i64 {
        self.row.views_count
    }

    /// Total seconds watched (owner only).
    async fn watch_time_seconds(&self, ctx: &Context<'_>) -> Option<i64> {
        viewer(ctx)
            .is(self.row.owner_id)
            .then_some(self.row.watch_seconds)
    }

    /// Whether the viewer likes this video (false when signed out).
    async fn viewer_has_liked(&self, ctx: &Context<'_>) -> Result<bool> {
        let Some(user) = viewer(ctx).id() else {
            return Ok(false);
        };
        let app = AppContext::get(ctx);
        Ok(app.likes.load_one((user, self.row.id)).await?.is_some())
    }

    /// Who liked it, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn liked_by(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, User>> {
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        likes::liked_by(app, self.row.id, page).await
    }
}

impl Video {
    /// `hls/{id}/rest` → `/video/{id}/hls/rest`: the video service serves its own keys.
    /// Where this viewer fetches the video's HLS tree (playlists, segments, stills), and
    /// until when: `/video/{id}/hls/` for a public video (anyone, no expiry); for a private
    /// or unlisted one `/video/{id}/signed/{token}/`, a playback token for this viewer
    /// (identity::playback), so players and `<img>` need no header. `None` when signed
    /// playback is not configured for a video that needs it.
    fn media_base(&self, ctx: &Context<'_>) -> Option<(String, Option<OffsetDateTime>)> {
        let id = self.row.id;
        if self.row.visibility == ::events::video::Visibility::Public {
            return Some((format!("/video/{id}/hls/"), None));
        }
        let config = &AppContext::get(ctx).config;
        let key = config.playback_key.as_ref()?;
        // Whole seconds, so the URLs made within one second share their token.
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).ok()?;
        let expires_at = now + config.playback_ttl;
        let token = key.sign(id, viewer(ctx).id(), expires_at);
        Some((format!("/video/{id}/signed/{token}/"), Some(expires_at)))
    }

    /// `key` (under `hls/{id}/`) below `base` (see [`Video::media_base`]).
    fn media_url(&self, base: &str, key: &str) -> Option<String> {
        let rest = key.strip_prefix(&format!("hls/{}/", self.row.id))?;
        Some(format!("{base}{rest}"))
    }
}

/// Parses a video id argument.
pub fn parse_id(id: &ID) -> Result<Uuid, Error> {
    Uuid::parse_str(id.as_str()).map_err(|_| Error::bad_input("not a video id"))
}

/// Videos by id, batched: concurrent lookups (a burst of subscriptions each checking
/// that its video is visible) share one query instead of one pool connection each.
pub struct VideoLoader(pub sqlx::PgPool);

impl async_graphql::dataloader::Loader<Uuid> for VideoLoader {
    type Value = VideoRow;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, VideoRow>, Self::Error> {
        crate::context::count_query("postgres", "videos_by_id");
        let rows = store::get_many(&self.0, keys)
            .await
            .map_err(crate::error::Error::from)?;
        Ok(rows.into_iter().map(|v| (v.id, v)).collect())
    }
}
