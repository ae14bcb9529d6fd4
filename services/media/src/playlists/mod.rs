//! Playlists: a user's ordered lists of videos, public, unlisted or private, and the
//! built-in "Watch later" (one per user, private, made on first use).
//!
//! * Only the owner changes a playlist (FORBIDDEN otherwise); every change locks the
//!   playlist's row, so concurrent adds and moves from several clients leave one order,
//!   positions 0..n-1, each video at most once ([`store`]).
//! * What a viewer may not see (a private, unready or deleted video, unless it is theirs)
//!   is left out of the items they get, without renumbering the rest: positions are the
//!   owner's order.
//! * At most [`MAX_ITEMS`] items per playlist and [`MAX_PLAYLISTS`] playlists per user.

pub mod store;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject, connection::Connection};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    catalogue::{self, Video},
    context::{AppContext, count_query, viewer},
    cursor::{Cursor, Page},
    error::Error,
    users::User,
};
use store::PlaylistRow;

pub const MAX_ITEMS: i32 = 10_000;
pub const MAX_PLAYLISTS: usize = 1_000;
const MAX_TITLE: usize = 150;
const MAX_DESCRIPTION: usize = 5_000;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlaylistVisibility {
    /// Listed on the owner's channel; anyone may open it.
    Public,
    /// Anyone with its id may open it; never listed.
    Unlisted,
    /// The owner's alone.
    Private,
}

impl PlaylistVisibility {
    fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "public" => Self::Public,
            "unlisted" => Self::Unlisted,
            _ => Self::Private,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    /// Made by its owner.
    Custom,
    /// The built-in "Watch later": private, cannot be renamed or deleted.
    WatchLater,
}

pub struct Playlist(pub PlaylistRow);

#[Object]
impl Playlist {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn kind(&self) -> PlaylistKind {
        if self.0.is_watch_later() {
            PlaylistKind::WatchLater
        } else {
            PlaylistKind::Custom
        }
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn visibility(&self) -> PlaylistVisibility {
        PlaylistVisibility::parse(&self.0.visibility)
    }

    /// How many videos it holds, those hidden from the viewer included.
    async fn item_count(&self) -> i32 {
        self.0.item_count
    }

    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    async fn updated_at(&self) -> OffsetDateTime {
        self.0.updated_at
    }

    /// The owner (null if their account is gone).
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        AppContext::get(ctx).users.load_one(self.0.owner_id).await
    }

    /// The videos in the owner's order. Those the viewer may not see are left out; the
    /// others keep their positions.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, PlaylistItem>> {
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        count_query("postgres", "playlist_items");
        let rows = store::items(app.db.pool(), self.0.id, viewer(ctx).id(), page)
            .await
            .map_err(Error::from)?;
        let items = rows
            .into_iter()
            .map(|row| PlaylistItem {
                position: row.position,
                added_at: row.added_at,
                video: row.video.into(),
            })
            .collect();
        Ok(page.connection(items, |item: &PlaylistItem| Cursor {
            score: Some(f64::from(item.position)),
            at: item.added_at,
            id: item.video.row.id,
        }))
    }
}

#[derive(SimpleObject)]
pub struct PlaylistItem {
    /// 0-based, in the owner's order.
    pub position: i32,
    pub added_at: OffsetDateTime,
    pub video: Video,
}

#[derive(Default)]
pub struct PlaylistQuery;

#[Object]
impl PlaylistQuery {
    /// A playlist the viewer may see (null otherwise, or when there is none).
    async fn playlist(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Playlist>> {
        let id = parse_playlist_id(&id)?;
        let app = AppContext::get(ctx);
        count_query("postgres", "playlist");
        let row = store::get(app.db.pool(), id).await.map_err(Error::from)?;
        Ok(row.filter(|p| p.visible_to(viewer(ctx).id())).map(Playlist))
    }

    /// The viewer's "Watch later" (null until they first add to it).
    async fn watch_later(&self, ctx: &Context<'_>) -> Result<Option<Playlist>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        count_query("postgres", "watch_later");
        let row = store::find_watch_later(app.db.pool(), me)
            .await
            .map_err(Error::from)?;
        Ok(row.map(Playlist))
    }
}

#[derive(Default)]
pub struct PlaylistMutation;

#[Object]
impl PlaylistMutation {
    /// A new playlist of the viewer's (private unless said otherwise).
    async fn create_playlist(
        &self,
        ctx: &Context<'_>,
        title: String,
        #[graphql(default)] description: String,
        #[graphql(default_with = "PlaylistVisibility::Private")] visibility: PlaylistVisibility,
    ) -> Result<Playlist> {
        let me = viewer(ctx).require()?;
        let title = check_title(&title)?;
        check_description(&description)?;
        let app = AppContext::get(ctx);
        let pool = app.db.pool();
        let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM playlists WHERE owner_id = $1")
            .bind(me)
            .fetch_one(pool)
            .await
            .map_err(Error::from)?;
        if owned as usize >= MAX_PLAYLISTS {
            return Err(Error::bad_input(format!("at most {MAX_PLAYLISTS} playlists")).into());
        }
        let row = store::create(pool, me, title, &description, visibility.as_str())
            .await
            .map_err(Error::from)?;
        Ok(Playlist(row))
    }

