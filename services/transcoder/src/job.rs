//! One transcode job: source from S3 → ffprobe → one ffmpeg for the whole ladder →
//! outputs to S3 → `video.ready`. Output keys are fixed by the video id and rung names, so
//! a repeated job (redelivery after a crash, a retry) overwrites the same objects; keys
//! of an earlier attempt that this one did not produce are removed.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::Stdio,
};

use aws_sdk_s3::{error::DisplayErrorContext, primitives::ByteStream};
use events::{
    Envelope,
    consumer::{self, Outcome},
    transcode::DELIVERY_LIMIT,
    video::{ProgressStage, Rendition, TranscodeJob, VideoFailed, VideoReady},
};
use futures::StreamExt;
use lapin::message::Delivery;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::{
    Context,
    ffmpeg::{self, Source},
    ladder::{self, Rung},
    limits,
    progress::{self, Parser, Reporter},
    queues, stills,
    workdir::WorkDir,
};

/// Settles one delivery of the jobs queue (see [`queues`] for the retry design and
/// [`limits`] for the timeout and the hand-back at shutdown).
pub async fn handle(ctx: &Context, delivery: Delivery) -> Outcome {
    let attempt = queues::attempt(&delivery);
    let max = ctx.config.jobs.max_attempts.max(1);
    let job = match consumer::decode::<TranscodeJob>(&delivery.data) {
        Ok(envelope) => envelope.data,
        Err(e) => {
            tracing::error!(error = %e, "undecodable transcode job; parking it");
            let reason = format!("undecodable job: {e}");
            return match ctx.queues.dead(&delivery.data, attempt, &reason).await {
                Ok(()) => Outcome::Ack,
                Err(_) => Outcome::Retry,
            };
        }
    };
    let video_id = job.video_id;
    let unsettled = queues::unsettled_deliveries(&delivery);
    if unsettled >= DELIVERY_LIMIT {
        // The broker's last delivery: every earlier one ended without a word (a killed
        // or out-of-memory worker, a consumer timeout, hand-backs). Running it again
        // would most likely end the same way, and then nobody would tell the uploader.
        let reason = format!(
            "the transcoder stopped {unsettled} times while processing this video \
             (killed, out of memory or timed out); it will not be tried again"
        );
        tracing::error!(%video_id, unsettled, "transcode job exceeded its delivery limit");
        return give_up(ctx, &delivery, &job, attempt, reason).await;
    }
    tracing::info!(%video_id, attempt, max, unsettled, "transcoding");
    let started = std::time::Instant::now();
    let reason = match transcode(ctx, &job).await {
        Ok(()) => {
            tracing::info!(%video_id, seconds = started.elapsed().as_secs_f64(), "transcoded");
            metrics::record(true, started.elapsed());
            return Outcome::Ack;
        }
        Err(Ended::HandedBack) => {
            // Not a failure of the job: the quorum queue counts the delivery all the same,
            // so a job that is always handed back still ends (events::transcode).
            tracing::warn!(%video_id, attempt, "shutdown: the transcode could not finish in time; handing it back");
            return Outcome::Requeue;
        }
        Err(Ended::Failed(reason)) => reason,
    };
    metrics::record(false, started.elapsed());
    if attempt < max {
        let next = attempt + 1;
        let delay = queues::backoff(ctx.config.jobs.retry_backoff, next);
        tracing::warn!(%video_id, attempt, %reason, ?delay, "transcode failed; will retry");
        return match ctx.queues.retry(&delivery.data, next, delay).await {
            Ok(()) => Outcome::Ack,
            Err(_) => Outcome::Retry,
        };
    }
    tracing::error!(%video_id, attempt, %reason, "transcode failed for good");
    give_up(ctx, &delivery, &job, attempt, reason).await
}

/// Parks the job in `transcode.dead` and announces `video.failed` with `reason` (what the
/// uploader sees); acknowledged only once both are done.
async fn give_up(
    ctx: &Context,
    delivery: &Delivery,
    job: &TranscodeJob,
    attempt: u32,
    reason: String,
) -> Outcome {
    if ctx
        .queues
        .dead(&delivery.data, attempt, &reason)
        .await
        .is_err()
    {
        return Outcome::Retry;
    }
    let failed = Envelope::new(VideoFailed {
        video_id: job.video_id,
        owner_id: job.owner_id,
        reason,
    });
    match ctx.publisher.publish(&ctx.events, &failed).await {
        Ok(()) => Outcome::Ack,
        // Parked twice at worst; the video service treats the second failure as a duplicate.
        Err(_) => Outcome::Retry,
    }
}

