import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Dockerode from 'dockerode';
import { request } from 'undici';
import { parse, stringify } from 'yaml';
import { deepMerge } from '../../src/config/load.js';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { WINGS_BIN, freePort, loopbackNodeConfig } from '../../tools/demo/nodes.js';
import { waitFor } from '../../tools/demo/wait.js';
import { startPanelLite, type PanelLite } from '../../tools/panel-lite/index.js';
import { tmpDir } from './tmp.js';

export { WINGS_BIN, freePort, tmpDir, waitFor };

export const REPO = PACKAGE_ROOT;

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

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
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

/** A real daemon process (`node bin/wings.js --config …`) registered with panel-lite. */
export class TestNode {
  child: ChildProcess | undefined;
  /** The `environment` of its config.yml (set by startNode). */
  environment: TestEnvironment = 'process';
  readonly logFile: string;
  exited: Promise<number | null> = Promise.resolve(null);
  /** The command line before `--config` (default: node, WINGS_DAEMON_NODE_ARGS, this checkout's bin/wings.js). */
  command: string[] | undefined;

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

  private configValue(): Record<string, any> {
    return parse(fs.readFileSync(this.configPath, 'utf8')) as Record<string, any>;
  }

  /** The node's uuid (config.yml `uuid`): the value of the `wings-ts.node` label of its containers. */
  get nodeUuid(): string {
    return String(this.configValue().uuid);
  }

  /** config.yml `docker.container_name_prefix`. */
  get containerPrefix(): string {
    return String(this.configValue().docker?.container_name_prefix ?? '');
  }

  /** The name of a server's container on this node. */
  containerName(uuid: string): string {
    return `${this.containerPrefix}${uuid}`;
  }

  async start(): Promise<void> {
    const out = fs.openSync(this.logFile, 'a');
    // WINGS_DAEMON_NODE_ARGS: extra node flags for the daemons (profiling: `--cpu-prof --cpu-prof-dir=…`)
    const nodeArgs = (process.env.WINGS_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const [file, ...args] = this.command ?? [process.execPath, ...nodeArgs, WINGS_BIN];
    this.child = spawn(file, [...args, '--config', this.configPath], {
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
    return readIfExists(this.logFile);
  }

  /**
   * Waits until the daemon's log holds `text`: its standard output, or the file it writes in
   * `system.log_directory` (`wings.log`). The daemon logs asynchronously (pino, sync: false), so a
   * line can reach the file after an HTTP answer that the same code path produced later.
   */
  async waitForLog(text: string, { from = 'stdout', timeoutMs = 5000 }: { from?: 'stdout' | 'wings.log'; timeoutMs?: number } = {}): Promise<void> {
    const read = from === 'stdout' ? () => this.log() : () => readIfExists(path.join(this.root, 'log', 'wings.log'));
    await waitFor(() => read().includes(text), { what: `${from} line ${JSON.stringify(text)}`, timeoutMs });
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
  const config = loopbackNodeConfig(
    node.config,
    root,
    port,
    await freePort(),
    deepMerge(
      {
        system: { disk_check_interval: 5 },
        environment: opts.environment ?? 'process',
        docker: { container_name_prefix: `wt-${port}-` },
      },
      opts.config ?? {},
    ),
  );
  const configPath = path.join(root, 'config.yml');
  fs.writeFileSync(configPath, stringify(config), { mode: 0o600 });
  const n = new TestNode(node.id, node.token, url, root, configPath);
  n.environment = config.environment === 'docker' ? 'docker' : 'process';
  await n.start();
  return n;
}

/** A busybox-free shell game server for the process environment: echoes commands, stops on `stop`. */
export const ECHO_SERVER = {
  invocation: 'echo "server starting"; echo "Done (ready)"; while read l; do echo "got $l"; [ "$l" = stop ] && exit 0; done',
  startup_done: ['Done ('],
  stop: { type: 'command' as const, value: 'stop' },
};

// ---------------------------------------------------------------------------------------------
// Docker: one suite, two environments.

export type TestEnvironment = 'process' | 'docker';

/** The local test image (scripts/docker-test-image.sh); never pulled. */
export const DOCKER_TEST_IMAGE = 'wings-ts/busybox:latest';

let dockerSingleton: Dockerode | undefined;

/** A client for the engine the daemons use (DOCKER_HOST or /var/run/docker.sock). */
export function testDocker(): Dockerode {
  dockerSingleton ??= new Dockerode();
  return dockerSingleton;
}

/** Does an engine answer, and is the test image there? `reason` says what is missing. */
export async function probeDocker(): Promise<{ ok: boolean; reason: string }> {
  const docker = testDocker();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000);
      }),
    ]);
  } catch (err) {
    return {
      ok: false,
      reason: `no Docker engine at ${process.env.DOCKER_HOST || 'unix:///var/run/docker.sock'} (${(err as Error).message}); run: bash scripts/start-dockerd.sh && bash scripts/docker-test-image.sh`,
    };
  } finally {
    clearTimeout(timer);
  }
  try {
    await docker.getImage(DOCKER_TEST_IMAGE).inspect();
  } catch {
    return { ok: false, reason: `the test image ${DOCKER_TEST_IMAGE} is missing; run: bash scripts/docker-test-image.sh` };
  }
  return { ok: true, reason: '' };
}

