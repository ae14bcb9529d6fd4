//! The internal HTTP API media calls (not routed by the gateway):
//!
//! * `GET /recommender/related/{videoId}?first=N`: "more like this", the N listable videos
//!   nearest to the video (never itself). 404 if the recommender has no vector for it.
//! * `POST /recommender/recommended` `{"userId", "first", "trending": [ids]}`: the user's
//!   feed, the videos nearest to their taste blended with the trending ids media passes
//!   (media owns the trending lists; the recommender knows what the user has seen), none
//!   of which they have watched. A user without a taste yet gets the trending ones.
//!
//! Answers are `{"videos": [{"id", "score", "source"}], "personalised": bool}`, best first.
//! Bad input is a 400 `application/problem+json`; while the index is still loading at
//! start, 503.

use std::{collections::HashSet, sync::Arc, time::Instant};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Context, Error, Serving, index::Hit, taste};

/// The most results one request may ask for.
pub const MAX_FIRST: usize = 100;
/// The most trending ids one request may pass.
pub const MAX_TRENDING: usize = 500;

pub fn router(ctx: Context) -> Router {
    Router::new()
        .route("/recommender/related/{video_id}", get(related))
        .route("/recommender/recommended", post(recommended))
        .with_state(ctx)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Near the video (related) or the user's taste (recommended).
    Similar,
    Trending,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pick {
    pub id: Uuid,
    /// Cosine similarity to the query; 0 for trending picks.
    pub score: f32,
    pub source: Source,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub videos: Vec<Pick>,
    /// Whether the user's taste shaped the answer (false: trending only).
    pub personalised: bool,
}

fn serving(ctx: &Context) -> Result<Arc<Serving>, Error> {
    ctx.serving
        .get()
        .cloned()
        .ok_or_else(|| Error::Unavailable("the index is still loading".into()))
}

fn parse_first(raw: Option<&str>) -> Result<usize, Error> {
    let Some(raw) = raw else { return Ok(20) };
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_FIRST).contains(&n) => Ok(n),
        _ => Err(Error::BadRequest(format!(
            "first must be an integer from 1 to {MAX_FIRST}"
        ))),
    }
}

#[derive(Deserialize)]
struct RelatedParams {
    first: Option<String>,
}

async fn related(
    State(ctx): State<Context>,
    Path(video_id): Path<String>,
    Query(params): Query<RelatedParams>,
) -> Result<Json<Answer>, Error> {
    let video =
        Uuid::parse_str(&video_id).map_err(|_| Error::BadRequest("not a video id".into()))?;
    let first = parse_first(params.first.as_deref())?;
    let serving = serving(&ctx)?;
    let started = Instant::now();
    let hits = serving.index.related(video, first).ok_or(Error::NotFound(
        "no vector for this video (unknown, or not embedded yet)",
    ))?;
    metrics::histogram!("recommender_query_seconds", "query" => "related")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(Answer {
        videos: hits.into_iter().map(similar).collect(),
        personalised: false,
    }))
}

fn similar(hit: Hit) -> Pick {
    Pick {
        id: hit.id,
        score: hit.score,
        source: Source::Similar,
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecommendRequest {
    pub user_id: Uuid,
    #[serde(default = "default_first")]
    pub first: usize,
    #[serde(default)]
    pub trending: Vec<Uuid>,
}

fn default_first() -> usize {
    20
}

async fn recommended(State(ctx): State<Context>, body: Bytes) -> Result<Json<Answer>, Error> {
    let request: RecommendRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("invalid request body: {e}")))?;
    if !(1..=MAX_FIRST).contains(&request.first) {
        return Err(Error::BadRequest(format!(
            "first must be from 1 to {MAX_FIRST}"
        )));
    }
    if request.trending.len() > MAX_TRENDING {
        return Err(Error::BadRequest(format!(
            "at most {MAX_TRENDING} trending ids"
        )));
    }
    let serving = serving(&ctx)?;
    let started = Instant::now();
    let share = ctx.config.trending_share;
    // A search is CPU work of a millisecond or two: done in place rather than paying a
    // hop to the blocking pool.
    let answer = recommend(
        &serving,
        &request,
        share,
        taste::unix(OffsetDateTime::now_utc()),
    );
    metrics::histogram!("recommender_query_seconds", "query" => "recommended")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(answer))
}

