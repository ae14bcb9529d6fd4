import { useState } from 'preact/hooks';
import { gql } from '../api/graphql';
import { SearchQuery } from '../api/operations';
import type { DurationFilter, SearchSort } from '../gql/graphql';
import { Notice } from '../components/common';
import { usePaged } from '../components/paged';
import { VideoGrid } from '../components/VideoCard';
import { navigate, type Location } from '../router';

const SORTS: [SearchSort, string][] = [
  ['RELEVANCE', 'Relevance'],
  ['DATE', 'Upload date'],
  ['VIEWS', 'View count'],
  ['LIKES', 'Likes'],
];
const DURATIONS: [DurationFilter | '', string][] = [
  ['', 'Any length'],
  ['SHORT', 'Under 4 minutes'],
  ['MEDIUM', '4–20 minutes'],
  ['LONG', 'Over 20 minutes'],
];
/** Upload date filter: how far back, in days. */
const UPLOADED: [string, string, number][] = [
  ['', 'Any time', 0],
  ['today', 'Today', 1],
  ['week', 'This week', 7],
  ['month', 'This month', 30],
  ['year', 'This year', 365],
];

function pick<T extends string>(value: string | null, allowed: readonly (readonly [T, ...unknown[]])[]): T | null {
  return allowed.find(([v]) => v === value)?.[0] ?? null;
}

export default function Search({ loc }: { loc: Location }) {
  const q = loc.query.get('q') ?? '';
  const tags = loc.query.get('tags') ?? '';
  const category = loc.query.get('category') ?? '';
  const sort = pick(loc.query.get('sort'), SORTS) ?? 'RELEVANCE';
  const duration = pick(loc.query.get('duration'), DURATIONS) || null;
  const uploaded = UPLOADED.find(([v]) => v && v === loc.query.get('uploaded'));
  // Whole days back from the start of this minute, so the same URL asks the same search.
  const publishedAfter = uploaded ? new Date(Math.floor(Date.now() / 60_000) * 60_000 - uploaded[2] * 86_400_000).toISOString() : null;
  const [form, setForm] = useState({ q, tags, category, sort: sort as string, duration: duration ?? '', uploaded: uploaded?.[0] ?? '' });
  const tagList = tags
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const active = Boolean(q || tagList.length || category || duration || publishedAfter);
  const results = usePaged(
    async (after) =>
      active
        ? (
            await gql(SearchQuery, {
              query: q || null,
              tags: tagList.length ? tagList : null,
              category: category || null,
              publishedAfter,
              duration,
              sort,
              first: 24,
              after,
            })
          ).search
        : { nodes: [], pageInfo: { hasNextPage: false } },
    [q, tags, category, sort, duration, publishedAfter],
  );
  const submit = (e: Event) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (form.q.trim()) p.set('q', form.q.trim());
    if (form.tags.trim()) p.set('tags', form.tags.trim());
    if (form.category.trim()) p.set('category', form.category.trim());
    if (form.sort !== 'RELEVANCE') p.set('sort', form.sort);
    if (form.duration) p.set('duration', form.duration);
    if (form.uploaded) p.set('uploaded', form.uploaded);
    navigate(`/search?${p}`);
  };
  return (
    <section>
      <h1>Search</h1>
      <form class="search-form" role="search" onSubmit={submit}>
        <div class="field">
          <label for="search-q">Words</label>
          <input id="search-q" type="search" value={form.q} placeholder={'e.g. cats -dogs "exact phrase"'} onInput={(e) => setForm({ ...form, q: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="search-tags">Tags (all of, comma-separated)</label>
          <input id="search-tags" value={form.tags} onInput={(e) => setForm({ ...form, tags: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="search-category">Category</label>
          <input id="search-category" value={form.category} onInput={(e) => setForm({ ...form, category: e.currentTarget.value })} />
        </div>
        <Choice id="search-uploaded" label="Uploaded" value={form.uploaded} options={UPLOADED} onChange={(uploaded) => setForm({ ...form, uploaded })} />
        <Choice id="search-duration" label="Length" value={form.duration} options={DURATIONS} onChange={(duration) => setForm({ ...form, duration })} />
        <Choice id="search-sort" label="Sort by" value={form.sort} options={SORTS} onChange={(sort) => setForm({ ...form, sort })} />
        <button type="submit">Search</button>
      </form>
      {active && results.done && results.items.length === 0 && <Notice>No video matches.</Notice>}
      <div id="search-results">
        <VideoGrid videos={results.items} />
      </div>
      {active && results.footer}
    </section>
  );
}

/** A labelled drop-down of (value, label) pairs. */
function Choice(props: { id: string; label: string; value: string; options: readonly (readonly [string, string, ...unknown[]])[]; onChange: (value: string) => void }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.options.map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
    </div>
  );
}
