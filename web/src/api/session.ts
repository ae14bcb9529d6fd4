// The signed-in session: tokens in localStorage (shared by the tabs), the access token
// renewed with refresh-token rotation ahead of its expiry, one renewal at a time across
// tabs (Web Locks; the tab that gets the lock second finds the new pair already stored,
// since presenting a rotated refresh token again would revoke the whole session).
import { ApiError, parseRetryAfter, problemError } from '../lib/errors';
import { needsRefresh, refreshDelay, retryDelay, sessionFromPair, type Session, type TokenPair } from '../lib/tokens';

const KEY = 'kino.session';
type Listener = (s: Session | null) => void;
const listeners = new Set<Listener>();
let current: Session | null = load();
let timer: ReturnType<typeof setTimeout> | null = null;
let inflight: Promise<string | null> | null = null;
let failures = 0;

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return s.refreshExpiresAt > Date.now() ? s : null;
  } catch {
    return null;
  }
}

function store(s: Session | null): void {
  try {
    if (s) localStorage.setItem(KEY, JSON.stringify(s));
    else localStorage.removeItem(KEY);
  } catch {
    /* private mode: the session lives in memory only */
  }
}

function set(s: Session | null, persist = true): void {
  const changed = current?.accessToken !== s?.accessToken;
  const userChanged = current?.userId !== s?.userId;
  current = s;
  if (persist) store(s);
  schedule();
  if (changed) for (const l of listeners) l(s);
  if (userChanged) for (const l of userListeners) l(s);
}

const userListeners = new Set<Listener>();
/** Called when who is signed in changes (not on every renewal). */
export function onUserChange(l: Listener): () => void {
  userListeners.add(l);
  return () => userListeners.delete(l);
}

export function session(): Session | null {
  return current;
}

export function onSession(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

function schedule(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!current) return;
  const lifetime = 15 * 60_000;
  const delay = failures > 0 ? retryDelay(failures) : refreshDelay(current, lifetime);
  timer = setTimeout(() => void refreshNow().catch(() => undefined), delay);
}

async function rotate(expected: Session): Promise<string | null> {
  // Another tab may have renewed already: then its pair is in storage.
  const stored = load();
  if (stored && stored.refreshToken !== expected.refreshToken) {
    set(stored, false);
    return stored.accessToken;
  }
  let res: Response;
  try {
    res = await fetch('/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ refresh_token: expected.refreshToken }),
    });
  } catch (e) {
    failures++;
    schedule();
    throw e;
  }
  if (res.ok) {
    failures = 0;
    const s = sessionFromPair((await res.json()) as TokenPair);
    set(s);
    return s.accessToken;
  }
  if (res.status === 401 || res.status === 400) {
    // The refresh token is dead (expired, revoked, or reused): the session is over.
    failures = 0;
    set(null);
    return null;
  }
  failures++;
  schedule();
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    /* none */
  }
  throw problemError(res.status, body, parseRetryAfter(res.headers.get('Retry-After')));
}

/** Renews the access token now; resolves with the new one, or null when signed out. */
export function refreshNow(): Promise<string | null> {
  const s = current;
  if (!s) return Promise.resolve(null);
  if (inflight) return inflight;
  const run = () => rotate(s);
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  const p: Promise<string | null> = (locks ? (locks.request('kino.refresh', run) as unknown as Promise<string | null>) : run()).finally(() => {
    inflight = null;
  });
  inflight = p;
  return p;
}

/** The access token to send now (renewed first if it is about to expire), or null. */
export async function accessToken(): Promise<string | null> {
  const s = current;
  if (!s) return null;
  if (needsRefresh(s)) {
    try {
      return await refreshNow();
    } catch {
      return s.expiresAt > Date.now() ? s.accessToken : null;
    }
  }
  return s.accessToken;
}

export async function login(loginName: string, password: string): Promise<Session> {
  const res = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ login: loginName, password }),
  });
  if (!res.ok) {
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      /* none */
    }
    throw problemError(res.status, body, parseRetryAfter(res.headers.get('Retry-After')));
  }
  const s = sessionFromPair((await res.json()) as TokenPair);
  failures = 0;
  set(s);
  return s;
}

/** Signs out: the access token is denylisted and the session revoked server-side. */
export async function logout(): Promise<void> {
  const s = current;
  if (!s) return;
  try {
    const token = await accessToken();
    if (token) {
      const res = await fetch('/auth/logout', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ refresh_token: current?.refreshToken ?? s.refreshToken }),
      });
      if (!res.ok && res.status !== 401) throw problemError(res.status, await res.json().catch(() => undefined));
    }
  } finally {
    set(null);
  }
}

/** Forget the session locally (after it was ended elsewhere). */
export function forget(): void {
  set(null);
}

let endedHandler: (() => void) | null = null;
/** What happens when a request finds the session dead (set by the app: go to sign in). */
export function onSessionEnded(h: () => void): void {
  endedHandler = h;
}
export function sessionEnded(): void {
  set(null);
  endedHandler?.();
}

export function isUnauthenticated(e: unknown): boolean {
  return e instanceof ApiError && e.unauthenticated;
}

// Another tab signed in, renewed or signed out.
if (typeof window !== 'undefined') {
  window.addEventListener('storage', (e) => {
    if (e.key === KEY) set(load(), false);
  });
  document.addEventListener('visibilitychange', () => {
    // Timers are throttled in background tabs: renew on return if due.
    if (document.visibilityState === 'visible' && current && needsRefresh(current)) void refreshNow().catch(() => undefined);
  });
  schedule();
}
