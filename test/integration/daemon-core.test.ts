import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, http, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';

describe('daemon core (process environment, real daemon process + panel-lite)', () => {
  let tp: TestPanel;
  let node: TestNode;
  let uuid: string;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp);
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    uuid = s.uuid;
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  it('answers /api/system in both shapes', async () => {
    const legacy = await node.api('GET', '/api/system');
    expect(legacy.status).toBe(200);
    expect(Object.keys(legacy.body).sort()).toEqual(['architecture', 'cpu_count', 'kernel_version', 'os', 'version']);
    expect(legacy.body.os).toBe('linux');
    const v2 = await node.api('GET', '/api/system?v=2');
    expect(v2.body.system.os_type).toBe('linux');
    expect(v2.body.docker.version).toBe('');
    expect(legacy.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses requests without the node token exactly like Wings', async () => {
    const none = await http('GET', `${node.url}/api/servers`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.text).toBe('{"error":"The required authorization heads were not present in the request."}');
    const basic = await http('GET', `${node.url}/api/servers`, { headers: { authorization: `Basic ${node.token}` } });
    expect(basic.status).toBe(401);
    const wrong = await http('GET', `${node.url}/api/servers`, { token: 'nope' });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toBe('{"error":"You are not authorized to access this endpoint."}');
    // authentication runs before the server lookup
    const unknown = await http('GET', `${node.url}/api/servers/00000000-0000-4000-8000-000000000000`);
    expect(unknown.status).toBe(401);
  });

  it('answers 404 for unknown servers and unknown routes', async () => {
    const r = await node.api('GET', '/api/servers/00000000-0000-4000-8000-000000000000');
    expect(r.status).toBe(404);
    expect(r.text).toBe('{"error":"The requested resource does not exist on this instance."}');
    const route = await node.api('GET', '/api/nope');
    expect(route.status).toBe(404);
    expect(route.text).toBe('404 page not found');
    expect(String(route.headers['content-type'])).toContain('text/plain');
  });

  it('sends CORS headers and answers OPTIONS with 204 before auth', async () => {
    const r = await http('OPTIONS', `${node.url}/api/servers/whatever/power`);
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe(tp.panel.publicUrl);
    expect(r.headers['access-control-allow-methods']).toBe('GET, POST, PATCH, PUT, DELETE, OPTIONS');
    expect(r.headers['access-control-max-age']).toBe('7200');
  });

  it('maps bad input to the documented error shapes', async () => {
    const empty = await http('POST', `${node.url}/api/servers/${uuid}/power`, {
      token: node.token,
      rawBody: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.status).toBe(400);
    expect(empty.body).toEqual({ error: 'The data passed in the request was not in a parsable format. Please try again.' });
    const bad = await http('POST', `${node.url}/api/servers/${uuid}/power`, {
      token: node.token,
      rawBody: '{nope',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('An unexpected error was encountered while processing this request');
    expect(bad.body.request_id).toBe(bad.headers['x-request-id']);
    const action = await node.api('POST', `/api/servers/${uuid}/power`, { action: 'explode' });
    expect(action.status).toBe(422);
    expect(action.body.error).toContain('The power action provided was not valid');
    const create = await node.api('POST', '/api/servers', { uuid: 'NOT-A-UUID', start_on_completion: false });
    expect(create.status).toBe(422);
    expect(create.body).toEqual({ error: 'The data provided in the request could not be validated.' });
    const dup = await node.api('POST', '/api/servers', { uuid, start_on_completion: false });
    expect(dup.status).toBe(409);
  });

  it('lists the server created through the Panel and serves its details', async () => {
    const list = await node.api('GET', '/api/servers');
    expect(list.body.map((s: any) => s.configuration.uuid)).toContain(uuid);
    const one = await node.api('GET', `/api/servers/${uuid}`);
    expect(one.body.state).toBe('offline');
    expect(Object.keys(one.body)).toEqual(['state', 'is_suspended', 'utilization', 'configuration']);
    expect(one.body.utilization.network).toEqual({ rx_bytes: 0, tx_bytes: 0 });
  });

  it('starts, takes console commands, shows /logs, stops by command', async () => {
    expect((await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status).toBe(202);
    await node.waitForState(uuid, 'running');
    expect((await node.api('POST', `/api/servers/${uuid}/commands`, { commands: ['hello'] })).status).toBe(204);
    await waitFor(async () => (await node.api('GET', `/api/servers/${uuid}/logs?size=10`)).body.data?.includes('got hello'), {
      what: 'echo in /logs',
    });
    expect((await node.api('POST', `/api/servers/${uuid}/power`, { action: 'stop' })).status).toBe(202);
    await node.waitForState(uuid, 'offline');
  });

  it('refuses commands to a stopped server with 502', async () => {
    const r = await node.api('POST', `/api/servers/${uuid}/commands`, { commands: ['x'] });
    expect(r.status).toBe(502);
    expect(r.body).toEqual({ error: 'Cannot send commands to a stopped server instance.' });
  });

  it('kills and restarts', async () => {
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    await node.waitForState(uuid, 'running');
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'restart', wait_seconds: 5 });
    await waitFor(async () => (await node.api('GET', `/api/servers/${uuid}/logs`)).body.data?.filter((l: string) => l === 'server starting').length === 1, {
      what: 'restart output',
    });
    await node.waitForState(uuid, 'running');
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await node.waitForState(uuid, 'offline');
  });

  it('detects a crash and restarts the server once', async () => {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      invocation: 'echo "Done (up)"; sleep 0.3; exit 7',
      startup_done: ['Done ('],
      skip_egg_scripts: true,
    });
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    // first run crashes, is restarted, crashes again within the timeout: stays offline
    await waitFor(async () => {
      const logs = (await node.api('GET', `/api/servers/${s.uuid}/logs`)).body.data ?? [];
      return logs.length >= 1;
    });
    await waitFor(async () => {
      const d = fs.readFileSync(path.join(node.root, 'log', 'wings.log'), 'utf8');
      return d.includes('crash restart') || d.includes('server crashed; restarting');
    }, { what: 'crash restart log' });
    await node.waitForState(s.uuid, 'offline');
  });

  it('refuses to start a suspended server with 400', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true, suspended: true });
    const r = await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: 'Cannot start or restart a suspended server.' });
  });

  it('deletes a server: process, files and registration', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await node.waitForState(s.uuid, 'running');
    fs.writeFileSync(path.join(node.serverDir(s.uuid), 'world.dat'), 'x');
    expect((await node.api('DELETE', `/api/servers/${s.uuid}`)).status).toBe(204);
    expect((await node.api('GET', `/api/servers/${s.uuid}`)).status).toBe(404);
    await waitFor(() => !fs.existsSync(node.serverDir(s.uuid)), { what: 'data dir removal' });
  });

  it('restores running servers after a daemon restart (states.json)', async () => {
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    await node.waitForState(uuid, 'running');
    expect(await node.stop()).toBe(0);
    const states = JSON.parse(fs.readFileSync(path.join(node.root, 'lib', 'states.json'), 'utf8'));
    expect(states[uuid]).toBe('running');
    await node.start();
    await node.waitForState(uuid, 'running');
  });

  it('keeps unknown config keys and applies POST /api/update', async () => {
    const before = fs.readFileSync(node.configPath, 'utf8');
    fs.writeFileSync(node.configPath, `${before}\nsome_future_key:\n  nested: 1\n`);
    await node.stop();
    await node.start();
    const r = await node.api('POST', '/api/update', { debug: false, api: { upload_limit: 250 } });
    expect(r.body).toEqual({ applied: true });
    const after = fs.readFileSync(node.configPath, 'utf8');
    expect(after).toContain('some_future_key');
    expect(after).toContain('upload_limit: 250');
    expect(fs.statSync(node.configPath).mode & 0o777).toBe(0o600);
  });
});
