//! Live subscriptions follow the video's visibility, not just the visibility it had when
//! they started.
//!
//! `commentEvents` and `videoStats` are authorised at `subscribe`; a video made private
//! (`updateVideo`) or deleted (`deleteVideo`, or `video.deleted` from the video service)
//! afterwards must stop streaming to whoever may no longer see it, on every replica.
//!
//! # How
//!
//! * Whoever changes who may see a video (the mutation's replica, or the replica whose
//!   consumer took `video.deleted`) publishes [`AccessChange`] on the video's per-video
//!   hub channels *after* its transaction committed ([`super::Realtime::access_changed`]).
//!   Every replica with local subscribers of those channels gets it through the hub like
//!   any other event: no per-subscriber polling, and nothing is published to replicas
//!   that watch nothing of the video.
//! * The message only says "ask again": each subscription re-checks its own viewer
//!   against the catalogue ([`Audience::recheck`], through the shared batching loader, so
//!   a replica's subscribers of one video cost one query together). The catalogue is the
//!   truth, so two changes whose messages arrive out of order (private, then public again,
//!   published by two replicas) still end exactly the subscriptions the final state
//!   excludes.
//! * A subscriber that may no longer see the video gets one GraphQL error with
//!   `extensions.code` `NOT_FOUND` (what `subscribe` would answer now), and the operation
//!   ends: the connection sends it as the protocol's `error` message
//!   ([`super::memo::Probe::end`]). The owner of a private video keeps their
//!   subscriptions; a deleted video ends everyone's.
//! * A subscriber that may have missed the message (it lagged, or the hub lost Redis)
//!   re-checks too: `commentEvents` ends with `RESYNC` (its resubscription is checked at
//!   `subscribe`), `videoStats` re-reads the counters and checks the viewer with them.
//! * If the catalogue cannot be asked, the subscription ends (`INTERNAL`) rather than keep
//!   streaming a video that may have become private: the client resubscribes and is
//!   checked again.

use std::sync::Arc;

use async_graphql::{Context, dataloader::DataLoader};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::memo::Probe;
use crate::{
    catalogue::{VideoLoader, VideoRow},
    context::{AppContext, viewer},
    error::Error,
};

/// Who may see the video changed (made private, deleted, or visible again): every
/// subscriber of its channels asks the catalogue again.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessChange {
    pub video_id: Uuid,
}

/// One subscription's viewer and video, and how to ask whether the viewer may still see
/// the video.
#[derive(Clone)]
pub(super) struct Audience {
    videos: Arc<DataLoader<VideoLoader>>,
    video: Uuid,
    viewer: Option<Uuid>,
    probe: Probe,
    /// Authors whose comments the viewer blocked (crate::comments::rules).
    blocked: Arc<[String]>,
}

impl Audience {
    pub(super) fn of(ctx: &Context<'_>, video: Uuid) -> Self {
        Self {
            videos: AppContext::get(ctx).videos.clone(),
            video,
            viewer: viewer(ctx).id(),
            probe: Probe::of(ctx),
            blocked: Arc::new([]),
        }
    }

    /// With the authors the viewer blocked, read now (a comment feed skips them).
    pub(super) async fn blocking(mut self, ctx: &Context<'_>) -> async_graphql::Result<Self> {
        if let Some(me) = self.viewer {
            let blocked = AppContext::get(ctx).blocks.load_one(me).await?;
            self.blocked = blocked.unwrap_or_default().into();
        }
        Ok(self)
    }

    /// Whether the viewer blocked this author (a stored author id).
    pub(super) fn blocks(&self, author: &str) -> bool {
        self.blocked.iter().any(|b| b == author)
    }

    /// The video as it is now, if the viewer may see it (at `subscribe`, and whenever
    /// who may see it changed). Through the batching loader: a reconnect storm opens
    /// thousands of subscriptions in seconds, and an access change reaches every
    /// subscriber of a video at once; one query each would queue them all for the pool's
    /// few connections. Otherwise the error that ends the subscription (`NOT_FOUND`, or `INTERNAL` when the catalogue cannot be asked),
    /// with the operation's probe told that this is its last result.
    pub(super) async fn recheck(&self) -> Result<VideoRow, async_graphql::Error> {
        let error: async_graphql::Error = match self.videos.load_one(self.video).await {
            Ok(Some(row)) if row.visible_to(self.viewer) => return Ok(row),
            Ok(_) => Error::NotFound("no such video").into(),
            Err(error) => Error::Internal(anyhow::anyhow!(
                "visibility of {} not checked: {}",
                self.video,
                error.message
            ))
            .into(),
        };
        self.probe.end();
        Err(error)
    }
}
