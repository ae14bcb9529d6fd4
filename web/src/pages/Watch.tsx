import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, live } from '../api/graphql';
import {
  LikeMutation,
  RecordViewMutation,
  RecordWatchTimeMutation,
  RelatedQuery,
  SubscribeMutation,
  UnlikeMutation,
  UnsubscribeMutation,
  VideoStatsSubscription,
  WatchQuery,
} from '../api/operations';
import { ErrorBox, Notice, useAsync, useSession } from '../components/common';
import { VideoCard } from '../components/VideoCard';
import { compactNumber, plural, timeAgo } from '../lib/format';
import { tabSessionId } from '../lib/session-id';
import { WatchTimer } from '../lib/watchtime';
import { Link, signInThenBack } from '../router';
import { Comments } from './Comments';
import { Player } from './Player';

export default function Watch({ id }: { id: string }) {
  const session = useSession();
  const q = useAsync((signal) => gql(WatchQuery, { id }, signal), [id, session?.userId]);
  const v = q.data?.video;
  const [stats, setStats] = useState<{ likeCount: number; viewCount: number; commentCount: number } | null>(null);
  const [liked, setLiked] = useState(false);
  const [sub, setSub] = useState<{ count: number; on: boolean } | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [gone, setGone] = useState<unknown>(null);

  useEffect(() => {
    if (!v) return;
    setStats({ likeCount: v.likeCount, viewCount: v.viewCount, commentCount: v.commentCount });
    setLiked(v.viewerHasLiked);
    setSub(v.owner ? { count: v.owner.subscriberCount, on: v.owner.viewerIsSubscribed } : null);
  }, [v]);

  useEffect(() => {
    if (!v || v.status !== 'READY') return;
    return live(VideoStatsSubscription, () => ({ videoId: id }), {
      next: (d) => setStats(d.videoStats),
      error: (e) => setGone(e),
      complete: () => undefined,
    });
  }, [v?.id, v?.status, session?.userId]);

  // A video still being processed becomes playable without a reload: ask again every 2 s.
  // (The upload page hears "ready" from the transcoder, possibly a moment before the
  // catalogue has the ready video, so its "watch" link can land here first.)
  useEffect(() => {
    if (!v || v.status === 'READY' || v.status === 'FAILED') return;
    const again = setTimeout(q.reload, 2_000);
    return () => clearTimeout(again);
  }, [q.data]);

  // Views and watch time; anonymous viewers are told apart by a per-tab session id.
  const viewed = useRef(false);
  const timer = useRef(new WatchTimer());
  const sessionId = session ? null : tabSessionId();
  const flush = (min = 1) => {
    const seconds = timer.current.take(min);
    if (seconds > 0) void gql(RecordWatchTimeMutation, { videoId: id, seconds, sessionId }).catch(() => undefined);
  };
  useEffect(() => {
    viewed.current = false;
    timer.current = new WatchTimer();
    const every = setInterval(() => flush(10), 30_000);
    const hide = () => flush(1);
    window.addEventListener('pagehide', hide);
    return () => {
      clearInterval(every);
      window.removeEventListener('pagehide', hide);
      flush(1);
    };
  }, [id]);

  const toggleLike = async () => {
    if (!session) return signInThenBack();
    setActionError(null);
    try {
      const d = liked ? (await gql(UnlikeMutation, { videoId: id })).unlikeVideo : (await gql(LikeMutation, { videoId: id })).likeVideo;
      setLiked(d.viewerHasLiked);
      setStats((s) => (s ? { ...s, likeCount: d.likeCount } : s));
    } catch (e) {
      setActionError(e);
    }
  };
  const toggleSub = async () => {
    if (!session) return signInThenBack();
    if (!v?.owner) return;
    setActionError(null);
    try {
      const d = sub?.on ? (await gql(UnsubscribeMutation, { channelId: v.owner.id })).unsubscribe : (await gql(SubscribeMutation, { channelId: v.owner.id })).subscribe;
      setSub({ count: d.subscriberCount, on: d.viewerIsSubscribed });
    } catch (e) {
      setActionError(e);
    }
  };

  if (q.error) return <ErrorBox error={q.error} retry={q.reload} />;
  if (!q.data) return <p class="loading">Loading…</p>;
  if (!v)
    return (
      <section>
        <h1>Video unavailable</h1>
        <p id="video-unavailable" role="alert">
          This video does not exist, or it is private.{' '}
          {!session && (
            <button type="button" class="link" onClick={signInThenBack}>
              Sign in
            </button>
          )}
        </p>
      </section>
    );
  if (gone)
    return (
      <section>
        <h1>{v.title}</h1>
        <p role="alert">This video is no longer available (it was made private or deleted).</p>
      </section>
    );

  const src = v.playback?.url ?? v.hlsUrl;
  const isOwner = session?.userId === v.owner?.id;
  return (
    <div class="watch">
      <div class="watch-main">
        {v.status === 'READY' && src ? (
          <Player
            src={src}
            poster={v.thumbnails[v.thumbnails.length - 1]?.url ?? v.thumbnailUrl}
            captions={v.captions}
            storyboard={v.storyboard}
            title={v.title}
            onPlaying={() => {
              timer.current.reset();
              if (!viewed.current) {
                viewed.current = true;
                void gql(RecordViewMutation, { videoId: id, sessionId }).catch(() => undefined);
              }
            }}
            onTime={(t, playing) => playing && timer.current.tick(t)}
            onStop={() => {
              timer.current.reset();
              flush(1);
            }}
          />
        ) : (
          <div class="player placeholder" role="status">
            {v.status === 'FAILED' ? `Processing failed${v.failureReason ? `: ${v.failureReason}` : '.'}` : 'This video is still being processed.'}
          </div>
        )}
        <h1 id="video-title">{v.title}</h1>
        <div class="row video-actions">
          {v.owner && (
            <span class="channel">
              <Link href={`/channel/${v.owner.id}`} id="video-channel">
                {v.owner.displayName}
              </Link>{' '}
              <span class="muted">{sub ? plural(sub.count, 'subscriber') : ''}</span>
            </span>
          )}
          {v.owner && !isOwner && (
            <button type="button" class={sub?.on ? 'secondary' : ''} aria-pressed={sub?.on ?? false} onClick={toggleSub}>
              {sub?.on ? 'Subscribed' : 'Subscribe'}
            </button>
          )}
          <button type="button" id="like-button" aria-pressed={liked} onClick={toggleLike} class={liked ? '' : 'secondary'}>
            {liked ? '♥ Liked' : '♡ Like'} <span id="like-count">{compactNumber(stats?.likeCount ?? v.likeCount)}</span>
          </button>
          <span class="muted" id="view-count">
            {plural(stats?.viewCount ?? v.viewCount, 'view')}
          </span>
          <span class="muted">{timeAgo(v.publishedAt ?? v.createdAt)}</span>
          {v.visibility !== 'PUBLIC' && <span class="badge">{v.visibility.toLowerCase()}</span>}
        </div>
        <ErrorBox error={actionError} />
        {v.description && <p class="description">{v.description}</p>}
        {v.tags.length > 0 && (
          <p class="tags">
            {v.tags.map((t) => (
              <Link href={`/search?tags=${encodeURIComponent(t)}`} class="tag">
                #{t}
              </Link>
            ))}
          </p>
        )}
        <p class="muted">
          <span id="comment-count">{plural(stats?.commentCount ?? v.commentCount, 'comment')}</span>
        </p>
        <Comments videoId={id} ownerId={v.owner?.id} onGone={setGone} />
      </div>
      <aside class="watch-side" aria-label="Related videos">
        <Related id={id} />
      </aside>
    </div>
  );
}

function Related({ id }: { id: string }) {
  const r = useAsync((signal) => gql(RelatedQuery, { videoId: id, first: 10 }, signal), [id]);
  return (
    <>
      <h2>Related</h2>
      <ErrorBox error={r.error} retry={r.reload} />
      {r.data && r.data.related.length === 0 && <Notice>Nothing related yet.</Notice>}
      <div class="list">
        {r.data?.related.map((v) => (
          <VideoCard video={v} key={v.id} />
        ))}
      </div>
    </>
  );
}
