import { defineConfig } from 'vitest/config';

// With DRACHTIO_HOST set the e2e files talk to one external drachtio-server, which spreads INVITEs
// over every connected app: files must then run one at a time. Otherwise each file starts its own
// embedded engine and files run in parallel.
const externalServer = Boolean(process.env.DRACHTIO_HOST);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration and e2e tests start real redis-server and SIPp processes; two cores, two workers.
    maxWorkers: 2,
    fileParallelism: !externalServer,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
