// Prometheus metrics of one worker process (prom-client), served on the HTTP side port by
// workers/http.ts. Runs in the worker process; workers/main.ts creates it, the processor feeds it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STATUSES, type Result } from '../src/result.ts';

/** What the metrics read at scrape time. */
export interface MetricsSources {
  /** Jobs running in this process and how many it takes at once. */
  utilisation(): { active: number; capacity: number };
  /**
   * Whether the connection the queue reads go through is ready. While it is not, they are not
   * issued: BullMQ's connection holds commands until Redis is back and never fails them.
   */
  redisReady(): boolean;
  /** Jobs of the queue by state (shared by every worker of the queue). */
  queueCounts(): Promise<Record<string, number>>;
  /** BullMQ's own Prometheus export of the queue. */
  bullmqExport(): Promise<string>;
  /** The engine's own counts, when the worker made the engine. */
  poolStats?(): { executors: number; inFlight: number; queued: number; restarts: number };
}

export interface WorkerMetrics {
  readonly registry: Registry;
  observe(result: Result, job: { tenantId: string }): void;
  /** The text a Prometheus scrape gets. */
  render(): Promise<string>;
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** How long a scrape waits for a queue read; a slower Redis leaves the last values in place. */
const QUEUE_READ_BOUND_MS = 1_000;

/**
 * A Redis read for scrapes: issued only while Redis is ready, at most one in flight (a read that
 * outlives its scrape is shared by the next ones rather than joined by more), and each scrape
 * waits at most QUEUE_READ_BOUND_MS for it. Resolves undefined when there is no fresh value.
 */
function scrapeRead<T>(read: () => Promise<T>, ready: () => boolean): () => Promise<T | undefined> {
  let pending: Promise<T> | undefined;
  return () => {
    if (pending === undefined) {
      if (!ready()) return Promise.resolve(undefined);
      const current = read();
      pending = current;
      const clear = () => {
        if (pending === current) pending = undefined;
      };
      current.then(clear, clear);
    }
    return valueWithin(pending, QUEUE_READ_BOUND_MS);
  };
}

/** The promise's value, or undefined when it rejects or `ms` passes first; never rejects. */
async function valueWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

export function createWorkerMetrics(sources: MetricsSources): WorkerMetrics {
  const registry = new Registry();
  const ready = () => sources.redisReady();
  const readCounts = scrapeRead(() => sources.queueCounts(), ready);
  const readBullmq = scrapeRead(() => sources.bullmqExport(), ready);
  let lastBullmq = '';
  collectDefaultMetrics({ register: registry });

  const jobs = new Counter({
    name: 'sandpool_jobs_total',
    help: 'Jobs this worker finished, by Result status',
    labelNames: ['status'],
    registers: [registry],
  });
  // Every status shows from the first scrape, at zero, so rate() works before the first failure.
  for (const status of STATUSES) jobs.inc({ status }, 0);

  const queueWait = new Histogram({
    name: 'sandpool_queue_wait_seconds',
    help: 'From submit until an isolate started on the job',
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const wall = new Histogram({
    name: 'sandpool_job_wall_seconds',
    help: 'Wall-clock time of the run, async work included',
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  const cpu = new Histogram({
    name: 'sandpool_job_cpu_seconds',
    help: 'CPU time V8 counted for the isolate',
    buckets: SECONDS_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: 'sandpool_pool_utilisation',
    help: 'Share of this worker\'s job slots in use (0..1)',
    registers: [registry],
    collect() {
      const { active, capacity } = sources.utilisation();
      this.set(capacity > 0 ? active / capacity : 0);
    },
  });
  new Gauge({
    name: 'sandpool_jobs_active',
    help: 'Jobs running in this worker',
    registers: [registry],
    collect() {
      this.set(sources.utilisation().active);
    },
  });
  if (sources.poolStats) {
    const stats = sources.poolStats.bind(sources);
    const gauges = [
      ['sandpool_pool_executors', 'Executor processes ready to take jobs', 'executors'],
      ['sandpool_pool_in_flight', 'Jobs the engine has dispatched to an executor and not yet answered', 'inFlight'],
      ['sandpool_pool_queued', 'Jobs waiting inside the engine for an executor', 'queued'],
      ['sandpool_pool_executor_restarts', 'Executors started to replace dead ones since the worker started', 'restarts'],
    ] as const;
    for (const [name, help, field] of gauges) {
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(stats()[field]);
        },
      });
    }
  }
  new Gauge({
    name: 'sandpool_queue_depth',
    help: 'Jobs of the queue by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      // Redis away or slow during a scrape: the gauge keeps its last values; /readyz says what is wrong.
      const counts = await readCounts();
      for (const [state, count] of Object.entries(counts ?? {})) this.set({ state }, count);
    },
  });

  return {
    registry,
    observe(result) {
      jobs.inc({ status: result.status });
      const m = result.metrics;
      queueWait.observe(m.queueWaitMs / 1000);
      if (result.status !== 'rejected' && result.status !== 'cancelled') {
        wall.observe(m.wallTimeMs / 1000);
        cpu.observe(m.cpuTimeMs / 1000);
      }
    },
    async render() {
      // Both reads at once: a scrape waits for Redis once, at most QUEUE_READ_BOUND_MS.
      const [own, fresh] = await Promise.all([registry.metrics(), readBullmq()]);
      // Same as the depth gauge: a scrape never fails or waits because Redis does, and keeps the last export.
      if (fresh !== undefined) lastBullmq = fresh;
      return lastBullmq ? `${own}\n${lastBullmq}\n` : own;
    },
  };
}
