// Admission: the client's backpressure and idempotency check, run in the caller's process by
// src/client.ts. It is queued in one MULTI with the BullMQ adds it guards, so a submit costs one
// round trip: the check runs first; when it refuses, it holds the job ids so that BullMQ's add
// takes them for existing jobs and adds nothing. Only a refusal costs a second round trip, which
// drops the holds before the client reports it; a hold also expires on its own (HOLD_TTL_MS),
// should that client die in between. Atomic, so no other client ever sees a job past a bound.
import type { Redis } from 'ioredis';
import { QueueError, type QueueKeys } from './queue.ts';

/** A waiting job older than this no longer counts against its tenant's bound (a lost entry ages out). */
export const TENANT_STALE_MS = 24 * 3600 * 1000;

/** Field of a hold: never a field of a BullMQ job hash. */
const HOLD_FIELD = 'sandpoolHold';
/** A hold needs to live only until the adds of its own transaction ran; its client drops it then. */
const HOLD_TTL_MS = 10_000;

/** Entries a tenant at its bound has checked, oldest first, for jobs a worker already took. */
const SWEEP_ENTRIES = 100;

// Counts what waits in the queue (whoever produced it) and the tenant's waiting jobs, skips ids
// that already exist (idempotency), and records the new ones, atomically. Past a bound it holds
// the new ids instead (a hash with HOLD_FIELD where the job would go, expiring after HOLD_TTL_MS).
//
// A tenant's set holds the ids it submitted; nobody removes an entry when a worker takes the job
// (that would cost every job a round trip). A tenant that looks full instead has its oldest
// entries swept: an id whose job a worker took (BullMQ set processedOn) or that is gone no longer
// counts. Workers take jobs oldest first, so the oldest entries are the ones taken.
// KEYS: wait, prioritized, delayed, paused, then per job: tenant set, job hash.
// ARGV: now, maxQueued, maxPerTenant, staleBefore, job key prefix, cancel mark key prefix, then the
// job ids.
// Returns {1, s1..sn} (si = 1 new, 0 existing), {-1, total}, or {-2, count}.
const ADMIT_SCRIPT = `
local function hold(n, status)
  for i = 1, n do
    if status[i] == 1 then
      redis.call('HSET', KEYS[4 + 2 * i], '${HOLD_FIELD}', '1')
      redis.call('PEXPIRE', KEYS[4 + 2 * i], ${HOLD_TTL_MS})
    end
  end
end
local function sweep(tenantKey)
  for _, id in ipairs(redis.call('ZRANGE', tenantKey, 0, ${SWEEP_ENTRIES - 1})) do
    local jobKey = ARGV[5] .. id
    if redis.call('HEXISTS', jobKey, 'processedOn') == 1 or redis.call('EXISTS', jobKey) == 0 then
      redis.call('ZREM', tenantKey, id)
    end
  end
  return redis.call('ZCARD', tenantKey)
end
local total = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('LLEN', KEYS[4])
local n = #ARGV - 6
local status = {}
local perTenant = {}
local fresh = 0
for i = 1, n do
  local tenantKey = KEYS[3 + 2 * i]
  local jobKey = KEYS[4 + 2 * i]
  -- A tenant's count is a sorted set; anything else there is a raw producer's job hash whose id
  -- (sandpool:queued:<tenant>) put it on this key: it would refuse this tenant's every submit.
  local kind = redis.call('TYPE', tenantKey).ok
  if kind ~= 'zset' and kind ~= 'none' then redis.call('DEL', tenantKey) end
  -- A hold left by an earlier refusal is no job.
  if redis.call('HEXISTS', jobKey, '${HOLD_FIELD}') == 1 then redis.call('DEL', jobKey) end
  if redis.call('EXISTS', jobKey) == 1 then
    status[i] = 0
  else
    status[i] = 1
    fresh = fresh + 1
    perTenant[tenantKey] = (perTenant[tenantKey] or 0) + 1
  end
end
if fresh > 0 and total + fresh > tonumber(ARGV[2]) then
  hold(n, status)
  return {-1, total}
end
for tenantKey, count in pairs(perTenant) do
  redis.call('ZREMRANGEBYSCORE', tenantKey, '-inf', ARGV[4])
  local queued = redis.call('ZCARD', tenantKey)
  if queued + count > tonumber(ARGV[3]) then queued = sweep(tenantKey) end
  if queued + count > tonumber(ARGV[3]) then
    hold(n, status)
    return {-2, queued}
  end
end
for i = 1, n do
  if status[i] == 1 then
    redis.call('ZADD', KEYS[3 + 2 * i], 'NX', ARGV[1], ARGV[6 + i])
    -- A new job under an id whose earlier job was cancelled (and removed): that cancel was not
    -- this job's, and its mark (kept a day) would cancel it a few milliseconds into its run.
    redis.call('DEL', ARGV[6] .. ARGV[6 + i])
  end
end
local reply = {1}
for i = 1, n do reply[i + 1] = status[i] end
return reply
`;

