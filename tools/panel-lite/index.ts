import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { buildAdminApp } from './admin.js';
import { PanelLiteAdmin } from './client.js';
import { PanelLiteConfigError, loadPanelLiteConfig, logLevelFromEnv } from './config.js';
import { PanelCore, type ActivityEntry, type RemoteCall } from './core.js';
import { buildRemoteApp } from './remote.js';
import { StateStore, type NodeRecord, type PanelState, type ServerRecord, type TransferRecord } from './state.js';

/**
 * panel-lite: an in-repo stand-in for the Pterodactyl Panel. The main port answers the node-facing
 * remote API exactly like Panel 1.11 (docs/protocol.md W22–W25); the admin port offers a small JSON API.
 */

export interface PanelLiteOptions {
  host?: string;
  /** remote API port, 0 = random */
  port?: number;
  /** admin API port, 0 = random */
  adminPort?: number;
  /** host of the admin API (default: `host`) */
  adminHost?: string;
  /** the Panel URL written into node configs (`remote`) and JWT `iss`; default http://host:port */
  publicUrl?: string;
  /** state.json lives here */
  dataDirectory: string;
  adminToken: string;
  logger?: Logger;
}

export interface PanelLite {
  /** the remote API base (http://host:port); nodes use `${url}/api/remote/...` */
  url: string;
  /** the admin API base */
  adminUrl: string;
  /** the URL written into node configs and JWT `iss` */
  publicUrl: string;
  /** where state.json lives */
  dataDirectory: string;
  /** a ready admin client */
  admin: PanelLiteAdmin;
  /** live state (do not mutate) */
  readonly state: PanelState;
  node(id: number): NodeRecord | undefined;
  server(uuid: string): ServerRecord | undefined;
  transfers(serverUuid?: string): TransferRecord[];
  /** recorded remote calls, optionally filtered by a path regex */
  calls(path?: RegExp | string): RemoteCall[];
  activity(): ActivityEntry[];
  /** resolves with the first recorded remote call (past or future) whose path matches and that passes `filter` */
  waitForCall(path: RegExp | string, opts?: { timeoutMs?: number; filter?: (c: RemoteCall) => boolean }): Promise<RemoteCall>;
  close(): Promise<void>;
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EADDRNOTAVAIL: 'no such address on this machine',
  EACCES: 'permission denied (ports below 1024 need privileges)',
};

/**
 * Listens, or says which key to change: `listen` / `admin` are the config sections of the two ports.
 * Errors without an errno code (none expected) are rethrown as they are.
 */
async function listenOn(app: FastifyInstance, section: 'listen' | 'admin', host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!code) throw err;
    const key = code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `${section}.host` : `${section}.port`;
    const why = LISTEN_ERRORS[code] ?? (err as Error).message;
    throw new PanelLiteConfigError(`${key}: cannot listen on ${host}:${port}: ${why} (${code})`);
  }
}

/**
 * JSON lines at PANEL_LITE_LOG_LEVEL (default silent), on stderr: stdout carries the one line
 * `wings panel-lite` prints for scripts once it listens.
 */
function defaultLogger(): Logger {
  return pino({ level: logLevelFromEnv(), name: 'panel-lite' }, pino.destination({ dest: 2, sync: true }));
}

export async function startPanelLite(opts: PanelLiteOptions): Promise<PanelLite> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.logger ?? defaultLogger();
  const store = new StateStore(opts.dataDirectory);
  const core = new PanelCore(store, log);
  const remote = buildRemoteApp(core);
  const admin = buildAdminApp(core, opts.adminToken);

  await listenOn(remote, 'listen', host, opts.port ?? 0);
  try {
    await listenOn(admin, 'admin', opts.adminHost ?? host, opts.adminPort ?? 0);
  } catch (err) {
    await remote.close();
    throw err;
  }
  const hostForUrl = (h: string) => (h.includes(':') ? `[${h}]` : h);
  const rport = (remote.server.address() as AddressInfo).port;
  const aport = (admin.server.address() as AddressInfo).port;
  const url = `http://${hostForUrl(host)}:${rport}`;
  const adminUrl = `http://${hostForUrl(opts.adminHost ?? host)}:${aport}`;
  core.publicUrl = (opts.publicUrl ?? url).replace(/\/+$/, '');
  log.info({ url, adminUrl, publicUrl: core.publicUrl, state: store.file }, 'panel-lite listening');

  let closed = false;
  return {
    url,
    adminUrl,
    publicUrl: core.publicUrl,
    dataDirectory: path.dirname(store.file),
    admin: new PanelLiteAdmin(adminUrl, opts.adminToken),
    get state() {
      return core.state;
    },
    node: (id) => store.node(id),
    server: (uuid) => store.server(uuid),
    transfers: (serverUuid) => core.state.transfers.filter((t) => serverUuid === undefined || t.server_uuid === serverUuid),
    calls: (p) => {
      const re = p === undefined ? null : typeof p === 'string' ? new RegExp(p) : p;
      return core.calls.filter((c) => !re || re.test(c.path));
    },
    activity: () => core.activity,
    async waitForCall(p, o = {}) {
      const re = typeof p === 'string' ? new RegExp(p) : p;
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      for (;;) {
        const hit = core.calls.find((c) => re.test(c.path) && (!o.filter || o.filter(c)));
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`panel-lite: no remote call matching ${re} within ${o.timeoutMs ?? 30_000} ms`);
        await sleep(25);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([remote.close(), admin.close()]);
    },
  };
}

/**
 * Starts panel-lite from its YAML file (docs/panel-lite.md): `{listen: {host, port}, admin: {host,
 * port, token}, public_url, data_directory}`. A mistake in the file, or a port that cannot be
 * listened on, is a PanelLiteConfigError that names the file and the key.
 */
export async function startPanelLiteFromFile(configPath: string, logger?: Logger): Promise<PanelLite> {
  // The log level is checked first: its variable is not in the file, so its error names no file.
  const log = logger ?? defaultLogger();
  const options = await loadPanelLiteConfig(configPath);
  try {
    return await startPanelLite({ ...options, logger: log });
  } catch (err) {
    if (err instanceof PanelLiteConfigError) throw new PanelLiteConfigError(`${path.resolve(configPath)}: ${err.message}`);
    throw err;
  }
}

export { signNodeJwt, transferToken, websocketToken, ROOT_ADMIN_PERMISSIONS, connectionAddress } from './jwt.js';
export { PanelLiteAdmin, PanelLiteAdminError } from './client.js';
export { PanelLiteConfigError, loadPanelLiteConfig, temporaryPanelOptions, logLevelFromEnv } from './config.js';
export type { NodeView, ServerView, CreateNodeRequest, CreateServerRequest, UpdateServerRequest, FaultView } from './client.js';
export type { RemoteCall, FaultSpec, ActivityEntry } from './core.js';
export type { NodeRecord, ServerRecord, TransferRecord, PanelState } from './state.js';
export { errorEnvelope } from './remote.js';
