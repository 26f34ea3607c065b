import { defineConfig } from 'vitest/config';

// isolated-vm asks for --no-node-snapshot on Node >= 20. Tests that load it in-process (thread-level
// tests, escapes run through the pool load it only in executor children) get it through execArgv.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    execArgv: ['--no-node-snapshot'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
