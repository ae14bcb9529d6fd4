// Pure helpers of the upload page (unit-tested).
import { ApiError, problemError } from './errors';

/** The video id is the last path segment of the tus upload URL (`/video/upload/{id}`). */
export function videoIdFromUploadUrl(url: string | null | undefined): string | null {
  if (!url) return null;
  const path = url.split(/[?#]/)[0].replace(/\/+$/, '');
  const id = path.slice(path.lastIndexOf('/') + 1);
  return id || null;
}

/** A title from a file name: `my_trip-2024.mp4` → `my trip 2024`. */
export function titleFromFilename(name: string): string {
  return name
    .replace(/\.[^.]+$/, '')
    .replace(/[_-]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
}

/** `Cats, Funny ,, cats` → `cats,funny` (the server's own normalisation: lower case, deduplicated). */
export function normaliseTags(input: string): string {
  const out: string[] = [];
  for (const t of input.split(',').map((x) => x.trim().toLowerCase())) if (t && !out.includes(t)) out.push(t);
  return out.join(',');
}

/** What tus-js-client's error carries about the HTTP answer. */
export interface TusErrorLike {
  message?: string;
  originalResponse?: { getStatus(): number; getBody(): string; getHeader(name: string): string | undefined } | null;
}

/** A tus failure in words (problem+json from the video service or the gateway). */
export function tusError(err: TusErrorLike): ApiError {
  const res = err.originalResponse;
  if (!res || !res.getStatus()) return new ApiError('The upload lost its connection to the server. It will resume when you press Resume.');
  let body: unknown;
  try {
    body = JSON.parse(res.getBody());
  } catch {
    body = undefined;
  }
  const retry = Number(res.getHeader('Retry-After'));
  return problemError(res.getStatus(), body, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

/** Whether tus-js-client should retry after this answer: not for refusals that waiting cannot fix. */
export function shouldRetryStatus(status: number | undefined): boolean {
  if (!status) return true; // network
  if (status === 409 || status === 423) return true; // offset moved / locked: HEAD and go on
  if (status >= 500) return true;
  return false;
}

export function etaText(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}
