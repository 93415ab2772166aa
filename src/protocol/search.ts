/**
 * A sponsor's search (docs/SPONSORS.md): its manifest, its id, the limits the coordinator holds any
 * sponsor to, and the EIP-712 `SearchAction` a sponsor signs to post, pause, resume or cancel it.
 * Browser-safe (the Sponsor page signs with it, the coordinator verifies with it).
 *
 *   manifestHash = keccak256(utf8(RFC 8785 JSON of the manifest))
 *   searchId     = keccak256(abi.encode(address sponsor, bytes32 manifestHash))
 *
 * The search id is also the search's id on the Settlement contract (`openSearch(searchId, …)`): the
 * coordinator starts a search only when the chain's sponsor and reward are the manifest's.
 */
import canonicalize from 'canonicalize';
import {
  type Address,
  encodeAbiParameters,
  type Hex,
  keccak256,
  type TypedDataDefinition,
  toBytes,
} from 'viem';
import { z } from 'zod';
import { type CambrianDomain, recoverStrict, signTyped, type TypedDataSigner } from './eip712.ts';

const int = () => z.number().int();
const u32 = () => int().min(0).max(0xffff_ffff);
const hex32 = z.string().regex(/^0x[0-9a-f]{64}$/, 'expected 0x-prefixed lowercase 32-byte hex');
const wei = z.string().regex(/^[1-9][0-9]{0,30}$/, 'expected a positive whole number of wei, in decimal');

/**
 * What any sponsor is held to: so that no search hands volunteers unbounded work, nor the
 * coordinator unbounded storage. The coordinator states them in GET /searches/limits.
 */
export const SPONSOR_LIMITS = {
  /** Training multiply-accumulates of one task at most: steps × largest batch × forward MACs. */
  maxTaskMacs: 60e9,
  /** The largest batch the search spaces draw (the MLP and conv grids' last entry). */
  maxBatch: 128,
  maxSteps: 2000,
  maxParams: 1_000_000,
  maxBudgetTasks: 10_000,
  /** A dataset's canonical binary. */
  maxDatasetBytes: 64 * 1024 * 1024,
  /** An upload as sent (IDX, CSV or .npy files together). */
  maxUploadBytes: 128 * 1024 * 1024,
  maxExamples: 200_000,
  maxFeatures: 65_536,
  maxClasses: 256,
  /** Fewest examples each class must have in the training part. */
  minPerClass: 1,
} as const;

export const DatasetRefSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, . _ - (at most 64)'),
  sha256: hex32,
});

export const SearchManifestSchema = z
  .strictObject({
    v: z.literal(1),
    name: z.string().trim().min(1).max(80),
    description: z.string().max(500).default(''),
    dataset: DatasetRefSchema,
    /** Examples held out for validation (the split's seed is `splitSeed`). */
    validation: int().min(1),
    splitSeed: u32(),
    /** Dense MLPs (v1 specs) or conv nets over `input` (v2 specs). */
    family: z.enum(['mlp', 'cnn']),
    /** The features read as [channels][height][width]; conv searches only. */
    input: z
      .strictObject({
        channels: int().min(1).max(16),
        height: int().min(1).max(256),
        width: int().min(1).max(256),
      })
      .optional(),
    maxParams: int().min(1000).max(SPONSOR_LIMITS.maxParams),
    /** Largest forward MACs per example (conv searches; an MLP's is about its parameter count). */
    maxMacs: int().min(1000).optional(),
    strategy: z.strictObject({
      kind: z.enum(['evolution', 'random']),
      seed: u32(),
      /** Tasks the search proposes in all. */
      budget: int().min(1).max(SPONSOR_LIMITS.maxBudgetTasks),
      /** Training steps of every task. */
      steps: int().min(1).max(SPONSOR_LIMITS.maxSteps),
    }),
    /** Paid per settled task, from the search's pool on chain. */
    rewardWei: wei,
    /** Lets a sponsor post the same search twice (the id depends on the whole manifest). */
    salt: u32().default(0),
  })
  .superRefine((m, ctx) => {
    if (m.family === 'cnn' && !m.input)
      ctx.addIssue({ code: 'custom', path: ['input'], message: 'a conv search needs the input shape' });
    if (m.family === 'mlp' && m.input)
      ctx.addIssue({ code: 'custom', path: ['input'], message: 'an MLP search takes no input shape' });
    if (m.family === 'mlp' && m.maxMacs !== undefined)
      ctx.addIssue({ code: 'custom', path: ['maxMacs'], message: "an MLP search's MACs follow maxParams" });
    const work = taskWorkBound(m);
    if (work > SPONSOR_LIMITS.maxTaskMacs)
      ctx.addIssue({
        code: 'custom',
        path: ['strategy', 'steps'],
        message: `a task could need ${work.toExponential(2)} training MACs (steps × batch ${SPONSOR_LIMITS.maxBatch} × forward MACs); the limit is ${SPONSOR_LIMITS.maxTaskMacs.toExponential(2)}`,
      });
  });

