// GraphQL over HTTP (POST /media/graphql) and over WebSocket (/media/graphql/ws), both
// typed by the documents codegen generates from services/media/schema.graphql.
import type { TypedDocumentString } from '../gql/graphql';
import { ApiError, graphQLError, type GraphQLErrorLike } from '../lib/errors';
import { RealtimeClient, type Sink } from '../lib/wsclient';
import { errorFrom } from './http';
import { accessToken, onUserChange, refreshNow, sessionEnded, session } from './session';

async function post(query: string, variables: unknown, token: string | null, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/graphql-response+json, application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch('/media/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal });
}

/** Runs a query or mutation; throws ApiError (in words) on any error. */
export async function gql<R, V>(doc: TypedDocumentString<R, V>, variables?: V, signal?: AbortSignal): Promise<R> {
  const query = doc.toString();
  let token = await accessToken();
  let res = await post(query, variables ?? {}, token, signal);
  if (res.status === 401 && token) {
    token = await refreshNow().catch(() => null);
    res = await post(query, variables ?? {}, token, signal);
    if (res.status === 401) sessionEnded();
  }
  const type = res.headers.get('Content-Type') ?? '';
  if (!type.includes('json') || (!res.ok && type.includes('problem'))) throw await errorFrom(res);
  const body = (await res.json()) as { data?: R | null; errors?: GraphQLErrorLike[] };
  if (body.errors?.length) {
    const err = graphQLError(body.errors[0]);
    if (err.code === 'UNAUTHENTICATED' && !session()) sessionEnded();
    throw err;
  }
  if (!res.ok || !body.data) throw new ApiError(`The server answered HTTP ${res.status} without data.`, { status: res.status });
  return body.data;
}

function toError(payload: unknown): ApiError {
  const first = Array.isArray(payload) ? payload[0] : payload;
  return graphQLError(first as GraphQLErrorLike);
}

export type LiveStatus = 'connecting' | 'connected' | 'offline';
const statusListeners = new Set<(s: LiveStatus) => void>();
export let liveStatus: LiveStatus = 'connecting';
export function onLiveStatus(l: (s: LiveStatus) => void): () => void {
  statusListeners.add(l);
  return () => statusListeners.delete(l);
}

const realtime = new RealtimeClient({
  url: () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/media/graphql/ws`,
  connectionParams: async () => {
    const token = await accessToken();
    return token ? { authorization: `Bearer ${token}` } : {};
  },
  onAuthRejected: async () => {
    await refreshNow();
  },
  toError,
  onStatus: (s) => {
    liveStatus = s;
    for (const l of statusListeners) l(s);
  },
});

if (typeof window !== 'undefined') {
  window.addEventListener('offline', () => realtime.setOffline(true));
  window.addEventListener('online', () => realtime.setOffline(false));
  onUserChange(() => realtime.restart());
}

/**
 * Subscribes; `variables` is called at every (re)subscription, so it can resume from
 * the latest cursor. Returns the function that ends the subscription.
 */
export function live<R, V>(doc: TypedDocumentString<R, V>, variables: () => V, sink: Sink<R>): () => void {
  return realtime.subscribe<R>({ query: doc.toString(), variables: variables as () => Record<string, unknown> }, sink);
}
