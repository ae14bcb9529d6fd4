import { describe, expect, it } from 'vitest';
import { parseStoryboard, parseTimestamp, tileAt } from './storyboard';
import { etaText, normaliseTags, shouldRetryStatus, titleFromFilename, tusError, videoIdFromUploadUrl } from './upload';
import { WatchTimer } from './watchtime';

describe('storyboard', () => {
  const vtt = `WEBVTT

00:00:00.000 --> 00:00:02.000
storyboard-0.jpg#xywh=0,0,160,90

00:00:02.000 --> 00:00:04.000
storyboard-0.jpg#xywh=160,0,160,90

1:00:04.000 --> 1:00:06.000 align:start
storyboard-1.jpg#xywh=0,90,160,90
`;
  const base = 'http://kino.test/video/abc/signed/tok/storyboard.vtt';
  it('parses cues and resolves sheets relative to the VTT', () => {
    const tiles = parseStoryboard(vtt, base);
    expect(tiles).toHaveLength(3);
    expect(tiles[1]).toEqual({ start: 2, end: 4, url: 'http://kino.test/video/abc/signed/tok/storyboard-0.jpg', x: 160, y: 0, w: 160, h: 90 });
    expect(tiles[2].start).toBe(3604);
    expect(tiles[2].end).toBe(3606);
  });
  it('finds the tile at a time', () => {
    const tiles = parseStoryboard(vtt, base);
    expect(tileAt(tiles, 0)?.x).toBe(0);
    expect(tileAt(tiles, 3.5)?.x).toBe(160);
    expect(tileAt(tiles, 99999)?.y).toBe(90);
    expect(tileAt([], 1)).toBeNull();
  });
  it('parses timestamps', () => {
    expect(parseTimestamp('00:01.500')).toBe(1.5);
    expect(parseTimestamp('01:00:00,250')).toBe(3600.25);
  });
});

describe('upload helpers', () => {
  it('takes the video id from the tus URL', () => {
    expect(videoIdFromUploadUrl('http://x/video/upload/0190-abc')).toBe('0190-abc');
    expect(videoIdFromUploadUrl('/video/upload/id1/?q=1')).toBe('id1');
    expect(videoIdFromUploadUrl(null)).toBeNull();
  });
  it('makes titles and tags', () => {
    expect(titleFromFilename('my_trip--2024.final.mp4')).toBe('my trip 2024.final');
    expect(normaliseTags(' Cats, funny ,, cats,')).toBe('cats,funny');
  });
  it('words tus failures from problem+json', () => {
    const res = (status: number, body: string, headers: Record<string, string> = {}) => ({
      originalResponse: { getStatus: () => status, getBody: () => body, getHeader: (n: string) => headers[n] },
    });
    expect(tusError(res(413, JSON.stringify({ type: 'x/quota-exceeded', detail: 'only 10 MiB of your quota is left' }))).message).toBe('Only 10 MiB of your quota is left.');
    expect(tusError(res(429, '{}', { 'Retry-After': '7' })).message).toBe('Too many requests. Try again in 7 seconds.');
    expect(tusError({ originalResponse: null }).message).toMatch(/lost its connection/);
  });
  it('retries only what waiting can fix', () => {
    expect(shouldRetryStatus(undefined)).toBe(true);
    expect(shouldRetryStatus(503)).toBe(true);
    expect(shouldRetryStatus(423)).toBe(true);
    expect(shouldRetryStatus(403)).toBe(false);
    expect(shouldRetryStatus(413)).toBe(false);
  });
  it('says the ETA', () => {
    expect(etaText(12.2)).toBe('about 12 s left');
    expect(etaText(150)).toBe('about 3 min left');
    expect(etaText(null)).toBe('');
  });
});

describe('watch time', () => {
  it('counts forward playback, not seeks, in whole seconds', () => {
    const w = new WatchTimer();
    for (let t = 0; t <= 5; t += 0.25) w.tick(t);
    w.tick(60); // a seek
    w.tick(60.5);
    expect(w.take()).toBe(5);
    w.reset();
    w.tick(100);
    w.tick(100.4);
    expect(w.take()).toBe(0); // 0.9 s pending, below 1
    w.tick(100.6);
    expect(w.take()).toBe(1);
  });
});
