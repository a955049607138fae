// Jest global teardown: stops what the global setup started, both at once (they are independent).
export default async function globalTeardown() {
  await Promise.all([globalThis.__SWITCHYARD_KUBE__?.stop(), globalThis.__SWITCHYARD_NATS__?.stop()]);
}
