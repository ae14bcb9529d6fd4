import { describe, expect, it } from 'vitest';
import { ApiError, graphQLError, messageOf, parseRetryAfter, problemError } from './errors';

describe('problem+json to words', () => {
  it('uses detail, then title, then the status', () => {
    expect(problemError(409, { type: 'about:blank', title: 'Conflict', status: 409, detail: 'username is taken' }).message).toBe('Username is taken.');
    expect(problemError(404, { title: 'Not Found' }).message).toBe('Not Found.');
    expect(problemError(503, undefined).message).toBe('The service is unavailable right now.');
    expect(problemError(418, null).message).toBe('Request failed (HTTP 418).');
  });
  it('adds Retry-After and keeps the type', () => {
    const e = problemError(429, { type: 'https://kino.dev/problems/throttled', detail: 'too many registrations' }, 30);
    expect(e.message).toBe('Too many registrations. Try again in 30 seconds.');
    expect(e.code).toBe('throttled');
    expect(e.retryAfter).toBe(30);
    expect(e.status).toBe(429);
  });
  it('marks 401 as unauthenticated', () => {
    expect(problemError(401, {}).unauthenticated).toBe(true);
  });
  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('12')).toBe(12);
    expect(parseRetryAfter(null)).toBeUndefined();
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:10 GMT', now)).toBe(10);
  });
});

describe('GraphQL errors to words', () => {
  it('says each code in words', () => {
    expect(graphQLError({ message: 'sign in', extensions: { code: 'UNAUTHENTICATED' } }).message).toMatch(/^Please sign in to do that/);
    expect(graphQLError({ message: 'x', extensions: { code: 'FORBIDDEN' } }).message).toMatch(/not allowed/);
    expect(graphQLError({ message: 'no such video', extensions: { code: 'NOT_FOUND' } }).message).toBe('That does not exist, or is not visible to you. (No such video)');
  });
  it('shows the server message for bad input', () => {
    expect(graphQLError({ message: 'title must be 1–200 characters', extensions: { code: 'BAD_USER_INPUT' } }).message).toBe('Title must be 1–200 characters.');
  });
  it('never shows internal details', () => {
    expect(graphQLError({ message: 'db exploded at line 3', extensions: { code: 'INTERNAL' } }).message).toBe('Something went wrong on our side.');
  });
  it('says when to retry a rate limit', () => {
    const e = graphQLError({ message: 'rate limited', extensions: { code: 'RATE_LIMITED', retryAfter: 4.2 } });
    expect(e.message).toMatch(/too often.*Try again in 5 seconds\.$/);
    expect(e.code).toBe('RATE_LIMITED');
  });
  it('copes with no error at all', () => {
    expect(graphQLError(undefined).message).toBe('The request was not accepted.');
  });
});

describe('messageOf', () => {
  it('words every kind of failure', () => {
    expect(messageOf(new ApiError('Nope.'))).toBe('Nope.');
    expect(messageOf(new TypeError('Failed to fetch'))).toMatch(/Could not reach the server/);
    expect(messageOf('weird')).toBe('Something went wrong.');
    expect(messageOf(new Error('boom'))).toBe('Boom.');
  });
});
