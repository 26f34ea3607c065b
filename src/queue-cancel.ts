// Taking a cancelled job out of the queue while it still waits, and only then. BullMQ's own
// `job.remove()` removes any job no worker holds a lock on, finished ones included: a cancel that
// read its job waiting, and removed it after a worker had taken and finished it in between, deleted
// the Result the job had finished with. Here the "still waiting?" check and BullMQ's removal are one
// script, which Redis runs with nothing in between.
import type { Redis } from 'ioredis';
import type { ScriptHost } from './queue-admission.ts';

/** What `removeWaiting` did with a job. */
export type WaitingRemoval =
  /** Taken out of the queue and deleted: no worker will run it. */
  | 'removed'
  /** No longer waiting (a worker holds it or has finished it), or gone: left alone. */
  | 'not-waiting';

const COMMAND = 'sandpoolRemoveWaiting';
/** Returned by the guard: the job is in none of the lists a worker takes jobs from. */
const NOT_WAITING = 2;

/** BullMQ's removal script (removeJob:<version>): KEYS job, repeat; ARGV id, remove children, queue prefix. */
const BULLMQ_REMOVE_SCRIPT = /^removeJob:/;

// Run first, then BullMQ's script as it is. A job counts as waiting while it sits in the wait or
// paused list or the prioritized or delayed set, and has no finish time (a finished job is in none
// of them anyway; the field is the cheap check). The lists are scanned (LPOS), as BullMQ's own
// removal scans them.
const GUARD = `
local sandpoolJob = KEYS[1]
local sandpoolId = ARGV[1]
local sandpoolPrefix = ARGV[3]
if redis.call('EXISTS', sandpoolJob) == 0 or redis.call('HEXISTS', sandpoolJob, 'finishedOn') == 1 then
  return ${NOT_WAITING}
end
if not (redis.call('ZSCORE', sandpoolPrefix .. 'prioritized', sandpoolId)
    or redis.call('ZSCORE', sandpoolPrefix .. 'delayed', sandpoolId)
    or redis.call('LPOS', sandpoolPrefix .. 'wait', sandpoolId)
    or redis.call('LPOS', sandpoolPrefix .. 'paused', sandpoolId)) then
  return ${NOT_WAITING}
end
`;

interface ScriptSource {
  lua: string;
  numberOfKeys: number | null;
}

/**
 * Defines the guarded removal on `redis`, built from the removal script of the installed BullMQ
 * (read off its connection `bull`), and returns it. `bullKey` names a key of the queue
 * (Queue.toKey). Without BullMQ's script (a version that renamed it), nothing is removed: a
 * cancelled job then stays queued and ends `cancelled` when a worker takes it and reads its mark.
 */
export function defineRemoveWaiting(
  redis: Redis,
  bull: ScriptHost,
  bullKey: (type: string) => string,
): (id: string) => Promise<WaitingRemoval> {
  const scripts = (bull as { scriptsSet?: Record<string, ScriptSource> }).scriptsSet ?? {};
  const remove = Object.entries(scripts).find(([name]) => BULLMQ_REMOVE_SCRIPT.test(name))?.[1];
  if (remove === undefined || remove.numberOfKeys !== 2) return async () => 'not-waiting';
  redis.defineCommand(COMMAND, { lua: GUARD + remove.lua, numberOfKeys: 2 });
  const run = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[COMMAND]!.bind(redis);
  return async (id) => {
    // BullMQ's answers past the guard: 1 removed; 0 locked (a worker holds it); negative, a
    // scheduler's job. Only 1 took it out of the queue.
    const reply = await run(bullKey(id), bullKey('repeat'), id, 0, bullKey(''));
    return reply === 1 ? 'removed' : 'not-waiting';
  };
}
