/**
 * The coordinator's HTTP API as the web app sees it (DESIGN §4, `/api/v1`).
 *
 * Responses are checked with loose zod schemas: the app needs a handful of fields and must keep working
 * when the coordinator adds more. Network failures surface as `CoordinatorDownError` so callers can
 * retry with backoff instead of dropping the session.
 */
import { z } from 'zod';
import {
  type AuditAnswer,
  type AuditJob,
  AuditJobSchema,
  type DatasetUploaded,
  DatasetUploadedSchema,
  type Lease,
  LeaseSchema,
  leasePath,
  type SearchActionRequest,
  type SearchPost,
  SearchStatusSchema,
  type SearchView,
  SearchViewSchema,
  type StateRequest,
  StateRequestSchema,
  type StateUpload,
  TaskStateSchema,
  type WorkWanted,
} from '../../protocol/http.ts';

const hex = z.string().regex(/^0x[0-9a-fA-F]*$/);
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);

export const InfoSchema = z.object({
  chainId: z.number().int(),
  settlement: address,
  rpcUrl: z.string().nullish(),
  explorerUrl: z.string().nullish(),
  quorum: z.number().int().optional(),
  rewardPerTask: z.string().optional(),
  /** The bond single replicas need (wei); null or absent: none asked. */
  minBondWei: z.string().regex(/^\d+$/).nullish(),
  domain: z.object({ name: z.string(), version: z.string() }).optional(),
  datasets: z.array(z.object({ name: z.string(), sha256: hex, url: z.string().optional() })).default([]),
});
export type Info = z.infer<typeof InfoSchema>;

// The worker messages are defined once, for the coordinator and every client (src/protocol/http.ts).
export type { Lease, StateRequest, StateUpload } from '../../protocol/http.ts';
export { LeaseSchema };

