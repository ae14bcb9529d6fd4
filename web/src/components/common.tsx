import type { ComponentChildren, ComponentType } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { onSession, session } from '../api/session';
import type { Session } from '../lib/tokens';
import { messageOf } from '../lib/errors';

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {messageOf(error)}
      {retry && (
        <>
          {' '}
          <button type="button" class="link" onClick={retry}>
            Try again
          </button>
        </>
      )}
    </div>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <p class="notice" role="status">
      {children}
    </p>
  );
}

export function useSession(): Session | null {
  const [s, set] = useState(session());
  useEffect(() => onSession(set), []);
  return s;
}

export interface Async<T> {
  data?: T;
  error?: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
}

/** Runs `load` when `deps` change (aborting the previous run); errors kept for display. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ data: s.data, loading: true }));
    load(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, loading: false }),
      (error) => !ctl.signal.aborted && setState({ error, loading: false }),
    );
    return () => ctl.abort();
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1), setData: (data: T) => setState({ data, loading: false }) };
}

/** Calls `onVisible` when the element scrolls into view (infinite scroll). */
export function Sentinel({ onVisible, disabled }: { onVisible: () => void; disabled?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const cb = useRef(onVisible);
  cb.current = onVisible;
  useEffect(() => {
    if (disabled || !ref.current) return;
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && cb.current(), { rootMargin: '400px' });
    io.observe(ref.current);
    return () => io.disconnect();
  }, [disabled]);
  return <div ref={ref} class="sentinel" aria-hidden="true" />;
}

/** A page module loaded on demand (its code, and what it imports, stays off the home page). */
export function lazyPage<P extends object>(load: () => Promise<{ default: ComponentType<P> }>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  return function LazyPage(props: P) {
    const [C, setC] = useState<ComponentType<P> | null>(() => loaded);
    const [error, setError] = useState<unknown>(null);
    useEffect(() => {
      if (C) return;
      load().then(
        (m) => {
          loaded = m.default;
          setC(() => m.default);
        },
        setError,
      );
    }, []);
    if (error) return <ErrorBox error={new Error('This page could not be loaded (did the app update? reload the page)')} />;
    return C ? <C {...props} /> : <p class="loading">Loading…</p>;
  };
}
