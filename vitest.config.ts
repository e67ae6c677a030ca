import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ once, for the tests that spawn `node dist/main.js`.
    globalSetup: ['test/global-setup.ts'],
    // Server tests spawn child processes and hold TLS listeners: keep parallelism modest on 2 cores.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
