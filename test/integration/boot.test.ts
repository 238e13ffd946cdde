import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, WINGS_BIN, startNode, startPanel, tmpDir, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';

describe('boot from the Panel', () => {
  let tp: TestPanel;
  let node: TestNode;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp, { config: { remote_query: { boot_servers_per_page: 2 } } });
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  it('loads every page of the server list (pages after the first in parallel) and resets the Panel', async () => {
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, create_on_node: false });
      created.push(s.uuid);
    }
    await node.stop();
    await node.start();
    const list = await node.api('GET', '/api/servers');
    expect(list.body.map((s: any) => s.configuration.uuid).sort()).toEqual([...created].sort());
    const pages = await tp.panel.admin.calls({ path: '/api/remote/servers$' });
    expect(pages.filter((c) => c.node_id === node.id).length).toBeGreaterThanOrEqual(4);
    await waitFor(async () => (await tp.panel.admin.calls({ path: '/servers/reset$' })).length > 0, { what: 'reset call' });
  });

  it('retries the server list while the Panel answers 5xx, then boots', async () => {
    await node.stop();
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: '/api/remote/servers$', status: 502, count: 2 });
    await node.start();
    expect((await node.api('GET', '/api/servers')).status).toBe(200);
  });

  it('exits non-zero when the Panel refuses the node (4xx is final)', async () => {
    await node.stop();
    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: '/api/remote/servers$', status: 403, count: 1 });
    // spawn, not spawnSync: panel-lite runs in this process and must keep answering
    const started = Date.now();
    const child = spawn(process.execPath, [WINGS_BIN, '--config', node.configPath]);
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(out).toContain('failed to boot');
    expect(out).toContain('HTTP/403');
    expect(Date.now() - started).toBeLessThan(8000); // no retries on 4xx
    await node.start();
  });

  it('never writes the node token or a JWT to its logs', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    // exercise authenticated routes, a websocket token and a Panel call
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await node.waitForState(s.uuid, 'running');
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'kill' });
    await node.waitForState(s.uuid, 'offline');
    const cfg = parse(fs.readFileSync(node.configPath, 'utf8')) as { token: string; token_id: string };
    const logs = node.log() + fs.readFileSync(path.join(node.root, 'log', 'wings.log'), 'utf8');
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs).not.toContain(cfg.token);
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
  });
});

describe('the wings command', () => {
  it('exits 1 with one line naming the file (missing, not YAML) and the key (invalid), no colour off a terminal', () => {
    const missing = spawnSync(process.execPath, [WINGS_BIN, '--config', '/nonexistent/wings.yml'], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('wings: /nonexistent/wings.yml: configuration file not found\n');
    expect(missing.stdout).toBe('');
    const dir = tmpDir();
    const file = path.join(dir, 'config.yml');
    fs.writeFileSync(file, stringify({ token: 'x', api: { port: 'http' } }));
    const invalid = spawnSync(process.execPath, [WINGS_BIN, '--config', file], { encoding: 'utf8' });
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toBe(`wings: ${file}: api.port: expected number, received string\n`);
    fs.writeFileSync(file, 'token: x\napi:\n  port: 8080\n host: [\n');
    const notYaml = spawnSync(process.execPath, [WINGS_BIN, '--config', file], { encoding: 'utf8' });
    expect(notYaml.status).toBe(1);
    expect(notYaml.stderr).toMatch(new RegExp(`^wings: ${file}: not valid YAML: .* at line 4, column 1\\n$`));
    fs.writeFileSync(file, stringify({ environment: 'kubernetes', api: { port: 70000 }, allowed_origins: [1] }));
    const several = spawnSync(process.execPath, [WINGS_BIN, '--config', file], { encoding: 'utf8' });
    expect(several.stderr.split('\n')).toEqual([
      `wings: ${file}: api.port: Too big: expected number to be <=65535`,
      `wings: ${file}: allowed_origins[0]: expected string, received number`,
      `wings: ${file}: environment: expected one of "docker"|"process"`,
      '',
    ]);
    for (const r of [missing, invalid, notYaml, several]) expect(r.stderr).not.toContain('\u001b[');
    fs.rmSync(dir, { recursive: true });
  });

  it('prints its version', () => {
    const r = spawnSync(process.execPath, [WINGS_BIN, '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