/// Why an attempt ended before producing the ladder.
#[derive(Debug)]
enum Ended {
    /// It failed; the reason is shown to the uploader if it is the last attempt.
    Failed(String),
    /// Shutdown came and it could not finish within the grace period: stopped, scratch
    /// removed, to be handed back to the queue (limits::handback_after).
    HandedBack,
}

impl From<String> for Ended {
    fn from(reason: String) -> Self {
        Self::Failed(reason)
    }
}

/// Resolves once a job still running at shutdown must be handed back.
async fn handback_due(ctx: &Context) {
    ctx.shutdown.triggered().await;
    tokio::time::sleep(limits::handback_after(ctx.config.http.shutdown_grace)).await;
}

pub(crate) mod metrics {
    use std::time::Duration;

    use platform::metrics::TRANSCODE_DURATION;

    const JOBS: &str = "transcode_jobs_total";

    /// One finished attempt: its outcome and how long it took (download to last upload).
    pub fn record(ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "failed" };
        ::metrics::counter!(JOBS, "outcome" => outcome).increment(1);
        ::metrics::histogram!(TRANSCODE_DURATION, "outcome" => outcome).record(took.as_secs_f64());
    }

    /// Makes both series exist from the start, at zero, so dashboards and alerts see a
    /// worker that has not transcoded anything yet rather than "no data".
    pub fn register() {
        platform::metrics::handle();
        for outcome in ["ok", "failed"] {
            ::metrics::counter!(JOBS, "outcome" => outcome).increment(0);
            // Registering is all: the handle itself is not needed.
            let _ = ::metrics::histogram!(TRANSCODE_DURATION, "outcome" => outcome);
        }
    }
}

/// Runs the job. Everything from the download to the last upload is raced against the
/// hand-back at shutdown; from the probe on, against the job's `TRANSCODE_TIMEOUT` too.
/// Losing a race drops what was running: the encoder is killed and waited for (see
/// [`encode`]), the scratch directory removed ([`WorkDir`]).
async fn transcode(ctx: &Context, job: &TranscodeJob) -> Result<(), Ended> {
    let handback = handback_due(ctx);
    tokio::pin!(handback);
    let id = job.video_id;
    let mut reporter = Reporter::start(
        ctx.publisher.clone(),
        ctx.events.clone(),
        id,
        job.owner_id,
        ctx.config.jobs.progress_interval,
    );
    reporter.update(ProgressStage::Probing, 0.0, None, None);
    let work = WorkDir::create(&ctx.config.jobs.work_dir, &id.to_string())
        .await
        .map_err(|e| format!("no scratch space: {e}"))?;
    let source_path = work.path().join("source");
    let source = tokio::select! {
        probed = async {
            download(ctx, &job.source_key, &source_path).await?;
            ffmpeg::probe(&ctx.ffmpeg, &source_path).await
        } => probed?,
        () = &mut handback => return Err(Ended::HandedBack),
    };
    let rungs = ladder::choose(source.width, source.height);
    let limit = ctx.config.jobs.timeout.for_source(source.duration);
    let deadline = tokio::time::Instant::now() + limit;
    let stop = async {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => Ended::Failed(format!(
                "transcoding took longer than its limit of {} s (TRANSCODE_TIMEOUT for a {:.0} s video)",
                limit.as_secs_f64().ceil(),
                source.duration,
            )),
            () = &mut handback => Ended::HandedBack,
        }
    };
    tokio::pin!(stop);

    let out = work.path().join("hls");
    for rung in &rungs {
        tokio::fs::create_dir_all(out.join(&rung.name))
            .await
            .map_err(|e| format!("no scratch space: {e}"))?;
    }
    // The stills (posters, storyboard) are made while the ladder encodes, off the job's
    // critical path, into the HLS directory that is uploaded next.
    let (encoded, stills) = tokio::join!(
        encode(
            ctx,
            &source_path,
            &out,
            &rungs,
            &source,
            &mut reporter,
            &mut stop
        ),
        make_stills(ctx, &source_path, &out, &source),
    );
    encoded?;
    let stored = store(ctx, id, &out, &mut reporter);
    tokio::select! {
        stored = stored => stored?,
        why = &mut stop => return Err(why),
    };

    reporter.update(ProgressStage::Done, 100.0, None, Some(0.0));
    reporter.finish().await;
    let hls_prefix = format!("hls/{id}/");
    let posters: Vec<events::video::Still> = stills
        .posters
        .iter()
        .map(|s| events::video::Still {
            key: format!("{hls_prefix}{}", s.file),
            width: s.width,
            height: s.height,
        })
        .collect();
    let ready = Envelope::new(VideoReady {
        video_id: id,
        owner_id: job.owner_id,
        manifest_key: format!("{hls_prefix}master.m3u8"),
        thumbnail_key: posters.last().map(|p| p.key.clone()),
        storyboard: stills.storyboard.map(|plan| events::video::Storyboard {
            vtt_key: format!("{hls_prefix}{}", stills::VTT),
            interval_seconds: plan.interval,
            tile_width: plan.tile_width,
            tile_height: plan.tile_height,
        }),
        posters,
        duration_seconds: source.duration,
        renditions: rungs
            .iter()
            .map(|r| Rendition {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                bandwidth: r.bandwidth(source.has_audio),
                playlist_key: format!("{hls_prefix}{}/index.m3u8", r.name),
            })
            .collect(),
    });
    ctx.publisher
        .publish(&ctx.events, &ready)
        .await
        .map_err(|e| format!("could not announce the result: {e}"))?;
    drop(work);
    Ok(())
}