export type SearchManifest = z.output<typeof SearchManifestSchema>;
export type SearchManifestInput = z.input<typeof SearchManifestSchema>;

/** Conv searches' default forward-MAC bound per example (src/nas/cnn-space.ts DEFAULT_CNN_MAX_MACS). */
export const DEFAULT_SEARCH_MAX_MACS = 1_500_000;

/** The most training MACs one of the search's tasks can ask for. */
export function taskWorkBound(m: Pick<SearchManifest, 'family' | 'maxParams' | 'maxMacs' | 'strategy'>) {
  const macs = m.family === 'cnn' ? (m.maxMacs ?? DEFAULT_SEARCH_MAX_MACS) : m.maxParams;
  return m.strategy.steps * SPONSOR_LIMITS.maxBatch * macs;
}

export function parseManifest(input: unknown): SearchManifest {
  return SearchManifestSchema.parse(input);
}

export function manifestHashOf(manifest: SearchManifest): Hex {
  const text = canonicalize(manifest);
  if (text === undefined) throw new Error('manifest cannot be canonicalized');
  return keccak256(toBytes(text));
}

export function searchIdOf(sponsor: Address, manifestHash: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'bytes32' }], [sponsor, manifestHash]));
}

/** The most a search can spend: its budget at its reward. */
export function maxSpendOf(m: SearchManifest): bigint {
  return BigInt(m.rewardWei) * BigInt(m.strategy.budget);
}

export const SEARCH_ACTIONS = ['post', 'pause', 'resume', 'cancel'] as const;
export type SearchActionName = (typeof SEARCH_ACTIONS)[number];

/** Longest a signed action stays usable, seconds (its nonce is remembered that long). */
export const MAX_ACTION_LIFETIME_S = 15 * 60;

export const SEARCH_ACTION_TYPES = {
  SearchAction: [
    { name: 'searchId', type: 'bytes32' },
    { name: 'action', type: 'string' },
    { name: 'manifestHash', type: 'bytes32' },
    { name: 'nonce', type: 'uint64' },
    { name: 'expiresAt', type: 'uint64' },
  ],
} as const;

/** Signed by the sponsor's wallet: do `action` to the search, once (`nonce`), before `expiresAt`. */
export interface SearchAction {
  searchId: Hex;
  action: SearchActionName;
  manifestHash: Hex;
  nonce: bigint;
  expiresAt: bigint;
}

export function searchActionTypedData(domain: CambrianDomain, action: SearchAction) {
  return {
    domain,
    types: SEARCH_ACTION_TYPES,
    primaryType: 'SearchAction',
    message: action,
  } as const satisfies TypedDataDefinition<typeof SEARCH_ACTION_TYPES, 'SearchAction'>;
}

export function signSearchAction(
  signer: TypedDataSigner,
  domain: CambrianDomain,
  action: SearchAction,
): Promise<Hex> {
  return signTyped(signer, searchActionTypedData(domain, action));
}

/** The action's signer under the contract's signature rules, or undefined for a malformed signature. */
export function recoverSearchActionSigner(
  domain: CambrianDomain,
  action: SearchAction,
  signature: Hex,
): Promise<Address | undefined> {
  return recoverStrict(searchActionTypedData(domain, action), signature);
}

/** A fresh action nonce (64 random bits). */
export function randomNonce(): bigint {
  const words = crypto.getRandomValues(new Uint32Array(2));
  return (BigInt(words[0]) << 32n) | BigInt(words[1]);
}
