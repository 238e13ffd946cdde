import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { freePort, startPanel, tmpDir, type TestPanel } from '../helpers/harness.js';

describe('api.ssl', () => {
  let tp: TestPanel | undefined;
  let daemon: Daemon | undefined;
  afterAll(async () => {
    await daemon?.stop();
    await tp?.close();
  });

  it('serves the API over HTTPS with the configured certificate', async () => {
    tp = await startPanel();
    const dir = tmpDir('wings-tls-');
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    const port = await freePort();
    const node = await tp.panel.admin.createNode({ name: 'tls', url: `https://127.0.0.1:${port}`, data_root: dir });
    const loaded = parseConfigText(node.config, path.join(dir, 'config.yml'));
    const cfg = loaded.config;
    cfg.api = { ...cfg.api, host: '127.0.0.1', port, ssl: { enabled: true, cert, key } };
    cfg.environment = 'process';
    for (const k of ['root_directory', 'log_directory', 'data', 'archive_directory', 'backup_directory', 'tmp_directory'] as const) {
      cfg.system[k] = path.join(dir, k);
    }
    daemon = new Daemon({ loaded, logger: createLogger({ stdout: false }) });
    await daemon.start();
    expect(daemon.url).toBe(`https://127.0.0.1:${port}`);
    const res = await request(`https://127.0.0.1:${port}/api/system`, {
      headers: { authorization: `Bearer ${node.token}` },
      dispatcher: new Agent({ connect: { rejectUnauthorized: false } }),
    });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { os: string }).os).toBe('linux');
  });
});
