// Every GraphQL operation of the app. codegen (codegen.ts) checks each against
// services/media/schema.graphql and generates its result and variable types.
import { graphql } from '../gql';

export const VideoCardFields = graphql(`
  fragment VideoCardFields on Video {
    id
    title
    status
    visibility
    durationSeconds
    viewCount
    createdAt
    publishedAt
    thumbnailUrl
    thumbnails { url width height }
    owner { id username displayName }
  }
`);

export const RecommendedQuery = graphql(`
  query Recommended($first: Int!) {
    recommended(first: $first) { ...VideoCardFields }
  }
`);

export const ChannelTrendingQuery = graphql(`
  query ChannelTrending($userId: ID!, $limit: Int!) {
    channelTrending(userId: $userId, window: DAY, limit: $limit) { ...VideoCardFields }
  }
`);

export const FeedQuery = graphql(`
  query Feed($first: Int, $after: String) {
    feed(first: $first, after: $after) {
      nodes { ...VideoCardFields }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const SubscriptionFeedQuery = graphql(`
  query SubscriptionFeed($first: Int, $after: String) {
    subscriptionFeed(first: $first, after: $after) {
      nodes { ...VideoCardFields }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const TrendingQuery = graphql(`
  query Trending($window: TrendingWindow!, $category: String, $limit: Int!) {
    trending(window: $window, category: $category, limit: $limit) { ...VideoCardFields }
  }
`);

export const TrendingChangedSubscription = graphql(`
  subscription TrendingChanged($window: TrendingWindow!, $limit: Int!) {
    trendingChanged(window: $window, limit: $limit) { ...VideoCardFields }
  }
`);

export const SearchQuery = graphql(`
  query Search(
    $query: String
    $tags: [String!]
    $category: String
    $publishedAfter: DateTime
    $duration: DurationFilter
    $sort: SearchSort
    $first: Int
    $after: String
  ) {
    search(
      query: $query
      tags: $tags
      category: $category
      publishedAfter: $publishedAfter
      duration: $duration
      sort: $sort
      first: $first
      after: $after
    ) {
      nodes { ...VideoCardFields tags category }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const SearchSuggestionsQuery = graphql(`
  query SearchSuggestions($prefix: String!, $first: Int) {
    searchSuggestions(prefix: $prefix, first: $first) { text kind channelId }
  }
`);

export const WatchQuery = graphql(`
  query Watch($id: ID!) {
    video(id: $id) {
      ...VideoCardFields
      description
      tags
      category
      failureReason
      likeCount
      commentCount
      viewerHasLiked
      hlsUrl
      playback { url expiresAt }
      captions { language label url }
      storyboard { vttUrl intervalSeconds tileWidth tileHeight }
      owner { id username displayName subscriberCount viewerIsSubscribed }
    }
  }
`);

export const VideoStatusQuery = graphql(`
  query VideoStatus($id: ID!) {
    video(id: $id) { id title status failureReason }
  }
`);

export const RelatedQuery = graphql(`
  query Related($videoId: ID!, $first: Int!) {
    related(videoId: $videoId, first: $first) { ...VideoCardFields }
  }
`);

export const CommentFields = graphql(`
  fragment CommentFields on Comment {
    id
    body
    deleted
    parentId
    createdAt
    editedAt
    replyCount
    author { id username displayName }
  }
`);

export const CommentsQuery = graphql(`
  query Comments($videoId: ID!, $first: Int, $after: String) {
    comments(videoId: $videoId, first: $first, after: $after) {
      nodes {
        ...CommentFields
        replies(first: 10) { nodes { ...CommentFields } pageInfo { hasNextPage endCursor } }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const RepliesQuery = graphql(`
  query Replies($commentId: ID!, $first: Int, $after: String) {
    replies(commentId: $commentId, first: $first, after: $after) {
      nodes { ...CommentFields }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const CommentEventsSubscription = graphql(`
  subscription CommentEvents($videoId: ID!, $after: String) {
    commentEvents(videoId: $videoId, after: $after) {
      kind
      cursor
      comment { ...CommentFields }
    }
  }
`);

export const VideoStatsSubscription = graphql(`
  subscription VideoStats($videoId: ID!) {
    videoStats(videoId: $videoId) { videoId likeCount viewCount commentCount }
  }
`);

export const UploadProgressSubscription = graphql(`
  subscription UploadProgress($videoId: ID!) {
    uploadProgress(videoId: $videoId) { videoId stage percent speed etaSeconds failureReason }
  }
`);

export const AddCommentMutation = graphql(`
  mutation AddComment($videoId: ID!, $body: String!, $parentId: ID) {
    addComment(videoId: $videoId, body: $body, parentId: $parentId) { ...CommentFields }
  }
`);

export const DeleteCommentMutation = graphql(`
  mutation DeleteComment($id: ID!) { deleteComment(id: $id) }
`);

export const LikeMutation = graphql(`
  mutation Like($videoId: ID!) { likeVideo(videoId: $videoId) { id likeCount viewerHasLiked } }
`);

export const UnlikeMutation = graphql(`
  mutation Unlike($videoId: ID!) { unlikeVideo(videoId: $videoId) { id likeCount viewerHasLiked } }
`);

export const SubscribeMutation = graphql(`
  mutation Subscribe($channelId: ID!) { subscribe(channelId: $channelId) { id subscriberCount viewerIsSubscribed } }
`);

export const UnsubscribeMutation = graphql(`
  mutation Unsubscribe($channelId: ID!) { unsubscribe(channelId: $channelId) { id subscriberCount viewerIsSubscribed } }
`);

export const RecordViewMutation = graphql(`
  mutation RecordView($videoId: ID!, $sessionId: String) { recordView(videoId: $videoId, sessionId: $sessionId) }
`);

export const RecordWatchTimeMutation = graphql(`
  mutation RecordWatchTime($videoId: ID!, $seconds: Int!, $sessionId: String) {
    recordWatchTime(videoId: $videoId, seconds: $seconds, sessionId: $sessionId)
  }
`);

export const ChannelQuery = graphql(`
  query Channel($userId: ID!, $first: Int, $after: String) {
    videosByUser(userId: $userId, first: $first, after: $after) {
      nodes { ...VideoCardFields }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const ChannelOwnerQuery = graphql(`
  query ChannelOwner($userId: ID!) {
    user(id: $userId) { id username displayName bio avatarUrl subscriberCount viewerIsSubscribed }
  }
`);

export const MeQuery = graphql(`
  query Me { me { id username displayName bio avatarUrl subscriberCount } }
`);

export const DashboardQuery = graphql(`
  query Dashboard($first: Int, $after: String) {
    dashboard {
      subscriberCount
      totals { videos views likes comments watchTimeSeconds }
      videos(first: $first, after: $after) {
        nodes {
          ...VideoCardFields
          description
          failureReason
          likeCount
          commentCount
          watchTimeSeconds
        }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
`);

export const UpdateVideoMutation = graphql(`
  mutation UpdateVideo($id: ID!, $input: VideoInput!) {
    updateVideo(id: $id, input: $input) { id title description visibility tags category }
  }
`);

export const DeleteVideoMutation = graphql(`
  mutation DeleteVideo($id: ID!) { deleteVideo(id: $id) }
`);