/// The whole recommendation for one request (also what the benchmark times).
pub fn recommend(
    serving: &Serving,
    request: &RecommendRequest,
    trending_share: f64,
    now: f64,
) -> Answer {
    let (taste, seen) = serving.tastes.taste(request.user_id, &serving.index, now);
    let personal = match &taste {
        Some(taste) => serving
            .index
            .nearest(taste, request.first, &|id| seen.contains(id)),
        None => Vec::new(),
    };
    Answer {
        personalised: !personal.is_empty(),
        videos: blend(
            personal,
            &request.trending,
            &seen,
            request.first,
            trending_share,
        ),
    }
}

/// Interleaves `personal` (best first) with `trending`, giving trending about `share` of
/// the slots, spread evenly (0.25: every fourth). Seen and repeated videos are skipped;
/// when one side runs out the other fills the rest.
pub fn blend(
    personal: Vec<Hit>,
    trending: &[Uuid],
    seen: &HashSet<Uuid>,
    first: usize,
    share: f64,
) -> Vec<Pick> {
    let mut out: Vec<Pick> = Vec::with_capacity(first);
    let mut taken: HashSet<Uuid> = HashSet::with_capacity(first);
    let mut personal = personal.into_iter().map(similar).peekable();
    let mut trending = trending
        .iter()
        .filter(|id| !seen.contains(id))
        .map(|&id| Pick {
            id,
            score: 0.0,
            source: Source::Trending,
        })
        .peekable();
    while out.len() < first {
        let i = out.len() as f64;
        let trending_turn = ((i + 1.0) * share).floor() > (i * share).floor();
        let pick = if trending_turn {
            trending.next().or_else(|| personal.next())
        } else {
            personal.next().or_else(|| trending.next())
        };
        let Some(pick) = pick else { break };
        if taken.insert(pick.id) {
            out.push(pick);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(ids: &[Uuid]) -> Vec<Hit> {
        ids.iter().map(|&id| Hit { id, score: 0.9 }).collect()
    }

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    #[test]
    fn every_fourth_slot_is_trending_at_a_quarter() {
        let (p, t) = (ids(10), ids(10));
        let out = blend(hits(&p), &t, &HashSet::new(), 8, 0.25);
        let sources: Vec<Source> = out.iter().map(|p| p.source).collect();
        use Source::*;
        assert_eq!(
            sources,
            [
                Similar, Similar, Similar, Trending, Similar, Similar, Similar, Trending
            ]
        );
        assert_eq!(out[0].id, p[0]);
        assert_eq!(out[3].id, t[0]);
    }

    #[test]
    fn one_side_fills_in_for_the_other_and_duplicates_and_seen_are_skipped() {
        let (p, t) = (ids(2), ids(5));
        let seen: HashSet<Uuid> = [t[0]].into();
        // t[1] is also a personal pick: it appears once.
        let out = blend(hits(&[p[0], p[1], t[1]]), &t, &seen, 6, 0.25);
        let got: Vec<Uuid> = out.iter().map(|p| p.id).collect();
        assert_eq!(got, [p[0], p[1], t[1], t[2], t[3], t[4]]);
        assert!(!got.contains(&t[0]));
        // No taste: trending only.
        let out = blend(Vec::new(), &t, &HashSet::new(), 3, 0.25);
        assert_eq!(out.iter().map(|p| p.id).collect::<Vec<_>>(), t[..3]);
    }

    #[test]
    fn first_is_checked() {
        assert_eq!(parse_first(None).unwrap(), 20);
        assert_eq!(parse_first(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "x"] {
            assert!(parse_first(Some(bad)).is_err(), "{bad}");
        }
    }
}
