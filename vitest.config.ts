import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // End-to-end suites spawn child processes; two cores do not gain from more forks.
    maxWorkers: 2,
  },
});
