/**
 * Every message of the coordinator's HTTP API (docs/API.md), one zod schema each, shared by the
 * coordinator (which validates with them and generates its OpenAPI document from them), the
 * headless worker's client and the web app. Browser-safe: zod only.
 */
import type { Hex } from 'viem';
import { z } from 'zod';
import { TaskResultSchema } from './result.ts';
import { AnyTaskSpecSchema } from './spec.ts';

/**
 * Shortest grant the session route accepts, in seconds: far beyond the settlement delay, so a vote
 * is still valid when its batch is settled (a short grant was a way to veto a settlement).
 */
export const MIN_GRANT_LIFETIME_S = 24 * 3600;
/** How much shorter than MIN_GRANT_LIFETIME_S a grant may be, for the signer's clock. */
export const GRANT_CLOCK_SLACK_S = 300;
/** Longest grant the session route accepts, in seconds. */
export const MAX_GRANT_LIFETIME_S = 30 * 24 * 3600;

/** A regex-checked string typed as viem's Hex (the cast changes only the static type). */
const hexString = (pattern: RegExp, message: string) =>
  z.string().regex(pattern, message) as unknown as z.ZodType<Hex>;
export const AddressSchema = hexString(/^0x[0-9a-fA-F]{40}$/, 'expected a 20-byte hex address');
export const Hex32Schema = hexString(/^0x[0-9a-f]{64}$/, 'expected 0x-prefixed lowercase 32-byte hex');
export const SignatureSchema = hexString(/^0x[0-9a-fA-F]{130}$/, 'expected a 65-byte hex signature');
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

export const ErrorBodySchema = z.object({ error: z.string() }).meta({ id: 'Error' });

export const SessionGrantSchema = z
  .object({ worker: AddressSchema, sessionKey: AddressSchema, expiresAt: z.number().int().positive() })
  .meta({ id: 'SessionGrant' });
export const SessionRequestSchema = z
  .object({ grant: SessionGrantSchema, grantSig: SignatureSchema })
  .meta({ id: 'SessionRequest' });
export const SessionResponseSchema = z
  .object({ token: z.string(), expiresAt: z.number().int() })
  .meta({ id: 'Session' });

/** Whose work a leased task is: its search, so a volunteer sees who pays and how much. */
export const LeaseSearchSchema = z
  .object({
    id: Hex32Schema,
    sponsor: AddressSchema,
    name: z.string(),
    /** Wei per settled task (split among the replicas that agree), decimal. */
    rewardPerTask: z.string().regex(/^[0-9]+$/),
  })
  .meta({ id: 'LeaseSearch' });
export type LeaseSearch = z.infer<typeof LeaseSearchSchema>;

export const LeaseSchema = z
  .object({
    leaseId: z.string(),
    taskId: Hex32Schema,
    spec: AnyTaskSpecSchema,
    /** Epoch milliseconds. */
    deadline: z.number().int(),
    /** The search the task belongs to; null for the coordinator's own tasks (tests, benchmarks). */
    search: LeaseSearchSchema.nullable().optional(),
  })
  .meta({ id: 'Lease' });
export type Lease = z.infer<typeof LeaseSchema>;

/** What the lease route answers instead of a lease when an audit or the referee wants a worker's state. */
export const StateRequestSchema = z
  .object({
    kind: z.literal('state'),
    taskId: Hex32Schema,
    step: z.number().int().min(0),
    stateHash: Hex32Schema,
  })
  .meta({ id: 'StateRequest' });
export type StateRequest = z.infer<typeof StateRequestSchema>;

export const StateUploadSchema = z
  .object({
    taskId: Hex32Schema,
    step: z.number().int().min(0),
    params: Base64.describe('all parameters, little-endian i32, canonical order, base64'),
    momentum: Base64.describe('all momentum values, little-endian i32, base64'),
  })
  .meta({ id: 'StateUpload' });