export const TASK_STATES = ['computing', 'submitted', 'agreed', 'settled', 'disputed', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const TaskSchema = z.object({
  taskId: hex,
  /** The coordinator's own states (open, auditing, refereeing, agreed, settling, settled, failed). */
  state: TaskStateSchema,
  txHash: hex.nullish(),
  digest: hex.nullish(),
  spec: z.unknown().optional(),
});
export type TaskInfo = z.infer<typeof TaskSchema>;

export const LeaderboardEntrySchema = z.object({
  taskId: hex,
  spec: z.unknown().optional(),
  valCorrect: z.number(),
  valCount: z.number(),
  valLoss: z.union([z.string(), z.number()]).optional(),
  params: z.number().optional(),
  flops: z.number().optional(),
  txHash: hex.nullish(),
  blockNumber: z.union([z.number(), z.string()]).nullish(),
  digest: hex.nullish(),
  settledAt: z.number().nullish(),
  /** How the result was verified (docs/TRUST.md): votes + audit, audit only, or re-executed whole. */
  verification: z.enum(['votes', 'audit', 're-executed']).optional(),
});
export type LeaderboardEntry = z.infer<typeof LeaderboardEntrySchema>;

const LeaderboardSchema = z.union([
  z.array(LeaderboardEntrySchema),
  z.object({ entries: z.array(LeaderboardEntrySchema) }).transform((o) => o.entries),
]);

/** The coordinator's GET /search answer (the shared protocol schema). */
export const SearchStatsSchema = SearchStatusSchema;
export type SearchStats = z.infer<typeof SearchStatsSchema>;

export class CoordinatorDownError extends Error {
  override name = 'CoordinatorDownError';
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Where the coordinator lives: `?api=` (remembered for the tab), the build's env, or this origin. */
export function coordinatorUrl(): string {
  const fromQuery = new URLSearchParams(window.location.search).get('api');
  if (fromQuery) sessionStorage.setItem('cambrian.api', fromQuery);
  const chosen =
    fromQuery ??
    sessionStorage.getItem('cambrian.api') ??
    (import.meta.env.VITE_COORDINATOR_URL as string | undefined) ??
    '/api/v1';
  return chosen.replace(/\/+$/, '');
}

export class CoordinatorApi {
  constructor(
    readonly base: string,
    private token?: string,
  ) {}

  withToken(token: string): CoordinatorApi {
    return new CoordinatorApi(this.base, token);
  }

  info(): Promise<Info> {
    return this.get('/info', InfoSchema);
  }

  leaderboard(): Promise<LeaderboardEntry[]> {
    return this.get('/leaderboard', LeaderboardSchema);
  }

  search(): Promise<SearchStats> {
    return this.get('/search', SearchStatsSchema);
  }

  /** Every sponsored search (GET /searches). */
  async searches(): Promise<SearchView[]> {
    return z.object({ searches: z.array(SearchViewSchema) }).parse(await this.request('GET', '/searches'))
      .searches;
  }

  /** One sponsored search's leaderboard. */
  searchLeaderboard(searchId: string): Promise<LeaderboardEntry[]> {
    return this.get(`/leaderboard?search=${searchId}`, LeaderboardSchema);
  }

  /** Uploads a dataset (multipart: format, name, the format's files); the coordinator converts it. */
  async uploadDataset(form: FormData): Promise<DatasetUploaded> {
    return DatasetUploadedSchema.parse(await this.request('POST', '/datasets', form));
  }

  async postSearch(body: SearchPost): Promise<SearchView> {
    return SearchViewSchema.parse(await this.request('POST', '/searches', body));
  }

  async searchAction(searchId: string, body: SearchActionRequest): Promise<SearchView> {
    return SearchViewSchema.parse(await this.request('POST', `/searches/${searchId}/actions`, body));
  }

  task(taskId: string): Promise<TaskInfo> {
    return this.get(`/tasks/${taskId}`, TaskSchema);
  }

  worker(addr: string): Promise<Record<string, unknown>> {
    return this.get(`/workers/${addr}`, z.record(z.string(), z.unknown()));
  }

  async openSession(body: {
    grant: unknown;
    grantSig: string;
  }): Promise<{ token: string; expiresAt: number }> {
    const schema = z.object({ token: z.string(), expiresAt: z.coerce.number() });
    return schema.parse(await this.request('POST', '/sessions', body));
  }

  /** A task to compute, or null when the coordinator has no work right now (204). */
  async lease(): Promise<Lease | null> {
    const body = await this.request('POST', '/leases', {});
    return body === null ? null : LeaseSchema.parse(body);
  }

  /**
   * The next piece of work: a lease, a state request (`states`), or an audit job drawn for this tab
   * (`audits`, src/protocol/http.ts AuditJobSchema); null when there is none right now.
   */
  async work(wanted: WorkWanted): Promise<Lease | StateRequest | AuditJob | null> {
    const body = await this.request('POST', leasePath(wanted), {});
    if (body === null) return null;
    const kind = body && typeof body === 'object' && 'kind' in body ? body.kind : undefined;
    if (kind === 'audit') return AuditJobSchema.parse(body);
    if (kind === 'state') return StateRequestSchema.parse(body);
    return LeaseSchema.parse(body);
  }

  /** Answers an audit job with what this tab computed. */
  async answerAudit(jobId: string, answer: AuditAnswer): Promise<void> {
    await this.request('POST', `/audits/${jobId}`, answer);
  }

  /** Uploads a kept checkpoint state; the coordinator checks it against the agreed stateHash. */
  async uploadState(upload: StateUpload): Promise<void> {
    await this.request('POST', '/states', upload);
  }

  async heartbeat(leaseId: string, progress: { step: number; steps: number }): Promise<void> {
    await this.request('POST', `/leases/${leaseId}/heartbeat`, progress);
  }

  /** Gives a lease back unfinished, so the task goes to another worker at once. */
  async release(leaseId: string): Promise<void> {
    await this.request('POST', `/leases/${leaseId}/release`);
  }

  async submit(body: { leaseId: string; result: unknown; voteSig: string }): Promise<void> {
    await this.request('POST', '/results', body);
  }

  private async get<S extends z.ZodType>(path: string, schema: S): Promise<z.output<S>> {
    return schema.parse(await this.request('GET', path));
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    // A form (an upload) goes as multipart with its own boundary; anything else as JSON.
    const form = body instanceof FormData;
    if (body !== undefined && !form) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : form ? body : JSON.stringify(body, bigintReplacer),
      });
    } catch (err) {
      throw new CoordinatorDownError(`coordinator unreachable: ${(err as Error).message}`);
    }
    if (res.status === 204) return null;
    if (res.status >= 500) throw new CoordinatorDownError(`coordinator error ${res.status}`);
    const text = await res.text();
    const json = text ? safeJson(text) : null;
    if (!res.ok) {
      const reason =
        json && typeof json === 'object' && 'error' in json
          ? String((json as { error: unknown }).error)
          : text;
      const detail = reason.trim() ? `: ${reason.slice(0, 300)}` : '';
      throw new ApiError(res.status, `${method} ${path} → ${res.status}${detail}`);
    }
    return json;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
