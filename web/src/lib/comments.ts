// The comment thread of a watch page, as a pure state: a page from the `comments` query
// and live `commentEvents` are merged by id, so a comment that arrives twice (a replay
// after a reconnect overlapping what was already shown, or a page overlapping the live
// feed) is shown once. Top-level comments newest first, replies oldest first.

export interface CommentAuthor {
  id: string;
  username: string;
  displayName: string;
}

export interface CommentItem {
  id: string;
  body?: string | null;
  deleted: boolean;
  author?: CommentAuthor | null;
  parentId?: string | null;
  createdAt: string;
  editedAt?: string | null;
  replyCount: number;
}

export type CommentEventKind = 'ADDED' | 'EDITED' | 'DELETED' | 'RESYNC';

export interface CommentEventLike {
  kind: CommentEventKind;
  cursor: string;
  comment?: CommentItem | null;
}

export interface Thread {
  byId: Record<string, CommentItem>;
  /** Top-level comment ids, newest first. */
  top: string[];
  /** Reply ids per parent, oldest first. */
  replies: Record<string, string[]>;
  /** The last event's cursor: where a resubscription resumes (`after`). */
  cursor: string | null;
}

export const emptyThread = (): Thread => ({ byId: {}, top: [], replies: {}, cursor: null });

function insertSorted(ids: string[], id: string, byId: Record<string, CommentItem>, newestFirst: boolean): string[] {
  if (ids.includes(id)) return ids;
  const t = Date.parse(byId[id].createdAt);
  const out = ids.slice();
  let i = 0;
  while (i < out.length) {
    const u = Date.parse(byId[out[i]].createdAt);
    if (newestFirst ? t > u : t < u) break;
    i++;
  }
  out.splice(i, 0, id);
  return out;
}

/** Adds or updates comments (a query page, replies, or one live comment). */
export function upsert(thread: Thread, comments: CommentItem[]): Thread {
  let { byId, top, replies } = thread;
  byId = { ...byId };
  replies = { ...replies };
  for (const c of comments) {
    const known = byId[c.id];
    // Keep the larger reply count: a page may be older than the replies seen live.
    byId[c.id] = known ? { ...known, ...c, replyCount: Math.max(known.replyCount, c.replyCount) } : c;
    if (c.parentId) {
      const list = replies[c.parentId] ?? [];
      const next = insertSorted(list, c.id, byId, false);
      if (next !== list) {
        replies[c.parentId] = next;
        const parent = byId[c.parentId];
        if (parent && !known) byId[c.parentId] = { ...parent, replyCount: Math.max(parent.replyCount, next.length) };
      }
    } else {
      top = insertSorted(top, c.id, byId, true);
    }
  }
  return { ...thread, byId, top, replies };
}

/** Applies one `commentEvents` event. */
export function applyEvent(thread: Thread, event: CommentEventLike): Thread {
  const withCursor = { ...thread, cursor: event.cursor || thread.cursor };
  const c = event.comment;
  if (!c || event.kind === 'RESYNC') return withCursor;
  if (event.kind === 'ADDED') return upsert(withCursor, [c]);
  // EDITED / DELETED: only what is shown changes; an old comment outside the loaded page
  // is not pulled in (it appears if the user loads that page).
  const known = withCursor.byId[c.id];
  if (!known) return withCursor;
  return { ...withCursor, byId: { ...withCursor.byId, [c.id]: { ...known, ...c, replyCount: Math.max(known.replyCount, c.replyCount) } } };
}

/** How many times a comment id is shown (for tests and assertions): must be 0 or 1. */
export function occurrences(thread: Thread, id: string): number {
  let n = thread.top.filter((x) => x === id).length;
  for (const list of Object.values(thread.replies)) n += list.filter((x) => x === id).length;
  return n;
}
