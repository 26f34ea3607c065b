// Runs in the caller's process, under createPool(): the jobs the pool holds — each accepted job's
// record from execute() to its Result, and the FIFO where jobs wait for room on an executor.
import type { JobContext } from './pool-job.ts';
import type { Executor } from './pool-health.ts';
import type { Result } from './result.ts';
import type { ThreadTask } from '../workers/protocol.ts';

export type JobPlace = 'queued' | 'executor' | 'done';

/** One accepted job, from execute() until its Result. */
export interface Job extends JobContext {
  /** The job's name on the wire and in its executor: unique in this pool, unlike a caller's id. */
  key: string;
  task: ThreadTask;
  /** Runs started by this pool (attempt counts from the caller's base). */
  runs: number;
  place: JobPlace;
  executor: Executor | undefined;
  /** Epoch ms the pool believes the job got a thread; 0 while it waits inside the executor. */
  runningSince: number;
  /**
   * How long, since runningSince, the pool's own event loop was stalled (see Supervisor#sample):
   * its deadline moves by that much, since a job's answer cannot be read while the loop is stalled.
   */
  stalledMs: number;
  cancelRequested: boolean;
  /** The request's queueTimeoutMs, and the timer that ends the job while it still waits. */
  queueTimeoutMs: number | undefined;
  queueDeadline: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (result: Result) => void;
}

/** A FIFO over an array with a moving head: O(1) at both ends for the pool's use. */
export class JobQueue {
  #items: (Job | undefined)[] = [];
  #head = 0;
  push(job: Job): void {
    this.#items.push(job);
  }
  unshift(job: Job): void {
    if (this.#head > 0) this.#items[--this.#head] = job;
    else this.#items.unshift(job);
  }
  /** Next job still waiting; answered ones (cancelled while queued) are dropped on the way. */
  shift(): Job | undefined {
    while (this.#head < this.#items.length) {
      const job = this.#items[this.#head];
      this.#items[this.#head++] = undefined;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      if (job !== undefined && job.place === 'queued') return job;
    }
    return undefined;
  }
  peek(): Job | undefined {
    while (this.#head < this.#items.length) {
      const job = this.#items[this.#head];
      if (job !== undefined && job.place === 'queued') return job;
      this.#items[this.#head++] = undefined;
    }
    return undefined;
  }
  /** Entries held, answered ones not yet dropped included. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /**
   * Drops the entries of jobs answered while they waited (cancelled), which shift() only drops
   * once the head reaches them: behind a head that does not move, each would hold its job's code
   * and input.
   */
  compact(): void {
    this.#items = this.#items.slice(this.#head).filter((job) => job !== undefined && job.place === 'queued');
    this.#head = 0;
  }

  drain(): Job[] {
    const jobs = this.#items.slice(this.#head).filter((job): job is Job => job !== undefined && job.place === 'queued');
    this.#items = [];
    this.#head = 0;
    return jobs;
  }
}
