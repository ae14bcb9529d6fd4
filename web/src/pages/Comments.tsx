import { useEffect, useRef, useState } from 'preact/hooks';
import { gql, live } from '../api/graphql';
import { AddCommentMutation, CommentEventsSubscription, CommentsQuery, DeleteCommentMutation, RepliesQuery } from '../api/operations';
import { ErrorBox, useSession } from '../components/common';
import { applyEvent, emptyThread, upsert, type CommentItem, type Thread } from '../lib/comments';
import { ApiError } from '../lib/errors';
import { timeAgo } from '../lib/format';
import { Link, signInThenBack } from '../router';

/**
 * Comments and replies, live: `commentEvents` first (so nothing posted while the first
 * page loads is missed), then the page; both merged by id. When the connection drops,
 * the subscription resumes `after` the last event's cursor and the server replays what
 * was missed; the merge shows each comment once however often it arrives.
 */
export function Comments({ videoId, ownerId, onGone }: { videoId: string; ownerId?: string; onGone: (e: unknown) => void }) {
  const session = useSession();
  const [thread, setThread] = useState<Thread>(emptyThread);
  const threadRef = useRef(thread);
  threadRef.current = thread;
  const [error, setError] = useState<unknown>(null);
  const [more, setMore] = useState<string | null>(null);
  const [body, setBody] = useState('');
  const [busy, setBusy] = useState(false);
  const [replyTo, setReplyTo] = useState<string | null>(null);
  const [live_, setLive] = useState(false);

  const update = (f: (t: Thread) => Thread) => {
    threadRef.current = f(threadRef.current);
    setThread(threadRef.current);
  };

  const loadPage = async (after: string | null) => {
    const d = await gql(CommentsQuery, { videoId, first: 20, after });
    const items: CommentItem[] = [];
    for (const c of d.comments.nodes) {
      items.push(c);
      items.push(...c.replies.nodes);
    }
    update((t) => upsert(t, items));
    setMore(d.comments.pageInfo.hasNextPage ? d.comments.pageInfo.endCursor ?? null : null);
  };

  useEffect(() => {
    threadRef.current = emptyThread();
    setThread(threadRef.current);
    setError(null);
    setMore(null);
    let disposed = false;
    let stop = () => {};
    const start = () => {
      stop = live(CommentEventsSubscription, () => ({ videoId, after: threadRef.current.cursor }), {
        next: (d) => {
          setLive(true);
          update((t) => applyEvent(t, d.commentEvents));
        },
        error: (e) => {
          setLive(false);
          if (e instanceof ApiError && e.code === 'NOT_FOUND') onGone(e);
          else setError(e);
        },
        // RESYNC (or the server ending the feed): resubscribe after the last cursor.
        complete: () => {
          if (!disposed) setTimeout(() => !disposed && start(), 200);
        },
        reconnected: () => {
          // Without a cursor yet there is nothing to resume from: read the page again.
          if (!threadRef.current.cursor) void loadPage(null).catch(() => undefined);
        },
      });
    };
    start();
    setLive(true);
    loadPage(null).catch((e) => !disposed && setError(e));
    return () => {
      disposed = true;
      stop();
    };
  }, [videoId, session?.userId]);

  const post = async (e: Event) => {
    e.preventDefault();
    const sent = body;
    const text = sent.trim();
    if (!text) return;
    setBusy(true);
    setError(null);
    try {
      const d = await gql(AddCommentMutation, { videoId, body: text, parentId: replyTo });
      update((t) => upsert(t, [d.addComment]));
      // The live feed can show the comment before this answer; whatever was typed since
      // (the next comment) is kept.
      setBody((now) => (now === sent ? '' : now));
      setReplyTo(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const remove = async (id: string) => {
    if (!confirm('Delete this comment?')) return;
    try {
      await gql(DeleteCommentMutation, { id });
      update((t) => ({ ...t, byId: { ...t.byId, [id]: { ...t.byId[id], deleted: true, body: null, author: null } } }));
    } catch (err) {
      setError(err);
    }
  };

  const loadReplies = async (id: string) => {
    try {
      const d = await gql(RepliesQuery, { commentId: id, first: 100 });
      update((t) => upsert(t, d.replies.nodes));
    } catch (err) {
      setError(err);
    }
  };

  const replying = replyTo ? thread.byId[replyTo] : null;

  const renderComment = (c: CommentItem, isReply: boolean) => {
    const replies = thread.replies[c.id] ?? [];
    const mine = session && (c.author?.id === session.userId || ownerId === session.userId);
    return (
      <li class="comment" key={c.id} data-comment-id={c.id}>
        <p class="comment-head">
          {c.author ? <Link href={`/channel/${c.author.id}`}>{c.author.displayName}</Link> : <em>deleted</em>}{' '}
          <time class="muted" dateTime={c.createdAt}>
            {timeAgo(c.createdAt)}
          </time>
          {c.editedAt && <span class="muted"> (edited)</span>}
        </p>
        <p class="comment-body">{c.deleted ? <em class="muted">This comment was deleted.</em> : c.body}</p>
        <div class="row small">
          {!isReply && !c.deleted && session && (
            <button type="button" class="link" onClick={() => setReplyTo(c.id)}>
              Reply
            </button>
          )}
          {mine && !c.deleted && (
            <button type="button" class="link" onClick={() => void remove(c.id)}>
              Delete
            </button>
          )}
          {!isReply && c.replyCount > replies.length && (
            <button type="button" class="link" onClick={() => void loadReplies(c.id)}>
              Show all {c.replyCount} replies
            </button>
          )}
        </div>
        {replies.length > 0 && <ul class="replies">{replies.map((id) => thread.byId[id] && renderComment(thread.byId[id], true))}</ul>}
      </li>
    );
  };

  return (
    <section class="comments" aria-labelledby="comments-title">
      <h2 id="comments-title">
        Comments{' '}
        <span class={`live-dot${live_ ? ' on' : ''}`} title={live_ ? 'Live' : 'Reconnecting'}>
          {live_ ? 'live' : ''}
        </span>
      </h2>
      {session ? (
        <form onSubmit={post} class="comment-form">
          <label for="comment-body">{replying ? `Reply to ${replying.author?.displayName ?? 'comment'}` : 'Add a comment'}</label>
          <textarea id="comment-body" rows={2} maxLength={10000} required value={body} onInput={(e) => setBody(e.currentTarget.value)} />
          <div class="row">
            <button type="submit" disabled={busy || !body.trim()}>
              {replying ? 'Reply' : 'Comment'}
            </button>
            {replying && (
              <button type="button" class="secondary" onClick={() => setReplyTo(null)}>
                Cancel reply
              </button>
            )}
          </div>
        </form>
      ) : (
        <p>
          <button type="button" class="link" onClick={signInThenBack}>
            Sign in
          </button>{' '}
          to comment.
        </p>
      )}
      <ErrorBox error={error} />
      <ul class="comment-list" id="comment-list">
        {thread.top.map((id) => renderComment(thread.byId[id], false))}
      </ul>
      {more && (
        <button type="button" class="secondary" onClick={() => void loadPage(more).catch(setError)}>
          More comments
        </button>
      )}
    </section>
  );
}
