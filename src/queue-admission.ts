// Admission: the client's backpressure and idempotency check, run in the caller's process by
// src/client.ts. It is queued in one MULTI with the BullMQ adds it guards, so a submit costs one
// round trip: the check runs first; when it refuses, it holds the job ids so that BullMQ's add
// takes them for existing jobs and adds nothing; a last script drops the holds. Atomic, so no
// other client ever sees a hold or a job past a bound.
import type { Redis } from 'ioredis';
import { QueueError, type QueueKeys } from './queue.ts';

/** A waiting job older than this no longer counts against its tenant's bound (a lost entry ages out). */
export const TENANT_STALE_MS = 24 * 3600 * 1000;

/** Field of a hold: never a field of a BullMQ job hash. */
const HOLD_FIELD = 'sandpoolHold';

// Counts what waits in the queue (whoever produced it) and the tenant's waiting jobs, skips ids
// that already exist (idempotency), and records the new ones, atomically. Past a bound it holds
// the new ids instead (a hash with HOLD_FIELD where the job would go).
// KEYS: wait, prioritized, delayed, paused, then per job: tenant set, job hash.
// ARGV: now, maxQueued, maxPerTenant, staleBefore, then the job ids.
// Returns {1, s1..sn} (si = 1 new, 0 existing), {-1, total}, or {-2, count}.
const ADMIT_SCRIPT = `
local function hold(n, status)
  for i = 1, n do
    if status[i] == 1 then redis.call('HSET', KEYS[4 + 2 * i], '${HOLD_FIELD}', '1') end
  end
end
local total = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('LLEN', KEYS[4])
local n = #ARGV - 4
local status = {}
local perTenant = {}
local fresh = 0
for i = 1, n do
  local tenantKey = KEYS[3 + 2 * i]
  local jobKey = KEYS[4 + 2 * i]
  -- A hold left by a transaction that failed half-way is no job.
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
  if queued + count > tonumber(ARGV[3]) then
    hold(n, status)
    return {-2, queued}
  end
end
for i = 1, n do
  if status[i] == 1 then redis.call('ZADD', KEYS[3 + 2 * i], 'NX', ARGV[1], ARGV[4 + i]) end
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
const RELEASE_HOLDS = 'sandpoolReleaseHolds';

/** What the admission needs of a BullMQ transaction (IRedisTransaction): run a defined script. */
export interface Transaction {
  runCommand(name: string, args: (string | number)[]): unknown;
}

/** The BullMQ connection a transaction is made on (`await queue.client`). */
export interface ScriptHost {
  defineCommand(name: string, definition: { lua: string }): void;
}

export interface AdmissionBounds {
  maxQueued: number;
  maxQueuedPerTenant: number;
}

export interface Admission {
  /**
   * Queues the check on `transaction`, before the adds it guards; the adds must then be followed
   * by `releaseHolds` in the same transaction.
   */
  check(transaction: Transaction, jobs: readonly { id: string; tenantId: string }[]): void;
  /** Queues the removal of what a refused check held, after the adds. */
  releaseHolds(transaction: Transaction, jobs: readonly { id: string }[]): void;
  /**
   * The check's reply: the ids that did not exist yet (an existing id is the same idempotent
   * job), recorded against their tenants. Throws QUEUE_FULL or TENANT_QUEUE_FULL past a bound.
   */
  outcome(reply: unknown, jobs: readonly { id: string }[]): Set<string>;
  /** Takes admitted jobs off their tenants' counts again (their add failed). Best effort. */
  release(jobs: readonly { id: string; tenantId: string }[]): void;
}

/**
 * `host` is the BullMQ queue's connection, whose transactions carry the checks; `bullKey` names a
 * key of the BullMQ queue (Queue.toKey); `redis` takes released entries off the tenants' counts.
 */
export function createAdmission(
  host: ScriptHost,
  redis: Redis,
  bullKey: (type: string) => string,
  keys: QueueKeys,
  bounds: AdmissionBounds,
): Admission {
  // Defined commands run by SHA (EVALSHA), so the script text crosses the wire once per
  // connection. No fixed key count: the first argument gives it (keys vary with the batch).
  host.defineCommand(COMMAND, { lua: ADMIT_SCRIPT });
  host.defineCommand(RELEASE_HOLDS, { lua: RELEASE_HOLDS_SCRIPT });
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
        ...jobs.map((job) => job.id),
      ]);
    },
    releaseHolds(transaction, jobs) {
      transaction.runCommand(RELEASE_HOLDS, [jobs.length, ...jobs.map((job) => bullKey(job.id))]);
    },
    outcome(value, jobs) {
      if (!Array.isArray(value)) throw new Error(`unexpected admission reply ${String(value)}`);
      const reply = value as (number | string)[];
      if (reply[0] === -1) {
        throw new QueueError('QUEUE_FULL', `the queue holds ${reply[1]} waiting jobs, its bound is ${bounds.maxQueued}`);
      }
      if (reply[0] === -2) {
        throw new QueueError(
          'TENANT_QUEUE_FULL',
          `the tenant has ${reply[1]} waiting jobs, its bound is ${bounds.maxQueuedPerTenant}`,
        );
      }
      return new Set(jobs.filter((_, index) => reply[index + 1] === 1).map((job) => job.id));
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
