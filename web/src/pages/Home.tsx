import { gql } from '../api/graphql';
import { FeedQuery, RecommendedQuery, SubscriptionFeedQuery } from '../api/operations';
import { Notice, useSession } from '../components/common';
import { usePaged } from '../components/paged';
import { VideoGrid } from '../components/VideoCard';
import { Link } from '../router';

export default function Home({ tab }: { tab: 'latest' | 'subscriptions' | 'recommended' }) {
  const session = useSession();
  const feed = usePaged(async (after) => {
    if (tab === 'subscriptions') return (await gql(SubscriptionFeedQuery, { first: 24, after })).subscriptionFeed;
    // Recommendations are one list, not a connection: a single page.
    if (tab === 'recommended') return { nodes: (await gql(RecommendedQuery, { first: 24 })).recommended, pageInfo: { hasNextPage: false, endCursor: null } };
    return (await gql(FeedQuery, { first: 24, after })).feed;
  }, [tab, session?.userId]);
  return (
    <section>
      <h1 class="visually-hidden">Home</h1>
      <nav class="tabs" aria-label="Feeds">
        <Link href="/" aria-current={tab === 'latest' ? 'page' : undefined}>
          Latest
        </Link>
        {session && (
          <Link href="/subscriptions" aria-current={tab === 'subscriptions' ? 'page' : undefined}>
            Subscriptions
          </Link>
        )}
        {session && (
          <Link href="/recommended" aria-current={tab === 'recommended' ? 'page' : undefined}>
            For you
          </Link>
        )}
        <Link href="/trending">Trending</Link>
      </nav>
      <VideoGrid videos={feed.items} />
      {feed.done && feed.items.length === 0 && (
        <Notice>
          {tab === 'subscriptions'
            ? 'Nothing from your subscriptions yet.'
            : tab === 'recommended'
              ? 'Nothing to recommend yet: watch and like a few videos.'
              : 'No videos yet. Be the first to upload one.'}
        </Notice>
      )}
      {feed.footer}
    </section>
  );
}