/// Uploads the ladder and the stills under `hls/{id}/`, reporting progress, and removes
/// what an earlier attempt left there.
async fn store(
    ctx: &Context,
    id: uuid::Uuid,
    out: &Path,
    reporter: &mut Reporter,
) -> Result<(), String> {
    let files = output_files(out).await?;
    let total = files.len();
    let hls_prefix = format!("hls/{id}/");
    // Variant playlists after their segments, the master last: whoever sees the master
    // finds everything it names.
    let mut ordered = files;
    ordered.sort_by_key(|(rel, _)| (rel == "master.m3u8", rel.ends_with(".m3u8"), rel.clone()));
    let (segments, playlists): (Vec<_>, Vec<_>) = ordered
        .into_iter()
        .partition(|(rel, _)| !rel.ends_with(".m3u8"));
    let mut uploaded = 0usize;
    let mut keys = HashSet::new();
    for batch in [segments, playlists] {
        let mut puts = futures::stream::iter(batch.into_iter().map(|(rel, path)| {
            let key = format!("{hls_prefix}{rel}");
            async move { put(ctx, &key, &path).await.map(|()| key) }
        }))
        .buffered(4);
        while let Some(result) = puts.next().await {
            keys.insert(result?);
            uploaded += 1;
            let percent = progress::ENCODING_SHARE
                + (100.0 - progress::ENCODING_SHARE) * uploaded as f64 / total.max(1) as f64;
            reporter.update(ProgressStage::Uploading, percent.min(99.9), None, None);
        }
    }
    remove_stale(ctx, &hls_prefix, &keys).await
}

async fn download(ctx: &Context, key: &str, to: &Path) -> Result<(), String> {
    let object = ctx
        .storage
        .client
        .get_object()
        .bucket(&ctx.storage.name)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("could not read the source: {}", DisplayErrorContext(e)))?;
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| format!("no scratch space: {e}"))?;
    tokio::io::copy(&mut object.body.into_async_read(), &mut file)
        .await
        .map_err(|e| format!("could not read the source: {e}"))?;
    file.sync_all()
        .await
        .map_err(|e| format!("no scratch space: {e}"))?;
    Ok(())
}

/// Runs the one ffmpeg of the ladder. If `stop` resolves first (the timeout, or the
/// hand-back at shutdown), ffmpeg is killed and waited for before this returns, so no
/// encoder is left writing into the scratch directory about to be removed.
async fn encode(
    ctx: &Context,
    input: &Path,
    out: &Path,
    rungs: &[Rung],
    source: &Source,
    reporter: &mut Reporter,
    stop: &mut (impl Future<Output = Ended> + Unpin),
) -> Result<(), Ended> {
    let args = ffmpeg::ladder_args(input, out, rungs, source.has_audio, &ctx.config.jobs.preset);
    // Cancelled job (shutdown), dropped future or a killed transcoder: no orphan encoder.
    let mut child = ffmpeg::command(&ctx.ffmpeg.ffmpeg)
        .args(&args)
        .current_dir(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ffmpeg could not start: {e}"))?;
    // Drain stderr concurrently (a full pipe would stall ffmpeg), keeping the tail.
    let mut stderr = child.stderr.take().expect("piped");
    let stderr_tail = tokio::spawn(async move {
        let mut text = String::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.len() > 8192 {
                text.drain(..text.len() - 4096);
            }
        }
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut parser = Parser::default();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(sample) = parser.line(&line) {
                reporter.update(
                    ProgressStage::Transcoding,
                    progress::encoding_percent(sample.out_time, source.duration),
                    sample.speed,
                    progress::eta(sample.out_time, source.duration, sample.speed),
                );
            }
        }
    };
    tokio::select! {
        () = read => {}
        why = stop => {
            if let Err(e) = child.kill().await {
                tracing::warn!(error = %e, "could not kill ffmpeg");
            }
            stderr_tail.abort();
            return Err(why);
        }
    }
    let status = child.wait().await.map_err(|e| format!("ffmpeg: {e}"))?;
    let stderr = stderr_tail.await.unwrap_or_default();
    if !status.success() {
        return Err(Ended::Failed(format!(
            "the video could not be transcoded ({})",
            ffmpeg::last_line(&stderr)
        )));
    }
    Ok(())
}

