import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  ECHO_SERVER,
  http,
  inspectServerContainer,
  nodeContainers,
  removeNodeContainers,
  serverOptions,
  startNode,
  startPanel,
  testDocker,
  testEnvironments,
  waitFor,
  type TestNode,
  type TestPanel,
} from '../helpers/harness.js';

const environments = await testEnvironments();

describe.each(environments)('daemon core (%s environment, real daemon process + panel-lite)', (env) => {
  let tp: TestPanel;
  let node: TestNode;
  let uuid: string;
  const opts = serverOptions(env);
  const docker = env === 'docker';

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp, { environment: env });
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true });
    uuid = s.uuid;
  });
  afterAll(async () => {
    await node?.stop();
    await removeNodeContainers(node);
    await tp?.close();
  });

  it('answers /api/system in both shapes', async () => {
    const legacy = await node.api('GET', '/api/system');
    expect(legacy.status).toBe(200);
    expect(Object.keys(legacy.body).sort()).toEqual(['architecture', 'cpu_count', 'kernel_version', 'os', 'version']);
    expect(legacy.body.os).toBe('linux');
    const v2 = await node.api('GET', '/api/system?v=2');
    expect(v2.body.system.os_type).toBe('linux');
    if (docker) expect(v2.body.docker.version).not.toBe('');
    else expect(v2.body.docker.version).toBe('');
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
    if (docker) {
      // POST /api/servers created the (stopped) container, labelled with this node's uuid.
      const info = await waitFor(() => inspectServerContainer(node, uuid), { what: 'container creation' });
      expect(info.State.Running).toBe(false);
      expect(info.Config.Labels['wings-ts.node']).toBe(node.nodeUuid);
      expect(info.Config.Image).toBe('wings-ts/busybox:latest');
    }
  });

  it('starts, takes console commands, shows /logs, stops by command', async () => {
    expect((await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status).toBe(202);
    await node.waitForState(uuid, 'running');
    if (docker) expect((await inspectServerContainer(node, uuid))?.State.Running).toBe(true);
    expect((await node.api('POST', `/api/servers/${uuid}/commands`, { commands: ['hello'] })).status).toBe(204);
    await waitFor(async () => (await node.api('GET', `/api/servers/${uuid}/logs?size=10`)).body.data?.includes('got hello'), {
      what: 'echo in /logs',
    });
    expect((await node.api('POST', `/api/servers/${uuid}/power`, { action: 'stop', wait_seconds: 5 })).status).toBe(202);
    await node.waitForState(uuid, 'offline');
    if (docker) {
      const info = await inspectServerContainer(node, uuid);
      expect(info?.State.Running).toBe(false);
      expect(info?.State.ExitCode).toBe(0);
    }
  });

  it('stops by signal', async () => {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...opts,
      invocation: 'trap "echo got-term; exit 0" TERM; echo "Done (ready)"; while true; do sleep 0.1; done',
      startup_done: ['Done ('],
      stop: { type: 'signal', value: 'SIGTERM' },
      skip_egg_scripts: true,
    });
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await node.waitForState(s.uuid, 'running');
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'stop', wait_seconds: 5 });
    await node.waitForState(s.uuid, 'offline');
    if (docker) {
      await waitFor(async () => (await inspectServerContainer(node, s.uuid))?.State.Running === false, { what: 'container stopped' });
    }
    await waitFor(async () => (await node.api('GET', `/api/servers/${s.uuid}/logs`)).body.data?.includes('got-term'), {
      what: 'trap output in /logs',
    });
  });

  it('drives the server through the websocket: power, console, history, stats', async () => {
    const { data } = await tp.panel.admin.websocketToken(uuid);
    const messages: { event: string; args?: string[] }[] = [];
    const ws = new WebSocket(data.socket, { headers: { Origin: tp.panel.publicUrl } });
    ws.on('message', (raw) => messages.push(JSON.parse((raw as Buffer).toString('utf8')) as { event: string; args?: string[] }));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const send = (event: string, ...args: string[]): void => ws.send(JSON.stringify({ event, args }));
    const seen = (event: string, arg?: (a: string) => boolean) =>
      waitFor(() => messages.find((m) => m.event === event && (!arg || arg(m.args?.[0] ?? ''))), { what: `websocket ${event}` });
    try {
      send('auth', data.token);
      await seen('auth success');
      send('set state', 'start');
      await seen('status', (a) => a === 'running');
      send('send command', 'via-websocket');
      await seen('console output', (a) => a === 'got via-websocket');
      const before = messages.length;
      send('send logs');
      await waitFor(() => messages.slice(before).some((m) => m.event === 'console output' && m.args?.[0] === 'Done (ready)'), {
        what: 'history through send logs',
      });
      const stats = JSON.parse((await seen('stats', (a) => JSON.parse(a).state === 'running')).args![0]);
      if (docker) {
        expect(stats.memory_limit_bytes).toBe(Math.round(256 * 1.15 * 1e6));
        await waitFor(() => messages.some((m) => m.event === 'stats' && JSON.parse(m.args![0]).memory_bytes > 0), {
          what: 'a stats sample of the running container',
        });
      }
      send('set state', 'stop');
      await seen('status', (a) => a === 'offline');
      await node.waitForState(uuid, 'offline');
    } finally {
      ws.terminate();
    }
  });

  it('refuses commands to a stopped server with 502', async () => {
    const r = await node.api('POST', `/api/servers/${uuid}/commands`, { commands: ['x'] });
    expect(r.status).toBe(502);
    expect(r.body).toEqual({ error: 'Cannot send commands to a stopped server instance.' });
  });

  it('kills and restarts', async () => {
    // The previous stop publishes `offline` a moment before its power action releases the lock.
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start', wait_seconds: 5 });
    await node.waitForState(uuid, 'running');
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'restart', wait_seconds: 5 });
    await waitFor(async () => (await node.api('GET', `/api/servers/${uuid}/logs`)).body.data?.filter((l: string) => l === 'server starting').length === 1, {
      what: 'restart output',
    });
    await node.waitForState(uuid, 'running');
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await node.waitForState(uuid, 'offline');
    if (docker) {
      await waitFor(async () => (await inspectServerContainer(node, uuid))?.State.Running === false, { what: 'container killed' });
      expect((await inspectServerContainer(node, uuid))?.State.ExitCode).toBe(137);
    }
  });

  it('detects a crash and restarts the server once', async () => {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...opts,
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
    if (docker) {
      // the restarted (re-created) container crashed as well, and nothing restarted it again
      await waitFor(async () => {
        const info = await inspectServerContainer(node, s.uuid);
        return info?.State.Status === 'exited' && info.State.ExitCode === 7;
      }, { what: 'second crash' });
      await node.waitForState(s.uuid, 'offline');
    }
  });

  it('refuses to start a suspended server with 400', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true, suspended: true });
    const r = await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: 'Cannot start or restart a suspended server.' });
  });

  it('deletes a server: process or container, files and registration', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true });
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await node.waitForState(s.uuid, 'running');
    fs.writeFileSync(path.join(node.serverDir(s.uuid), 'world.dat'), 'x');
    expect((await node.api('DELETE', `/api/servers/${s.uuid}`)).status).toBe(204);
    expect((await node.api('GET', `/api/servers/${s.uuid}`)).status).toBe(404);
    await waitFor(() => !fs.existsSync(node.serverDir(s.uuid)), { what: 'data dir removal' });
    if (docker) {
      expect(await inspectServerContainer(node, s.uuid)).toBeNull();
      expect((await nodeContainers(node)).map((c) => c.name)).not.toContain(node.containerName(s.uuid));
    }
  });

  it.runIf(docker)('creates the container with the limits of the build (docker inspect)', async () => {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...ECHO_SERVER,
      image: opts.image,
      build: { memory_limit: 512, swap: 0, cpu_limit: 150, io_weight: 500, threads: '0', disk_space: 0 },
      skip_egg_scripts: true,
    });
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await node.waitForState(s.uuid, 'running');
    const info = (await inspectServerContainer(node, s.uuid))!;
    const host = info.HostConfig;
    const memory = Math.round(512 * 1.15 * 1e6);
    expect(host.Memory).toBe(memory);
    expect(host.MemoryReservation).toBe(512 * 1e6);
    expect(host.CpuQuota).toBe(150_000);
    expect(host.CpuPeriod).toBe(100_000);
    expect(host.CpuShares).toBe(1024);
    expect(host.CpusetCpus).toBe('0');
    expect(host.PidsLimit).toBe(512);
    expect(host.NetworkMode).toBe('none');
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.Binds).toContain(`${node.serverDir(s.uuid)}:/home/container`);
    expect(info.Mounts.find((m) => m.Destination === '/home/container')).toMatchObject({
      Type: 'bind',
      Source: node.serverDir(s.uuid),
      RW: true,
    });
    expect(info.Name).toBe(`/${node.containerName(s.uuid)}`);
    expect(info.Config.Labels).toMatchObject({
      Service: 'Pterodactyl',
      ContainerType: 'server_process',
      'wings-ts.node': node.nodeUuid,
    });
    expect(info.Config.Env).toContain('SERVER_MEMORY=512');
    // What the engine keeps depends on the kernel: without swap accounting it drops MemorySwap,
    // without a blkio weight controller (e.g. cgroup v1 without CFQ/BFQ) it discards BlkioWeight.
    const engine = (await testDocker().info()) as { SwapLimit?: boolean };
    if (engine.SwapLimit) expect(host.MemorySwap).toBe(memory);
    expect(host.BlkioWeight).toBe((await engineKeepsBlkioWeight(node)) ? 500 : 0);
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'kill' });
    await node.waitForState(s.uuid, 'offline');
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

  it.runIf(docker)('keeps the container running across a daemon restart and re-attaches its console (docs/protocol.md D9.1)', async () => {
    await node.waitForState(uuid, 'running');
    expect((await node.api('POST', `/api/servers/${uuid}/commands`, { commands: ['before-restart'] })).status).toBe(204);
    await waitFor(async () => (await node.api('GET', `/api/servers/${uuid}/logs`)).body.data?.includes('got before-restart'), {
      what: 'echo before the restart',
    });
    const before = (await inspectServerContainer(node, uuid))!;
    expect(await node.stop()).toBe(0);
    // The daemon is gone; its container is not.
    const during = (await inspectServerContainer(node, uuid))!;
    expect(during.State.Running).toBe(true);
    expect(during.Id).toBe(before.Id);
    await node.start();
    await node.waitForState(uuid, 'running');
    const after = (await inspectServerContainer(node, uuid))!;
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    // history of the run before the restart, and a live console
    expect((await node.api('GET', `/api/servers/${uuid}/logs`)).body.data).toContain('got before-restart');
    expect((await node.api('POST', `/api/servers/${uuid}/commands`, { commands: ['after-restart'] })).status).toBe(204);
    await waitFor(async () => (await node.api('GET', `/api/servers/${uuid}/logs`)).body.data?.includes('got after-restart'), {
      what: 'echo after the restart',
    });
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

/** Does this kernel/engine keep a BlkioWeight? (Docker discards it with a warning when it cannot apply it.) */
async function engineKeepsBlkioWeight(node: TestNode): Promise<boolean> {
  const docker = testDocker();
  const probe = await docker.createContainer({
    Image: 'wings-ts/busybox:latest',
    Cmd: ['true'],
    Labels: { 'wings-ts.node': node.nodeUuid, 'wings-ts.test': 'blkio-probe' },
    HostConfig: { BlkioWeight: 500, NetworkMode: 'none' },
  });
  try {
    return (await probe.inspect()).HostConfig.BlkioWeight === 500;
  } finally {
    await probe.remove({ force: true });
  }
}