    /// Renames, describes or changes the visibility of one of the viewer's playlists
    /// (what is not given stays). "Watch later" stays as it is.
    async fn update_playlist(
        &self,
        ctx: &Context<'_>,
        id: ID,
        title: Option<String>,
        description: Option<String>,
        visibility: Option<PlaylistVisibility>,
    ) -> Result<Playlist> {
        let (app, playlist) = owned(ctx, &id).await?;
        if playlist.is_watch_later() {
            return Err(Error::bad_input("\"Watch later\" cannot be changed").into());
        }
        let title = title.as_deref().map(check_title).transpose()?;
        if let Some(description) = &description {
            check_description(description)?;
        }
        let row = store::update(
            app.db.pool(),
            playlist.id,
            title,
            description.as_deref(),
            visibility.map(PlaylistVisibility::as_str),
        )
        .await
        .map_err(Error::from)?;
        Ok(Playlist(row))
    }

    /// Deletes one of the viewer's playlists (never the videos). True when done.
    async fn delete_playlist(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let (app, playlist) = owned(ctx, &id).await?;
        if playlist.is_watch_later() {
            return Err(Error::bad_input("\"Watch later\" cannot be deleted").into());
        }
        store::delete(app.db.pool(), playlist.id)
            .await
            .map_err(Error::from)?;
        Ok(true)
    }

    /// Adds a video the viewer can see at `position` (0 is the top; default the end).
    /// A video is in a playlist at most once.
    async fn add_to_playlist(
        &self,
        ctx: &Context<'_>,
        playlist_id: ID,
        video_id: ID,
        position: Option<i32>,
    ) -> Result<Playlist> {
        let (app, playlist) = owned(ctx, &playlist_id).await?;
        add(ctx, app, playlist.id, &video_id, position).await
    }

    /// Adds a video to the end of the viewer's "Watch later", made if need be.
    async fn add_to_watch_later(&self, ctx: &Context<'_>, video_id: ID) -> Result<Playlist> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let playlist = store::watch_later(app.db.pool(), me)
            .await
            .map_err(Error::from)?;
        add(ctx, app, playlist.id, &video_id, None).await
    }

    /// Takes a video out (nothing happens if it is not in).
    async fn remove_from_playlist(
        &self,
        ctx: &Context<'_>,
        playlist_id: ID,
        video_id: ID,
    ) -> Result<Playlist> {
        let (app, playlist) = owned(ctx, &playlist_id).await?;
        let video = catalogue::parse_id(&video_id)?;
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        store::lock(&mut tx, playlist.id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::NotFound("no such playlist"))?;
        if let Some(position) = store::position_of(&mut tx, playlist.id, video)
            .await
            .map_err(Error::from)?
        {
            store::remove(&mut tx, playlist.id, video, position)
                .await
                .map_err(Error::from)?;
        }
        tx.commit().await.map_err(Error::from)?;
        reload(app, playlist.id).await
    }

    /// Moves a video of the playlist to `position` (0 is the top), the others shifting.
    async fn move_playlist_item(
        &self,
        ctx: &Context<'_>,
        playlist_id: ID,
        video_id: ID,
        position: i32,
    ) -> Result<Playlist> {
        let (app, playlist) = owned(ctx, &playlist_id).await?;
        let video = catalogue::parse_id(&video_id)?;
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        let locked = store::lock(&mut tx, playlist.id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::NotFound("no such playlist"))?;
        let from = store::position_of(&mut tx, playlist.id, video)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::bad_input("the video is not in this playlist"))?;
        if !(0..locked.item_count).contains(&position) {
            return Err(Error::bad_input(format!(
                "position must be from 0 to {}",
                locked.item_count - 1
            ))
            .into());
        }
        if from != position {
            store::move_item(&mut tx, playlist.id, video, from, position)
                .await
                .map_err(Error::from)?;
        }
        tx.commit().await.map_err(Error::from)?;
        reload(app, playlist.id).await
    }
}

