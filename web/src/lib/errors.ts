// Every failure the app shows goes through ApiError, so it is always said in words:
// problem+json (RFC 9457) from the REST services and the gateway, GraphQL errors with
// `extensions.code`, and network failures.

export class ApiError extends Error {
  /** HTTP status, when the failure came from an HTTP response. */
  readonly status?: number;
  /** GraphQL `extensions.code`, or the problem's `type` for REST. */
  readonly code?: string;
  /** Seconds to wait before trying again (Retry-After, extensions.retryAfter). */
  readonly retryAfter?: number;

  constructor(message: string, opts: { status?: number; code?: string; retryAfter?: number } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = opts.status;
    this.code = opts.code;
    this.retryAfter = opts.retryAfter;
  }

  get unauthenticated(): boolean {
    return this.status === 401 || this.code === 'UNAUTHENTICATED';
  }
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
}

export interface GraphQLErrorLike {
  message?: string;
  extensions?: { code?: string; retryAfter?: number; [key: string]: unknown };
}

function retryText(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(1, Math.ceil(seconds));
  return ` Try again in ${s} second${s === 1 ? '' : 's'}.`;
}

function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const capital = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'The request was not accepted',
  401: 'Please sign in again',
  403: 'You are not allowed to do that',
  404: 'Not found',
  409: 'That conflicts with what is already there',
  413: 'That is too large',
  415: 'That file type is not accepted',
  423: 'Busy, try again in a moment',
  429: 'Too many requests',
  500: 'Something went wrong on our side',
  502: 'The service is unreachable right now',
  503: 'The service is unavailable right now',
  504: 'The service took too long to answer',
};

/** Parses a Retry-After header (seconds or an HTTP date). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const n = Number(value);
  if (Number.isFinite(n)) return n;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}

/** The error for an HTTP response that failed, from its problem+json body if it has one. */
export function problemError(status: number, body: unknown, retryAfter?: number): ApiError {
  const p = (body && typeof body === 'object' ? body : {}) as Problem;
  const words = p.detail || p.title || STATUS_TEXT[status] || `Request failed (HTTP ${status})`;
  const type = p.type && p.type !== 'about:blank' ? p.type.split('/').pop() : undefined;
  return new ApiError(sentence(words) + retryText(retryAfter), { status, code: type, retryAfter });
}

const CODE_TEXT: Record<string, string> = {
  UNAUTHENTICATED: 'Please sign in to do that.',
  FORBIDDEN: 'You are not allowed to do that.',
  NOT_FOUND: 'That does not exist, or is not visible to you.',
  INTERNAL: 'Something went wrong on our side.',
  UNAVAILABLE: 'That is unavailable right now.',
  PERSISTED_QUERY_NOT_FOUND: 'The server did not know this request.',
  RATE_LIMITED: 'You are doing that too often.',
};

/** The error for a GraphQL `errors` entry: the code said in words, with the server's message where it helps. */
export function graphQLError(error: GraphQLErrorLike | undefined): ApiError {
  const code = error?.extensions?.code;
  const retryAfter = typeof error?.extensions?.retryAfter === 'number' ? error.extensions.retryAfter : undefined;
  const serverText = error?.message ? sentence(error.message) : '';
  let text: string;
  if (code === 'BAD_USER_INPUT' || code === undefined) {
    text = serverText || 'The request was not accepted.';
  } else if (code === 'INTERNAL') {
    text = CODE_TEXT.INTERNAL; // internal details are never returned anyway
  } else {
    const base = CODE_TEXT[code] ?? serverText ?? `Request failed (${code}).`;
    text = serverText && CODE_TEXT[code] && serverText.toLowerCase() !== base.toLowerCase()
      ? `${base} (${serverText.replace(/\.$/, '')})`
      : base;
  }
  return new ApiError(text + retryText(retryAfter), { code, retryAfter });
}

/** Anything thrown, in words. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof DOMException && error.name === 'AbortError') return 'Cancelled.';
  if (error instanceof TypeError) return 'Could not reach the server. Check your connection.';
  if (error instanceof Error && error.message) return sentence(error.message);
  return 'Something went wrong.';
}
