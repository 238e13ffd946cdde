import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, WINGS_BIN, freePort, http, startNode, startPanel, tmpDir, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { EventRecorder } from '../helpers/ws.js';

const exec = promisify(execFile);

/** A daemon started by the test with separate stdout and stderr, to see exactly what each carries. */
interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnWings(args: string[]): Spawned {
  const child = spawn(process.execPath, [WINGS_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (err += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

function readConfig(file: string): Record<string, any> {
  return parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
}

/** A copy of a node's config.yml with `changes` deep-set (shallow per section), in a fresh directory. */
function configVariant(node: TestNode, changes: (c: Record<string, any>) => void): string {
  const cfg = readConfig(node.configPath);
  changes(cfg);
  const file = path.join(tmpDir('wings-config-'), 'config.yml');
  fs.writeFileSync(file, stringify(cfg), { mode: 0o600 });
  return file;
}

/** Holds a TCP port on loopback, as another program would. */
async function holdPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function wingsLog(node: TestNode): string {
  try {
    return fs.readFileSync(path.join(node.root, 'log', 'wings.log'), 'utf8');
  } catch {
    return '';
  }
}

/** The JSON lines of wings.log (those whose `msg` is `msg` when given). */
function logLines(node: TestNode, msg?: string): Record<string, any>[] {
  return wingsLog(node)
    .split('\n')
    .filter((l) => l.startsWith('{') && l.endsWith('}'))
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((l) => msg === undefined || l.msg === msg);
}

describe('config that speaks up, and what the logs say', () => {
  let tp: TestPanel;
  let node: TestNode;

  beforeAll(async () => {
    tp = await startPanel();
    // a typo of api.port, a key another daemon reads (Pelican), and a typo one level down
    node = await startNode(tp, {
      config: { api: { prot: 18130 }, system: { passwd: { enable: true }, transfers: { idle_timout: 30 } } },
    });
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  it('warns about each unknown key at boot, naming the file, keeps them in config.yml and lists them in diagnostics', async () => {
    const file = node.configPath;
    const warned = () => logLines(node).filter((l) => String(l.msg).includes('unknown key'));
    await waitFor(() => warned().length >= 2, { what: 'two unknown-key warnings in wings.log' });
    expect(warned().map((l) => [l.level, l.msg, l.key, l.suggestion, l.file])).toEqual([
      [40, `${file}: api.prot: unknown key, ignored (did you mean "api.port"?)`, 'api.prot', 'port', file],
      [
        40,
        `${file}: system.transfers.idle_timout: unknown key, ignored (did you mean "system.transfers.idle_timeout"?)`,
        'system.transfers.idle_timout',
        'idle_timeout',
        file,
      ],
    ]);
    // a key of another daemon is expected in a shared file: no warning at boot
    expect(wingsLog(node)).not.toContain('system.passwd');
    // kept when the daemon rewrote the file at boot, as Go does
    expect(readConfig(file).api.prot).toBe(18130);

    const { stdout } = await exec(process.execPath, [WINGS_BIN, 'diagnostics', '--config', file], { timeout: 30_000 });
    const section = stdout.slice(stdout.indexOf('== Unknown keys'), stdout.indexOf('== Reachability'));
    expect(section.split('\n').slice(1).filter(Boolean)).toEqual([
      'api.prot: unknown key, ignored (did you mean "api.port"?)',
      'system.passwd: read by Pelican and newer Go Wings, not by wings-ts (kept in the file, ignored)',
      'system.transfers.idle_timout: unknown key, ignored (did you mean "system.transfers.idle_timeout"?)',
    ]);
    const remote = String(readConfig(file).remote).replace(/\/+$/, '');
    expect(stdout).toMatch(new RegExp(`^panel: GET ${remote}/api/remote/servers\\?page=0&per_page=1: OK \\(HTTP 200, \\d+ ms\\)$`, 'm'));
    expect(stdout).toMatch(new RegExp(`^local API: GET ${node.url}/api/system: OK \\(HTTP 200, version \\d+\\.\\d+\\.\\d+\\)$`, 'm'));
  });

  it('diagnostics says FAILED, with the reason, when neither the Panel nor the local API answers', async () => {
    const [deadPanel, deadApi] = [await freePort(), await freePort()];
    const file = configVariant(node, (c) => {
      c.remote = `http://127.0.0.1:${deadPanel}`;
      c.api.port = deadApi;
    });
    const { stdout } = await exec(process.execPath, [WINGS_BIN, 'diagnostics', '--config', file], { timeout: 30_000 });
    expect(stdout).toContain(`panel: GET http://127.0.0.1:${deadPanel}/api/remote/servers?page=0&per_page=1: FAILED (`);
    expect(stdout).toMatch(/^panel: .*ECONNREFUSED/m);
    expect(stdout).toContain(`local API: GET http://127.0.0.1:${deadApi}/api/system: FAILED (`);
    expect(stdout).toContain('is the daemon running?');

    // a Panel that refuses the credentials: the status and what it said
    const wrong = configVariant(node, (c) => (c.token = 'not-the-node-token-at-all'));
    const refused = (await exec(process.execPath, [WINGS_BIN, 'diagnostics', '--config', wrong], { timeout: 30_000 })).stdout;
    expect(refused).toMatch(/^panel: GET .*: FAILED \(HTTP 40[13]: /m);
    expect(refused).toMatch(/^local API: GET .*: FAILED \(HTTP 403: /m);
  });

  it('logs the lifecycle of a server: created, power actions and who asked, state changes, deleted', async () => {
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    await waitFor(() => logLines(node, 'server created').some((l) => l.server === s.uuid), { what: 'server created line' });

    expect((await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' })).status).toBe(202);
    await node.waitForState(s.uuid, 'running');
    const ws = await EventRecorder.connect(
      node.url,
      s.uuid,
      (await tp.panel.admin.websocketToken(s.uuid, { user_uuid: 'a6c4e1d2-operator' })).data.token,
      String(readConfig(node.configPath).remote),
    );
    ws.ws.send(JSON.stringify({ event: 'set state', args: ['stop'] }));
    await node.waitForState(s.uuid, 'offline');
    ws.close();
    expect((await node.api('DELETE', `/api/servers/${s.uuid}`)).status).toBe(204);
    await waitFor(() => logLines(node, 'server deleted').some((l) => l.server === s.uuid), { what: 'server deleted line' });

    const mine = logLines(node).filter((l) => l.server === s.uuid && l.level === 30);
    const messages = mine.map((l) => l.msg as string);
    expect(messages).toContain('server created');
    expect(messages).toContain('power action start requested by http api');
    expect(messages).toContain('power action stop requested by websocket user a6c4e1d2-operator');
    const power = mine.filter((l) => l.action);
    expect(power.map((l) => [l.action, l.by])).toEqual([
      ['start', 'http api'],
      ['stop', 'websocket user a6c4e1d2-operator'],
    ]);
    const states = mine.filter((l) => l.from !== undefined).map((l) => `${l.from} -> ${l.to}`);
    expect(states).toEqual(['offline -> starting', 'starting -> running', 'running -> stopping', 'stopping -> offline']);
    expect(messages).toContain('server deleted');
    expect(messages.indexOf('server deleted')).toBe(messages.length - 1);
  });

  it('prints nothing on stderr at a clean boot and stop; --debug logs requests as debug: true does', async () => {
    // the harness's daemon runs without --debug: no request lines
    expect(node.log()).not.toContain('"request completed"');
    await node.stop();
    const d = spawnWings(['--config', node.configPath, '--debug']);
    try {
      await waitFor(() => d.stdout().includes('wings-ts is ready') || d.child.exitCode !== null, { what: 'ready', timeoutMs: 30_000 });
      expect(d.child.exitCode).toBeNull();
      expect((await http('GET', `${node.url}/api/system`, { token: node.token })).status).toBe(200);
      await waitFor(() => d.stdout().includes('"request completed"'), { what: 'request line' });
      const line = d.stdout().split('\n').find((l) => l.includes('"request completed"'))!;
      expect(JSON.parse(line)).toMatchObject({ level: 30, component: 'http', res: { statusCode: 200 } });
      expect(line).not.toContain(node.token);
    } finally {
      d.child.kill('SIGTERM');
    }
    expect(await d.exited).toBe(0);
    expect(d.stdout()).toContain('"msg":"stopped"');
    expect(d.stderr()).toBe('');
  });
});

describe('fatal boot errors: one line on stderr naming the file and the key', () => {
  let tp: TestPanel;
  let node: TestNode;

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp);
    await node.stop();
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  async function failingBoot(file: string): Promise<Spawned> {
    const d = spawnWings(['--config', file]);
    expect(await d.exited).toBe(1);
    return d;
  }

  it('api.port in use', async () => {
    const held = await holdPort();
    try {
      const file = configVariant(node, (c) => (c.api.port = held.port));
      const d = await failingBoot(file);
      expect(d.stderr()).toBe(`wings: ${file}: api.port: 127.0.0.1:${held.port} is already in use (EADDRINUSE): stop what listens there or choose another port\n`);
      // the log keeps the whole error, with its stack, at fatal
      const fatal = d.stdout().split('\n').find((l) => l.includes('"failed to boot"'))!;
      expect(JSON.parse(fatal)).toMatchObject({ level: 60, err: { type: 'ConfigError', stack: expect.stringContaining('EADDRINUSE') } });
    } finally {
      await held.close();
    }
  });

  it('metrics.port in use', async () => {
    const held = await holdPort();
    try {
      const file = configVariant(node, (c) => (c.metrics = { port: held.port, host: '127.0.0.1' }));
      const d = await failingBoot(file);
      expect(d.stderr()).toBe(`wings: ${file}: metrics.port: 127.0.0.1:${held.port} is already in use (EADDRINUSE): stop what listens there or choose another port\n`);
    } finally {
      await held.close();
    }
  });

  it('a directory that cannot be created, at once after start: the line, the fatal log line in wings.log, no stray stack', async () => {
    const dir = tmpDir();
    const blocker = path.join(dir, 'a-file');
    fs.writeFileSync(blocker, '');
    const logDir = path.join(dir, 'log');
    const file = configVariant(node, (c) => {
      c.system.root_directory = path.join(blocker, 'lib');
      c.system.log_directory = logDir;
    });
    const d = await failingBoot(file);
    expect(d.stderr()).toBe(`wings: ${file}: system.root_directory: cannot create ${path.join(blocker, 'lib')}: ENOTDIR: not a directory\n`);
    const logged = fs.readFileSync(path.join(logDir, 'wings.log'), 'utf8');
    expect(logged).toContain('"msg":"failed to boot"');
    expect(logged).toContain('"msg":"stopped"');
  });

  it('a Panel that refuses the node names `remote`, and states.json keeps the servers that were running', async () => {
    await node.start();
    const s = await tp.panel.admin.createServer({ node_id: node.id, ...ECHO_SERVER, skip_egg_scripts: true });
    await node.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await node.waitForState(s.uuid, 'running');
    await node.stop();
    const statesFile = path.join(node.root, 'lib', 'states.json');
    const before = fs.readFileSync(statesFile, 'utf8');
    expect(JSON.parse(before)).toEqual({ [s.uuid]: 'running' });

    await tp.panel.admin.raw('POST', '/admin/api/faults', { path: '/api/remote/servers$', status: 403, count: 1 });
    const d = await failingBoot(node.configPath);
    const remote = String(readConfig(node.configPath).remote);
    expect(d.stderr()).toMatch(
      new RegExp(`^wings: ${node.configPath}: remote: the Panel at ${remote} did not list this node's servers: .*\\(HTTP/403\\)\\n$`),
    );
    expect(fs.readFileSync(statesFile, 'utf8')).toBe(before);

    await node.start();
    await node.waitForState(s.uuid, 'running');
  });
});
