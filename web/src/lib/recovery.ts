// Pure helpers of the account recovery pages (forgot / reset password, verify email) and
// of the notices about an unverified address (unit-tested).
import { ApiError } from './errors';

/** The token of a mailed link (`?token=…`), or null when there is none. */
export function linkToken(query: URLSearchParams): string | null {
  const token = query.get('token')?.trim();
  return token ? token : null;
}

/** The password rules of registration (8–128 characters after NFKC, as the server counts). */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/** What is wrong with a new password and its confirmation, in words; null when nothing is. */
export function newPasswordProblem(password: string, confirm: string): string | null {
  const length = [...password.normalize('NFKC')].length;
  if (length < PASSWORD_MIN) return `The password needs at least ${PASSWORD_MIN} characters.`;
  if (length > PASSWORD_MAX) return `The password can have at most ${PASSWORD_MAX} characters.`;
  if (password !== confirm) return 'The two passwords are not the same.';
  return null;
}

/** A mailed link that is unknown, already used or expired (400 `invalid-token`). */
export function isInvalidToken(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'invalid-token';
}

/** An action refused because the account's address is not verified (403 `email-unverified`). */
export function isEmailUnverified(error: unknown): boolean {
  return error instanceof ApiError && error.status === 403 && error.code === 'email-unverified';
}

/** The password was refused by the server's rules (422). */
export function isPasswordRejected(error: unknown): boolean {
  return error instanceof ApiError && error.status === 422;
}

/**
 * Runs `fn` once per key and hands every later caller the same promise: a mailed token is
 * single-use, so posting it twice (an effect run again, the page mounted anew) would turn a
 * success into "invalid link". Failures other than a definite answer are forgotten, so a
 * retry can run `fn` again.
 */
export function onceFor<T>(cache: Map<string, Promise<T>>, key: string, fn: () => Promise<T>, keepFailure: (e: unknown) => boolean = () => false): Promise<T> {
  const known = cache.get(key);
  if (known) return known;
  const p = fn().catch((e: unknown) => {
    if (!keepFailure(e) && cache.get(key) === p) cache.delete(key);
    throw e;
  });
  cache.set(key, p);
  return p;
}

/** What POST /user/email/verification came to: sent, already verified (409), or an error to show (429 included). */
export type ResendOutcome = { kind: 'sent' } | { kind: 'verified' } | { kind: 'error'; error: unknown };

export function resendOutcome(error: unknown | null): ResendOutcome {
  if (error === null || error === undefined) return { kind: 'sent' };
  if (error instanceof ApiError && error.status === 409) return { kind: 'verified' };
  return { kind: 'error', error };
}