export type StateUpload = z.infer<typeof StateUploadSchema>;

/**
 * The most per-step hashes one answer carries (a dispute's span longer than this is replayed by the
 * coordinator instead of bisected): 4,096 hashes are about 280 KB of JSON, within the body bound.
 */
export const MAX_STEP_HASHES = 4096;

/**
 * What an audit job asks for at the end of its replay: 'hash' (an audit or a re-execution), 'steps'
 * (a dispute's bisection: the state hash after every step of the span), 'state' (the referee's one
 * step needs the state at toStep: upload it with `POST /states`, then answer).
 */
export const AuditReportSchema = z.enum(['hash', 'steps', 'state']);
export type AuditReport = z.infer<typeof AuditReportSchema>;

/**
 * Verification work (docs/TRUST.md): recompute the training steps (fromStep, toStep] of a task
 * from the state at fromStep (the initial weights when `start` is null), and answer the state hash at
 * toStep (with `validate`, also the validation there and the parameters' hash). The lease route hands
 * it out, with ?audits=1, to the worker it was drawn for: an auditor that never held the task or, in
 * a dispute, each side (`report` 'steps' or 'state').
 */
export const AuditJobSchema = z
  .object({
    kind: z.literal('audit'),
    jobId: z.string().uuid(),
    taskId: Hex32Schema,
    spec: AnyTaskSpecSchema,
    fromStep: z.number().int().min(0),
    toStep: z.number().int().min(1),
    validate: z.boolean(),
    /** What to report (absent: 'hash'). */
    report: AuditReportSchema.optional(),
    /** The state at fromStep; null when fromStep is 0 (the spec's initial weights). */
    start: z
      .object({
        params: Base64.describe('little-endian i32, canonical order, base64'),
        momentum: Base64.describe('little-endian i32, base64'),
      })
      .nullable(),
    /** Epoch milliseconds: answer before it, or the job is drawn for another worker. */
    deadline: z.number().int(),
  })
  .meta({ id: 'AuditJob' });
export type AuditJob = z.infer<typeof AuditJobSchema>;

/** What a worker asks of `POST /leases`: which other work it takes besides (or, leases false, instead of) a lease. */
export interface WorkWanted {
  states?: boolean;
  audits?: boolean;
  leases?: boolean;
}

/** The lease route's path for `wanted` (`/leases?states=1&audits=1`, `&leases=0` for a verifier). */
export function leasePath(wanted: WorkWanted): string {
  const query = [
    wanted.states ? 'states=1' : '',
    wanted.audits ? 'audits=1' : '',
    wanted.leases === false ? 'leases=0' : '',
  ]
    .filter(Boolean)
    .join('&');
  return `/leases${query ? `?${query}` : ''}`;
}

/** A worker's answer to an audit job: what it computed, nothing it was told. */
export const AuditAnswerSchema = z
  .object({
    stateHash: Hex32Schema,
    weightsHash: Hex32Schema.optional(),
    valCorrect: z.number().int().min(0).optional(),
    valCount: z.number().int().min(0).optional(),
    valLoss: z
      .string()
      .regex(/^-?[0-9]+$/)
      .optional(),
    /** For report 'steps': the state hash after each step of (fromStep, toStep], in order. */
    stepHashes: z.array(Hex32Schema).max(MAX_STEP_HASHES).optional(),
  })
  .meta({ id: 'AuditAnswer' });
export type AuditAnswer = z.infer<typeof AuditAnswerSchema>;

/** A replayed audit job: the answer, and for report 'state' the `POST /states` body to send first. */
export interface AuditWork {
  answer: AuditAnswer;
  upload?: StateUpload;
}

export const HeartbeatSchema = z
  .object({ step: z.number().int().min(0).optional(), loss: z.number().optional() })
  .meta({ id: 'Heartbeat' });
export const HeartbeatResponseSchema = z
  .object({ deadline: z.number().int() })
  .meta({ id: 'HeartbeatAnswer' });

