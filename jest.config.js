import { existsSync } from 'node:fs';

/**
 * Jest in ESM mode (run with --experimental-vm-modules), TypeScript transpiled by SWC; types are
 * checked by `tsc --noEmit` as a step of its own. The global setup starts the services the suite
 * needs (a pinned nats-server with JetStream on a free port, and a Kubernetes control plane).
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  // Tests sit beside the code of each workspace; the Helm chart's in charts/test.
  roots: ['runtime/src', 'operator/src', 'client/src', 'charts/test'].filter((dir) => existsSync(new URL(dir, import.meta.url))).map((dir) => `<rootDir>/${dir}`),
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*?)(?<!\\.json)\\.js$': '$1',
    // Workspaces import each other's sources in tests, so no build is needed first.
    '^@switchyard/runtime$': '<rootDir>/runtime/src/index.ts',
    '^@switchyard/runtime/api$': '<rootDir>/runtime/src/api/index.ts',
    '^@switchyard/client$': '<rootDir>/client/src/node/index.ts',
    '^@switchyard/client/core$': '<rootDir>/client/src/core/index.ts',
  },
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  globalSetup: '<rootDir>/runtime/src/test-support/global-setup.mjs',
  globalTeardown: '<rootDir>/runtime/src/test-support/global-teardown.mjs',
  testTimeout: 30000,
  maxWorkers: 2,
};
