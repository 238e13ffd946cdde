import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Files run one at a time: every integration file starts real daemons (and some a 1 GiB
    // transfer); in parallel on a 2-core machine their timing-sensitive parts (websocket slow
    // reader, demo cancel) fought each other for the CPU.
    fileParallelism: false,
    maxWorkers: 1,
  },
});
