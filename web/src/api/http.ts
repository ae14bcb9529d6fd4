// fetch for the REST services (auth, video): relative URLs (same origin as the gateway),
// JSON in and out, failures as ApiError in words. Requests that need the user carry the
// access token; a 401 renews it once and retries, then sends the user to sign in.
import { ApiError, parseRetryAfter, problemError } from '../lib/errors';
import { accessToken, refreshNow, sessionEnded } from './session';

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Send the access token (and renew it on 401). */
  auth?: boolean;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A raw body (a file), sent as is. */
  raw?: BodyInit;
}

export async function errorFrom(res: Response): Promise<ApiError> {
  let body: unknown = undefined;
  const type = res.headers.get('Content-Type') ?? '';
  try {
    if (type.includes('json')) body = await res.json();
    else {
      const text = await res.text();
      body = text && text.length < 500 && !text.trimStart().startsWith('<') ? { detail: text } : undefined;
    }
  } catch {
    /* no usable body */
  }
  return problemError(res.status, body, parseRetryAfter(res.headers.get('Retry-After')));
}

async function once(path: string, opts: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json, application/problem+json', ...opts.headers };
  let body: BodyInit | undefined = opts.raw;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, { method: opts.method ?? (body ? 'POST' : 'GET'), headers, body, signal: opts.signal });
}

/** A REST call; resolves with the parsed JSON (undefined for an empty answer). */
export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
  let token = opts.auth ? await accessToken() : null;
  let res = await once(path, opts, token);
  if (res.status === 401 && opts.auth && token) {
    // Revoked or expired in flight: renew once and try again.
    token = await refreshNow().catch(() => null);
    if (token) res = await once(path, opts, token);
  }
  if (res.status === 401 && opts.auth) {
    const err = await errorFrom(res);
    sessionEnded();
    throw err;
  }
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}
