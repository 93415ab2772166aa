/**
 * Request rate limits (hono-rate-limiter, fixed windows in memory): per client address on every
 * route, per bearer token on the worker routes, and a tighter one on opening sessions. Over a limit
 * the answer is 429 `{ error }` with `Retry-After` (seconds) and the draft-6 RateLimit-* headers.
 * Each coordinator process counts for itself, so N processes behind one balancer allow N times as much.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Env, Hono } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';

export interface Limit {
  /** Requests allowed per window. */
  limit: number;
  windowMs: number;
}

export interface RateLimits {
  /** Every route, per client address (null: none, e.g. a benchmark whose clients share loopback). */
  perAddress: Limit | null;
  /** Routes with a bearer token, per token. */
  perToken: Limit | null;
  /** POST /sessions, per client address: sessions are cheap to ask for and cost a signature check. */
  sessionsPerAddress: Limit | null;
}

/**
 * An honest worker sends a lease, a few heartbeats and a result per task (seconds to minutes of
 * training): a few requests a second at most, far below these.
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  perAddress: { limit: 600, windowMs: 10_000 },
  perToken: { limit: 100, windowMs: 10_000 },
  sessionsPerAddress: { limit: 30, windowMs: 60_000 },
};

/** The TCP peer's address (no proxy headers are trusted), or 'local' for in-process requests. */
export function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'local';
}

function tokenKey(c: Context): string | undefined {
  const header = c.req.header('authorization');
  return header ? createHash('sha256').update(header).digest('hex') : undefined;
}

function limiter(limit: Limit, key: (c: Context) => string, skip: (c: Context) => boolean = () => false) {
  return rateLimiter({
    windowMs: limit.windowMs,
    limit: limit.limit,
    standardHeaders: 'draft-6',
    keyGenerator: key,
    skip,
    handler: (c) =>
      c.json({ error: `too many requests: at most ${limit.limit} per ${limit.windowMs / 1000} s` }, 429),
  });
}

export function applyRateLimits<E extends Env>(app: Hono<E>, limits: RateLimits): void {
  if (limits.perAddress) app.use('*', limiter(limits.perAddress, clientAddress));
  if (limits.sessionsPerAddress)
    app.use(
      '/sessions',
      limiter(limits.sessionsPerAddress, clientAddress, (c) => c.req.method !== 'POST'),
    );
  if (limits.perToken)
    app.use(
      '*',
      limiter(
        limits.perToken,
        (c) => tokenKey(c) ?? 'none',
        (c) => tokenKey(c) === undefined,
      ),
    );
}
