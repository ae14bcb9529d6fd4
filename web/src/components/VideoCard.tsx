import type { VideoCardFieldsFragment } from '../gql/graphql';
import { compactNumber, formatDuration, timeAgo } from '../lib/format';
import { Link } from '../router';

export type CardVideo = VideoCardFieldsFragment;

function srcset(v: CardVideo): string | undefined {
  if (!v.thumbnails.length) return undefined;
  return v.thumbnails.map((t) => `${t.url} ${t.width}w`).join(', ');
}

export function VideoCard({ video, rank }: { video: CardVideo; rank?: number }) {
  const href = `/watch/${video.id}`;
  const duration = formatDuration(video.durationSeconds);
  return (
    <article class="card" data-video-id={video.id}>
      <Link href={href} class="thumb" aria-label={video.title} tabIndex={-1}>
        {video.thumbnailUrl ? (
          <img src={video.thumbnails[0]?.url ?? video.thumbnailUrl} srcset={srcset(video)} sizes="(max-width: 600px) 100vw, 320px" alt="" loading="lazy" />
        ) : (
          <span class="nothumb">{video.status === 'READY' ? 'No preview' : video.status.toLowerCase()}</span>
        )}
        {duration && <span class="duration">{duration}</span>}
        {rank !== undefined && <span class="rank">#{rank}</span>}
      </Link>
      <h3 class="title">
        <Link href={href}>{video.title}</Link>
      </h3>
      <p class="meta">
        {video.owner ? <Link href={`/channel/${video.owner.id}`}>{video.owner.displayName}</Link> : <span>deleted account</span>}
        {' · '}
        <span class="views">{compactNumber(video.viewCount)} views</span>
        {' · '}
        <time dateTime={video.publishedAt ?? video.createdAt}>{timeAgo(video.publishedAt ?? video.createdAt)}</time>
      </p>
    </article>
  );
}

export function VideoGrid({ videos, ranked }: { videos: CardVideo[]; ranked?: boolean }) {
  return (
    <div class="grid">
      {videos.map((v, i) => (
        <VideoCard key={v.id} video={v} rank={ranked ? i + 1 : undefined} />
      ))}
    </div>
  );
}
