// Process helpers shared by the tests that watch executors and workers come and go.

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process (ended meanwhile).
    return false;
  }
}
