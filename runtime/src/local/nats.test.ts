import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { natsSettings } from '../settings.js';
import { useTempDirs } from '../test-support/temp.js';
import { freePort } from './nats-server.js';
import { connectOrStartNats, RUNNING_URL_FILE } from './nats.js';

const tempDir = useTempDirs('sy-local-nats-');

describe('connectOrStartNats on a dev store', () => {
  it('publishes the running server in the store, and another command attaches to it instead of starting one', async () => {
    const store = await tempDir();
    const nowhere = natsSettings({ servers: [`nats://127.0.0.1:${await freePort()}`] });
    const notices: string[] = [];
    const dev = await connectOrStartNats(nowhere, (l) => notices.push(l), { storeDir: store });
    try {
      expect(dev.local).toBeDefined();
      expect((await readFile(path.join(store, RUNNING_URL_FILE), 'utf8')).trim()).toBe(dev.local!.url);
      const other = await connectOrStartNats(nowhere, (l) => notices.push(l), { storeDir: store, attach: true });
      expect(other.local).toBeUndefined();
      expect(other.settings.servers).toEqual([dev.local!.url]);
      expect(notices.at(-1)).toContain('using the nats-server of the running dev');
      await other.nc.close();
    } finally {
      await dev.nc.close();
      await dev.local!.stop();
    }
    // Stopped: the store no longer names a server.
    expect(existsSync(path.join(store, RUNNING_URL_FILE))).toBe(false);
  });
});
