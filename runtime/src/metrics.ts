import { Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

/**
 * A prom-client registry for one process: default Node metrics plus whatever the components
 * register on it. Every component takes a registry as an option, so tests use a fresh one.
 */
export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}