/// The playlist `id`, if the viewer owns it: UNAUTHENTICATED when signed out, NOT_FOUND
/// when there is none, FORBIDDEN when it is someone else's.
async fn owned<'a>(ctx: &Context<'a>, id: &ID) -> Result<(&'a AppContext, PlaylistRow), Error> {
    let me = viewer(ctx).require()?;
    let id = parse_playlist_id(id)?;
    let app = AppContext::get(ctx);
    let playlist = store::get(app.db.pool(), id)
        .await?
        .ok_or(Error::NotFound("no such playlist"))?;
    if playlist.owner_id != me {
        return Err(Error::Forbidden("only its owner may change a playlist"));
    }
    Ok((app, playlist))
}

async fn add(
    ctx: &Context<'_>,
    app: &AppContext,
    playlist: Uuid,
    video_id: &ID,
    position: Option<i32>,
) -> Result<Playlist> {
    let video = catalogue::parse_id(video_id)?;
    count_query("postgres", "video");
    let visible = catalogue::store::get(app.db.pool(), video)
        .await
        .map_err(Error::from)?
        .is_some_and(|v| v.visible_to(viewer(ctx).id()));
    if !visible {
        return Err(Error::bad_input("no such video").into());
    }
    let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
    let locked = store::lock(&mut tx, playlist)
        .await
        .map_err(Error::from)?
        .ok_or(Error::NotFound("no such playlist"))?;
    if store::position_of(&mut tx, playlist, video)
        .await
        .map_err(Error::from)?
        .is_some()
    {
        return Err(Error::bad_input("the video is already in this playlist").into());
    }
    if locked.item_count >= MAX_ITEMS {
        return Err(
            Error::bad_input(format!("a playlist holds at most {MAX_ITEMS} videos")).into(),
        );
    }
    let position = position.unwrap_or(locked.item_count);
    if !(0..=locked.item_count).contains(&position) {
        return Err(
            Error::bad_input(format!("position must be from 0 to {}", locked.item_count)).into(),
        );
    }
    store::insert(&mut tx, playlist, video, position)
        .await
        .map_err(Error::from)?;
    tx.commit().await.map_err(Error::from)?;
    reload(app, playlist).await
}

async fn reload(app: &AppContext, id: Uuid) -> Result<Playlist> {
    let row = store::get(app.db.pool(), id)
        .await
        .map_err(Error::from)?
        .ok_or(Error::NotFound("no such playlist"))?;
    Ok(Playlist(row))
}

fn parse_playlist_id(id: &ID) -> Result<Uuid, Error> {
    Uuid::parse_str(id.as_str()).map_err(|_| Error::bad_input("not a playlist id"))
}

fn check_title(title: &str) -> Result<&str, Error> {
    let title = title.trim();
    let chars = title.chars().count();
    if chars == 0 || chars > MAX_TITLE || title.chars().any(char::is_control) {
        return Err(Error::bad_input(format!(
            "a title has 1 to {MAX_TITLE} characters, none of them control characters"
        )));
    }
    Ok(title)
}

fn check_description(description: &str) -> Result<(), Error> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::bad_input(format!(
            "a description has at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(())
}

/// `User.playlists`: everything for the owner, public ones for others.
pub async fn of_owner(
    ctx: &Context<'_>,
    owner: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<Cursor, Playlist>> {
    let app = AppContext::get(ctx);
    let page = Page::parse(first, after, app.config.limits.max_page)?;
    count_query("postgres", "playlists");
    let rows = store::of_owner(app.db.pool(), owner, viewer(ctx).is(owner), page)
        .await
        .map_err(Error::from)?;
    Ok(
        page.connection(rows.into_iter().map(Playlist).collect(), |p| {
            Cursor::new(p.0.created_at, p.0.id)
        }),
    )
}

/// `Video.inPlaylists`: the viewer's playlists holding the video (none when signed out).
/// Batched: a page of videos asks once ([`HoldingLoader`]).
pub async fn holding(ctx: &Context<'_>, video: Uuid) -> Result<Vec<Playlist>> {
    let Some(me) = viewer(ctx).id() else {
        return Ok(Vec::new());
    };
    let rows = AppContext::get(ctx)
        .holding_playlists
        .load_one((me, video))
        .await?;
    Ok(rows.unwrap_or_default().into_iter().map(Playlist).collect())
}

/// Which of an owner's playlists hold a video, for many (owner, video) pairs at once.
/// Shared by all requests, like the other loaders.
pub struct HoldingLoader(pub sqlx::PgPool);

impl async_graphql::dataloader::Loader<(Uuid, Uuid)> for HoldingLoader {
    type Value = Vec<PlaylistRow>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<std::collections::HashMap<(Uuid, Uuid), Vec<PlaylistRow>>, Self::Error> {
        count_query("postgres", "in_playlists");
        let rows = store::holding(&self.0, keys).await.map_err(Error::from)?;
        let mut held: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
        // Rows come newest first; each key's list keeps that order.
        for (key, row) in rows {
            held.entry(key).or_default().push(row);
        }
        Ok(held)
    }
}
