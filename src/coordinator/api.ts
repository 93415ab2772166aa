/**
 * The coordinator's HTTP API under /api/v1 (DESIGN §4), with zod schemas for every body and an
 * OpenAPI document at /api/v1/openapi.json (rendered at /api/v1/docs).
 *
 * Every refusal is a 4xx JSON `{ error }` naming the reason; nothing a client sends crashes the
 * server. No route shows one worker's result to another before its task is settled.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Hex } from 'viem';
import { DATASET_FORMATS } from '../data/import.ts';
import type { CambrianDomain } from '../protocol/eip712.ts';
import {
  AddressSchema,
  AuditAnswerSchema,
  AuditJobSchema,
  DatasetUploadedSchema,
  ErrorBodySchema,
  GRANT_CLOCK_SLACK_S,
  HeartbeatResponseSchema,
  HeartbeatSchema,
  Hex32Schema,
  InfoSchema,
  LeaseSchema,
  MAX_GRANT_LIFETIME_S,
  MIN_GRANT_LIFETIME_S,
  ResultAcceptedSchema,
  ResultSubmissionSchema,
  SearchActionRequestSchema,
  SearchListSchema,
  SearchPostSchema,
  SearchStatusSchema,
  SearchViewSchema,
  SessionRequestSchema,
  SessionResponseSchema,
  StateRequestSchema,
  StateUploadSchema,
  TaskViewSchema,
} from '../protocol/http.ts';
import { checkpointSteps, checkTaskResult, type TaskResult } from '../protocol/index.ts';
import { SPONSOR_LIMITS } from '../protocol/search.ts';
import { AuditJobs } from './audit-jobs.ts';
import { limitedBody } from './body.ts';
import { datasetRow, datasetUploaded, storedDatasetBytes, uploadDataset } from './datasets.ts';
import { Refusal, zodReason } from './errors.ts';
import { applyRateLimits, bearerToken, DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limits.ts';
import { type Recover, verifyGrant, verifyVote } from './signatures.ts';
import { actOnSearch, postSearch } from './sponsored.ts';
import { StateExchange } from './states.ts';
import { DEFAULT_MAX_LIVE_LEASES, type Session, type Store } from './store.ts';
import type { Views } from './views.ts';

/** A result with one checkpoint per step of a long task stays well below this. */
export const MAX_BODY_BYTES = 512 * 1024;

export interface DatasetInfo {
  name: string;
  sha256: Hex;
  description: string;
  /** Where its canonical binary can be fetched from this coordinator. */
  url: string;
}

export interface ApiDeps {
  store: Store;
  views: Views;
  domain: CambrianDomain;
  rpcUrl?: string;
  datasets: DatasetInfo[];
  /** The canonical binary of a dataset, for workers that fetch it (the browser). */
  datasetBytes?: (sha256: Hex) => Promise<Uint8Array | undefined>;
  /** Longest session a grant may ask for. */
  maxSessionSeconds?: number;
  /** Shortest grant accepted (default MIN_GRANT_LIFETIME_S): a vote must outlive its settlement. */
  minGrantSeconds?: number;
  /** The bond single replicas need (GET /info's minBondWei); undefined: none asked. */
  minBond?: bigint;
  /** Request rates (default DEFAULT_RATE_LIMITS; false: none, for benchmarks on one address). */
  rateLimits?: RateLimits | false;
  /** The referee's state requests (default: one over the store's database). */
  states?: StateExchange;
  /** Verification work handed to workers (default: one over the store's database). */
  auditJobs?: AuditJobs;
  /** Where signatures are recovered (default: on the event loop). */
  recover?: Recover;
}

const ErrorBody = ErrorBodySchema;
const LeaseId = z.string().uuid();

const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((code) => [
      code,
      { description: 'refused', content: { 'application/json': { schema: ErrorBody } } },
    ]),
  );
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
const body = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { 'application/json': { schema } } },
});
const bearer = [{ bearer: [] }];

const Anything = z.record(z.string(), z.unknown());
/** A multipart file field (checked by the upload itself, which names what is missing). */
const UploadFile = z.any().optional().meta({ type: 'string', format: 'binary' });

