import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, WINGS_BIN, freePort, http, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';

const exec = promisify(execFile);
const MiB = 1024 * 1024;

async function wings(...args: string[]): Promise<string> {
  const { stdout } = await exec(process.execPath, [WINGS_BIN, ...args], { timeout: 20_000 });
  return stdout;
}

/** The value of one series in a Prometheus text exposition (undefined when absent). */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('wings transfers, wings diagnostics and /metrics during a real transfer', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;
  let metricsPort: number;

  beforeAll(async () => {
    tp = await startPanel();
    metricsPort = await freePort();
    // 3 MiB/s so that the transfer of 24 MiB is observably mid-stream for ~8 s, even on a loaded machine.
    [a, b] = await Promise.all([
      startNode(tp, { name: 'A', config: { system: { transfers: { upload_limit: 3 } }, metrics: { port: metricsPort, host: '127.0.0.1' } } }),
      startNode(tp, { name: 'B' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await tp?.close();
  });

  it('lists the transfer with real values, then counts it in the metrics', async () => {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    const uuid = s.uuid;
    await waitFor(() => fs.existsSync(a.serverDir(uuid)), { what: 'server directory' });
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(a.serverDir(uuid), `chunk-${i}.bin`), randomBytes(8 * MiB));

    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    await waitFor(async () => {
      const r = await b.api('GET', `/api/transfers/${uuid}`);
      return r.status === 200 && r.body.bytes_done > 0;
    }, { what: 'destination receiving' });

    // the three views at once (each is a fresh node process): --url/--token, --config, human
    const [outText, inText, human] = await Promise.all([
      wings('transfers', '--json', '--url', a.url, '--token', a.token),
      wings('transfers', '--json', '--config', b.configPath),
      wings('transfers', '--url', a.url, '--token', a.token),
    ]);
    const outgoing = JSON.parse(outText) as any[];
    expect(outgoing).toHaveLength(1);
    expect(outgoing[0]).toMatchObject({ server: uuid, direction: 'outgoing', state: 'processing', error: null });
    expect(outgoing[0].bytes_total).toBeGreaterThanOrEqual(24 * MiB);
    expect(outgoing[0].bytes_done).toBeGreaterThan(0);
    expect(outgoing[0].bytes_done).toBeLessThan(outgoing[0].bytes_total);
    expect(Date.parse(outgoing[0].started_at)).toBeLessThanOrEqual(Date.now());
    // --config on the destination
    const incoming = JSON.parse(inText) as any[];
    expect(incoming).toHaveLength(1);
    expect(incoming[0]).toMatchObject({ server: uuid, direction: 'incoming', state: 'processing' });
    expect(incoming[0].bytes_total).toBe(outgoing[0].bytes_total);
    // the human view: one line with the bar
    expect(human).toContain(uuid);
    expect(human).toMatch(/out\s+processing\s+\[=*\s*\] .* \/ 24\.0 MiB \(\d+%/);
    // active gauge while it runs
    const during = (await http('GET', `http://127.0.0.1:${metricsPort}/metrics`)).text;
    expect(series(during, 'wings_transfers_active', { direction: 'outgoing' })).toBe(1);
    expect(series(during, 'wings_transfer_bytes_total', { direction: 'outgoing' })).toBeGreaterThan(0);

    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === true, { what: 'panel success', timeoutMs: 30_000 });
    await waitFor(async () => (await a.api('GET', '/api/transfers')).body.length === 0 && (await b.api('GET', '/api/transfers')).body.length === 0, { what: 'both lists empty' });
    expect(JSON.parse(await wings('transfers', '--json', '--url', a.url, '--token', a.token))).toEqual([]);
    expect(await wings('transfers', '--config', b.configPath)).toContain('No active transfers.');

    // /metrics on the API, behind the node token
    const unauth = await http('GET', `${a.url}/metrics`);
    expect(unauth.status).toBe(401);
    expect((await http('GET', `${a.url}/metrics`, { token: 'wrong' })).status).toBe(403);
    const src = await a.api('GET', '/metrics');
    expect(src.status).toBe(200);
    expect(String(src.headers['content-type'])).toContain('text/plain');
    const text = src.text;
    expect(series(text, 'wings_transfers_total', { direction: 'outgoing', state: 'completed' })).toBe(1);
    expect(series(text, 'wings_transfer_bytes_total', { direction: 'outgoing' })).toBeGreaterThanOrEqual(24 * MiB);
    expect(series(text, 'wings_transfer_duration_seconds_count', { direction: 'outgoing', state: 'completed' })).toBe(1);
    expect(series(text, 'wings_transfer_duration_seconds_sum', { direction: 'outgoing', state: 'completed' })).toBeGreaterThan(1);
    expect(series(text, 'wings_transfers_active', { direction: 'outgoing' })).toBe(0);
    // HTTP requests by route pattern, never by raw URL
    expect(series(text, 'wings_http_requests_total', { method: 'GET', route: '/api/transfers', status: '200' })).toBeGreaterThanOrEqual(2);
    expect(series(text, 'wings_http_requests_total', { method: 'POST', route: '/api/servers/:server/transfer', status: '202' })).toBe(1);
    expect(series(text, 'wings_http_requests_total', { method: 'GET', route: '/metrics', status: '401' })).toBe(1);
    expect(text).not.toContain(`route="/api/servers/${uuid}`);
    // the server left A; default process metrics carry the prefix; the websocket gauge is there
    expect(series(text, 'wings_servers', { state: 'offline' })).toBe(0);
    expect(series(text, 'wings_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(series(text, 'wings_websocket_connections')).toBe(0);

    const dst = (await b.api('GET', '/metrics')).text;
    expect(series(dst, 'wings_transfers_total', { direction: 'incoming', state: 'completed' })).toBe(1);
    expect(series(dst, 'wings_transfer_bytes_total', { direction: 'incoming' })).toBeGreaterThanOrEqual(24 * MiB);
    expect(series(dst, 'wings_servers', { state: 'offline' })).toBe(1);

    // the separate port is open (no token) and serves only /metrics
    const open = await http('GET', `http://127.0.0.1:${metricsPort}/metrics`);
    expect(open.status).toBe(200);
    expect(series(open.text, 'wings_transfers_total', { direction: 'outgoing', state: 'completed' })).toBe(1);
    expect((await http('GET', `http://127.0.0.1:${metricsPort}/api/system`)).status).toBe(404);
  });

  it('wings diagnostics reports versions, a redacted config and a scrubbed log tail', async () => {
    const text = await wings('diagnostics', '--config', a.configPath);
    expect(text).toMatch(/wings-ts: \d+\.\d+\.\d+/);
    expect(text).toContain(`node: ${process.version}`);
    expect(text).toMatch(/kernel: /);
    expect(text).toContain('token: "[redacted]"');
    expect(text).toContain('environment: process');
    expect(text).toMatch(/ free of /);
    expect(text).toContain('wings.log (secrets scrubbed)');
    expect(text).toContain('wings-ts is ready');
    expect(text).not.toContain(a.token);
  });
});
