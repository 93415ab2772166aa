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
  `
-- The queue's hot statements as PL/pgSQL functions: one call replaces several statements (each
-- costs PGlite a few hundred microseconds whatever its size, and a server a round trip), and
-- PL/pgSQL keeps the statements' plans for the session. The logic stays in
-- src/coordinator/store.ts; these only read and write.

-- Every lease and vote paid for these, and nothing used them (the per-worker views match
-- lower(worker), which a plain index cannot serve).
DROP INDEX IF EXISTS leases_worker;
DROP INDEX IF EXISTS votes_worker;
CREATE OR REPLACE FUNCTION queue_open_tasks(lim int, workers text[], after_seq int)
RETURNS TABLE (task_id text, seq int, open_slots int, held text[]) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH open AS (SELECT t.task_id, t.open_slots, t.seq FROM tasks t
                WHERE t.state = 'open' AND t.open_slots > 0 AND t.seq > after_seq
                ORDER BY t.seq LIMIT lim FOR UPDATE SKIP LOCKED)
  SELECT o.task_id, o.seq, o.open_slots,
         ARRAY(SELECT l.worker FROM leases l WHERE l.task_id = o.task_id AND l.worker = ANY(workers)
               AND l.state IN ('active', 'submitted'))
  FROM open o ORDER BY o.seq;
END
$fn$;

CREATE OR REPLACE FUNCTION queue_insert_leases(rows jsonb, issued float8, deadline float8)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO leases (lease_id, task_id, worker, token_hash, state, issued_at, deadline)
  SELECT x.lease_id, x.task_id, x.worker, x.token_hash, 'active', issued, deadline
  FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text, worker text, token_hash text);
  UPDATE tasks t SET open_slots = t.open_slots - n.n
  FROM (SELECT x.task_id, count(*)::int AS n FROM jsonb_to_recordset(rows) AS x(task_id text) GROUP BY x.task_id) n
  WHERE t.task_id = n.task_id;
END
$fn$;

-- Locks the tasks of a result batch (sorted: the global lock order), then reads their leases and
-- votes. Each statement of a PL/pgSQL function takes a fresh snapshot, so the reads see what
-- committed before the locks were granted.
CREATE OR REPLACE FUNCTION queue_read_submissions(lease_ids text[])
RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
  locked json;
  task_ids text[];
BEGIN
  SELECT coalesce(json_agg(json_build_array(x.task_id, x.state, x.wanted, x.max_replicas)), '[]'), array_agg(x.task_id)
  INTO locked, task_ids
  FROM (SELECT t.task_id, t.state, t.wanted, t.max_replicas FROM tasks t
        WHERE t.task_id IN (SELECT l.task_id FROM leases l WHERE l.lease_id = ANY(lease_ids))
        ORDER BY t.task_id FOR UPDATE) x;
  RETURN json_build_object(
    'tasks', locked,
    'leases', (SELECT coalesce(json_agg(json_build_array(l.lease_id, l.task_id, l.worker, l.state)), '[]')
               FROM leases l WHERE l.lease_id = ANY(lease_ids)),
    'votes', (SELECT coalesce(json_agg(json_build_array(v.task_id, v.worker, v.digest)), '[]')
              FROM votes v WHERE v.task_id = ANY(task_ids)));
END
$fn$;

CREATE OR REPLACE FUNCTION queue_write_votes(new_votes jsonb, submitted text[], decided text[], changes jsonb, now float8)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE leases SET state = 'submitted' WHERE lease_id = ANY(submitted);
  INSERT INTO votes (task_id, worker, lease_id, digest, session_key, session_expiry, grant_sig, vote_sig,
                     result, verdict, received_at)
  SELECT x.task_id, x.worker, x.lease_id, x.digest, x.session_key, x.session_expiry, x.grant_sig, x.vote_sig,
         x.result, x.verdict, now
  FROM jsonb_to_recordset(new_votes) AS x(task_id text, worker text, lease_id text, digest text,
       session_key text, session_expiry float8, grant_sig text, vote_sig text, result jsonb, verdict text);
  -- Most votes decide nothing (the first of two replicas): then that is all. Every statement
  -- costs PGlite a few hundred microseconds, so the rest runs only when something was decided.
  IF jsonb_array_length(changes) = 0 THEN
    RETURN;
  END IF;
  IF cardinality(decided) > 0 THEN
    UPDATE leases SET state = 'cancelled' WHERE task_id = ANY(decided) AND state = 'active';
  END IF;
  -- earlier votes of tasks agreed now (the new ones came with their verdict)
  UPDATE votes v SET verdict = CASE WHEN v.digest = c.digest THEN 'majority' ELSE 'dissent' END
  FROM jsonb_to_recordset(changes) AS c(task_id text, action text, digest text)
  WHERE c.action = 'agreed' AND v.task_id = c.task_id AND NOT v.lease_id = ANY(submitted);
  UPDATE tasks t SET
    state = CASE c.action WHEN 'agreed' THEN 'agreed' WHEN 'referee' THEN 'refereeing' ELSE t.state END,
    agreed_digest = CASE WHEN c.action = 'agreed' THEN c.digest ELSE t.agreed_digest END,
    agreed_at = CASE WHEN c.action = 'agreed' THEN now ELSE t.agreed_at END,
    result = CASE WHEN c.action = 'agreed'
                  THEN (SELECT v.result FROM votes v WHERE v.task_id = t.task_id AND v.digest = c.digest LIMIT 1)
                  ELSE t.result END,
    wanted = t.wanted + CASE WHEN c.action = 'grow' THEN 1 ELSE 0 END,
    open_slots = CASE WHEN c.action = 'grow' THEN t.open_slots + 1 ELSE 0 END
  FROM jsonb_to_recordset(changes) AS c(task_id text, action text, digest text)
  WHERE t.task_id = c.task_id;
END
$fn$
`,
  // Who decided a task's digest: 'votes' (a strict majority) or 'referee' (the settler attaches its verdict).
  `ALTER TABLE tasks ADD COLUMN IF NOT EXISTS decided_by text NOT NULL DEFAULT 'votes'`,
  `
-- Sybil resistance (docs/TRUST.md): audits, earned trust, assignment an attacker cannot steer.
-- tasks.state gains 'auditing' (every replica voted the same digest; the CPU referee checks a
-- random checkpoint interval and the validation before it may settle).
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS audit jsonb;
-- a vote's verdict has been applied to its worker's trust record
ALTER TABLE votes ADD COLUMN IF NOT EXISTS trust_counted boolean NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS worker_trust (
  worker text PRIMARY KEY,
  -- results that passed an audit since the last failure, and failures ever
  audited integer NOT NULL DEFAULT 0,
  failures integer NOT NULL DEFAULT 0,
  updated_at float8 NOT NULL
);
-- "a worker never gets back a task it once held" looks up every lease of a task, whatever its state
CREATE INDEX IF NOT EXISTS leases_task ON leases (task_id);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
CREATE INDEX IF NOT EXISTS sessions_worker ON sessions (worker);

-- Lease candidates for a batch of requests, in random order (so that timing one's requests buys
-- nothing), with which of the batch's workers ever held a lease on each (they never get it back),
-- whether anyone ever leased it (a fresh task may run as one replica for a trusted worker), the
-- batch's workers' live leases (the cap) and their trust records.
CREATE OR REPLACE FUNCTION queue_lease_candidates(lim int, workers text[])
RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
  picked json;
BEGIN
  WITH open AS (SELECT t.task_id, t.open_slots, t.wanted FROM tasks t
                WHERE t.state = 'open' AND t.open_slots > 0
                ORDER BY random() LIMIT lim FOR UPDATE SKIP LOCKED)
  SELECT coalesce(json_agg(json_build_array(o.task_id, o.open_slots,
           ARRAY(SELECT DISTINCT l.worker FROM leases l WHERE l.task_id = o.task_id AND l.worker = ANY(workers)),
           NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = o.task_id))), '[]')
  INTO picked FROM open o;
  RETURN json_build_object(
    'tasks', picked,
    'live', (SELECT coalesce(json_agg(json_build_array(x.worker, x.n)), '[]')
             FROM (SELECT l.worker, count(*)::int AS n FROM leases l
                   WHERE l.worker = ANY(workers) AND l.state = 'active' GROUP BY l.worker) x),
    'trust', (SELECT coalesce(json_agg(json_build_array(w.worker, w.audited, w.failures)), '[]')
              FROM worker_trust w WHERE w.worker = ANY(workers)));
END
$fn$;

-- As before, and a task leased as a single replica (a trusted worker, drawn at lease time) wants one.
CREATE OR REPLACE FUNCTION queue_insert_leases(rows jsonb, issued float8, deadline float8)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO leases (lease_id, task_id, worker, token_hash, state, issued_at, deadline)
  SELECT x.lease_id, x.task_id, x.worker, x.token_hash, 'active', issued, deadline
  FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text, worker text, token_hash text);
  UPDATE tasks t SET open_slots = t.open_slots - n.n
  FROM (SELECT x.task_id, count(*)::int AS n FROM jsonb_to_recordset(rows) AS x(task_id text) GROUP BY x.task_id) n
  WHERE t.task_id = n.task_id;
  UPDATE tasks t SET wanted = 1, open_slots = 0
  FROM jsonb_to_recordset(rows) AS x(task_id text, single boolean)
  WHERE t.task_id = x.task_id AND x.single;
END
$fn$;

-- Votes no longer decide a task by themselves: every replica in agreement sends it to the audit
-- ('auditing'), any disagreement to the referee ('refereeing'); verdicts are written by them.
CREATE OR REPLACE FUNCTION queue_write_votes(new_votes jsonb, submitted text[], decided text[], changes jsonb, now float8)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE leases SET state = 'submitted' WHERE lease_id = ANY(submitted);
  INSERT INTO votes (task_id, worker, lease_id, digest, session_key, session_expiry, grant_sig, vote_sig,
                     result, verdict, received_at)
  SELECT x.task_id, x.worker, x.lease_id, x.digest, x.session_key, x.session_expiry, x.grant_sig, x.vote_sig,
         x.result, x.verdict, now
  FROM jsonb_to_recordset(new_votes) AS x(task_id text, worker text, lease_id text, digest text,
       session_key text, session_expiry float8, grant_sig text, vote_sig text, result jsonb, verdict text);
  IF jsonb_array_length(changes) = 0 THEN
    RETURN;
  END IF;
  IF cardinality(decided) > 0 THEN
    UPDATE leases SET state = 'cancelled' WHERE task_id = ANY(decided) AND state = 'active';
  END IF;
  UPDATE tasks t SET
    state = CASE c.action WHEN 'audit' THEN 'auditing' WHEN 'referee' THEN 'refereeing' ELSE t.state END,
    open_slots = 0
  FROM jsonb_to_recordset(changes) AS c(task_id text, action text)
  WHERE t.task_id = c.task_id;
END
$fn$
`,
  `
-- A lease that ended without a vote (released, expired) keeps its task from that worker only until
-- its deadline is older than since (the cooldown): never handing it back at all deadlocked a small
-- network whose only other workers had lost their leases too (a coordinator restart). Live and
-- submitted leases exclude for good.
DROP FUNCTION IF EXISTS queue_lease_candidates(int, text[]);
CREATE OR REPLACE FUNCTION queue_lease_candidates(lim int, workers text[], since float8)
RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
  picked json;
BEGIN
  WITH open AS (SELECT t.task_id, t.open_slots, t.wanted FROM tasks t
                WHERE t.state = 'open' AND t.open_slots > 0
                ORDER BY random() LIMIT lim FOR UPDATE SKIP LOCKED)
  SELECT coalesce(json_agg(json_build_array(o.task_id, o.open_slots,
           ARRAY(SELECT DISTINCT l.worker FROM leases l
                 WHERE l.task_id = o.task_id AND l.worker = ANY(workers)
                   AND (l.state IN ('active', 'submitted') OR l.deadline > since)),
           NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = o.task_id))), '[]')
  INTO picked FROM open o;
  RETURN json_build_object(
    'tasks', picked,
    'live', (SELECT coalesce(json_agg(json_build_array(x.worker, x.n)), '[]')
             FROM (SELECT l.worker, count(*)::int AS n FROM leases l
                   WHERE l.worker = ANY(workers) AND l.state = 'active' GROUP BY l.worker) x),
    'trust', (SELECT coalesce(json_agg(json_build_array(w.worker, w.audited, w.failures)), '[]')
              FROM worker_trust w WHERE w.worker = ANY(workers)));
END
$fn$;
`,
  `
-- A vote whose grant expired or was revoked before settlement is 'vetoed' (src/coordinator/veto.ts):
-- it counts in no agreement, so a reopened task is agreed among its other votes and fresh replicas.
CREATE OR REPLACE FUNCTION queue_read_submissions(lease_ids text[])
RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
  locked json;
  task_ids text[];
BEGIN
  SELECT coalesce(json_agg(json_build_array(x.task_id, x.state, x.wanted, x.max_replicas)), '[]'), array_agg(x.task_id)
  INTO locked, task_ids
  FROM (SELECT t.task_id, t.state, t.wanted, t.max_replicas FROM tasks t
        WHERE t.task_id IN (SELECT l.task_id FROM leases l WHERE l.lease_id = ANY(lease_ids))
        ORDER BY t.task_id FOR UPDATE) x;
  RETURN json_build_object(
    'tasks', locked,
    'leases', (SELECT coalesce(json_agg(json_build_array(l.lease_id, l.task_id, l.worker, l.state)), '[]')
               FROM leases l WHERE l.lease_id = ANY(lease_ids)),
    'votes', (SELECT coalesce(json_agg(json_build_array(v.task_id, v.worker, v.digest)), '[]')
              FROM votes v WHERE v.task_id = ANY(task_ids) AND v.verdict <> 'vetoed'));
END
$fn$
`,
  // Sessions opened in one millisecond tied on created_at, so "keep a worker's newest few" could
  // evict a newer one: an identity column orders them as they were inserted, on every coordinator.
  `ALTER TABLE sessions ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY`,
  `
-- Searches as first-class objects (docs/SPONSORS.md, docs/COORDINATOR.md "Searches"). A search is
-- the chain's searchId = keccak256(abi.encode(sponsor, manifestHash)); its manifest (canonical JSON)
-- fixes the dataset, the search space and its bounds, the strategy, the budget and the reward.
CREATE TABLE IF NOT EXISTS searches (
  search_id text PRIMARY KEY,
  seq integer GENERATED ALWAYS AS IDENTITY,
  sponsor text NOT NULL,
  manifest jsonb NOT NULL,
  manifest_hash text NOT NULL,
  name text NOT NULL,
  dataset_sha256 text NOT NULL,
  -- funding | running | paused | finished | cancelled
  state text NOT NULL,
  reward_wei numeric(78, 0) NOT NULL,
  budget_tasks integer NOT NULL,
  max_spend_wei numeric(78, 0) NOT NULL,
  -- the pool as last read (the chain, or the coordinator's own ledger without one) and when that
  -- read started: a task settled after it still reserves its reward (the read did not see it paid)
  pool_wei numeric(78, 0) NOT NULL DEFAULT 0,
  pool_read_at float8 NOT NULL DEFAULT 0,
  -- what the coordinator credited itself when there is no chain (tests, benchmarks, offline runs)
  ledger_wei numeric(78, 0) NOT NULL DEFAULT 0,
  -- the chain's view: unknown | open | closed; after lease_until no lease of it is handed out at all
  chain_state text NOT NULL DEFAULT 'unknown',
  lease_until float8,
  -- the operator's own search (cambrian up, cambrian coordinator): today's unscoped routes show it
  operator boolean NOT NULL DEFAULT false,
  created_at float8 NOT NULL,
  updated_at float8 NOT NULL,
  finished_at float8,
  error text
);
CREATE INDEX IF NOT EXISTS searches_state ON searches (state);

-- A task belongs to one search (NULL: the coordinator's own tasks, added with Store.addTask by tests,
-- benchmarks or an operator's script). leased_at: its first lease, from when it reserves its reward
-- against its search's pool. work: training multiply-accumulates (steps × batch × forward MACs), so
-- that leasing can weigh searches by what they pay per unit of work.
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS search_id text REFERENCES searches (search_id);
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS leased_at float8;
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS work float8 NOT NULL DEFAULT 0;
UPDATE tasks t SET leased_at = l.first FROM (SELECT task_id, min(issued_at) AS first FROM leases GROUP BY task_id) l
  WHERE t.task_id = l.task_id AND t.leased_at IS NULL;
CREATE INDEX IF NOT EXISTS tasks_search_open ON tasks (search_id) WHERE state = 'open' AND open_slots > 0;
CREATE INDEX IF NOT EXISTS tasks_search_leased ON tasks (search_id) WHERE leased_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_search_seq ON tasks (search_id, seq);

-- Sponsors' datasets: canonical CDS1 binaries (src/data/format.ts) by sha256, in 1 MiB chunks (served
-- as a stream; every coordinator process on one database serves them). An upload no search names
-- is deleted after a day (expires_at; NULL once a search names it).
CREATE TABLE IF NOT EXISTS datasets (
  sha256 text PRIMARY KEY,
  name text NOT NULL,
  bytes integer NOT NULL,
  count integer NOT NULL,
  features integer NOT NULL,
  classes integer NOT NULL,
  class_counts jsonb NOT NULL,
  source jsonb NOT NULL,
  uploaded_at float8 NOT NULL,
  expires_at float8
);
CREATE TABLE IF NOT EXISTS dataset_chunks (
  sha256 text NOT NULL REFERENCES datasets (sha256) ON DELETE CASCADE,
  idx integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (sha256, idx)
);

-- Signed search actions seen (EIP-712 SearchAction): a nonce is refused a second time until its
-- signature has expired anyway.
CREATE TABLE IF NOT EXISTS search_nonces (
  sponsor text NOT NULL,
  nonce text NOT NULL,
  expires_at float8 NOT NULL,
  PRIMARY KEY (sponsor, nonce)
);

-- Lease candidates per search: for every search with open slots (NULL: the coordinator's own tasks) a
-- random sample of its open tasks, lim from lims (a JSON object keyed by search id, '' for NULL) or
-- default_lim; searches in no_fresh offer only tasks already leased once (they reserved their reward:
-- a paused, cancelled or unfunded search still finishes what it started), searches in no_lease nothing.
CREATE OR REPLACE FUNCTION queue_lease_candidates_by_search(lims jsonb, default_lim int, workers text[],
  since float8, no_fresh text[], no_lease text[])
RETURNS json LANGUAGE plpgsql AS $fn$
DECLARE
  g record;
  picked jsonb := '[]'::jsonb;
  part jsonb;
BEGIN
  FOR g IN SELECT DISTINCT coalesce(t.search_id, '') AS key FROM tasks t WHERE t.state = 'open' AND t.open_slots > 0
  LOOP
    CONTINUE WHEN g.key = ANY(no_lease);
    WITH open AS (SELECT t.task_id, t.open_slots, t.leased_at FROM tasks t
                  WHERE t.state = 'open' AND t.open_slots > 0
                    AND ((g.key = '' AND t.search_id IS NULL) OR t.search_id = g.key)
                    AND (t.leased_at IS NOT NULL OR NOT g.key = ANY(no_fresh))
                  ORDER BY random() LIMIT coalesce((lims->>g.key)::int, default_lim) FOR UPDATE SKIP LOCKED)
    SELECT coalesce(jsonb_agg(jsonb_build_array(o.task_id, o.open_slots,
             ARRAY(SELECT DISTINCT l.worker FROM leases l
                   WHERE l.task_id = o.task_id AND l.worker = ANY(workers)
                     AND (l.state IN ('active', 'submitted') OR l.deadline > since)),
             o.leased_at IS NULL, g.key)), '[]'::jsonb)
    INTO part FROM open o;
    picked := picked || part;
  END LOOP;
  RETURN json_build_object(
    'tasks', picked,
    'live', (SELECT coalesce(json_agg(json_build_array(x.worker, x.n)), '[]')
             FROM (SELECT l.worker, count(*)::int AS n FROM leases l
                   WHERE l.worker = ANY(workers) AND l.state = 'active' GROUP BY l.worker) x),
    'trust', (SELECT coalesce(json_agg(json_build_array(w.worker, w.audited, w.failures)), '[]')
              FROM worker_trust w WHERE w.worker = ANY(workers)));
END
$fn$;

-- What a search can still pay for: fresh tasks (never leased) it may start now, from its pool less
-- the reward of every task it reserved (leased once and not yet settled or failed, or settled after
-- the pool was read), within its spending cap; 0 unless it is running and still leasable.
CREATE OR REPLACE FUNCTION search_room(sid text, now float8) RETURNS numeric LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
  reserved numeric;
  committed numeric;
BEGIN
  SELECT * INTO s FROM searches WHERE search_id = sid;
  IF NOT FOUND OR s.state <> 'running' OR s.reward_wei <= 0 OR (s.lease_until IS NOT NULL AND now >= s.lease_until) THEN
    RETURN 0;
  END IF;
  SELECT count(*) FILTER (WHERE t.state NOT IN ('settled', 'failed') OR t.settled_at >= s.pool_read_at),
         count(*) FILTER (WHERE t.state <> 'failed')
  INTO reserved, committed FROM tasks t WHERE t.search_id = sid AND t.leased_at IS NOT NULL;
  RETURN greatest(0, least(floor((s.pool_wei - s.reward_wei * reserved) / s.reward_wei),
                           floor(s.max_spend_wei / s.reward_wei) - committed));
END
$fn$;

-- Inserts a lease batch, refusing (returning their lease ids) the leases a search cannot pay for:
-- under its row lock (searches sorted; after the task rows: the global lock order is tasks, searches,
-- leases) each search's fresh tasks are accepted in the batch's order up to its room, so coordinators
-- sharing a database never start more tasks than the pool holds. A search past lease_until gets none.
CREATE OR REPLACE FUNCTION queue_insert_leases_funded(rows jsonb, issued float8, deadline float8)
RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
  s record;
  room numeric;
  refused text[] := '{}';
BEGIN
  FOR s IN SELECT se.search_id, se.lease_until FROM searches se
           WHERE se.search_id IN (SELECT t.search_id FROM jsonb_to_recordset(rows) AS x(task_id text)
                                  JOIN tasks t ON t.task_id = x.task_id)
           ORDER BY se.search_id FOR UPDATE
  LOOP
    IF s.lease_until IS NOT NULL AND issued >= s.lease_until THEN
      refused := refused || ARRAY(SELECT x.lease_id FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text)
                                  JOIN tasks t ON t.task_id = x.task_id WHERE t.search_id = s.search_id);
      CONTINUE;
    END IF;
    room := search_room(s.search_id, issued);
    refused := refused || ARRAY(
      WITH fresh AS (SELECT x.task_id, min(x.ord) AS first
                     FROM jsonb_to_recordset(rows) AS x(task_id text, ord int)
                     JOIN tasks t ON t.task_id = x.task_id
                     WHERE t.search_id = s.search_id AND t.leased_at IS NULL GROUP BY x.task_id),
           ranked AS (SELECT f.task_id, row_number() OVER (ORDER BY f.first) AS n FROM fresh f)
      SELECT x.lease_id FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text)
      JOIN ranked r ON r.task_id = x.task_id WHERE r.n > room);
  END LOOP;
  INSERT INTO leases (lease_id, task_id, worker, token_hash, state, issued_at, deadline)
  SELECT x.lease_id, x.task_id, x.worker, x.token_hash, 'active', issued, deadline
  FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text, worker text, token_hash text)
  WHERE NOT x.lease_id = ANY(refused);
  UPDATE tasks t SET open_slots = t.open_slots - n.n, leased_at = coalesce(t.leased_at, issued)
  FROM (SELECT x.task_id, count(*)::int AS n FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text)
        WHERE NOT x.lease_id = ANY(refused) GROUP BY x.task_id) n
  WHERE t.task_id = n.task_id;
  UPDATE tasks t SET wanted = 1, open_slots = 0
  FROM jsonb_to_recordset(rows) AS x(lease_id text, task_id text, single boolean)
  WHERE t.task_id = x.task_id AND x.single AND NOT x.lease_id = ANY(refused);
  RETURN refused;
END
$fn$;

-- The leasing snapshot (refreshed every quarter second): per search with open work or still running,
-- its terms, its room (search_room) and the mean work of its open tasks.
CREATE OR REPLACE FUNCTION queue_search_snapshot(now float8) RETURNS json LANGUAGE plpgsql AS $fn$
BEGIN
  RETURN (SELECT coalesce(json_agg(json_build_array(s.search_id, s.sponsor, s.name, s.state, s.reward_wei::text,
            search_room(s.search_id, now)::text, s.lease_until,
            (SELECT avg(t.work) FROM tasks t WHERE t.search_id = s.search_id AND t.state = 'open' AND t.open_slots > 0))), '[]')
          FROM searches s WHERE s.state IN ('funding', 'running', 'paused', 'cancelled'));
END
$fn$
`,
  `
-- Verification work done by workers (docs/TRUST.md): one row per audited span of a task, drawn for a
-- worker that never held the task, with what the voters claim there (the auditor never sees it).
-- open: waiting for a worker to be drawn | assigned | matched | mismatched | cpu (the coordinator
-- recomputed it: no auditor answered in time) | refuted (the CPU referee found the auditor wrong)
CREATE TABLE IF NOT EXISTS audit_jobs (
  job_id text PRIMARY KEY,
  task_id text NOT NULL REFERENCES tasks (task_id),
  from_step integer NOT NULL,
  to_step integer NOT NULL,
  validate boolean NOT NULL,
  -- 're-execution' for a result entering the search's top ranks, else 'audit'
  purpose text NOT NULL,
  expected jsonb NOT NULL,
  state text NOT NULL,
  worker text,
  -- every worker that ever held the task, and every worker the job was drawn for before
  excluded jsonb NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  created_at float8 NOT NULL,
  deadline float8,
  answer jsonb,
  answered_at float8
);
CREATE INDEX IF NOT EXISTS audit_jobs_task ON audit_jobs (task_id);
CREATE INDEX IF NOT EXISTS audit_jobs_assigned ON audit_jobs (worker) WHERE state = 'assigned';
-- Workers that asked for verification work lately (the lease route with ?audits=1): the pool an
-- audit job's worker is drawn from.
CREATE TABLE IF NOT EXISTS auditors (
  worker text PRIMARY KEY,
  seen_at float8 NOT NULL
)
`,
  `
-- Bonds (docs/TRUST.md, "Bonds"): each wrong vote whose task has a known true digest is looked at once
-- by the slasher (slash_checked); a bonded voter's bond is slashed on chain and the slash recorded here.
ALTER TABLE votes ADD COLUMN IF NOT EXISTS slash_checked boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS votes_to_slash ON votes (task_id) WHERE verdict = 'wrong' AND NOT slash_checked;
CREATE TABLE IF NOT EXISTS slashes (
  task_id text NOT NULL REFERENCES tasks (task_id),
  worker text NOT NULL,
  digest text NOT NULL,
  true_digest text NOT NULL,
  -- wei, as a decimal string; null until the transaction is confirmed
  amount text,
  tx_hash text,
  -- sent | slashed | failed (the chain refused: the reason is in error)
  state text NOT NULL,
  error text,
  at float8 NOT NULL,
  PRIMARY KEY (task_id, worker)
)
`,
  `
-- Disputes bisected to one step (docs/TRUST.md): a disputed audit job's children ask each side for
-- its per-step hashes ('steps') and then for the state where they part ('state'); parent names the
-- disputed job. report 'hash' is the ordinary audit or re-execution.
ALTER TABLE audit_jobs ADD COLUMN IF NOT EXISTS report text NOT NULL DEFAULT 'hash';
ALTER TABLE audit_jobs ADD COLUMN IF NOT EXISTS parent text;
-- Straggler reissue reads the latest votes' lease durations (store.ts expireLeases).
CREATE INDEX IF NOT EXISTS votes_received ON votes (received_at);
`,
  `
-- The audit asks whether a result would rank in its search's top 20 (audit.ts rankedAhead): the
-- search's 20 best results are read from this index instead of counting every decided task.
CREATE INDEX IF NOT EXISTS tasks_rank ON tasks (
  coalesce(search_id, ''),
  ((result->>'valCorrect')::float8 / (result->>'valCount')::float8) DESC,
  ((result->>'valLoss')::numeric)
) WHERE state IN ('agreed', 'settling', 'settled') AND result IS NOT NULL;
-- The voters still to be told of a state request (states.ts requestFor), one row each: every lease
-- asks for its worker's oldest one, an index probe instead of reading every open request's lists.
CREATE TABLE IF NOT EXISTS state_asks (
  worker text NOT NULL,
  requested_at float8 NOT NULL,
  task_id text NOT NULL,
  step integer NOT NULL,
  PRIMARY KEY (worker, requested_at, task_id, step),
  FOREIGN KEY (task_id, step) REFERENCES state_requests (task_id, step) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS state_asks_request ON state_asks (task_id, step);
INSERT INTO state_asks (worker, requested_at, task_id, step)
  SELECT w, r.requested_at, r.task_id, r.step FROM state_requests r, jsonb_array_elements_text(r.workers) w
  WHERE r.params IS NULL AND NOT r.asked @> jsonb_build_array(w)
  ON CONFLICT DO NOTHING;
ALTER TABLE state_requests DROP COLUMN IF EXISTS asked;
`,
];
