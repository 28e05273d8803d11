import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: the tests take directory locks, spawn
    // children and SIGKILL them; a crash must not take other files with it.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Child-process tests (second opener, CLI, torture) run the compiled dist/.
    globalSetup: ['test/helpers/build-dist.ts'],
  },
});
