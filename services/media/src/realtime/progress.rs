//! Transcoding progress from RabbitMQ into the hub.
//!
//! The transcoder publishes `video.progress` (at most every 500 ms per job) and finally
//! `video.ready` or `video.failed` on the `video.events` exchange. Media binds one queue,
//! `media.progress`, shared by all its replicas: the broker gives each event to one of
//! them, which publishes it on the video's hub channel, and the hub delivers it to the
//! owner's `uploadProgress` subscription on whichever replica it is connected to.
//!
//! Progress is disposable (the next one supersedes it), so the queue drops messages older
//! than [`MESSAGE_TTL`]: after an outage nobody is shown minutes-old progress, and the
//! queue cannot grow while no media replica runs.

use std::time::Duration;

use events::{
    consumer::{self, Outcome},
    topology::VIDEO_EVENTS,
    video::{VideoEvent, VideoEventKind},
};

use super::{Event, Hub, channels, wire::ProgressUpdate};
use crate::Context;

pub const MESSAGE_TTL: Duration = Duration::from_secs(30);

/// The events that make up a video's progress.
const KINDS: [VideoEventKind; 3] = [
    VideoEventKind::Progress,
    VideoEventKind::Ready,
    VideoEventKind::Failed,
];

/// Consumes media's `media.progress` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let namespace = ctx.config.namespace();
    let mut spec = namespace.queue("media.progress");
    for kind in KINDS {
        spec = spec.bind(VIDEO_EVENTS, &namespace.routing_key(kind.routing_key()));
    }
    let spec = spec.messages_expire_after(MESSAGE_TTL);
    let hub = ctx.realtime.hub.clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 64, shutdown, move |delivery| {
        let hub = hub.clone();
        async move { handle(&hub, &delivery.data).await }
    });
}

async fn handle(hub: &Hub, body: &[u8]) -> Outcome {
    let event = match VideoEvent::decode(body) {
        Ok(envelope) => envelope.data,
        Err(error) => return Outcome::undecodable(&error),
    };
    // Only the kinds bound above carry progress; anything else is not ours to show.
    let Some(update) = update(event) else {
        return Outcome::Ack;
    };
    let channel = channels::progress(&update.video_id);
    match hub.publish(&channel, &Event::Progress(update)).await {
        Ok(()) => Outcome::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "progress not published; will retry");
            Outcome::Retry
        }
    }
}

/// The update a video event stands for, if it is one of [`KINDS`].
pub fn update(event: VideoEvent) -> Option<ProgressUpdate> {
    match event {
        VideoEvent::Progress(p) => Some(ProgressUpdate {
            video_id: p.video_id,
            owner_id: p.owner_id,
            stage: p.stage.as_str().into(),
            percent: p.percent,
            speed: p.speed,
            eta_seconds: p.eta_seconds,
            failure_reason: None,
        }),
        VideoEvent::Ready(r) => Some(ProgressUpdate {
            video_id: r.video_id,
            owner_id: r.owner_id,
            stage: "ready".into(),
            percent: 100.0,
            speed: None,
            eta_seconds: Some(0.0),
            failure_reason: None,
        }),
        VideoEvent::Failed(f) => Some(ProgressUpdate {
            video_id: f.video_id,
            owner_id: f.owner_id,
            stage: "failed".into(),
            percent: 100.0,
            speed: None,
            eta_seconds: None,
            failure_reason: Some(f.reason),
        }),
        _ => None,
    }
}
