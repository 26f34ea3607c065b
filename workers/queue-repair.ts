// Repairs, in Redis, of what a hand-written job or setting leaves that BullMQ's own scripts cannot
// get past (workers/main.ts runs them): each a Lua script, atomic, defined once per connection
// (EVALSHA) as the admission script is, and each returns what it repaired.
import type { Redis } from 'ioredis';
import { BULLMQ_KEY_TYPES } from '../src/queue.ts';

/** The queue's own keys (BullMQ's), each with the one Redis type it may have. */
const QUEUE_KEY_TYPES = Object.entries(BULLMQ_KEY_TYPES).filter((entry): entry is [string, string] => entry[1] !== undefined);

/**
 * Repairs what stops a queue, atomically, and returns what it repaired:
 * - a queue key of the wrong type (a job hash made by a producer's job whose id is `active`,
 *   `wait`...): deleted, and that id taken off the lists (the job is lost; it could never run);
 * - settings in `meta` BullMQ's scripts fail on: an events cap that is not a count (every finish
 *   would fail half-way, losing the job) is set back to the worker's; a global concurrency or rate
 *   limit that is not a number is removed.
 * KEYS: the queue keys in QUEUE_KEY_TYPES order; ARGV: their types, then their names, then the cap.
 */
const REPAIR_QUEUE_KEYS = `
local n = #KEYS
local repaired = {}
local keyOf = {}
for i = 1, n do keyOf[ARGV[n + i]] = KEYS[i] end
for i = 1, n do
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= 'none' and kind ~= ARGV[i] then
    redis.call('DEL', KEYS[i])
    repaired[#repaired + 1] = ARGV[n + i]
    local id = ARGV[n + i]
    for _, list in ipairs({'wait', 'paused', 'active'}) do
      if redis.call('TYPE', keyOf[list]).ok == 'list' then redis.call('LREM', keyOf[list], 0, id) end
    end
    for _, set in ipairs({'delayed', 'prioritized'}) do
      if redis.call('TYPE', keyOf[set]).ok == 'zset' then redis.call('ZREM', keyOf[set], id) end
    end
  end
end
local meta = keyOf['meta']
if redis.call('EXISTS', meta) == 1 then
  -- XTRIM's count: Redis's integer grammar (no sign, no leading zero).
  local cap = redis.call('HGET', meta, 'opts.maxLenEvents')
  if cap and (not (cap == '0' or string.match(cap, '^[1-9]%d*$')) or #cap > 15) then
    redis.call('HSET', meta, 'opts.maxLenEvents', ARGV[2 * n + 1])
    repaired[#repaired + 1] = 'meta.opts.maxLenEvents'
  end
  -- BullMQ reads these with tonumber(): any number does. The rate limit is a pair, removed whole.
  local concurrency = redis.call('HGET', meta, 'concurrency')
  if concurrency and tonumber(concurrency) == nil then
    redis.call('HDEL', meta, 'concurrency')
    repaired[#repaired + 1] = 'meta.concurrency'
  end
  local max = redis.call('HGET', meta, 'max')
  local duration = redis.call('HGET', meta, 'duration')
  if (max and tonumber(max) == nil) or (duration and tonumber(duration) == nil) then
    redis.call('HDEL', meta, 'max', 'duration')
    repaired[#repaired + 1] = 'meta.max+duration'
  end
end
return repaired`;

/**
 * Fields of a job's hash that BullMQ's fetch reads and cannot get past when they are unreadable
 * (written by hand): options that are not a JSON object, progress or parent that are not JSON,
 * attempt counters that are not counts. Such a job fails inside the fetch on every worker, so it
 * never runs, never fails, and comes back through stalled-job detection for ever. At its stall
 * they are reset (options to none, progress and parent dropped, counters to 0), atomically and
 * only while still unreadable: the next fetch can read the job, and it ends, failed for stalling
 * if it stalled too often, else run and answered like any other job. Returns the fields reset.
 */
const REPAIR_UNREADABLE_JOB = `
local key = KEYS[1]
local fixed = {}
local function readable(field)
  local text = redis.call('HGET', key, field)
  if not text then return true, nil end
  return pcall(cjson.decode, text)
end
local ok, opts = readable('opts')
if not ok or (opts ~= nil and type(opts) ~= 'table') then
  redis.call('HSET', key, 'opts', '{}')
  fixed[#fixed + 1] = 'opts'
end
if not readable('progress') then
  redis.call('HDEL', key, 'progress')
  fixed[#fixed + 1] = 'progress'
end
if not readable('parent') then
  redis.call('HDEL', key, 'parent', 'parentKey')
  fixed[#fixed + 1] = 'parent'
end
-- Counts Redis's HINCRBY takes: no sign, no leading zero, well inside 64 bits.
for _, field in ipairs({'atm', 'ats', 'stc'}) do
  local count = redis.call('HGET', key, field)
  if count and (not (count == '0' or string.match(count, '^[1-9]%d*$')) or #count > 9) then
    redis.call('HSET', key, field, '0')
    fixed[#fixed + 1] = field
  end
end
return fixed`;

const REPAIR_JOB_COMMAND = 'sandpoolRepairJob';
const REPAIR_QUEUE_COMMAND = 'sandpoolRepairQueue';

interface RepairCommands {
  [REPAIR_JOB_COMMAND](jobKey: string): Promise<string[]>;
  [REPAIR_QUEUE_COMMAND](...keysThenArgs: string[]): Promise<string[]>;
}

export interface QueueRepairs {
  /** At a job's stall: its unreadable fields reset (REPAIR_UNREADABLE_JOB). */
  job(jobKey: string): Promise<string[]>;
  /** The queue's own keys and settings (REPAIR_QUEUE_KEYS); `eventsMaxLen` is the worker's cap. */
  queue(eventsMaxLen: number): Promise<string[]>;
}

/** The repairs on `redis`, for the queue whose keys `keyOf` names. */
export function queueRepairs(redis: Redis, keyOf: (name: string) => string): QueueRepairs {
  redis.defineCommand(REPAIR_JOB_COMMAND, { lua: REPAIR_UNREADABLE_JOB, numberOfKeys: 1 });
  redis.defineCommand(REPAIR_QUEUE_COMMAND, { lua: REPAIR_QUEUE_KEYS, numberOfKeys: QUEUE_KEY_TYPES.length });
  const commands = redis as unknown as RepairCommands;
  const keys = QUEUE_KEY_TYPES.map(([name]) => keyOf(name));
  const kinds = QUEUE_KEY_TYPES.map(([, kind]) => kind);
  const names = QUEUE_KEY_TYPES.map(([name]) => name);
  return {
    job: (jobKey) => commands[REPAIR_JOB_COMMAND](jobKey),
    queue: (eventsMaxLen) => commands[REPAIR_QUEUE_COMMAND](...keys, ...kinds, ...names, String(eventsMaxLen)),
  };
}
