import { useState } from 'preact/hooks';
import { gql } from '../api/graphql';
import { SearchQuery } from '../api/operations';
import { Notice } from '../components/common';
import { usePaged } from '../components/paged';
import { VideoGrid } from '../components/VideoCard';
import { navigate, type Location } from '../router';

export default function Search({ loc }: { loc: Location }) {
  const q = loc.query.get('q') ?? '';
  const tags = loc.query.get('tags') ?? '';
  const category = loc.query.get('category') ?? '';
  const [form, setForm] = useState({ q, tags, category });
  const tagList = tags
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const active = Boolean(q || tagList.length || category);
  const results = usePaged(
    async (after) =>
      active
        ? (await gql(SearchQuery, { query: q || null, tags: tagList.length ? tagList : null, category: category || null, first: 24, after })).search
        : { nodes: [], pageInfo: { hasNextPage: false } },
    [q, tags, category],
  );
  const submit = (e: Event) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (form.q.trim()) p.set('q', form.q.trim());
    if (form.tags.trim()) p.set('tags', form.tags.trim());
    if (form.category.trim()) p.set('category', form.category.trim());
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
