/**
 * Leased singleton locks in the database: among several coordinator processes on one database,
 * one runs the settlement loop and one the search; when a holder dies its lease runs out and
 * another process takes over.
 */
import type { Db } from './db.ts';

/**
 * How long a singleton lock outlives its last renewal. Holders renew every round (seconds apart), so
 * a crashed holder delays its loop on another process (or its own restart) by at most this long.
 */
export const LOCK_TTL_MS = 8_000;

export async function tryLock(db: Db, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const now = Date.now();
  const rows = await db.query(
    `INSERT INTO locks (name, holder, until) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET holder = $2, until = $3
       WHERE locks.holder = $2 OR locks.until < $4
     RETURNING 1`,
    [name, holder, now + ttlMs, now],
  );
  return rows.length === 1;
}

export async function unlock(db: Db, name: string, holder: string): Promise<void> {
  await db.query('DELETE FROM locks WHERE name = $1 AND holder = $2', [name, holder]);
}
