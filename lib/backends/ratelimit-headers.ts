// The rate-limit headers the OpenAI API sends on every answer (`x-ratelimit-limit-requests`, `-limit-tokens`,
// `-remaining-*`, `-reset-*`), read into numbers; resets come in OpenAI's duration format ("1s", "6m0s", "20ms").

/** What one answer said about the endpoint's limits; a field is absent when its header is. */
export interface RateLimitState {
  limitRequests?: number;
  limitTokens?: number;
  remainingRequests?: number;
  remainingTokens?: number;
  /** Until the request allowance is whole again, in ms. */
  resetRequestsMs?: number;
  resetTokensMs?: number;
}

type Headers = Record<string, string | string[] | undefined>;

const UNIT_MS: Record<string, number> = {
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 1e-6,
};
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g;

/** ms of a duration such as "1s", "6m0s", "20ms", "1h2m3.5s", or plain seconds ("0.5"); undefined when neither. */
export function parseResetDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  let total = 0;
  let consumed = 0;
  for (const match of trimmed.matchAll(DURATION_PART)) {
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    consumed += match[0].length;
  }
  return consumed > 0 && consumed === trimmed.length ? total : undefined;
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function count(headers: Headers, name: string): number | undefined {
  const text = header(headers, name);
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

function duration(headers: Headers, name: string): number | undefined {
  const text = header(headers, name);
  return text === undefined ? undefined : parseResetDuration(text);
}

/** The limits an answer's headers (lower-case names, as undici gives them) state; undefined when it has none. */
export function readRateLimitHeaders(headers: Headers): RateLimitState | undefined {
  const state: RateLimitState = {
    limitRequests: count(headers, 'x-ratelimit-limit-requests'),
    limitTokens: count(headers, 'x-ratelimit-limit-tokens'),
    remainingRequests: count(headers, 'x-ratelimit-remaining-requests'),
    remainingTokens: count(headers, 'x-ratelimit-remaining-tokens'),
    resetRequestsMs: duration(headers, 'x-ratelimit-reset-requests'),
    resetTokensMs: duration(headers, 'x-ratelimit-reset-tokens'),
  };
  const present = Object.entries(state).filter(([, value]) => value !== undefined);
  return present.length > 0 ? (Object.fromEntries(present) as RateLimitState) : undefined;
}
