import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { deepMerge } from '../../src/config/load.js';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import type { PanelLite } from '../panel-lite/index.js';
import { sleep, withTimeout } from './wait.js';

/** bin/wings.js of this checkout: the `wings` command the demo and the tests start as daemons. */
export const WINGS_BIN = path.join(PACKAGE_ROOT, 'bin/wings.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The config.yml of a node that runs on loopback with every path under `root`: panel-lite's
 * generated config (`panelConfig`, its YAML text) with the API on 127.0.0.1:`port`, the process
 * environment, Docker network mode `none`, then `overrides` deep-merged on top. Shared by the demo
 * and the test harness.
 */
export function loopbackNodeConfig(
  panelConfig: string,
  root: string,
  port: number,
  sftpPort: number,
  overrides: Record<string, unknown> = {},
): Record<string, any> {
  const config = deepMerge(parse(panelConfig) as Record<string, unknown>, {
    api: { host: '127.0.0.1', port },
    system: {
      root_directory: path.join(root, 'lib'),
      log_directory: path.join(root, 'log'),
      data: path.join(root, 'volumes'),
      archive_directory: path.join(root, 'archives'),
      backup_directory: path.join(root, 'backups'),
      tmp_directory: path.join(root, 'tmp'),
      sftp: { bind_address: '127.0.0.1', bind_port: sftpPort },
      // Servers run as the invoking user: a missing system user would be created on the machine
      // (as root, in the docker environment, as the Go daemon does).
      ...invokingUser(),
    },
    environment: 'process',
    docker: { network: { network_mode: 'none' } },
    remote_query: { timeout: 10 },
  });
  return deepMerge(config, overrides);
}

/** `{ username }` of the user running this process, or nothing when it has no passwd entry. */
function invokingUser(): { username?: string } {
  try {
    return { username: os.userInfo().username };
  } catch {
    return {};
  }
}

export async function nodeRequest(
  method: string,
  url: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await request(url, {
    method: method as 'GET',
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.statusCode, body: parsed };
}

/** A real `wings` daemon process registered with panel-lite, living under `root`. */
export class DemoNode {
  child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly name: string,
    readonly id: number,
    readonly token: string,
    readonly url: string,
    readonly root: string,
    readonly configPath: string,
  ) {}

  get dataDir(): string {
    return path.join(this.root, 'volumes');
  }

  get logFile(): string {
    return path.join(this.root, 'daemon.out');
  }

  serverDir(uuid: string): string {
    return path.join(this.dataDir, uuid);
  }

  api(method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> {
    return nodeRequest(method, `${this.url}${p}`, this.token, body);
  }

  async start(): Promise<void> {
    const out = fs.openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [WINGS_BIN, '--config', this.configPath], {
      stdio: ['ignore', out, out],
      env: { ...process.env },
      // Own process group: a Ctrl-C in the terminal reaches the demo, which stops the nodes itself.
      detached: true,
    });
    fs.closeSync(out);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let exited = false;
    void this.exited.then(() => (exited = true));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited) throw new Error(`node ${this.name} exited during boot; see ${this.logFile}:\n${this.tail()}`);
      try {
        if ((await this.api('GET', '/api/system')).status === 200) return;
      } catch {}
      if (Date.now() > deadline) throw new Error(`node ${this.name} did not answer within 30 s:\n${this.tail()}`);
      await sleep(50);
    }
  }

  tail(chars = 3000): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  /** SIGTERM (graceful, docs/protocol.md D9.1), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await withTimeout(this.exited, graceMs, `node ${this.name} to exit`).catch(async () => {
      child.kill('SIGKILL');
      await this.exited;
    });
  }

  /** Synchronous last resort (process exit handlers). */
  killNow(): void {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Registers a node with panel-lite, writes its config.yml under `root` and starts the daemon. */
export async function startDemoNode(
  panel: PanelLite,
  name: string,
  root: string,
  overrides: Record<string, unknown> = {},
  /** Receives the node before its process starts, so that an interrupt during boot still stops it. */
  track: (node: DemoNode) => void = () => {},
): Promise<DemoNode> {
  fs.mkdirSync(root, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const node = await panel.admin.createNode({ name, url, data_root: root });
  const config = loopbackNodeConfig(
    node.config,
    root,
    port,
    await freePort(),
    deepMerge({ system: { enable_log_rotate: false }, docker: { container_name_prefix: `wings-demo-${port}-` } }, overrides),
  );
  const configPath = path.join(root, 'config.yml');
  fs.writeFileSync(configPath, stringify(config), { mode: 0o600 });
  const n = new DemoNode(name, node.id, node.token, url, root, configPath);
  track(n);
  await n.start();
  return n;
}
