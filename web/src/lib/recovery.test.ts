import { describe, expect, it } from 'vitest';
import { ApiError, problemError } from './errors';
import { isEmailUnverified, isInvalidToken, isPasswordRejected, linkToken, newPasswordProblem, onceFor, resendOutcome } from './recovery';
import { tusError } from './upload';

describe('mailed links', () => {
  it('takes the token from the query', () => {
    expect(linkToken(new URLSearchParams('token=abc_DEF-123'))).toBe('abc_DEF-123');
    expect(linkToken(new URLSearchParams('token=%20abc%20'))).toBe('abc');
    expect(linkToken(new URLSearchParams('token='))).toBeNull();
    expect(linkToken(new URLSearchParams(''))).toBeNull();
  });
  it('recognises an invalid, used or expired token', () => {
    const e = problemError(400, { type: 'https://kino.dev/problems/invalid-token', status: 400, detail: 'the link is invalid, expired or already used' });
    expect(isInvalidToken(e)).toBe(true);
    expect(e.message).toBe('The link is invalid, expired or already used.');
    expect(isInvalidToken(problemError(400, { type: 'https://kino.dev/problems/bad-request' }))).toBe(false);
    expect(isInvalidToken(new Error('invalid-token'))).toBe(false);
  });
});

describe('new password', () => {
  it('follows the registration rules', () => {
    expect(newPasswordProblem('short', 'short')).toMatch(/at least 8/);
    expect(newPasswordProblem('x'.repeat(129), 'x'.repeat(129))).toMatch(/at most 128/);
    expect(newPasswordProblem('x'.repeat(128), 'x'.repeat(128))).toBeNull();
    expect(newPasswordProblem('long enough', 'long enough')).toBeNull();
  });
  it('counts characters as the server does (NFKC, code points)', () => {
    // Eight astral characters are sixteen UTF-16 units but eight characters.
    expect(newPasswordProblem('😀'.repeat(8), '😀'.repeat(8))).toBeNull();
    expect(newPasswordProblem('😀'.repeat(7), '😀'.repeat(7))).toMatch(/at least 8/);
    // "ﬀ" (one character) is "ff" after NFKC.
    expect(newPasswordProblem('ﬀ'.repeat(4), 'ﬀ'.repeat(4))).toBeNull();
  });
  it('wants the confirmation to match', () => {
    expect(newPasswordProblem('long enough', 'long enougH')).toBe('The two passwords are not the same.');
  });
  it('knows the server refused it', () => {
    expect(isPasswordRejected(problemError(422, { type: 'https://kino.dev/problems/invalid', detail: 'password must be 8-128 characters' }))).toBe(true);
    expect(isPasswordRejected(problemError(400, {}))).toBe(false);
  });
});

describe('unverified address', () => {
  const res = (status: number, body: string) => ({ getStatus: () => status, getBody: () => body, getHeader: () => undefined });
  it('recognises the gateway refusing an upload (tus 403 email-unverified)', () => {
    const e = tusError({ originalResponse: res(403, JSON.stringify({ type: 'https://kino.dev/problems/email-unverified', status: 403, detail: 'verify your email address first' })) });
    expect(isEmailUnverified(e)).toBe(true);
    expect(isEmailUnverified(tusError({ originalResponse: res(403, JSON.stringify({ type: 'https://kino.dev/problems/forbidden' })) }))).toBe(false);
    expect(isEmailUnverified(tusError({ originalResponse: res(403, 'Forbidden') }))).toBe(false);
    expect(isEmailUnverified(null)).toBe(false);
  });
  it('says what a resend came to', () => {
    expect(resendOutcome(null)).toEqual({ kind: 'sent' });
    expect(resendOutcome(problemError(409, { detail: 'the email address is already verified' }))).toEqual({ kind: 'verified' });
    const throttled = problemError(429, { type: 'x/throttled', detail: 'too many attempts; retry in 30 s' }, 30);
    expect(resendOutcome(throttled)).toEqual({ kind: 'error', error: throttled });
    expect(throttled.message).toMatch(/Try again in 30 seconds/);
  });
});

describe('onceFor', () => {
  it('runs once per key and shares the answer', async () => {
    const cache = new Map<string, Promise<number>>();
    let calls = 0;
    const fn = async () => ++calls;
    const [a, b] = await Promise.all([onceFor(cache, 't', fn), onceFor(cache, 't', fn)]);
    expect([a, b, calls]).toEqual([1, 1, 1]);
    expect(await onceFor(cache, 't', fn)).toBe(1);
    expect(await onceFor(cache, 'u', fn)).toBe(2);
  });
  it('keeps definite failures and forgets the others, so they can be retried', async () => {
    const cache = new Map<string, Promise<void>>();
    let calls = 0;
    const definite = (e: unknown) => e instanceof ApiError && e.code === 'invalid-token';
    const network = async () => {
      calls++;
      throw new TypeError('Failed to fetch');
    };
    await expect(onceFor(cache, 't', network, definite)).rejects.toThrow(TypeError);
    await expect(onceFor(cache, 't', network, definite)).rejects.toThrow(TypeError);
    expect(calls).toBe(2);
    const invalid = async () => {
      calls++;
      throw new ApiError('invalid', { status: 400, code: 'invalid-token' });
    };
    await expect(onceFor(cache, 'v', invalid, definite)).rejects.toThrow('invalid');
    await expect(onceFor(cache, 'v', invalid, definite)).rejects.toThrow('invalid');
    expect(calls).toBe(3);
  });
});