export const ResultSubmissionSchema = z
  .object({ leaseId: z.string().uuid(), result: TaskResultSchema, voteSig: SignatureSchema })
  .meta({ id: 'ResultSubmission' });
export type ResultSubmission = z.infer<typeof ResultSubmissionSchema>;

/** Task states as the coordinator has them. */
export const TaskStateSchema = z.enum([
  'open',
  'auditing',
  'refereeing',
  'agreed',
  'settling',
  'settled',
  'failed',
]);
export type TaskState = z.infer<typeof TaskStateSchema>;

export const ResultAcceptedSchema = z
  .object({ accepted: z.literal(true), taskState: TaskStateSchema })
  .meta({ id: 'ResultAccepted' });

export const DatasetInfoSchema = z.object({
  name: z.string(),
  sha256: Hex32Schema,
  description: z.string(),
  url: z.string(),
});

export const InfoSchema = z
  .object({
    chainId: z.number().int(),
    settlement: AddressSchema,
    rpcUrl: z.string().nullable(),
    domain: z.object({
      name: z.literal('Cambrian'),
      version: z.literal('1'),
      chainId: z.number().int(),
      verifyingContract: AddressSchema,
    }),
    quorum: z.number().int(),
    leaseMs: z.number().int(),
    maxLeaseMs: z.number().int(),
    maxLiveLeases: z.number().int(),
    minGrantSeconds: z.number().int(),
    /**
     * The bond (wei, decimal) a worker needs on chain (Settlement.bondOf) before its results may run as
     * single replicas; null when the coordinator asks for none. Without it a worker is always replicated.
     */
    minBondWei: z.string().regex(/^\d+$/).nullable().optional(),
    datasets: z.array(DatasetInfoSchema),
  })
  .meta({ id: 'Info' });
export type Info = z.infer<typeof InfoSchema>;

/** How recently a worker must have shown life (a lease taken or heartbeated, a result) to count as online. */
export const ONLINE_WINDOW_MS = 30_000;

/** GET /search: the search's progress and who is working on it. */
export const SearchStatusSchema = z
  .object({
    /** Task counts by state (open, agreed, refereeing, settling, settled, failed). */
    tasks: z.record(z.string(), z.number().int()),
    /** Workers that took a lease in the last 5 minutes (a stopped tab stays counted until it ages out). */
    activeWorkers: z.number().int(),
    /**
     * Workers online now: holding a live lease taken or heartbeated in the last ONLINE_WINDOW_MS, or
     * whose result arrived in that window. A stopped tab (its lease released) drops out at once, a
     * closed one ONLINE_WINDOW_MS after its last heartbeat.
     */
    onlineWorkers: z.number().int(),
    bestAccuracy: z.number().nullable(),
    /** One point per settled task, in settlement order. */
    progress: z.array(
      z.object({ settled: z.number(), at: z.number(), accuracy: z.number(), best: z.number() }),
    ),
    /** The search strategy's own summary (budget, trials), or null. */
    strategy: z.unknown(),
  })
  .meta({ id: 'SearchStatus' });
export type SearchStatus = z.infer<typeof SearchStatusSchema>;

/**
 * A task as anyone may see it. Before it is settled nothing tells who holds it, how many replicas
 * it wants or what anyone voted: only its state and how many votes it has.
 */
export const TaskViewSchema = z
  .object({
    taskId: Hex32Schema,
    spec: AnyTaskSpecSchema,
    state: TaskStateSchema,
    votes: z.array(
      z.object({
        worker: AddressSchema.optional(),
        receivedAt: z.number().optional(),
        digest: Hex32Schema.optional(),
        verdict: z.string().optional(),
      }),
    ),
    digest: Hex32Schema.nullable(),
    result: z.record(z.string(), z.unknown()).nullable(),
    referee: z.unknown().nullable(),
    audit: z.unknown().nullable(),
    decidedBy: z.enum(['votes', 'referee']).nullable(),
    txHash: z.string().nullable(),
    settledAt: z.number().nullable(),
    createdAt: z.number(),
    error: z.string().nullable(),
  })
  .meta({ id: 'Task' });
