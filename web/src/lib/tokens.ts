// Access-token lifetime arithmetic (pure, unit-tested). Tokens are EdDSA JWTs of 15
// minutes; the app renews them with the refresh token a little before they expire.

export interface TokenPair {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
}

export interface Session {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  refreshExpiresAt: number;
  userId: string;
  username: string;
}

/** The session a token pair makes, `now` being when the pair was received. */
export function sessionFromPair(pair: TokenPair, now = Date.now()): Session {
  const claims = decodeJwt(pair.access_token);
  return {
    accessToken: pair.access_token,
    refreshToken: pair.refresh_token,
    expiresAt: now + pair.expires_in * 1000,
    refreshExpiresAt: now + pair.refresh_expires_in * 1000,
    userId: typeof claims.sub === 'string' ? claims.sub : '',
    username: typeof claims.name === 'string' ? claims.name : '',
  };
}

/** The payload of a JWT (not verified: the app only reads its own user's id and name). */
export function decodeJwt(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * How long to wait before renewing: a margin before expiry of a fifth of the lifetime,
 * at least 10 s and at most 2 minutes, so a 15-minute token is renewed at 13 minutes and
 * a short one still ahead of time. Never negative.
 */
export function refreshDelay(session: Pick<Session, 'expiresAt'>, lifetimeMs: number, now = Date.now()): number {
  const margin = Math.min(120_000, Math.max(10_000, lifetimeMs / 5));
  return Math.max(0, session.expiresAt - margin - now);
}

/** Whether the access token is too close to expiry to send (it could expire in flight). */
export function needsRefresh(session: Pick<Session, 'expiresAt'>, now = Date.now()): boolean {
  return session.expiresAt - now < 15_000;
}

/** Backoff before retrying a refresh that failed for a transient reason (network, 5xx). */
export function retryDelay(attempt: number): number {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
}
