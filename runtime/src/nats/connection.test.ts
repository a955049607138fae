import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startNatsServer, type RunningNatsServer } from '../local/nats-server.js';
import { natsSettings } from '../settings.js';
import { compareVersions, connectNats } from './connection.js';

const openssl = (dir: string, ...args: string[]) => promisify(execFile)('openssl', args, { cwd: dir });

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makeCertificates(): Promise<Record<'dir' | 'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-tls-'));
  await openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=switchyard-test-ca');
  await writeFile(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const who of ['server', 'client']) {
    await openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
    await openssl(dir, 'x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '1', '-extfile', 'san.ext');
  }
  const p = (f: string) => path.join(dir, f);
  return { dir, ca: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key') };
}

describe('compareVersions', () => {
  it.each([
    ['2.10.0', '2.9.10', 1],
    ['2.9.10', '2.10.0', -1],
    ['v2.15.2', '2.15.2', 0],
    ['2.11.0-RC.1', '2.10.9', 1],
  ])('%s vs %s', (a, b, sign) => expect(Math.sign(compareVersions(a, b))).toBe(sign));
});

describe('connectNats', () => {
  const servers: RunningNatsServer[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  const start = async (args: string[]) => {
    const s = await startNatsServer({ args });
    servers.push(s);
    return s;
  };

  it('refuses a server older than the minimum, naming both versions', async () => {
    const settings = natsSettings({ servers: [process.env.NATS_URL!], minServerVersion: '99.0.0' });
    await expect(connectNats(settings)).rejects.toMatchObject({
      name: 'SwitchyardError',
      code: 'SY_NATS_TOO_OLD',
      message: expect.stringMatching(/nats-server 2\.\d+\.\d+ .* is too old: Switchyard needs 99\.0\.0 or newer/),
    });
  });

  it('says which server could not be reached', async () => {
    await expect(connectNats(natsSettings({ servers: ['nats://127.0.0.1:1'] }))).rejects.toMatchObject({ code: 'SY_NATS_UNAVAILABLE', message: expect.stringContaining('nats://127.0.0.1:1') });
  });

  it('authenticates with user and password, and with a token', async () => {
    const userPass = await start(['--user', 'switchyard', '--pass', 's3cret']);
    const ok = await connectNats(natsSettings({ servers: [userPass.url], user: 'switchyard', pass: 's3cret' }));
    await ok.close();
    await expect(connectNats(natsSettings({ servers: [userPass.url], user: 'switchyard', pass: 'wrong' }))).rejects.toMatchObject({ code: 'SY_NATS_UNAVAILABLE' });

    const token = await start(['--auth', 'tok-123']);
    const byToken = await connectNats(natsSettings({ servers: [token.url], token: 'tok-123' }));
    await byToken.close();
    await expect(connectNats(natsSettings({ servers: [token.url] }))).rejects.toMatchObject({ code: 'SY_NATS_UNAVAILABLE' });
  });

  it('takes user and password, or a token, from NATS_USER/NATS_PASSWORD/NATS_TOKEN when the settings give none', async () => {
    const userPass = await start(['--user', 'switchyard', '--pass', 's3cret']);
    const fromEnv = natsSettings({ servers: [userPass.url] }, { NATS_USER: 'switchyard', NATS_PASSWORD: 's3cret' });
    expect(fromEnv).toMatchObject({ user: 'switchyard', pass: 's3cret' });
    await (await connectNats(fromEnv)).close();
    // Settings win over the environment.
    expect(natsSettings({ user: 'a', pass: 'b' }, { NATS_USER: 'switchyard', NATS_PASSWORD: 's3cret' })).toMatchObject({ user: 'a', pass: 'b' });
    const token = await start(['--auth', 'tok-123']);
    await (await connectNats(natsSettings({ servers: [token.url] }, { NATS_TOKEN: 'tok-123' }))).close();
    expect(natsSettings({ token: 'mine' }, { NATS_TOKEN: 'tok-123' }).token).toBe('mine');
  });

  it('connects over mutual TLS with the configured CA and client certificate', async () => {
    const c = await makeCertificates();
    dirs.push(c.dir);
    const tls = await start(['--tls', '--tlscert', c.serverCert, '--tlskey', c.serverKey, '--tlsverify', '--tlscacert', c.ca]);
    const nc = await connectNats(natsSettings({ servers: [tls.url], tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } }));
    expect(nc.info?.tls_required).toBe(true);
    await nc.close();
    // Without a client certificate the server refuses the handshake.
    await expect(connectNats(natsSettings({ servers: [tls.url], tls: { caFile: c.ca } }), { timeout: 2000 })).rejects.toMatchObject({ code: 'SY_NATS_UNAVAILABLE' });
  });
});
