import { useEffect, useState } from 'preact/hooks';
import { gql, live } from '../api/graphql';
import { TrendingChangedSubscription, TrendingQuery } from '../api/operations';
import { ErrorBox, Notice } from '../components/common';
import { VideoGrid, type CardVideo } from '../components/VideoCard';
import type { TrendingWindow } from '../gql/graphql';
import { navigate } from '../router';

const WINDOWS: { value: TrendingWindow; label: string }[] = [
  { value: 'HOUR', label: 'This hour' },
  { value: 'DAY', label: 'Today' },
  { value: 'WEEK', label: 'This week' },
];

export default function Trending({ window: win }: { window: TrendingWindow }) {
  const [videos, setVideos] = useState<CardVideo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [updated, setUpdated] = useState<Date | null>(null);
  useEffect(() => {
    setVideos(null);
    setError(null);
    let first = true;
    const ctl = new AbortController();
    // The list now (a query), then live: trendingChanged sends the list at once and on change.
    gql(TrendingQuery, { window: win, limit: 24 }, ctl.signal).then(
      (d) => first && setVideos(d.trending),
      (e) => !ctl.signal.aborted && setError(e),
    );
    const stop = live(TrendingChangedSubscription, () => ({ window: win, limit: 24 }), {
      next: (d) => {
        first = false;
        setVideos(d.trendingChanged);
        setUpdated(new Date());
      },
      error: setError,
      complete: () => undefined,
    });
    return () => {
      ctl.abort();
      stop();
    };
  }, [win]);
  return (
    <section>
      <h1>Trending</h1>
      <div class="row">
        <label for="trending-window">Window</label>
        <select id="trending-window" value={win} onChange={(e) => navigate(`/trending?window=${(e.target as HTMLSelectElement).value}`, { replace: true })}>
          {WINDOWS.map((w) => (
            <option value={w.value}>{w.label}</option>
          ))}
        </select>
        {updated && (
          <span class="muted" role="status">
            live · updated {updated.toLocaleTimeString()}
          </span>
        )}
      </div>
      <ErrorBox error={error} />
      {videos === null && !error && <p class="loading">Loading…</p>}
      {videos && videos.length === 0 && <Notice>Nothing is trending yet.</Notice>}
      {videos && (
        <div id="trending-list">
          <VideoGrid videos={videos} ranked />
        </div>
      )}
    </section>
  );
}
