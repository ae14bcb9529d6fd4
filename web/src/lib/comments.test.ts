import { describe, expect, it } from 'vitest';
import { applyEvent, emptyThread, occurrences, upsert, type CommentItem } from './comments';

let clock = Date.parse('2024-01-01T00:00:00Z');
function c(id: string, extra: Partial<CommentItem> = {}): CommentItem {
  clock += 1000;
  return { id, body: `text ${id}`, deleted: false, createdAt: new Date(clock).toISOString(), replyCount: 0, author: { id: 'u', username: 'u', displayName: 'U' }, parentId: null, ...extra };
}

describe('comment thread', () => {
  it('orders top-level newest first and replies oldest first', () => {
    const a = c('a');
    const b = c('b');
    const r1 = c('r1', { parentId: 'a' });
    const r2 = c('r2', { parentId: 'a' });
    const t = upsert(emptyThread(), [r2, b, a, r1]);
    expect(t.top).toEqual(['b', 'a']);
    expect(t.replies.a).toEqual(['r1', 'r2']);
    expect(t.byId.a.replyCount).toBe(2);
  });

  it('shows a comment once however often it arrives (page, live, replay after resume)', () => {
    const a = c('a');
    const b = c('b');
    let t = upsert(emptyThread(), [a]);
    t = applyEvent(t, { kind: 'ADDED', cursor: 'c1', comment: b });
    // The connection dropped; three comments were posted meanwhile. The resumed
    // subscription replays from `after: c1` and the live feed overlaps the replay.
    const missed = [c('m1'), c('m2'), c('m3')];
    const events = missed.map((m, i) => ({ kind: 'ADDED' as const, cursor: `c${i + 2}`, comment: m }));
    for (const e of [...events, events[1], events[2]]) t = applyEvent(t, e);
    // And a page read after reconnecting overlaps everything.
    t = upsert(t, [a, b, ...missed]);
    for (const id of ['a', 'b', 'm1', 'm2', 'm3']) expect(occurrences(t, id)).toBe(1);
    expect(t.top).toEqual(['m3', 'm2', 'm1', 'b', 'a']);
    expect(t.cursor).toBe('c4');
  });

  it('keeps the last cursor for resuming, RESYNC included', () => {
    let t = applyEvent(emptyThread(), { kind: 'ADDED', cursor: 'x1', comment: c('a') });
    t = applyEvent(t, { kind: 'RESYNC', cursor: 'x9', comment: null });
    expect(t.cursor).toBe('x9');
    expect(t.top).toEqual(['a']);
  });

  it('applies edits and deletions to what is shown, and ignores unknown ones', () => {
    const a = c('a');
    let t = upsert(emptyThread(), [a]);
    t = applyEvent(t, { kind: 'EDITED', cursor: '1', comment: { ...a, body: 'new', editedAt: a.createdAt } });
    expect(t.byId.a.body).toBe('new');
    t = applyEvent(t, { kind: 'DELETED', cursor: '2', comment: { ...a, body: null, deleted: true, author: null } });
    expect(t.byId.a.deleted).toBe(true);
    expect(t.byId.a.body).toBeNull();
    t = applyEvent(t, { kind: 'EDITED', cursor: '3', comment: c('zz') });
    expect(t.byId.zz).toBeUndefined();
    expect(t.top).toEqual(['a']);
  });

  it('does not count a reply twice in its parent', () => {
    const a = c('a', { replyCount: 1 });
    const r = c('r', { parentId: 'a' });
    let t = upsert(emptyThread(), [a, r]);
    t = applyEvent(t, { kind: 'ADDED', cursor: '1', comment: r });
    expect(t.byId.a.replyCount).toBe(1);
    expect(t.replies.a).toEqual(['r']);
  });
});