/// What [`make_stills`] made: each part is optional (a failure is logged, the job goes on
/// without it).
struct Stills {
    posters: Vec<stills::Still>,
    storyboard: Option<stills::Plan>,
}

/// Writes the posters and the storyboard into `dir` (two ffmpeg runs, side by side).
async fn make_stills(ctx: &Context, input: &Path, dir: &Path, source: &Source) -> Stills {
    let posters = stills::posters(source);
    let plan = stills::Plan::for_source(source);
    let (posters_ok, sheets_ok) = tokio::join!(
        run_ffmpeg(ctx, stills::poster_args(input, dir, source, &posters)),
        run_ffmpeg(ctx, stills::storyboard_args(input, dir, &plan)),
    );
    let posters = if posters_ok && posters.iter().all(|p| dir.join(&p.file).exists()) {
        posters
    } else {
        tracing::warn!("no posters could be made; continuing without");
        Vec::new()
    };
    let sheets = (0..plan.sheets())
        .take_while(|n| dir.join(format!("storyboard-{n}.jpg")).exists())
        .count() as u32;
    let storyboard = if sheets_ok && sheets > 0 {
        let vtt = stills::vtt(&plan, source.duration, sheets);
        match tokio::fs::write(dir.join(stills::VTT), vtt).await {
            Ok(()) => Some(plan),
            Err(error) => {
                tracing::warn!(%error, "storyboard index not written; continuing without");
                None
            }
        }
    } else {
        tracing::warn!("no storyboard could be made; continuing without");
        None
    };
    Stills {
        posters,
        storyboard,
    }
}

/// Runs ffmpeg with `args` to completion; whether it succeeded.
async fn run_ffmpeg(ctx: &Context, args: Vec<std::ffi::OsString>) -> bool {
    let status = ffmpeg::command(&ctx.ffmpeg.ffmpeg)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    status.is_ok_and(|s| s.success())
}

/// Every file under `out`, as (path relative to `out`, path).
async fn output_files(out: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut files = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut entries = tokio::fs::read_dir(&dir)
            .await
            .map_err(|e| format!("reading outputs: {e}"))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| format!("reading outputs: {e}"))?
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path
                    .strip_prefix(out)
                    .expect("under out")
                    .to_string_lossy()
                    .into_owned();
                files.push((rel, path));
            }
        }
    }
    if !files.iter().any(|(rel, _)| rel == "master.m3u8") {
        return Err("ffmpeg wrote no master playlist".into());
    }
    Ok(files)
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".m3u8") {
        "application/vnd.apple.mpegurl"
    } else if key.ends_with(".ts") {
        "video/mp2t"
    } else if key.ends_with(".jpg") {
        "image/jpeg"
    } else {
        "application/octet-stream"
    }
}

async fn put(ctx: &Context, key: &str, path: &Path) -> Result<(), String> {
    let body = ByteStream::from_path(path)
        .await
        .map_err(|e| format!("reading output {}: {e}", path.display()))?;
    ctx.storage
        .client
        .put_object()
        .bucket(&ctx.storage.name)
        .key(key)
        .content_type(content_type(key))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("could not store {key}: {}", DisplayErrorContext(e)))?;
    Ok(())
}

/// Removes keys under `prefix` this attempt did not write (left by an earlier attempt
/// with a different ladder), so the stored set is exactly this attempt's.
async fn remove_stale(ctx: &Context, prefix: &str, keep: &HashSet<String>) -> Result<(), String> {
    let mut token = None;
    loop {
        let page = ctx
            .storage
            .client
            .list_objects_v2()
            .bucket(&ctx.storage.name)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| format!("listing outputs: {}", DisplayErrorContext(e)))?;
        for key in page.contents().iter().filter_map(|o| o.key()) {
            // Caption tracks are the owner's, added after transcoding (the video service
            // lists them in the master again after a transcode runs twice).
            let captions = key
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with("captions/"));
            if !keep.contains(key) && !captions {
                ctx.storage
                    .client
                    .delete_object()
                    .bucket(&ctx.storage.name)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| format!("removing {key}: {}", DisplayErrorContext(e)))?;
            }
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(()),
        }
    }
}
