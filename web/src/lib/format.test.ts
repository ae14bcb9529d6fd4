import { describe, expect, it } from 'vitest';
import { compactNumber, formatBytes, formatDuration, plural, timeAgo } from './format';

describe('formatDuration', () => {
  it.each([
    [0, '0:00'],
    [8.4, '0:08'],
    [75, '1:15'],
    [600, '10:00'],
    [3725, '1:02:05'],
    [36000, '10:00:00'],
  ])('%s s is %s', (s, text) => expect(formatDuration(s)).toBe(text));
  it('is empty when unknown', () => {
    expect(formatDuration(null)).toBe('');
    expect(formatDuration(undefined)).toBe('');
    expect(formatDuration(Number.NaN)).toBe('');
    expect(formatDuration(-1)).toBe('');
  });
});

describe('numbers', () => {
  it('compacts', () => {
    expect(compactNumber(999)).toBe('999');
    expect(compactNumber(1000)).toBe('1K');
    expect(compactNumber(1250)).toBe('1.2K');
    expect(compactNumber(123456)).toBe('123K');
    expect(compactNumber(2_500_000)).toBe('2.5M');
  });
  it('pluralises', () => {
    expect(plural(1, 'view')).toBe('1 view');
    expect(plural(0, 'view')).toBe('0 views');
    expect(plural(2, 'reply', 'replies')).toBe('2 replies');
  });
  it('formats bytes', () => {
    expect(formatBytes(500)).toBe('500 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(20 * 1024 * 1024)).toBe('20 MiB');
  });
});

describe('timeAgo', () => {
  const now = Date.parse('2024-05-10T12:00:00Z');
  it.each([
    ['2024-05-10T11:59:50Z', 'just now'],
    ['2024-05-10T11:59:00Z', '1 minute ago'],
    ['2024-05-10T11:30:00Z', '30 minutes ago'],
    ['2024-05-10T09:00:00Z', '3 hours ago'],
    ['2024-05-09T12:00:00Z', '1 day ago'],
    ['2024-04-26T12:00:00Z', '2 weeks ago'],
    ['2023-01-01T00:00:00Z', '2023-01-01'],
  ])('%s is %s', (iso, text) => expect(timeAgo(iso, now)).toBe(text));
});