let environmentsPromise: Promise<TestEnvironment[]> | undefined;

/**
 * The environments a suite runs in: process and docker when an engine answers and the test image
 * exists. With WINGS_TEST_DOCKER set (CI) a missing engine or image is an error; on a developer
 * machine the docker runs are skipped with a message saying why.
 */
export function testEnvironments(): Promise<TestEnvironment[]> {
  environmentsPromise ??= (async (): Promise<TestEnvironment[]> => {
    const probe = await probeDocker();
    if (probe.ok) return ['process', 'docker'];
    if (process.env.WINGS_TEST_DOCKER) {
      throw new Error(`WINGS_TEST_DOCKER is set but the docker environment cannot be tested: ${probe.reason}`);
    }
    console.warn(`[wings-ts tests] SKIPPING the docker environment runs: ${probe.reason}`);
    return ['process'];
  })();
  return environmentsPromise;
}

/**
 * Extra createServer fields for an environment: for docker the local test image (leading `~`:
 * never pulled) and a modest build so containers start fast; nothing for the process environment.
 */
export function serverOptions(env: TestEnvironment): { image?: string; build?: Record<string, number> } {
  if (env === 'process') return {};
  return { image: `~${DOCKER_TEST_IMAGE}`, build: { memory_limit: 256, swap: 0, disk_space: 0, cpu_limit: 0 } };
}

export interface ContainerSummary {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

/** Every container (running or not) labelled as belonging to this node: `docker ps -a --filter label=wings-ts.node=<uuid>`. */
export async function nodeContainers(node: TestNode): Promise<ContainerSummary[]> {
  const list = await testDocker().listContainers({ all: true, filters: { label: [`wings-ts.node=${node.nodeUuid}`] } });
  return list.map((c) => ({
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    state: c.State,
    labels: c.Labels ?? {},
  }));
}

/** `docker inspect` of a server's container on this node, or null when there is none. */
export async function inspectServerContainer(node: TestNode, uuid: string): Promise<Dockerode.ContainerInspectInfo | null> {
  try {
    return await testDocker().getContainer(node.containerName(uuid)).inspect();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/**
 * Removes every container of a node (its label, or its name prefix), so that reruns start clean.
 * A no-op for process-environment nodes.
 */
export async function removeNodeContainers(node: TestNode | undefined): Promise<void> {
  if (!node || node.environment !== 'docker') return;
  const docker = testDocker();
  const prefix = node.containerPrefix;
  const [byLabel, byName] = await Promise.all([
    docker.listContainers({ all: true, filters: { label: [`wings-ts.node=${node.nodeUuid}`] } }),
    prefix ? docker.listContainers({ all: true, filters: { name: [`^/${prefix}`] } }) : Promise.resolve([]),
  ]);
  const ids = new Set([...byLabel, ...byName].map((c) => c.Id));
  await Promise.all(
    [...ids].map((id) =>
      docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch((err: unknown) => {
          if ((err as { statusCode?: number }).statusCode !== 404) throw err;
        }),
    ),
  );
}

/** panel-lite and two real daemons, A and B, as most transfer suites need them. */
export interface TwoNodes {
  tp: TestPanel;
  a: TestNode;
  b: TestNode;
}

/** Starts panel-lite and nodes A and B (`name` defaults to 'A' / 'B'); the panel is closed if a node fails to boot. */
export async function startTwoNodes(aOpts: NodeOptions = {}, bOpts: NodeOptions = {}): Promise<TwoNodes> {
  const tp = await startPanel();
  try {
    const [a, b] = await Promise.all([startNode(tp, { name: 'A', ...aOpts }), startNode(tp, { name: 'B', ...bOpts })]);
    return { tp, a, b };
  } catch (err) {
    await tp.close();
    throw err;
  }
}

/** Stops both daemons, removes their containers (Docker environment) and closes panel-lite; tolerates a partial start. */
export async function stopTwoNodes(n: Partial<TwoNodes>): Promise<void> {
  await Promise.all([n.a?.stop(), n.b?.stop()]);
  await Promise.all([removeNodeContainers(n.a), removeNodeContainers(n.b)]);
  await n.tp?.close();
}
