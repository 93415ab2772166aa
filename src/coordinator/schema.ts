/**
 * Database migrations, applied in order and recorded in `migrations`. Never edit a shipped one:
 * append a new entry. Times are epoch milliseconds in float8 (exact for integers below 2^53).
 */
export const MIGRATIONS: readonly string[] = [
  `
CREATE TABLE tasks (
  task_id text PRIMARY KEY,
  seq integer GENERATED ALWAYS AS IDENTITY,
  spec jsonb NOT NULL,
  -- the search strategy's own record of the proposal (opaque here)
  proposal jsonb,
  -- open | agreed | refereeing | settling | settled | failed
  state text NOT NULL,
  wanted integer NOT NULL,
  open_slots integer NOT NULL,
  max_replicas integer NOT NULL,
  created_at float8 NOT NULL,
  agreed_digest text,
  agreed_at float8,
  result jsonb,
  referee jsonb,
  told boolean NOT NULL DEFAULT false,
  batch_id integer,
  tx_hash text,
  settled_at float8,
  error text
);
CREATE INDEX tasks_open ON tasks (seq) WHERE state = 'open' AND open_slots > 0;
CREATE INDEX tasks_state ON tasks (state);

CREATE TABLE sessions (
  token_hash text PRIMARY KEY,
  worker text NOT NULL,
  session_key text NOT NULL,
  expires_at float8 NOT NULL,
  grant_sig text NOT NULL,
  created_at float8 NOT NULL
);

CREATE TABLE leases (
  lease_id text PRIMARY KEY,
  task_id text NOT NULL REFERENCES tasks (task_id),
  worker text NOT NULL,
  token_hash text NOT NULL,
  -- active | submitted | expired | released | cancelled
  state text NOT NULL,
  issued_at float8 NOT NULL,
  deadline float8 NOT NULL,
  heartbeat_at float8,
  progress jsonb
);
CREATE UNIQUE INDEX leases_live ON leases (task_id, worker) WHERE state IN ('active', 'submitted');
CREATE INDEX leases_active ON leases (deadline) WHERE state = 'active';
CREATE INDEX leases_worker ON leases (worker);

CREATE TABLE votes (
  task_id text NOT NULL REFERENCES tasks (task_id),
  worker text NOT NULL,
  lease_id text NOT NULL UNIQUE,
  digest text NOT NULL,
  session_key text NOT NULL,
  session_expiry float8 NOT NULL,
  grant_sig text NOT NULL,
  vote_sig text NOT NULL,
  result jsonb NOT NULL,
  -- pending | majority | dissent | wrong (the referee found it wrong)
  verdict text NOT NULL DEFAULT 'pending',
  received_at float8 NOT NULL,
  PRIMARY KEY (task_id, worker)
);
CREATE INDEX votes_worker ON votes (worker);

CREATE TABLE batches (
  batch_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- intent | sent | confirmed | failed
  state text NOT NULL,
  task_ids jsonb NOT NULL,
  tx_hash text,
  -- the signed transaction, kept so a crash between storing and broadcasting it can rebroadcast it
  raw_tx text,
  attempts integer NOT NULL DEFAULT 0,
  error text,
  created_at float8 NOT NULL,
  updated_at float8 NOT NULL
);

-- Cooperative locks with a lease time, so one of several coordinator processes runs each singleton
-- loop (settlement, search) and another takes over when it dies.
CREATE TABLE locks (
  name text PRIMARY KEY,
  holder text NOT NULL,
  until float8 NOT NULL
);

CREATE TABLE search_state (
  id text PRIMARY KEY,
  state jsonb NOT NULL,
  updated_at float8 NOT NULL
)
`,
  `
-- The referee's requests for the agreed state at a checkpoint (DESIGN §2): a worker that voted on the
-- task uploads params and momentum (base64, little-endian i32) whose hash the coordinator checked.
CREATE TABLE state_requests (
  task_id text NOT NULL REFERENCES tasks (task_id),
  step integer NOT NULL,
  state_hash text NOT NULL,
  param_count integer NOT NULL,
  -- workers that voted on the task (they may answer), and those already asked
  workers jsonb NOT NULL,
  asked jsonb NOT NULL DEFAULT '[]'::jsonb,
  requested_at float8 NOT NULL,
  params text,
  momentum text,
  uploaded_by text,
  uploaded_at float8,
  PRIMARY KEY (task_id, step)
)
`,
];