const routes = {
  info: createRoute({
    method: 'get',
    path: '/info',
    summary: 'Chain, contract, EIP-712 domain, quorum and datasets',
    responses: { 200: json(InfoSchema, 'coordinator facts') },
  }),
  session: createRoute({
    method: 'post',
    path: '/sessions',
    summary: 'Open a session with a wallet-signed SessionGrant; returns a bearer token',
    request: body(SessionRequestSchema),
    responses: {
      201: json(SessionResponseSchema, 'session opened'),
      ...errors(400, 401, 429),
    },
  }),
  lease: createRoute({
    method: 'post',
    path: '/leases',
    summary:
      'Lease one replica of a task, or 204 when there is no work. With ?states=1 the answer may instead ' +
      "be a StateRequest: the referee wants this worker's state at a checkpoint (answer with POST /states). " +
      'With ?audits=1 the worker takes verification work: the answer may be an AuditJob drawn for it ' +
      '(answer with POST /audits/{jobId})',
    security: bearer,
    request: {
      query: z.object({
        states: z.enum(['0', '1']).optional(),
        audits: z.enum(['0', '1']).optional(),
        /** 0: a verifier that takes no leases (only state requests and audit jobs). */
        leases: z.enum(['0', '1']).optional(),
      }),
    },
    responses: {
      200: json(
        z.union([LeaseSchema, StateRequestSchema, AuditJobSchema]),
        'a lease, a state request or an audit job',
      ),
      204: { description: 'no work now' },
      ...errors(401, 429),
    },
  }),
  states: createRoute({
    method: 'post',
    path: '/states',
    summary:
      'Upload the state (params + momentum) at a checkpoint the referee asked for; kept only if ' +
      'keccak256(params ‖ momentum) is the agreed stateHash',
    security: bearer,
    request: body(StateUploadSchema),
    responses: {
      201: json(z.object({ accepted: z.literal(true) }), 'verified and kept'),
      ...errors(400, 401, 403, 404, 409, 413, 422),
    },
  }),
  audit: createRoute({
    method: 'post',
    path: '/audits/{jobId}',
    summary:
      'Answer an audit job drawn for this worker: the state hash (and, for a validating span, the ' +
      "validation) it computed. Compared with the voters' claim; the answer says nothing of the outcome",
    security: bearer,
    request: { params: z.object({ jobId: z.string().uuid() }), ...body(AuditAnswerSchema) },
    responses: {
      202: json(z.object({ accepted: z.literal(true) }), 'taken'),
      ...errors(400, 401, 403, 404, 409, 422),
    },
  }),
  heartbeat: createRoute({
    method: 'post',
    path: '/leases/{leaseId}/heartbeat',
    summary: "Extend a lease's deadline and report progress",
    security: bearer,
    request: {
      params: z.object({ leaseId: LeaseId }),
      body: {
        required: false,
        content: {
          'application/json': { schema: HeartbeatSchema },
        },
      },
    },
    responses: {
      200: json(HeartbeatResponseSchema, "extended (never past the lease's maximum lifetime)"),
      ...errors(401, 403, 404, 409),
    },
  }),
  release: createRoute({
    method: 'post',
    path: '/leases/{leaseId}/release',
    summary: 'Give a lease back (the worker stops); its replica is reissued',
    security: bearer,
    request: { params: z.object({ leaseId: LeaseId }) },
    responses: { 204: { description: 'released' }, ...errors(401, 403, 404, 409) },
  }),
  results: createRoute({
    method: 'post',
    path: '/results',
    summary: 'Submit a signed result for a lease',
    security: bearer,
    request: body(ResultSubmissionSchema),
    responses: {
      202: json(ResultAcceptedSchema, 'accepted'),
      ...errors(400, 401, 403, 404, 409, 413, 422),
    },
  }),
  task: createRoute({
    method: 'get',
    path: '/tasks/{taskId}',
    summary: 'A task: spec, state, votes (who and what only once settled), settlement transaction',
    request: { params: z.object({ taskId: Hex32Schema }) },
    responses: { 200: json(TaskViewSchema, 'the task'), ...errors(404) },
  }),
  leaderboard: createRoute({
    method: 'get',
    path: '/leaderboard',
    summary: 'Settled architectures, best first',
    request: {
      query: z.object({
        limit: z.coerce.number().int().min(1).max(1000).optional(),
        /** A sponsored search's id; absent: the operator's search. */
        search: Hex32Schema.optional(),
      }),
    },
    responses: { 200: json(z.array(Anything), 'the leaderboard') },
  }),
  search: createRoute({
    method: 'get',
    path: '/search',
    summary: 'Search progress: task counts by state, best accuracy over time, strategy summary',
    request: { query: z.object({ search: Hex32Schema.optional() }) },
    responses: { 200: json(SearchStatusSchema, 'search progress and workers online') },
  }),
  searches: createRoute({
    method: 'get',
    path: '/searches',
    summary: "Every sponsor's search, newest first",
    responses: { 200: json(SearchListSchema, 'the searches') },
  }),
  postSearch: createRoute({
    method: 'post',
    path: '/searches',
    summary: "Post a search: a manifest over an uploaded dataset, signed by the sponsor's wallet (EIP-712)",
    request: body(SearchPostSchema),
    responses: {
      201: json(SearchViewSchema, 'posted; funding until its pool on chain pays a task'),
      ...errors(400, 403, 409, 422, 429),
    },
  }),
  sponsoredSearch: createRoute({
    method: 'get',
    path: '/searches/{searchId}',
    summary: "A sponsor's search: state, pool, spend, task counts, best accuracy",
    request: { params: z.object({ searchId: Hex32Schema }) },
    responses: { 200: json(SearchViewSchema, 'the search'), ...errors(404) },
  }),
  searchAction: createRoute({
    method: 'post',
    path: '/searches/{searchId}/actions',
    summary: "Pause, resume or cancel a search (signed by its sponsor's wallet, EIP-712)",
    request: { params: z.object({ searchId: Hex32Schema }), ...body(SearchActionRequestSchema) },
    responses: {
      200: json(SearchViewSchema, 'the search after the action'),
      ...errors(400, 403, 404, 409, 429),
    },
  }),
  uploadDataset: createRoute({
    method: 'post',
    path: '/datasets',
    summary:
      'Upload a dataset (multipart: format idx|csv|npy, name, files); converted to the canonical binary',
    request: {
      body: {
        required: true,
        content: {
          'multipart/form-data': {
            schema: z.object({
              format: z.enum(DATASET_FORMATS),
              name: z.string(),
              labelColumn: z.string().optional(),
              images: UploadFile.describe('IDX images file'),
              labels: UploadFile.describe('IDX or .npy labels file'),
              features: UploadFile.describe('.npy features file'),
              csv: UploadFile.describe('CSV file with a header row'),
            }),
          },
        },
      },
    },
    responses: {
      201: json(DatasetUploadedSchema, 'stored (public to workers)'),
      ...errors(400, 413, 422, 429),
    },
  }),
  datasetInfo: createRoute({
    method: 'get',
    path: '/datasets/{sha256}/info',
    summary: "An uploaded dataset's counts, class balance and source",
    request: { params: z.object({ sha256: Hex32Schema }) },
    responses: { 200: json(DatasetUploadedSchema, 'the dataset'), ...errors(404) },
  }),
  worker: createRoute({
    method: 'get',
    path: '/workers/{address}',
    summary: "A worker's leases, votes and outcomes",
    request: { params: z.object({ address: AddressSchema }) },
    responses: { 200: json(Anything, 'worker stats') },
  }),
  dataset: createRoute({
    method: 'get',
    path: '/datasets/{sha256}',
    summary: "A dataset's canonical binary (content-addressed)",
    request: { params: z.object({ sha256: Hex32Schema }) },
    responses: {
      200: { description: 'bytes', content: { 'application/octet-stream': { schema: z.string() } } },
      ...errors(404),
    },
  }),
};

