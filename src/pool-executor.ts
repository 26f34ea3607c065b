// Runs in the caller's process, under createPool(): one executor child process as the pool sees
// it — fork with the right flags, the IPC channel, a bounded tail of its stderr, and its memory
// and CPU read from /proc by the parent, so a wedged child cannot hide or misreport them.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ExecutorConfig, FromExecutor, ToExecutor } from '../workers/protocol.ts';

/**
 * Exit code of an executor that found itself unusable (its threads fail to start and piscina
 * stopped replacing them): the pool counts it as a failed start, not as a job's crash. Defined
 * here, in src, because workers may import src and not the other way round.
 */
export const EXECUTOR_EXIT_UNUSABLE = 70;

/** Enough to hold V8's fatal-error banner; the rest of a dying executor's stderr is dropped. */
const STDERR_TAIL_CHARS = 8 * 1024;
/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks on every mainstream arch. */
const CLOCK_TICKS_PER_SECOND = 100;

// V8's and isolated-vm's last words when a heap cannot grow (Node's "FATAL ERROR: … heap out of
// memory", V8's "Fatal JavaScript out of memory" / "Fatal process out of memory", isolated-vm's
// OOM handler printing "is_heap_oom").
const OUT_OF_MEMORY_PATTERN = /out of memory|heap limit|is_heap_oom|allocation failed/i;

export interface ExecutorExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The V8 or isolated-vm fatal out-of-memory banner was in its stderr. */
  outOfMemory: boolean;
  /** The last line of its stderr, capped: why an executor could not start, for the operator. */
  lastWords: string;
}

const LAST_WORDS_CHARS = 300;

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, LAST_WORDS_CHARS);
}

// Flags of the parent that must not reach an executor: a debugger port it would fight the parent
// for, and flags that make node run something other than the executor script.
const DROPPED_FLAG = /^(--inspect|--debug|--test|--watch|--input-type|--check$|-c$|--interactive$|-i$)/;
const DROPPED_FLAG_WITH_VALUE = new Set(['-e', '--eval', '-p', '--print']);

function executorExecArgv(): string[] {
  const kept: string[] = [];
  const inherited = process.execArgv;
  for (let index = 0; index < inherited.length; index++) {
    const flag = inherited[index] ?? '';
    if (DROPPED_FLAG_WITH_VALUE.has(flag)) {
      index++;
      continue;
    }
    if (DROPPED_FLAG.test(flag) || /^--(eval|print)=/.test(flag)) continue;
    kept.push(flag);
  }
  // isolated-vm cannot load into a process started from Node's startup snapshot.
  if (!kept.includes('--no-node-snapshot')) kept.push('--no-node-snapshot');
  return kept;
}

export class ExecutorProcess {
  /** 0 when the process could not even be spawned. */
  readonly pid: number;
  /** Settles once the process is gone and its stderr is read to the end. */
  readonly exited: Promise<ExecutorExit>;
  #child: ChildProcess;
  #stderrTail = '';
  #statusPath: string;
  #statPath: string;
  #referenced = true;

  constructor(executorPath: string, config: ExecutorConfig, onMessage: (message: FromExecutor) => void) {
    this.#child = fork(executorPath, [JSON.stringify(config)], {
      execArgv: executorExecArgv(),
      // stdout is ignored: nothing in an executor writes there on purpose, and guest output comes
      // back as data. stderr is read only for a dying process's last words.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
      // An executor needs nothing from the environment, and the caller's may hold secrets (Redis
      // passwords, API keys): should a snippet ever reach the executor's process, it finds none.
      // Timezone and locale fall back to the system's (/etc/localtime, ICU's default).
      env: {},
    });
    this.pid = this.#child.pid ?? 0;
    this.#statusPath = `/proc/${this.pid}/status`;
    this.#statPath = `/proc/${this.pid}/stat`;
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (chunk: string) => {
      const tail = this.#stderrTail + chunk;
      this.#stderrTail = tail.length > STDERR_TAIL_CHARS ? tail.slice(-STDERR_TAIL_CHARS) : tail;
    });
    this.#child.on('message', onMessage);
    this.exited = new Promise((resolve) => {
      const settle = (code: number | null, signal: NodeJS.Signals | null) =>
        resolve({
          code,
          signal,
          outOfMemory: OUT_OF_MEMORY_PATTERN.test(this.#stderrTail),
          lastWords: lastLine(this.#stderrTail),
        });
      this.#child.once('close', settle);
      // A spawn failure emits 'error' and may never 'close'.
      this.#child.once('error', () => {
        if (this.#child.exitCode === null && this.#child.signalCode === null && this.pid === 0) settle(null, null);
      });
    });
  }

  send(message: ToExecutor): void {
    if (!this.#child.connected) return;
    // The callback swallows EPIPE-like errors of a dying child: its 'close' reports the death.
    this.#child.send(message, undefined, undefined, () => {});
  }

  /** SIGKILL: a wedged or overgrown process gets no say. Safe to call on a dead process. */
  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }

  /** Graceful stop: the executor destroys its threads and exits. */
  shutdown(): void {
    this.send({ type: 'shutdown' });
  }

  /** Resident set size in MiB from /proc/<pid>/status, or undefined off Linux or once it is gone. */
  residentMb(): number | undefined {
    let status: string;
    try {
      status = readFileSync(this.#statusPath, 'latin1');
    } catch {
      // No /proc (not Linux) or the process already exited: nothing to sample.
      return undefined;
    }
    const at = status.indexOf('VmRSS:');
    if (at === -1) return undefined;
    return Number.parseInt(status.slice(at + 6), 10) / 1024;
  }

  /** User + system CPU seconds the process has used, from /proc/<pid>/stat, or undefined. */
  cpuSeconds(): number | undefined {
    let stat: string;
    try {
      stat = readFileSync(this.#statPath, 'latin1');
    } catch {
      // As in residentMb: no /proc, or the process is gone.
      return undefined;
    }
    // The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : undefined;
  }

  /**
   * Whether this child keeps the caller's event loop alive: only while it has work or is starting,
   * so an idle embedded pool never holds a process open that forgot close().
   */
  setReferenced(referenced: boolean): void {
    if (referenced === this.#referenced) return;
    this.#referenced = referenced;
    const stderr = this.#child.stderr as (NodeJS.ReadableStream & { ref?: () => void; unref?: () => void }) | null;
    if (referenced) {
      this.#child.ref();
      this.#child.channel?.ref();
      stderr?.ref?.();
    } else {
      this.#child.unref();
      this.#child.channel?.unref();
      stderr?.unref?.();
    }
  }
}
