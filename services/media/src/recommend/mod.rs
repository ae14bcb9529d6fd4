//! Recommendations: `related` ("more like this") and `recommended` (the viewer's feed),
//! answered by the recommender service over its internal HTTP API and hydrated from the
//! catalogue here.
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
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    catalogue::{Video, VideoRow, parse_id, store},
    context::{AppContext, count_query, viewer},
    error::Error,
    trending::{self, TrendingWindow},
};

/// The recommender's internal API.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

#[derive(Debug, Deserialize)]
struct Answer {
    videos: Vec<Pick>,
}

#[derive(Debug, Deserialize)]
struct Pick {
    id: Uuid,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecommendRequest<'a> {
    user_id: Uuid,
    first: usize,
    trending: &'a [Uuid],
}

/// Why the recommender gave no answer.
#[derive(Debug)]
enum Failure {
    /// It has no vector for the video (unknown to it, or not embedded yet).
    NotFound,
    Unavailable(String),
}

impl Client {
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("HTTP client"),
            base: format!("{}/recommender", base.trim_end_matches('/')),
        }
    }

    async fn related(&self, video: Uuid, first: usize) -> Result<Vec<Uuid>, Failure> {
        let url = format!("{}/related/{video}?first={first}", self.base);
        self.answer(self.http.get(url)).await
    }

    async fn recommended(
        &self,
        user: Uuid,
        first: usize,
        trending: &[Uuid],
    ) -> Result<Vec<Uuid>, Failure> {
        let url = format!("{}/recommended", self.base);
        let body = RecommendRequest {
            user_id: user,
            first,
            trending,
        };
        self.answer(self.http.post(url).json(&body)).await
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<Vec<Uuid>, Failure> {
        count_query("recommender", "recommend");
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(Failure::NotFound),
            status => return Err(Failure::Unavailable(format!("HTTP {status}"))),
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        Ok(answer.videos.into_iter().map(|p| p.id).collect())
    }
}

/// The listed videos among `ids`, in `ids`' order, at most `first`.
async fn hydrate(app: &AppContext, ids: &[Uuid], first: usize) -> Result<Vec<Video>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    count_query("postgres", "recommended_videos");
    let sql = format!(
        "SELECT {} FROM videos WHERE id = ANY($1) AND {}",
        store::COLUMNS,
        store::LISTED
    );
    let rows: Vec<VideoRow> = sqlx::query_as(&sql)
        .bind(ids)
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
            Err(Failure::NotFound) => Vec::new(),
            Err(Failure::Unavailable(why)) => {
                tracing::warn!(error = %why, "recommender unavailable for related");
                metrics::counter!("media_recommender_failures_total", "query" => "related")
                    .increment(1);
                return Err(Error::Unavailable(
                    "recommendations are unavailable right now; retry shortly",
                )
                .into());
            }
        };
        Ok(hydrate(app, &ids, first).await?)
    }

    /// The viewer's feed: videos close to what they liked, watched and commented on
    /// (recent interactions counting most), with trending videos mixed in, leaving out
    /// what they already watched. Anonymous viewers and new users get trending videos;
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
            Ok(ids) => Ok(hydrate(app, &ids, first).await?),
            Err(e) => {
                tracing::warn!(error = ?e, "recommender unavailable; trending instead");
                metrics::counter!("media_recommender_failures_total", "query" => "recommended")
                    .increment(1);
                Ok(hydrate(app, &trending_ids, first).await?)
            }
        }
    }
}
