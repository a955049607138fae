// Jest global setup: starts the suite's nats-server (pinned build, free port, temporary store);
// its URL reaches every test file as NATS_URL. Plain ESM so Jest loads it without a transform;
// the TypeScript helper is loaded with tsx.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { startNatsServer } = await tsImport('../local/nats-server.ts', import.meta.url);
  const server = await startNatsServer();
  globalThis.__SWITCHYARD_NATS__ = server;
  process.env.NATS_URL = server.url;
}