// Drops the holds ADMIT_SCRIPT left (never a real job: only hashes carrying HOLD_FIELD).
// KEYS: the job hashes.
const RELEASE_HOLDS_SCRIPT = `
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], '${HOLD_FIELD}') == 1 then redis.call('DEL', KEYS[i]) end
end
return 0
`;

const COMMAND = 'sandpoolAdmit';

/** What the admission needs of a BullMQ transaction (IRedisTransaction): run a defined script. */
export interface Transaction {
  runCommand(name: string, args: (string | number)[]): unknown;
}

/** A connection scripts are defined on (ioredis's defineCommand). */
export interface ScriptHost {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** A transaction the client can send: the replies, one per queued command, or null if aborted. */
export interface SubmitTransaction extends Transaction {
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** A submit transaction that counts the commands it queued (a command it could not queue throws). */
export interface CountedTransaction extends SubmitTransaction {
  queued(): number;
}

/** The BullMQ connection (`queue.getBackend().client`), as far as submits use it. */
export interface BullConnection extends ScriptHost {
  multi(): SubmitTransaction;
}

interface ScriptSource {
  lua: string;
  numberOfKeys: number | null;
}

/** BullMQ's job-adding scripts (addStandardJob:<version>, addDelayedJob:…): what a submit runs. */
const BULLMQ_ADD_SCRIPT = /^add[A-Za-z]*Job:/;

export interface SubmitTransactions {
  /** A transaction on the client's own connection, else (`lean` false) on BullMQ's. */
  make(): CountedTransaction;
  /** A transaction on BullMQ's connection, which has every BullMQ script. */
  fallback(): CountedTransaction;
  readonly lean: boolean;
}

/**
 * The transactions that carry submits. ioredis copies every script defined on a connection into
 * each MULTI made on it; BullMQ defines some 60 on its own, which cost ~25 µs of every submit. So
 * submits go on the client's own connection `redis`, which holds only the admission script and
 * BullMQ's add scripts, copied from BullMQ's connection (they are the installed version's). Should
 * a BullMQ version add a job through a script not copied, `runCommand` throws, the transaction
 * counts one command short, and the client makes it again with `fallback()`.
 */
export function submitTransactions(redis: Redis, bull: BullConnection): SubmitTransactions {
  const scripts = (bull as { scriptsSet?: Record<string, ScriptSource> }).scriptsSet;
  const adds = Object.entries(scripts ?? {}).filter(([name]) => BULLMQ_ADD_SCRIPT.test(name));
  for (const [name, script] of adds) {
    redis.defineCommand(name, script.numberOfKeys === null ? { lua: script.lua } : { lua: script.lua, numberOfKeys: script.numberOfKeys });
  }
  const counted = (transaction: SubmitTransaction, run: (name: string, args: (string | number)[]) => void): CountedTransaction => {
    let queued = 0;
    return Object.assign(transaction, {
      runCommand(name: string, args: (string | number)[]) {
        run(name, args);
        queued++;
        return transaction;
      },
      queued: () => queued,
    });
  };
  const fallback = () => {
    const transaction = bull.multi();
    return counted(transaction, transaction.runCommand.bind(transaction));
  };
  const lean = adds.length > 0;
  const make = () => {
    if (!lean) return fallback();
    const transaction = redis.multi() as unknown as SubmitTransaction & Record<string, unknown>;
    return counted(transaction, (name, args) => {
      const command = transaction[name];
      if (typeof command !== 'function') throw new Error(`the submit connection has no script ${name}`);
      command.call(transaction, args);
    });
  };
  return { make, fallback, lean };
}

export interface AdmissionBounds {
  maxQueued: number;
  maxQueuedPerTenant: number;
}

export interface Admission {
  /** Queues the check on `transaction`, before the adds it guards. */
  check(transaction: Transaction, jobs: readonly { id: string; tenantId: string }[]): void;
  /**
   * The check's reply: the ids that did not exist yet (an existing id is the same idempotent
   * job), recorded against their tenants; or, past a bound, the QUEUE_FULL / TENANT_QUEUE_FULL
   * error to throw once `releaseHolds` has run.
   */
  outcome(reply: unknown, jobs: readonly { id: string }[]): { fresh: Set<string> } | { refused: QueueError };
  /** Drops the holds a refused check left for these jobs (their ids are free again at once). */
  releaseHolds(jobs: readonly { id: string }[]): Promise<void>;
  /** Takes admitted jobs off their tenants' counts again (their add failed). Best effort. */
  release(jobs: readonly { id: string; tenantId: string }[]): void;
}

/**
 * `hosts` are the connections whose transactions carry the checks (see submitTransactions);
 * `bullKey` names a key of the BullMQ queue (Queue.toKey); `redis` takes released entries off the
 * tenants' counts and releases holds.
 */
export function createAdmission(
  hosts: readonly ScriptHost[],
  redis: Redis,
  bullKey: (type: string) => string,
  keys: QueueKeys,
  bounds: AdmissionBounds,
): Admission {
  // Defined commands run by SHA (EVALSHA), so the script text crosses the wire once per
  // connection. No fixed key count: the first argument gives it (keys vary with the batch).
  for (const host of hosts) host.defineCommand(COMMAND, { lua: ADMIT_SCRIPT });
  const fixed = [bullKey('wait'), bullKey('prioritized'), bullKey('delayed'), bullKey('paused')];

  return {
    check(transaction, jobs) {
      const jobKeys = jobs.flatMap((job) => [keys.tenantQueued(job.tenantId), bullKey(job.id)]);
      const now = Date.now();
      transaction.runCommand(COMMAND, [
        fixed.length + jobKeys.length,
        ...fixed,
        ...jobKeys,
        now,
        bounds.maxQueued,
        bounds.maxQueuedPerTenant,
        now - TENANT_STALE_MS,
        bullKey(''),
        keys.cancelled(''),
        ...jobs.map((job) => job.id),
      ]);
    },
    outcome(value, jobs) {
      if (!Array.isArray(value)) throw new Error(`unexpected admission reply ${String(value)}`);
      const reply = value as (number | string)[];
      if (reply[0] === -1) {
        return { refused: new QueueError('QUEUE_FULL', `the queue holds ${reply[1]} waiting jobs, its bound is ${bounds.maxQueued}`) };
      }
      if (reply[0] === -2) {
        const message = `the tenant has ${reply[1]} waiting jobs, its bound is ${bounds.maxQueuedPerTenant}`;
        return { refused: new QueueError('TENANT_QUEUE_FULL', message) };
      }
      return { fresh: new Set(jobs.filter((_, index) => reply[index + 1] === 1).map((job) => job.id)) };
    },
    async releaseHolds(jobs) {
      await redis.eval(RELEASE_HOLDS_SCRIPT, jobs.length, ...jobs.map((job) => bullKey(job.id)));
    },
    release(jobs) {
      const undo = redis.multi();
      for (const job of jobs) undo.zrem(keys.tenantQueued(job.tenantId), job.id);
      undo.exec().catch(() => {
        // Redis unreachable: the entries age out after TENANT_STALE_MS.
      });
    },
  };
}
