//! Recommendations: `related` ("more like this") and `recommended` (the viewer's feed),
//! answered by the recommender service over gRPC (`kino.recommender.v1`, crates/rpc) and
//! hydrated from the catalogue here.
//!
//! The recommender knows embeddings and tastes; the catalogue decides what may be listed,
//! so every id it returns is checked against `videos` (ready, public, not deleted) at read
//! time, and a few more than asked are requested to make up for any dropped.
//!
//! When the recommender is down or slow (`RECOMMENDER_TIMEOUT_MILLIS`), `recommended`
//! falls back to trending (what anonymous viewers get anyway) and `related` answers the
//! error code `UNAVAILABLE`: the rest of the API is unaffected.

use std::time::Duration;

use async_graphql::{Context, ID, Object, Result};
use events::trending::Scope;
use rpc::{
    client::CallPolicy,
    recommender::v1::{
        Recommendations, RecommendedRequest, RelatedRequest, recommender_client::RecommenderClient,
    },
};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{
    catalogue::{Video, VideoRow, parse_id, store},
    context::{AppContext, count_query, viewer},
    error::Error,
    trending::{self, TrendingWindow},
};

/// The recommender's gRPC API (`kino.recommender.v1.Recommender`, crates/rpc).
#[derive(Clone)]
pub struct Client {
    recommender: RecommenderClient<Channel>,
    policy: CallPolicy,
}

/// For metrics and errors.
const SERVICE: &str = "kino.recommender.v1.Recommender";

/// Why the recommender gave no answer.
#[derive(Debug)]
struct Failure(tonic::Status);

impl Client {
    /// `channel` leads to the recommender's gRPC port (rpc::client::balanced_channel).
    pub fn new(channel: Channel, timeout: Duration) -> Self {
        Self {
            recommender: RecommenderClient::new(channel),
            // Both queries only read: retried within the deadline when a replica is gone.
            policy: CallPolicy {
                deadline: timeout,
                retries: 2,
            },
        }
    }

    async fn related(&self, video: Uuid, first: usize) -> Result<Vec<Uuid>, Failure> {
        let message = RelatedRequest {
            video_id: video.to_string(),
            first: first as u32,
        };
        count_query("recommender", "recommend");
        let answer = rpc::client::call(SERVICE, "Related", self.policy, true, |left| {
            let mut client = self.recommender.clone();
            let request = rpc::client::request(message.clone(), left);
            async move { client.related(request).await }
        })
        .await
        .map_err(Failure)?;
        Ok(ids(answer))
    }

    async fn recommended(
        &self,
        user: Uuid,
        first: usize,
        trending: &[Uuid],
    ) -> Result<Vec<Uuid>, Failure> {
        let message = RecommendedRequest {
            user_id: user.to_string(),
            first: first as u32,
            trending: trending.iter().map(Uuid::to_string).collect(),
        };
        count_query("recommender", "recommend");
        let answer = rpc::client::call(SERVICE, "Recommended", self.policy, true, |left| {
            let mut client = self.recommender.clone();
            let request = rpc::client::request(message.clone(), left);
            async move { client.recommended(request).await }
        })
        .await
        .map_err(Failure)?;
        Ok(ids(answer))
    }
}

/// The ids of an answer, best first (any that is not a UUID is skipped: hydration would
/// drop it anyway).
fn ids(answer: Recommendations) -> Vec<Uuid> {
    answer
        .videos
        .iter()
        .filter_map(|pick| Uuid::parse_str(&pick.id).ok())
        .collect()
}

/// The listed videos among `ids`, in `ids`' order, at most `first`, leaving out those
/// `finished_by` watched to the end (crate::history).
async fn hydrate(
    app: &AppContext,
    ids: &[Uuid],
    first: usize,
    finished_by: Option<Uuid>,
) -> Result<Vec<Video>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    count_query("postgres", "recommended_videos");
    let sql = format!(
        "SELECT {} FROM videos WHERE id = ANY($1) AND {}
           AND NOT EXISTS (SELECT 1 FROM watch_history h
                           WHERE h.user_id = $2 AND h.video_id = videos.id AND h.finished)",
        store::COLUMNS,
        store::LISTED
    );
    let rows: Vec<VideoRow> = sqlx::query_as(&sql)
        .bind(ids)
        .bind(finished_by)
        .fetch_all(app.db.pool())
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| rows.iter().find(|r| r.id == *id))
        .take(first)
        .map(|r| r.clone().into())
        .collect())
}

/// How many to ask the recommender for, so that `first` remain after hydration drops
/// what the catalogue does not list.
fn overfetch(first: usize) -> usize {
    (first + first / 2 + 5).min(100)
}

fn check_first(app: &AppContext, first: i32) -> Result<usize, Error> {
    let max = app.config.limits.max_page;
    if first < 1 || first as usize > max {
        return Err(Error::bad_input(format!("first must be 1–{max}")));
    }
    Ok(first as usize)
}

#[derive(Default)]
pub struct RecommendQuery;

#[Object]
impl RecommendQuery {
    /// "More like this": listed videos whose title, tags and description are closest in
    /// meaning to the video's, most similar first (never the video itself). Empty while
    /// the video is too new to have been analysed. `UNAVAILABLE` when the recommender is
    /// down.
    #[graphql(complexity = "first.max(0) as usize * child_complexity")]
    async fn related(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<Video>> {
        let app = AppContext::get(ctx);
        let first = check_first(app, first)?;
        let id = parse_id(&video_id)?;
        count_query("postgres", "video");
        store::get(app.db.pool(), id)
            .await
            .map_err(Error::from)?
            .filter(|v| v.visible_to(viewer(ctx).id()))
            .ok_or(Error::NotFound("no such video"))?;
        let ids = match app.recommender.related(id, overfetch(first)).await {
            Ok(ids) => ids,
            Err(Failure(why)) => {
                tracing::warn!(error = %why, "recommender unavailable for related");
                metrics::counter!("media_recommender_failures_total", "query" => "related")
                    .increment(1);
                return Err(Error::Unavailable(
                    "recommendations are unavailable right now; retry shortly",
                )
                .into());
            }
        };
        Ok(hydrate(app, &ids, first, None).await?)
    }

    /// The viewer's feed: videos close to what they liked, watched and commented on
    /// (recent interactions counting most), with trending videos mixed in, leaving out
    /// what they already watched (and always what they finished, crate::history). Anonymous viewers and new users get trending videos;
    /// so does everyone while the recommender is down.
    #[graphql(complexity = "first.max(0) as usize * child_complexity")]
    async fn recommended(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<Video>> {
        let app = AppContext::get(ctx);
        let first = check_first(app, first)?;
        let key = trending::key(app, TrendingWindow::Day, &Scope::Global);
        let Some(user) = viewer(ctx).id() else {
            return Ok(trending::top(app, &key, first).await?);
        };
        let trending_ids: Vec<Uuid> = trending::top(app, &key, overfetch(first))
            .await?
            .iter()
            .map(|v| v.row.id)
            .collect();
        match app
            .recommender
            .recommended(user, overfetch(first), &trending_ids)
            .await
        {
            Ok(ids) => Ok(hydrate(app, &ids, first, Some(user)).await?),
            Err(e) => {
                tracing::warn!(error = ?e, "recommender unavailable; trending instead");
                metrics::counter!("media_recommender_failures_total", "query" => "recommended")
                    .increment(1);
                Ok(hydrate(app, &trending_ids, first, Some(user)).await?)
            }
        }
    }
}
