// Admission: the client's backpressure and idempotency check, one atomic Redis script per submit
// (or batch), run in the caller's process by src/client.ts before a job is added.
import type { Redis } from 'ioredis';
import { QueueError, type QueueKeys } from './queue.ts';

/** A waiting job older than this no longer counts against its tenant's bound (a lost entry ages out). */
export const TENANT_STALE_MS = 24 * 3600 * 1000;

// Counts what waits in the queue (whoever produced it) and the tenant's waiting jobs, skips ids
// that already exist (idempotency), and records the new ones, atomically.
// KEYS: wait, prioritized, delayed, paused, then per job: tenant set, job hash.
// ARGV: now, maxQueued, maxPerTenant, staleBefore, then the job ids.
// Returns {1, s1..sn} (si = 1 new, 0 existing), {-1, total}, or {-2, count}.
const ADMIT_SCRIPT = `
local total = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('LLEN', KEYS[4])
local n = #ARGV - 4
local status = {}
local perTenant = {}
local fresh = 0
for i = 1, n do
  local tenantKey = KEYS[3 + 2 * i]
  if redis.call('EXISTS', KEYS[4 + 2 * i]) == 1 then
    status[i] = 0
  else
    status[i] = 1
    fresh = fresh + 1
    perTenant[tenantKey] = (perTenant[tenantKey] or 0) + 1
  end
end
if fresh > 0 and total + fresh > tonumber(ARGV[2]) then return {-1, total} end
for tenantKey, count in pairs(perTenant) do
  redis.call('ZREMRANGEBYSCORE', tenantKey, '-inf', ARGV[4])
  local queued = redis.call('ZCARD', tenantKey)
  if queued + count > tonumber(ARGV[3]) then return {-2, queued} end
end
for i = 1, n do
  if status[i] == 1 then redis.call('ZADD', KEYS[3 + 2 * i], 'NX', ARGV[1], ARGV[4 + i]) end
end
local reply = {1}
for i = 1, n do reply[i + 1] = status[i] end
return reply
`;

const COMMAND = 'sandpoolAdmit';

export interface AdmissionBounds {
  maxQueued: number;
  maxQueuedPerTenant: number;
}

export interface Admission {
  /**
   * Checks the bounds and records the new jobs against their tenants. Resolves with the ids that
   * do not exist yet (an existing id is the same idempotent job); throws QUEUE_FULL or
   * TENANT_QUEUE_FULL past a bound.
   */
  admit(jobs: readonly { id: string; tenantId: string }[]): Promise<Set<string>>;
  /** Takes admitted jobs off their tenants' counts again (their add failed). Best effort. */
  release(jobs: readonly { id: string; tenantId: string }[]): void;
}

/** `bullKey` names a key of the BullMQ queue (Queue.toKey). */
export function createAdmission(
  redis: Redis,
  bullKey: (type: string) => string,
  keys: QueueKeys,
  bounds: AdmissionBounds,
): Admission {
  // A defined command runs by its SHA (EVALSHA), so the script text crosses the wire once.
  redis.defineCommand(COMMAND, { lua: ADMIT_SCRIPT });
  const run = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<(number | string)[]>>)[COMMAND]!.bind(redis);
  const fixed = [bullKey('wait'), bullKey('prioritized'), bullKey('delayed'), bullKey('paused')];

  return {
    async admit(jobs) {
      const jobKeys = jobs.flatMap((job) => [keys.tenantQueued(job.tenantId), bullKey(job.id)]);
      const now = Date.now();
      const reply = await run(
        fixed.length + jobKeys.length,
        ...fixed,
        ...jobKeys,
        now,
        bounds.maxQueued,
        bounds.maxQueuedPerTenant,
        now - TENANT_STALE_MS,
        ...jobs.map((job) => job.id),
      );
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
