/**
 * Bonds on a real anvil with a real coordinator (PGlite) and the shipped headless workers: two
 * bonded voters lie in the last interval, an honest auditor disagrees, the CPU confirms, and the
 * slasher takes both bonds into the pool on chain with the referee's verdict; the honest auditor's
 * bond is untouched, and an unbonded liar costs no transaction. The BondBook never blocks a lease:
 * it reports a bond only once it has read it.
 */
import type { Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bondOf, depositBond, requestUnbond } from '../chain/bonds.ts';
import { connectChain, readConfig } from '../chain/client.ts';
import type { TaskResult } from '../protocol/index.ts';
import { runHeadlessWorker } from '../worker/headless/worker.ts';
import type { AuditRecord } from './audit.ts';
import { BondBook } from './bonds.ts';
import { type Db, openDb } from './db.ts';
import { type Coordinator, startCoordinator } from './service.ts';
import { divergentResult, privateKeyOf, startTestChain, type TestChain, tinySpec, until } from './testing.ts';

const BOND = 5n * 10n ** 16n;

describe('bonds', () => {
  let chain: TestChain;
  let db: Db;
  let coordinator: Coordinator;
  const stop = new AbortController();
  const running: Promise<number>[] = [];

  beforeAll(async () => {
    chain = await startTestChain();
  });
  afterAll(async () => {
    stop.abort();
    await Promise.allSettled(running);
    await coordinator?.close();
    await db?.close();
    await chain?.stop();
  });

  const account = (i: number) => privateKeyToAccount(privateKeyOf(i));
  const bondOfAccount = async (i: number) => {
    const conn = await connectChain(chain.settings.rpcUrl);
    const b = await bondOf(conn.publicClient, chain.settings.settlement, account(i).address);
    return b.bonded + b.unbonding;
  };
  const deposit = async (i: number, amount: bigint) => {
    const conn = await connectChain(chain.settings.rpcUrl, account(i));
    await depositBond(conn, chain.settings.settlement, amount);
  };

  it('the book reports a bond once read, and stops counting it when unbonding starts', async () => {
    const conn = await connectChain(chain.settings.rpcUrl, account(8));
    const book = new BondBook(conn.publicClient, chain.settings.settlement, BOND);
    const worker = account(8).address;
    await depositBond(conn, chain.settings.settlement, BOND);
    expect(await book.bondedAmong([worker])).toEqual(new Set()); // never read yet: not waited for
    await until('the bond is read', async () => (await book.bondedAmong([worker])).has(worker));
    await requestUnbond(conn, chain.settings.settlement, 1n);
    expect(await book.bondedNow(worker)).toBe(BOND - 1n);
    expect(await book.bondedAmong([worker])).toEqual(new Set()); // below the minimum now
  });

  it('slashes the bonds of voters a failed audit shows wrong, into the pool, and nobody else', async () => {
    db = await openDb({ url: 'memory://' });
    coordinator = await startCoordinator({
      db,
      chain: chain.settings,
      minBond: BOND,
      queue: { leaseMs: 20_000, quorum: 2, initialReplicas: 2, maxReplicas: 3, stateWaitMs: 10_000 },
      auditJobs: { answerMs: 10_000 },
      rateLimits: false,
      sweepMs: 200,
      settleMs: 100,
      log: () => {},
    });
    const [x, y, honest, unbondedLiar] = [3, 4, 5, 6];
    for (const i of [x, y, honest]) await deposit(i, BOND);
    const reader = await connectChain(chain.settings.rpcUrl);
    const poolBefore = (await readConfig(reader.publicClient, chain.settings.settlement)).pool;

    const worker = (i: number, opts: Partial<Parameters<typeof runHeadlessWorker>[0]>) =>
      running.push(
        runHeadlessWorker({
          coordinator: coordinator.url,
          account: account(i),
          backend: 'cpu',
          stop: stop.signal,
          heartbeatMs: 500,
          idleMs: 50,
          ...opts,
        }),
      );
    const lieLast = (r: TaskResult) => divergentResult(r, r.checkpoints.length - 1);
    const ids: Hex[] = [(await coordinator.store.addTask(tinySpec(640, { steps: 8 })))!];
    worker(honest, { leases: false });
    await until('an auditor is available', async () => (await db.query('SELECT 1 FROM auditors')).length > 0);
    worker(x, { forge: lieLast, audits: false });
    worker(y, { forge: lieLast, audits: false });
    await until('both bonds are slashed', async () => {
      const rows = await db.query<{ state: string }>(`SELECT state FROM slashes WHERE state = 'slashed'`);
      return rows.length === 2;
    });
    const [task] = await db.query<{ audit: AuditRecord; referee: { by: string; right: Hex } }>(
      'SELECT audit, referee FROM tasks WHERE task_id = $1',
      [ids[0]],
    );
    expect(task.audit.passed).toBe(false);
    expect(task.referee.by).toBe('audit');
    const slashes = await db.query<{ worker: string; amount: string; true_digest: Hex; tx_hash: Hex }>(
      'SELECT worker, amount, true_digest, tx_hash FROM slashes ORDER BY worker',
    );
    expect(new Set(slashes.map((s) => s.worker))).toEqual(new Set([account(x).address, account(y).address]));
    for (const s of slashes) {
      expect(s.amount).toBe(BOND.toString());
      expect(s.true_digest).toBe(task.referee.right);
    }
    expect(await bondOfAccount(x)).toBe(0n);
    expect(await bondOfAccount(y)).toBe(0n);
    expect(await bondOfAccount(honest)).toBe(BOND);
    const poolAfter = (await readConfig(reader.publicClient, chain.settings.settlement)).pool;
    expect(poolAfter - poolBefore).toBeGreaterThanOrEqual(2n * BOND - 10n ** 16n); // rewards may be paid meanwhile

    // A liar with nothing bonded: its wrong vote is looked at once, and no slash is sent.
    stop.abort();
    await Promise.allSettled(running.splice(0));
    const again = new AbortController();
    const id2 = (await coordinator.store.addTask(tinySpec(641, { steps: 8 })))!;
    for (const [i, opts] of [
      [honest, { leases: false }],
      [unbondedLiar, { forge: lieLast, audits: false }],
      [x, { forge: lieLast, audits: false }],
    ] as const)
      running.push(
        runHeadlessWorker({
          coordinator: coordinator.url,
          account: account(i),
          backend: 'cpu',
          stop: again.signal,
          heartbeatMs: 500,
          idleMs: 50,
          ...opts,
        }),
      );
    await until('the second lie is looked at', async () => {
      const rows = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM votes WHERE task_id = $1 AND verdict = 'wrong' AND slash_checked`,
        [id2],
      );
      return rows[0].n === 2;
    });
    again.abort();
    const sent = await db.query('SELECT 1 FROM slashes WHERE task_id = $1', [id2]);
    expect(sent).toEqual([]); // x was slashed to 0 before; the other liar never bonded
  });
});