export function createApi(deps: ApiDeps): OpenAPIHono {
  const { store, views, domain } = deps;
  const maxSession = deps.maxSessionSeconds ?? MAX_GRANT_LIFETIME_S;
  const minGrant = deps.minGrantSeconds ?? MIN_GRANT_LIFETIME_S;
  const states = deps.states ?? new StateExchange(store.db);
  const auditJobs = deps.auditJobs ?? new AuditJobs(store.db);
  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) return c.json({ error: `invalid request: ${zodReason(result.error)}` }, 400);
    },
  });

  // Rates first: a request over its limit costs no body read, no database, no signature check.
  if (deps.rateLimits !== false) applyRateLimits(app, deps.rateLimits ?? DEFAULT_RATE_LIMITS);
  // A state upload is bounded by the parameter count of the largest open request, not the small limit.
  // An upload is multipart bytes, not text: Hono's own limit, at the sponsors' upload bound.
  const uploads = bodyLimit({
    maxSize: SPONSOR_LIMITS.maxUploadBytes,
    onError: (c) => c.json({ error: `upload larger than ${SPONSOR_LIMITS.maxUploadBytes} bytes` }, 413),
  });
  const isUpload = (c: Context) => c.req.method === 'POST' && c.req.path.endsWith('/datasets');
  const textBodies = limitedBody(async (c) =>
    c.req.path.endsWith('/states')
      ? Math.max(MAX_BODY_BYTES, await states.maxBodyBytes(Number(c.req.header('content-length') ?? 0)))
      : MAX_BODY_BYTES,
  );
  app.use('*', (c, next) => (isUpload(c) ? uploads(c, next) : textBodies(c, next)));
  app.onError((err, c) => {
    if (err instanceof Refusal) {
      if (err.retryAfterSeconds !== undefined) c.header('Retry-After', String(err.retryAfterSeconds));
      return c.json({ error: err.reason }, err.status);
    }
    if (err instanceof HTTPException) return c.json({ error: err.message }, err.status);
    if (err instanceof z.ZodError) return c.json({ error: `invalid: ${zodReason(err)}` }, 400);
    console.error('coordinator: internal error', err);
    return c.json({ error: 'internal error' }, 500);
  });
  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));

  const session = (c: { req: { header(name: string): string | undefined } }): Promise<Session> =>
    store.session(bearerToken(c.req.header('authorization')));

  app.openapi(routes.info, (c) =>
    c.json(
      {
        chainId: domain.chainId,
        settlement: domain.verifyingContract,
        rpcUrl: deps.rpcUrl ?? null,
        domain,
        quorum: store.opts.quorum,
        leaseMs: store.opts.leaseMs,
        maxLeaseMs: store.maxLeaseMs,
        maxLiveLeases: store.opts.maxLiveLeases ?? DEFAULT_MAX_LIVE_LEASES,
        minGrantSeconds: minGrant,
        minBondWei: deps.minBond?.toString() ?? null,
        datasets: deps.datasets,
      },
      200,
    ),
  );

  app.openapi(routes.session, async (c) => {
    const { grant, grantSig } = c.req.valid('json');
    const now = Math.floor(Date.now() / 1000);
    if (grant.expiresAt <= now) throw new Refusal(400, 'grant already expired');
    if (grant.expiresAt > now + maxSession) throw new Refusal(400, `grant longer than ${maxSession} s`);
    // A few minutes' slack for the worker's clock; far less than the settlement delay.
    if (grant.expiresAt < now + minGrant - GRANT_CLOCK_SLACK_S)
      throw new Refusal(400, `grant shorter than ${minGrant} s: a vote must stay valid until it is settled`);
    const g = {
      worker: grant.worker as Hex,
      sessionKey: grant.sessionKey as Hex,
      expiresAt: grant.expiresAt,
    };
    await verifyGrant(domain, g, grantSig as Hex, deps.recover);
    const token = await store.createSession(g, grantSig as Hex);
    return c.json({ token, expiresAt: grant.expiresAt }, 201);
  });

  app.openapi(routes.lease, async (c) => {
    const s = await session(c);
    const query = c.req.valid('query');
    if (query.states === '1') {
      const request = await states.requestFor(s.worker);
      if (request) return c.json(request, 200);
    }
    if (query.audits === '1') {
      await auditJobs.noteAuditor(s.worker);
      const job = await auditJobs.jobFor(s.worker);
      if (job) return c.json(job, 200);
    }
    if (query.leases === '0') return c.body(null, 204);
    const lease = await store.lease(s);
    if (!lease) return c.body(null, 204);
    return c.json(lease, 200);
  });

  app.openapi(routes.states, async (c) => {
    const s = await session(c);
    const { taskId, step, params, momentum } = c.req.valid('json');
    await states.upload(s.worker, taskId as Hex, step, params, momentum);
    return c.json({ accepted: true as const }, 201);
  });

  app.openapi(routes.audit, async (c) => {
    const s = await session(c);
    await auditJobs.answer(s.worker, c.req.valid('param').jobId, c.req.valid('json'));
    return c.json({ accepted: true as const }, 202);
  });

  app.openapi(routes.heartbeat, async (c) => {
    const { leaseId } = c.req.valid('param');
    const progress = await c.req.json().catch(() => null);
    const deadline = await store.heartbeat(await session(c), leaseId, progress);
    return c.json({ deadline }, 200);
  });

  app.openapi(routes.release, async (c) => {
    await store.release(await session(c), c.req.valid('param').leaseId);
    return c.body(null, 204);
  });

  app.openapi(routes.results, async (c) => {
    const s = await session(c);
    const { leaseId, result: raw, voteSig } = c.req.valid('json');
    let result: TaskResult;
    try {
      // The route's schema has parsed it; what is left is the trace root and the digest.
      result = checkTaskResult(raw);
    } catch (err) {
      throw new Refusal(400, `invalid result: ${err instanceof Error ? err.message : String(err)}`);
    }
    await verifyVote(
      domain,
      { taskId: result.taskId as Hex, digest: result.digest as Hex, worker: s.worker },
      s.sessionKey,
      voteSig as Hex,
      deps.recover,
    );
    const taskState = await store.submit(s, leaseId, result, voteSig as Hex, (spec) => {
      const want = checkpointSteps(spec.training.steps, spec.checkpointEvery);
      const got = result.checkpoints.map((cp) => cp.step);
      if (want.length !== got.length || want.some((step, i) => step !== got[i])) {
        throw new Refusal(422, `checkpoints must be at steps ${want.join(',')}`);
      }
    });
    return c.json({ accepted: true as const, taskState }, 202);
  });

  app.openapi(routes.task, async (c) => {
    const task = await views.task(c.req.valid('param').taskId as Hex);
    if (!task) throw new Refusal(404, 'unknown task');
    return c.json(task, 200);
  });

  app.openapi(routes.leaderboard, async (c) => {
    const { limit, search } = c.req.valid('query');
    return c.json(await views.leaderboard(limit ?? 100, search as Hex | undefined), 200);
  });
  app.openapi(routes.search, async (c) =>
    c.json(await views.search(Date.now(), c.req.valid('query').search as Hex | undefined), 200),
  );
  app.openapi(routes.searches, async (c) => c.json({ searches: await views.searches() }, 200));
  app.openapi(routes.postSearch, async (c) => {
    const row = await postSearch(store.db, domain, c.req.valid('json'));
    return c.json((await views.sponsoredSearch(row.search_id))!, 201);
  });
  app.openapi(routes.sponsoredSearch, async (c) => {
    const view = await views.sponsoredSearch(c.req.valid('param').searchId as Hex);
    if (!view) throw new Refusal(404, 'unknown search');
    return c.json(view, 200);
  });
  app.openapi(routes.searchAction, async (c) => {
    const row = await actOnSearch(
      store.db,
      domain,
      c.req.valid('param').searchId as Hex,
      c.req.valid('json'),
    );
    store.searchesChanged(); // leasing must see the new state at once
    return c.json((await views.sponsoredSearch(row.search_id))!, 200);
  });
  app.openapi(routes.uploadDataset, async (c) => {
    const form = await c.req.parseBody();
    const stored = await uploadDataset(store.db, form);
    return c.json(datasetUploaded(stored), 201);
  });
  app.openapi(routes.datasetInfo, async (c) => {
    const row = await datasetRow(store.db, c.req.valid('param').sha256 as Hex);
    if (!row) throw new Refusal(404, 'unknown dataset');
    return c.json(datasetUploaded(row), 200);
  });
  app.openapi(routes.worker, async (c) =>
    c.json(await views.worker(c.req.valid('param').address as Hex), 200),
  );

  app.openapi(routes.dataset, async (c) => {
    const sha256 = c.req.valid('param').sha256 as Hex;
    const bytes = (await deps.datasetBytes?.(sha256)) ?? (await storedDatasetBytes(store.db, sha256));
    if (!bytes) throw new Refusal(404, 'unknown dataset');
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/octet-stream',
      'cache-control': 'public, max-age=31536000, immutable',
    });
  });

  app.get('/health', (c) => c.json({ ok: true }));
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Cambrian coordinator',
      version: '1',
      description: 'Leases, signed results, search progress.',
    },
    servers: [{ url: '/api/v1' }],
  });
  app.get('/docs', Scalar({ url: '/api/v1/openapi.json', pageTitle: 'Cambrian coordinator API' }));
  return app;
}
