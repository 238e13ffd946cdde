import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { startPanelLite, type PanelLite } from '../../src/panel/lite/index.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WINGS_BIN = path.join(REPO, 'bin/wings.js');

export function tmpDir(prefix = 'wings-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

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

export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 25, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  text: string;
}

export async function http<T = any>(
  method: string,
  url: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string | Buffer } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | Buffer | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await request(url, { method: method as 'GET', headers, body });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.statusCode, headers: res.headers, body: parsed as T, text };
}

export interface TestPanel {
  panel: PanelLite;
  dir: string;
  close(): Promise<void>;
}

export async function startPanel(): Promise<TestPanel> {
  const dir = tmpDir('wings-panel-');
  const panel = await startPanelLite({ dataDirectory: dir, adminToken: 'admin-secret-token' });
  return {
    panel,
    dir,
    close: async () => {
      await panel.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface NodeOptions {
  name?: string;
  environment?: 'process' | 'docker';
  /** Deep-merged into the generated config.yml. */
  config?: Record<string, unknown>;
}

function merge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof a[k] === 'object' ? merge(a[k], v) : v;
  }
  return out;
}

/** A real daemon process (`node bin/wings.js --config …`) registered with panel-lite. */
export class TestNode {
  child: ChildProcess | undefined;
  readonly logFile: string;
  exited: Promise<number | null> = Promise.resolve(null);

  constructor(
    readonly id: number,
    readonly token: string,
    readonly url: string,
    readonly root: string,
    readonly configPath: string,
  ) {
    this.logFile = path.join(root, 'daemon.out');
  }

  get dataDir(): string {
    return path.join(this.root, 'volumes');
  }

  serverDir(uuid: string): string {
    return path.join(this.dataDir, uuid);
  }

  async start(): Promise<void> {
    const out = fs.openSync(this.logFile, 'a');
    this.child = spawn(process.execPath, [WINGS_BIN, '--config', this.configPath], {
      stdio: ['ignore', out, out],
      env: { ...process.env },
    });
    fs.closeSync(out);
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    await waitFor(
      async () => {
        if (exitedEarly) throw new Error(`daemon exited during boot:\n${this.log().slice(-3000)}`);
        const r = await http('GET', `${this.url}/api/system`, { token: this.token });
        return r.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `daemon ${this.url} to answer` },
    ).catch((err) => {
      if (exitedEarly) throw new Error(`daemon exited during boot:\n${this.log().slice(-3000)}`);
      throw err;
    });
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Graceful stop (SIGTERM) and wait for the exit. */
  async stop(): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return this.child?.exitCode ?? null;
    this.child.kill('SIGTERM');
    const code = await Promise.race([this.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      return this.exited;
    }
    return code;
  }

  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  api<T = any>(method: string, p: string, body?: unknown): Promise<ApiResponse<T>> {
    return http<T>(method, `${this.url}${p}`, { token: this.token, body });
  }

  /** Waits until GET /api/servers/:uuid shows `state`. */
  async waitForState(uuid: string, state: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => (await this.api('GET', `/api/servers/${uuid}`)).body?.state === state, {
      timeoutMs,
      what: `server ${uuid} to be ${state}`,
    });
  }
}

/** Registers a node with panel-lite, writes its config.yml and starts the daemon. */
export async function startNode(tp: TestPanel, opts: NodeOptions = {}): Promise<TestNode> {
  const root = tmpDir('wings-node-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const node = await tp.panel.admin.createNode({ name: opts.name ?? `node-${port}`, url, data_root: root });
  let config = parse(node.config) as Record<string, any>;
  config = merge(config, {
    api: { host: '127.0.0.1', port },
    system: {
      root_directory: path.join(root, 'lib'),
      log_directory: path.join(root, 'log'),
      data: path.join(root, 'volumes'),
      archive_directory: path.join(root, 'archives'),
      backup_directory: path.join(root, 'backups'),
      tmp_directory: path.join(root, 'tmp'),
      disk_check_interval: 5,
      sftp: { bind_port: await freePort() },
    },
    environment: opts.environment ?? 'process',
    docker: { network: { network_mode: 'none' }, container_name_prefix: `wt-${port}-` },
    remote_query: { timeout: 10 },
  });
  config = merge(config, opts.config ?? {});
  const configPath = path.join(root, 'config.yml');
  fs.writeFileSync(configPath, stringify(config), { mode: 0o600 });
  const n = new TestNode(node.id, node.token, url, root, configPath);
  await n.start();
  return n;
}

/** A busybox-free shell game server for the process environment: echoes commands, stops on `stop`. */
export const ECHO_SERVER = {
  invocation: 'echo "server starting"; echo "Done (ready)"; while read l; do echo "got $l"; [ "$l" = stop ] && exit 0; done',
  startup_done: ['Done ('],
  stop: { type: 'command' as const, value: 'stop' },
};
