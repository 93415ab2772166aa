/**
 * Request rate limits (hono-rate-limiter, fixed windows in memory): per client network (IPv4 /24,
 * IPv6 /64) on every route, per parsed bearer token on the worker routes, and a tighter one on opening sessions. Over a limit
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
  /**
   * Sponsors' writes (POST /datasets, POST /searches and their actions), per client address: an upload
   * costs a parse of up to SPONSOR_LIMITS.maxUploadBytes and its storage. Absent: none.
   */
  sponsorWritesPerAddress?: Limit | null;
}

/**
 * An honest worker sends a lease, a few heartbeats and a result per task (seconds to minutes of
 * training): a few requests a second at most, far below these.
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  perAddress: { limit: 600, windowMs: 10_000 },
  perToken: { limit: 100, windowMs: 10_000 },
  sessionsPerAddress: { limit: 30, windowMs: 60_000 },
  sponsorWritesPerAddress: { limit: 30, windowMs: 10 * 60_000 },
};

/** The TCP peer's address (no proxy headers are trusted), or 'local' for in-process requests. */
export function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'local';
}

/**
 * The network a client address belongs to, which the per-address limits count: its IPv4 /24 or its
 * IPv6 /64. One party easily holds many addresses of one network (a cloud host, a home router's
 * IPv6 prefix, all of 127.0.0.0/8 on loopback), far fewer networks. Honest volunteers behind one
 * NAT share it, which the limits' headroom (a few requests a second per worker) allows for.
 */
export function addressNetwork(address: string): string {
  const v4 = address.match(/^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.\d+$/i);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (!address.includes(':')) return address;
  const [head, tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

function clientNetwork(c: Context): string {
  return addressNetwork(clientAddress(c));
}

/**
 * The session token of an `Authorization: Bearer <token>` header, as the API parses it (scheme in
 * any case, any whitespace): the per-token limit keys on this, so respelling the header does not
 * make a fresh counter.
 */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header?.match(/^\s*Bearer\s+(\S+)\s*$/i);
  return m?.[1];
}

function tokenKey(c: Context): string | undefined {
  const token = bearerToken(c.req.header('authorization'));
  return token ? createHash('sha256').update(token).digest('hex') : undefined;
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
  if (limits.perAddress) app.use('*', limiter(limits.perAddress, clientNetwork));
  if (limits.sessionsPerAddress)
    app.use(
      '/sessions',
      limiter(limits.sessionsPerAddress, clientNetwork, (c) => c.req.method !== 'POST'),
    );
  const sponsorWrites = limits.sponsorWritesPerAddress;
  if (sponsorWrites) {
    // One limiter (one counter per network) over every sponsor write.
    const writes = limiter(sponsorWrites, clientNetwork, (c) => c.req.method !== 'POST');
    for (const path of ['/datasets', '/searches', '/searches/*']) app.use(path, writes);
  }
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
