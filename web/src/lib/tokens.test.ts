import { describe, expect, it } from 'vitest';
import { decodeJwt, needsRefresh, refreshDelay, retryDelay, sessionFromPair } from './tokens';

function jwt(claims: object): string {
  const b64 = (o: object) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(o))))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
  return `${b64({ alg: 'EdDSA' })}.${b64(claims)}.sig`;
}

describe('token refresh scheduling', () => {
  const minute = 60_000;
  it('renews a 15-minute token 2 minutes before it expires', () => {
    const now = 1_000_000;
    expect(refreshDelay({ expiresAt: now + 15 * minute }, 15 * minute, now)).toBe(13 * minute);
  });
  it('keeps a fifth of a short lifetime as margin, at least 10 s', () => {
    const now = 0;
    expect(refreshDelay({ expiresAt: 5 * minute }, 5 * minute, now)).toBe(4 * minute);
    expect(refreshDelay({ expiresAt: 20_000 }, 20_000, now)).toBe(10_000);
  });
  it('renews at once when already late', () => {
    expect(refreshDelay({ expiresAt: 1000 }, 15 * minute, 5000)).toBe(0);
  });
  it('does not send a token about to expire', () => {
    expect(needsRefresh({ expiresAt: 10_000 }, 0)).toBe(true);
    expect(needsRefresh({ expiresAt: 60_000 }, 0)).toBe(false);
  });
  it('backs off retries up to 30 s', () => {
    expect(retryDelay(0)).toBe(1000);
    expect(retryDelay(3)).toBe(8000);
    expect(retryDelay(10)).toBe(30_000);
  });
});

describe('sessions', () => {
  it('takes the user from the access token and times from the pair', () => {
    const s = sessionFromPair(
      { access_token: jwt({ sub: 'u-1', name: 'ann' }), token_type: 'Bearer', expires_in: 900, refresh_token: 'r', refresh_expires_in: 2_592_000 },
      1000,
    );
    expect(s).toMatchObject({ userId: 'u-1', username: 'ann', refreshToken: 'r', expiresAt: 901_000, refreshExpiresAt: 2_592_001_000 });
  });
  it('decodes unicode claims and survives garbage', () => {
    expect(decodeJwt(jwt({ name: 'zoë' })).name).toBe('zoë');
    expect(decodeJwt('garbage')).toEqual({});
    expect(decodeJwt('a.!!!.c')).toEqual({});
  });
});
