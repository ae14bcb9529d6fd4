import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorBox, Sentinel } from './common';

export interface Page<T> {
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor?: string | null };
}

/** A Relay connection read page by page as the user scrolls (items deduplicated by id). */
export function usePaged<T extends { id: string }>(fetchPage: (after: string | null) => Promise<Page<T>>, deps: unknown[]) {
  const [items, setItems] = useState<T[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [done, setDone] = useState(false);
  const cursor = useRef<string | null>(null);
  const generation = useRef(0);
  const busy = useRef(false);

  const more = async () => {
    if (busy.current || done) return;
    busy.current = true;
    const gen = generation.current;
    setLoading(true);
    setError(null);
    try {
      const page = await fetchPage(cursor.current);
      if (gen !== generation.current) return;
      cursor.current = page.pageInfo.endCursor ?? null;
      setItems((old) => {
        const seen = new Set(old.map((x) => x.id));
        return [...old, ...page.nodes.filter((n) => !seen.has(n.id))];
      });
      if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) setDone(true);
    } catch (e) {
      if (gen === generation.current) setError(e);
    } finally {
      if (gen === generation.current) {
        busy.current = false;
        setLoading(false);
      }
    }
  };

  useEffect(() => {
    generation.current++;
    busy.current = false;
    cursor.current = null;
    setItems([]);
    setDone(false);
    setError(null);
    // Start on the next tick so `done` is reset before `more` reads it.
    const t = setTimeout(() => void more(), 0);
    return () => clearTimeout(t);
  }, deps);

  const footer = (
    <>
      <ErrorBox error={error} retry={() => void more()} />
      {loading && <p class="loading">Loading…</p>}
      {!done && !error && <Sentinel onVisible={() => void more()} disabled={loading} />}
    </>
  );
  return { items, done, loading, error, footer, setItems };
}
