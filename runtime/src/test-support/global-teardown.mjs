export default async function globalTeardown() {
  await globalThis.__SWITCHYARD_NATS__?.stop();
}
