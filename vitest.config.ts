import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Server-starting suites share two cores; keep parallelism modest so timings stay sane.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