export type TaskView = z.infer<typeof TaskViewSchema>;

// Sponsors' searches (docs/SPONSORS.md). The manifest is ./search.ts's; every write is signed by the
// sponsor's wallet (EIP-712 SearchAction) and carries its nonce and expiry.

const Nonce = z.string().regex(/^\d{1,20}$/, 'expected a uint64 nonce in decimal');
const Wei = z.string().regex(/^\d+$/, 'expected wei in decimal');

export const SearchPostSchema = z
  .object({
    /** The search manifest (src/protocol/search.ts SearchManifestSchema); its errors name the field. */
    manifest: z.record(z.string(), z.unknown()),
    sponsor: AddressSchema,
    nonce: Nonce,
    expiresAt: z.number().int().positive(),
    /** EIP-712 SearchAction { searchId, action: 'post', manifestHash, nonce, expiresAt } by the sponsor. */
    signature: SignatureSchema,
  })
  .meta({ id: 'SearchPost' });
export type SearchPost = z.infer<typeof SearchPostSchema>;

export const SearchActionRequestSchema = z
  .object({
    action: z.enum(['pause', 'resume', 'cancel']),
    nonce: Nonce,
    expiresAt: z.number().int().positive(),
    /** EIP-712 SearchAction { searchId, action, manifestHash, nonce, expiresAt } by the sponsor. */
    signature: SignatureSchema,
  })
  .meta({ id: 'SearchActionRequest' });
export type SearchActionRequest = z.infer<typeof SearchActionRequestSchema>;

export const SearchViewSchema = z
  .object({
    searchId: Hex32Schema,
    sponsor: AddressSchema,
    name: z.string(),
    description: z.string(),
    /** funding | running | paused | finished | cancelled */
    state: z.string(),
    manifest: z.record(z.string(), z.unknown()),
    manifestHash: Hex32Schema,
    dataset: z.object({ name: z.string(), sha256: Hex32Schema, url: z.string() }),
    rewardWei: Wei,
    budgetTasks: z.number().int(),
    maxSpendWei: Wei,
    /** The pool on chain as last read (wei) and whether the search is open or closed there. */
    poolWei: Wei,
    chainState: z.enum(['unknown', 'open', 'closed']),
    /** Tasks by state, and the settled ones' rewards. */
    tasks: z.record(z.string(), z.number().int()),
    spentWei: Wei,
    bestAccuracy: z.number().nullable(),
    /** Why the search gets no work, when it does not (e.g. not opened on chain yet). */
    error: z.string().nullable(),
    createdAt: z.number(),
    updatedAt: z.number(),
    finishedAt: z.number().nullable(),
  })
  .meta({ id: 'SearchView' });
export type SearchView = z.infer<typeof SearchViewSchema>;

export const SearchListSchema = z.object({ searches: z.array(SearchViewSchema) }).meta({ id: 'SearchList' });

export const DatasetUploadedSchema = z
  .object({
    sha256: Hex32Schema,
    name: z.string(),
    bytes: z.number().int(),
    count: z.number().int(),
    features: z.number().int(),
    classes: z.number().int(),
    classCounts: z.array(z.number().int()),
    /** An example's shape as uploaded, the label names (CSV), the feature scaling applied, duplicates. */
    source: z.record(z.string(), z.unknown()),
    /** Where workers fetch it (it is public to them). */
    url: z.string(),
    /** Until when it is kept unless a search names it (ms since the epoch; null: a search names it). */
    expiresAt: z.number().nullable(),
  })
  .meta({ id: 'DatasetUploaded' });
export type DatasetUploaded = z.infer<typeof DatasetUploadedSchema>;
