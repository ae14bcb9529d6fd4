import { useEffect, useState } from 'preact/hooks';
import { gql } from '../api/graphql';
import { ChannelOwnerQuery, ChannelQuery, ChannelTrendingQuery, SubscribeMutation, UnsubscribeMutation } from '../api/operations';
import { ErrorBox, Notice, useAsync, useSession } from '../components/common';
import { usePaged } from '../components/paged';
import { VideoGrid } from '../components/VideoCard';
import type { ChannelOwnerQuery as OwnerData } from '../gql/graphql';
import { plural } from '../lib/format';
import { signInThenBack } from '../router';

type Owner = NonNullable<OwnerData['user']>;

export default function Channel({ id }: { id: string }) {
  const session = useSession();
  const [owner, setOwner] = useState<Owner | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const videos = usePaged(async (after) => (await gql(ChannelQuery, { userId: id, first: 24, after })).videosByUser, [id, session?.userId]);
  useEffect(() => {
    setOwner(null);
    setMissing(false);
    gql(ChannelOwnerQuery, { userId: id }).then(
      (d) => (d.user ? setOwner(d.user) : setMissing(true)),
      (e) => setError(e),
    );
  }, [id, session?.userId]);
  const toggle = async () => {
    if (!session) return signInThenBack();
    setError(null);
    try {
      const d = owner?.viewerIsSubscribed ? (await gql(UnsubscribeMutation, { channelId: id })).unsubscribe : (await gql(SubscribeMutation, { channelId: id })).subscribe;
      setOwner((o) => (o ? { ...o, subscriberCount: d.subscriberCount, viewerIsSubscribed: d.viewerIsSubscribed } : o));
    } catch (e) {
      setError(e);
    }
  };
  // The channel's most popular videos of the day (the ranker's per-channel trending).
  const popular = useAsync(async () => (await gql(ChannelTrendingQuery, { userId: id, limit: 4 })).channelTrending, [id]);
  const mine = session?.userId === id;
  return (
    <section>
      <header class="channel-head">
        {owner?.avatarUrl && <img class="avatar" src={owner.avatarUrl} alt="" width={64} height={64} />}
        <div>
          <h1>{owner ? owner.displayName : 'Channel'}</h1>
          {owner && (
            <p class="muted">
              @{owner.username} · <span id="subscriber-count">{plural(owner.subscriberCount, 'subscriber')}</span>
            </p>
          )}
          {owner?.bio && <p>{owner.bio}</p>}
        </div>
        {!mine && owner && (
          <button type="button" id="subscribe-button" aria-pressed={owner.viewerIsSubscribed} class={owner.viewerIsSubscribed ? 'secondary' : ''} onClick={toggle}>
            {owner.viewerIsSubscribed ? 'Unsubscribe' : 'Subscribe'}
          </button>
        )}
      </header>
      <ErrorBox error={error} />
      {popular.data && popular.data.length > 0 && (
        <section aria-labelledby="channel-popular">
          <h2 id="channel-popular">Popular today</h2>
          <VideoGrid videos={popular.data} ranked />
        </section>
      )}
      <h2>Videos</h2>
      <VideoGrid videos={videos.items} />
      {missing && <Notice>There is no such channel (the account may have been deleted).</Notice>}
      {!missing && videos.done && videos.items.length === 0 && <Notice>This channel has no videos yet.</Notice>}
      {videos.footer}
    </section>
  );
}
