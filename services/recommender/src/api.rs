//! The gRPC API media calls (`kino.recommender.v1.Recommender`, crates/rpc), on the
//! recommender's gRPC port (`GRPC_BIND_ADDR`), never routed by the gateway:
//!
//! * `Related(videoId, first)`: "more like this", the N listable videos nearest to the
//!   video (never itself); empty when the recommender has no vector for it (unknown, or
//!   not embedded yet).
//! * `Recommended(userId, first, trending)`: the user's feed, the videos nearest to their
//!   taste blended with the trending ids media passes (media owns the trending lists; the
//!   recommender knows what the user has seen), none of which they have watched. A user
//!   without a taste yet gets the trending ones.
//!
//! Answers are best first. Bad input (an id that is not a UUID, `first` over 100, more than
//! 500 trending ids) is INVALID_ARGUMENT; while the index is still loading at start,
//! UNAVAILABLE.

use std::{collections::HashSet, sync::Arc, time::Instant};

use rpc::recommender::v1 as pb;
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{Context, Serving, index::Hit, taste};

/// The most results one request may ask for.
pub const MAX_FIRST: usize = 100;
/// What `first` means when unset (0).
pub const DEFAULT_FIRST: usize = 20;
/// The most trending ids one request may pass.
pub const MAX_TRENDING: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Near the video (related) or the user's taste (recommended).
    Similar,
    Trending,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub id: Uuid,
    /// Cosine similarity to the query; 0 for trending picks.
    pub score: f32,
    pub source: Source,
}

#[derive(Debug)]
pub struct Answer {
    pub videos: Vec<Pick>,
    /// Whether the user's taste shaped the answer (false: trending only).
    pub personalised: bool,
}

#[derive(Debug)]
pub struct RecommendRequest {
    pub user_id: Uuid,
    pub first: usize,
    pub trending: Vec<Uuid>,
}

/// The gRPC service.
pub struct Api {
    ctx: Context,
}

impl Api {
    pub fn server(ctx: Context) -> pb::recommender_server::RecommenderServer<Self> {
        pb::recommender_server::RecommenderServer::new(Self { ctx })
    }

    fn serving(&self) -> Result<Arc<Serving>, Status> {
        self.ctx
            .serving
            .get()
            .cloned()
            .ok_or_else(|| Status::unavailable("the index is still loading"))
    }
}

/// `first` of a request: 0 (unset) is the default, more than [`MAX_FIRST`] is refused.
fn parse_first(first: u32) -> Result<usize, Status> {
    match first as usize {
        0 => Ok(DEFAULT_FIRST),
        n if n <= MAX_FIRST => Ok(n),
        n => Err(Status::invalid_argument(format!(
            "first must be from 1 to {MAX_FIRST}, got {n}"
        ))),
    }
}

#[tonic::async_trait]
impl pb::recommender_server::Recommender for Api {
    async fn related(
        &self,
        request: Request<pb::RelatedRequest>,
    ) -> Result<Response<pb::Recommendations>, Status> {
        let request = request.into_inner();
        let video = rpc::parse_id("video_id", &request.video_id)?;
        let first = parse_first(request.first)?;
        let serving = self.serving()?;
        let started = Instant::now();
        // A search is CPU work of a millisecond or two: done in place rather than paying
        // a hop to the blocking pool.
        let hits = serving.index.related(video, first).unwrap_or_default();
        metrics::histogram!("recommender_query_seconds", "query" => "related")
            .record(started.elapsed().as_secs_f64());
        Ok(Response::new(answer(Answer {
            videos: hits.into_iter().map(similar).collect(),
            personalised: false,
        })))
    }

    async fn recommended(
        &self,
        request: Request<pb::RecommendedRequest>,
    ) -> Result<Response<pb::Recommendations>, Status> {
        let request = request.into_inner();
        if request.trending.len() > MAX_TRENDING {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_TRENDING} trending ids, got {}",
                request.trending.len()
            )));
        }
        let request = RecommendRequest {
            user_id: rpc::parse_id("user_id", &request.user_id)?,
            first: parse_first(request.first)?,
            trending: rpc::parse_ids("trending", &request.trending)?,
        };
        let serving = self.serving()?;
        let started = Instant::now();
        let share = self.ctx.config.trending_share;
        let result = recommend(
            &serving,
            &request,
            share,
            taste::unix(OffsetDateTime::now_utc()),
        );
        metrics::histogram!("recommender_query_seconds", "query" => "recommended")
            .record(started.elapsed().as_secs_f64());
        Ok(Response::new(answer(result)))
    }
}

fn answer(answer: Answer) -> pb::Recommendations {
    pb::Recommendations {
        videos: answer
            .videos
            .into_iter()
            .map(|pick| pb::Pick {
                id: pick.id.to_string(),
                score: pick.score,
                source: match pick.source {
                    Source::Similar => pb::Source::Similar,
                    Source::Trending => pb::Source::Trending,
                } as i32,
            })
            .collect(),
        personalised: answer.personalised,
    }
}

fn similar(hit: Hit) -> Pick {
    Pick {
        id: hit.id,
        score: hit.score,
        source: Source::Similar,
    }
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
        assert_eq!(parse_first(0).unwrap(), DEFAULT_FIRST);
        assert_eq!(parse_first(100).unwrap(), 100);
        for bad in [101, u32::MAX] {
            let status = parse_first(bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }
}
