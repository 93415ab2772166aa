/**
 * One small query interface over embedded PGlite (on disk, the default) and a real PostgreSQL
 * server (`DATABASE_URL`, through `pg`). Both speak PostgreSQL, so the SQL is shared; only the
 * connection and transaction plumbing differ.
 */
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { MIGRATIONS } from './schema.ts';

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  /** Runs `fn` in one transaction; retried when PostgreSQL reports a deadlock or serialization failure. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly kind: 'pglite' | 'postgres';
}

const RETRYABLE = new Set(['40001', '40P01']);

async function withRetry<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (i >= 5 || !code || !RETRYABLE.has(code)) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (i + 1)));
    }
  }
}

class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  constructor(private readonly pgl: PGlite) {}
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pgl.query<T>(sql, params)).rows;
  }
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return withRetry(() =>
      this.pgl.transaction((t) =>
        fn({ query: async <R>(sql: string, params: unknown[] = []) => (await t.query<R>(sql, params)).rows }),
      ),
    );
  }
  close(): Promise<void> {
    return this.pgl.close();
  }
}

class PostgresDb implements Db {
  readonly kind = 'postgres' as const;
  constructor(private readonly pool: pg.Pool) {
    // An idle connection the server ends (a restart, an administrator, a dropped database) is an
    // 'error' on the pool; unhandled, it would crash the process. The pool drops that connection and
    // opens another on the next query.
    pool.on('error', (err) => console.error(`postgres: idle connection lost: ${err.message}`));
  }
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[];
  }
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return withRetry(async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn({
          query: async <R>(sql: string, params: unknown[] = []) =>
            (await client.query(sql, params)).rows as R[],
        });
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    });
  }
  /** Resolves once every connection is closed: `pool.end()` alone resolves while they are still closing. */
  async close(): Promise<void> {
    let open = this.pool.totalCount;
    const closed = new Promise<void>((resolve) => {
      if (open === 0) resolve();
      this.pool.on('remove', () => {
        if (--open <= 0) resolve();
      });
    });
    await this.pool.end();
    await closed;
  }
}

/** PostgreSQL's float8 and int8 come back as strings from `pg`; we only use float8/int4, parsed as numbers. */
pg.types.setTypeParser(pg.types.builtins.FLOAT8, (v) => Number(v));

export interface DbOptions {
  /** postgres://… for a server; otherwise a folder for PGlite's files, or 'memory://' for a throwaway one. */
  url?: string;
  dataDir?: string;
}

export async function openDb(opts: DbOptions = {}): Promise<Db> {
  let db: Db;
  if (opts.url && /^postgres(ql)?:\/\//.test(opts.url)) {
    db = new PostgresDb(new pg.Pool({ connectionString: opts.url, max: 8 }));
  } else {
    const dir = opts.url === 'memory://' ? undefined : (opts.dataDir ?? '.data/pglite');
    if (dir) mkdirSync(dir, { recursive: true });
    db = new PgliteDb(dir ? new PGlite(dir) : new PGlite());
  }
  await migrate(db);
  return db;
}

/** Applies pending migrations under an advisory lock, so coordinators starting together migrate once. */
export async function migrate(db: Db): Promise<void> {
  await db.tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock(724001)');
    await q.query(
      'CREATE TABLE IF NOT EXISTS migrations (version integer PRIMARY KEY, applied_at float8 NOT NULL)',
    );
    const done = new Set(
      (await q.query<{ version: number }>('SELECT version FROM migrations')).map((r) => r.version),
    );
    for (const [i, sql] of MIGRATIONS.entries()) {
      const version = i + 1;
      if (done.has(version)) continue;
      for (const statement of splitStatements(sql)) await q.query(statement);
      await q.query('INSERT INTO migrations (version, applied_at) VALUES ($1, $2)', [version, Date.now()]);
    }
  });
}

/**
 * A migration's statements: split at a `;` that ends a line, except inside a dollar-quoted body
 * (`$fn$ … $fn$`, where function bodies keep their own semicolons).
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (const line of sql.split('\n')) {
    for (const tag of line.match(/\$[A-Za-z_]*\$/g) ?? []) {
      if (quote === undefined) quote = tag;
      else if (tag === quote) quote = undefined;
    }
    current += `${line}\n`;
    if (quote === undefined && /;\s*$/.test(line)) {
      statements.push(current.replace(/;\s*$/, ''));
      current = '';
    }
  }
  statements.push(current);
  return statements.filter((s) => s.trim());
}
