//! The subscriptions: `commentEvents`, `uploadProgress`, `videoStats`.
//!
//! Each resolver subscribes to its hub channel (waiting for Redis to confirm), checks
//! what the viewer may see, and returns a stream that turns hub messages into GraphQL
//! values; `commentEvents` and `videoStats` check again whenever who may see the video
//! changes, and end with `NOT_FOUND` when the viewer no longer may ([`super::access`]). The stream owns the hub [`Subscription`]: when the client completes the
//! operation or disconnects, the stream is dropped and so is the channel reference.
//! The streams themselves are [`super::comment_feed`] (replay, then live) and
//! [`super::stats`] (coalesced counters); progress needs no more than the filter below.

use async_graphql::{Context, ID, Object, Result, Subscription as GqlSubscription};
use futures::{Stream, stream};

use super::{
    access::Audience,
    channels,
    comment_feed::{CommentFeed, FeedItem},
    hub::{HubError, Received, Subscription},
    memo::Probe,
    metrics::counted,
    stats::StatsStream,
    wire::{Event, ProgressUpdate, StatsUpdate},
};
use crate::{
    catalogue::{parse_id, store as videos},
    context::{AppContext, viewer},
    cursor::decode_version,
    error::Error,
};

#[Object(name = "UploadProgress")]
impl ProgressUpdate {
    async fn video_id(&self) -> ID {
        ID(self.video_id.to_string())
    }

    /// `probing`, `transcoding`, `uploading`, `done` while the transcoder works; then
    /// `ready` or `failed`, after which the subscription completes.
    async fn stage(&self) -> &str {
        &self.stage
    }

    /// 0–100, never decreasing.
    async fn percent(&self) -> f64 {
        self.percent
    }

    /// Encoding speed relative to real time, when known.
    async fn speed(&self) -> Option<f64> {
        self.speed
    }

    async fn eta_seconds(&self) -> Option<f64> {
        self.eta_seconds
    }

    /// Why it failed (stage `failed`).
    async fn failure_reason(&self) -> Option<&str> {
        self.failure_reason.as_deref()
    }
}

#[Object(name = "VideoStats")]
impl StatsUpdate {
    async fn video_id(&self) -> ID {
        ID(self.video_id.to_string())
    }

    async fn like_count(&self) -> i64 {
        self.likes
    }

    async fn view_count(&self) -> i64 {
        self.views
    }

    async fn comment_count(&self) -> i64 {
        self.comments
    }
}

#[derive(Default)]
pub struct RealtimeSubscription;

#[GqlSubscription]
impl RealtimeSubscription {
    /// Comments of a video as they are added, edited and deleted (replies included).
    /// With `after` (the `cursor` of the last event received), first everything that
    /// changed since, from storage, oldest first, then live events, with no gap and no
    /// duplicate between the two.
    async fn comment_events(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = FeedItem> + use<>> {
        let video = parse_id(&video_id)?;
        let after = after.as_deref().map(decode_version).transpose()?;
        let app = AppContext::get(ctx);
        // Live first, then the visibility check and the replay: whatever is published
        // from now on reaches the subscription, so neither a comment nor a visibility
        // change (`access_changed`) falls between a read and the live feed.
        let subscription = subscribe(app, &channels::comments(&video)).await?;
        let audience = Audience::of(ctx, video).blocking(ctx).await?;
        audience.recheck().await?;
        let feed = CommentFeed::new(
            app.comments.clone(),
            video,
            after,
            app.realtime.config.replay_max,
            subscription,
            Probe::of(ctx),
            audience,
        );
        Ok(counted(feed.into_stream()))
    }

    /// Transcoding progress of one of the viewer's own videos, until it is `ready` or
    /// `failed`. Updates arrive at most every half second (the transcoder's pace).
    async fn upload_progress(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
    ) -> Result<impl Stream<Item = ProgressUpdate> + use<>> {
        let me = viewer(ctx).require()?;
        let video = parse_id(&video_id)?;
        let app = AppContext::get(ctx);
        // The catalogue may not know the video yet (its `video.created` is on its way);
        // then the events' owner decides, below.
        let row = videos::get(app.db.pool(), video)
            .await
            .map_err(Error::from)?;
        if let Some(row) = row
            && (row.owner_id != me || row.deleted_at.is_some())
        {
            return Err(Error::Forbidden("only its owner follows an upload").into());
        }
        let subscription = subscribe(app, &channels::progress(&video)).await?;
        let state = (subscription, Probe::of(ctx), -1.0_f64, false);
        Ok(counted(stream::unfold(
            state,
            move |(mut subscription, probe, mut last, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let Received::Event(message) = subscription.recv().await? else {
                        continue; // progress supersedes itself: missing some is harmless
                    };
                    let Event::Progress(update) = &message.event else {
                        continue;
                    };
                    // Replicas publish concurrently, so an older update may arrive late.
                    if update.owner_id != me || (update.percent < last && !update.is_final()) {
                        continue;
                    }
                    last = update.percent;
                    probe.mark(message.published_at_micros);
                    let done = update.is_final();
                    return Some((update.clone(), (subscription, probe, last, done)));
                }
            },
        )))
    }

    /// A video's like, view and comment counts: now, then whenever they change, at most
    /// once per `REALTIME_STATS_INTERVAL_MILLIS` (the latest value wins).
    async fn video_stats(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
    ) -> Result<impl Stream<Item = Result<StatsUpdate>> + use<>> {
        let video = parse_id(&video_id)?;
        let app = AppContext::get(ctx);
        // Subscribed before the check, as commentEvents is.
        let subscription = subscribe(app, &channels::stats(&video)).await?;
        let audience = Audience::of(ctx, video);
        let now = StatsUpdate::from(&audience.recheck().await?);
        let stream = StatsStream::new(
            audience,
            subscription,
            Probe::of(ctx),
            app.realtime.config.stats_interval,
            now,
        );
        Ok(counted(stream.into_stream()))
    }
}

async fn subscribe(app: &AppContext, channel: &str) -> Result<Subscription, Error> {
    app.realtime
        .hub
        .subscribe(channel)
        .await
        .map_err(|e: HubError| Error::Internal(e.into()))
}
