import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { natsSettings, streamSettings, type NatsSettings, type NatsSettingsInput, type StreamSettings } from '../settings.js';

/** Settings file shared by every process command (`--settings`, YAML or JSON). */
export interface ProcessSettings {
  nats: Readonly<NatsSettings>;
  streams: Readonly<StreamSettings>;
}

/**
 * Reads the optional settings file `{nats: …, streams: …}` and applies defaults; `NATS_URL`
 * fills `nats.servers` when the file names none.
 * @throws SwitchyardError BAD_FILE (unreadable) or INVALID_SETTINGS (schema).
 */
export async function loadProcessSettings(file: string | undefined, natsUrl?: string): Promise<ProcessSettings> {
  let raw: { nats?: NatsSettingsInput; streams?: unknown } = {};
  if (file) {
    try {
      raw = (parse(await readFile(file, 'utf8')) ?? {}) as typeof raw;
    } catch (cause) {
      throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot read settings ${file}: ${(cause as Error).message}`, { cause });
    }
  }
  const nats = natsSettings({ ...raw.nats, ...(natsUrl ? { servers: natsUrl.split(',') } : {}) });
  return { nats, streams: streamSettings(raw.streams ?? {}) };
}

/** Reads a mounted Secret folder (one file per key, as the kubelet writes them) into key → value. */
export async function readSecretDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue; // ..data and other kubelet bookkeeping
    out[name] = (await readFile(path.join(dir, name), 'utf8')).replace(/\r?\n$/, '');
  }
  return out;
}

/** Runs `stop` once on the first SIGINT or SIGTERM; a second signal exits at once. */
export function onShutdown(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(130);
      stopping = true;
      process.stderr.write(`\n${signal}: draining and stopping (again to force)\n`);
      stop().then(resolve, (e) => {
        process.stderr.write(`error while stopping: ${(e as Error).message}\n`);
        resolve();
      });
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  });
}
