//! Interactions: what viewers do with videos, published for the ranker on the
//! `interactions` exchange (events::interaction).
//!
//! * Views, watch time and shares are frequent and change nothing in our database: they go
//!   through a bounded buffer to a batching publisher with confirms
//!   (events::batch::BatchPublisher), which sends them in packs of many events per
//!   message when busy (events::pack), and the mutation answers once the broker has the
//!   event. A full buffer answers `RATE_LIMITED` at once; nothing is dropped silently.
//! * Likes and comments are written here first: their interaction is put in the outbox in
//!   the same transaction as the counter change ([`enqueue`]), so it goes out if and only
//!   if the like or comment counted. Unlikes and comment deletions publish retractions
//!   carrying the original's time, so the ranker removes exactly what it added.
//!
//! Every event carries the video's owner and category (the ranker's channel and category
//! scopes). Anonymous viewers identify their session with the `sessionId` argument, which
//! is what their views are deduplicated by (a signed-in viewer's user id is used instead,
//! and `sessionId` ignored): a player makes one random id per browser session and sends
//! it with each call.

pub mod counters;

use async_graphql::{Context, ID, Object, Result};
use events::{
    Envelope, Event, Route,
    batch::{BatchPublisher, PublishError},
    interaction::{Action, Interaction, ViewerKey},
};
use sqlx::PgConnection;

use crate::{
    catalogue::{VideoRow, parse_id, store as videos},
    context::{AppContext, count_query, viewer},
    error::Error,
};

/// At most this many seconds of watch time in one report.
pub const MAX_WATCH_REPORT_SECS: i32 = 3600;

/// Publishes interactions and answers when they are confirmed.
#[derive(Clone)]
pub struct Interactions {
    publisher: BatchPublisher,
    /// `QUEUE_PREFIX`, prepended to the routing keys.
    prefix: String,
}

impl Interactions {
    pub fn new(
        rabbit: std::sync::Arc<events::Rabbit>,
        prefix: &str,
        buffer: usize,
        batch: usize,
        per_message: usize,
    ) -> Self {
        Self {
            publisher: BatchPublisher::spawn(rabbit, buffer, batch, per_message),
            prefix: prefix.to_owned(),
        }
    }

    /// Publishes and waits for the broker's confirm.
    pub async fn publish(&self, event: Interaction) -> Result<(), Error> {
        let routing_key = event.routing_key(&self.prefix);
        let envelope = Envelope::new(event);
        let confirmed = match self.publisher.try_publish(routing_key, &envelope) {
            Ok(confirmed) => confirmed,
            Err(PublishError::Full(_)) => {
                metrics::counter!("media_interactions_rate_limited_total").increment(1);
                // The buffer drains within a confirm round trip or two.
                return Err(Error::RateLimited { retry_after: 1 });
            }
            Err(PublishError::Encoding(e)) => return Err(Error::Internal(e.into())),
        };
        confirmed.await.map_err(|e| Error::Internal(e.into()))
    }

    /// Puts an interaction in the outbox inside the caller's transaction.
    pub async fn enqueue(&self, conn: &mut PgConnection, event: Interaction) -> sqlx::Result<()> {
        let route = Route::new(Interaction::EXCHANGE, event.routing_key(&self.prefix));
        events::outbox::enqueue_to(conn, &route, &Envelope::new(event)).await
    }
}

/// An interaction with `video` by `viewer`.
pub fn interaction(video: &VideoRow, viewer: ViewerKey, action: Action) -> Interaction {
    Interaction {
        video_id: video.id,
        owner_id: video.owner_id,
        category: video.category.clone(),
        viewer,
        action,
    }
}

/// The viewer key of the request: the signed-in user, else the anonymous session, which
/// must then be given (8–128 characters of `A–Z a–z 0–9 _ -`).
fn viewer_key(ctx: &Context<'_>, session_id: Option<&str>) -> Result<ViewerKey, Error> {
    if let Some(user) = viewer(ctx).id() {
        return Ok(ViewerKey::user(user));
    }
    let session = session_id.ok_or_else(|| {
        Error::bad_input("anonymous viewers must give a sessionId (a random id per session)")
    })?;
    let valid = (8..=128).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(Error::bad_input(
            "sessionId must be 8–128 characters of A–Z, a–z, 0–9, _ and -",
        ));
    }
    Ok(ViewerKey::session(session))
}

/// The video if the viewer may see it.
async fn visible(ctx: &Context<'_>, video_id: &ID) -> Result<VideoRow, Error> {
    let id = parse_id(video_id)?;
    let app = AppContext::get(ctx);
    count_query("postgres", "video");
    videos::get(app.db.pool(), id)
        .await?
        .filter(|v| v.visible_to(viewer(ctx).id()))
        .ok_or(Error::NotFound("no such video"))
}

/// Where a report leaves the signed-in viewer's watch history (crate::history).
enum History {
    /// Untouched (shares).
    Untouched,
    /// The video moves to the top; `Some` position is remembered.
    Watched(Option<f64>),
}

async fn record(
    ctx: &Context<'_>,
    video_id: &ID,
    session_id: Option<&str>,
    action: Action,
    history: History,
) -> Result<bool, Error> {
    let viewer_key = viewer_key(ctx, session_id)?;
    let video = visible(ctx, video_id).await?;
    let app = AppContext::get(ctx);
    app.interactions
        .publish(interaction(&video, viewer_key, action))
        .await?;
    if let (Some(user), History::Watched(position)) = (viewer(ctx).id(), history) {
        count_query("postgres", "watch_history");
        crate::history::record(app.db.pool(), user, &video, position).await?;
    }
    Ok(true)
}

#[derive(Default)]
pub struct InteractionMutation;

#[Object]
impl InteractionMutation {
    /// Records that the viewer started watching a video (and puts it at the top of a
    /// signed-in viewer's history). Repeated views by the same viewer
    /// (user, or `sessionId` when anonymous) within 30 minutes count once. True once the
    /// event is safely queued; `RATE_LIMITED` when too many are waiting.
    async fn record_view(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        session_id: Option<String>,
    ) -> Result<bool> {
        let history = History::Watched(None);
        Ok(record(ctx, &video_id, session_id.as_deref(), Action::View, history).await?)
    }

    /// Records `seconds` (1–3600) of watching since the player's previous report, and
    /// for a signed-in viewer `position`, where the player is now (seconds from the
    /// start), which `continueWatching` resumes from.
    async fn record_watch_time(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        seconds: i32,
        position: Option<f64>,
        session_id: Option<String>,
    ) -> Result<bool> {
        let position = position.map(crate::history::check_position).transpose()?;
        if !(1..=MAX_WATCH_REPORT_SECS).contains(&seconds) {
            return Err(
                Error::bad_input(format!("seconds must be 1–{MAX_WATCH_REPORT_SECS}")).into(),
            );
        }
        let action = Action::Watch {
            seconds: seconds as u32,
        };
        let history = History::Watched(position);
        Ok(record(ctx, &video_id, session_id.as_deref(), action, history).await?)
    }

    /// Records that the viewer shared a video.
    async fn share_video(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        session_id: Option<String>,
    ) -> Result<bool> {
        let history = History::Untouched;
        Ok(record(
            ctx,
            &video_id,
            session_id.as_deref(),
            Action::Share,
            history,
        )
        .await?)
    }
}
