import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { buildAdminApp } from './admin.js';
import { PanelLiteAdmin } from './client.js';
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

export async function startPanelLite(opts: PanelLiteOptions): Promise<PanelLite> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.logger ?? pino({ level: process.env.PANEL_LITE_LOG_LEVEL ?? 'silent', name: 'panel-lite' });
  const store = new StateStore(opts.dataDirectory);
  const core = new PanelCore(store, log);
  const remote = buildRemoteApp(core);
  const admin = buildAdminApp(core, opts.adminToken);

  await remote.listen({ host, port: opts.port ?? 0 });
  try {
    await admin.listen({ host: opts.adminHost ?? host, port: opts.adminPort ?? 0 });
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

const FileConfig = z.object({
  listen: z.object({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535).default(0) }).prefault({}),
  admin: z.object({
    host: z.string().optional(),
    port: z.number().int().min(0).max(65535).default(0),
    token: z.string().min(1),
  }),
  public_url: z.string().optional(),
  data_directory: z.string().min(1),
});

/** Starts panel-lite from a YAML file: `{listen: {host, port}, admin: {host, port, token}, public_url, data_directory}`. */
export async function startPanelLiteFromFile(configPath: string, logger?: Logger): Promise<PanelLite> {
  const raw: unknown = parseYaml(await readFile(configPath, 'utf8'));
  const parsed = FileConfig.safeParse(raw ?? {});
  if (!parsed.success) throw new Error(`invalid panel-lite config ${configPath}: ${z.prettifyError(parsed.error)}`);
  const c = parsed.data;
  return startPanelLite({
    host: c.listen.host,
    port: c.listen.port,
    adminHost: c.admin.host,
    adminPort: c.admin.port,
    publicUrl: c.public_url,
    dataDirectory: path.resolve(path.dirname(configPath), c.data_directory),
    adminToken: c.admin.token,
    logger,
  });
}

export { signNodeJwt, transferToken, websocketToken, ROOT_ADMIN_PERMISSIONS, connectionAddress } from './jwt.js';
export { PanelLiteAdmin, PanelLiteAdminError } from './client.js';
export type { NodeView, ServerView, CreateNodeRequest, CreateServerRequest, UpdateServerRequest, FaultView } from './client.js';
export type { RemoteCall, FaultSpec, ActivityEntry } from './core.js';
export type { NodeRecord, ServerRecord, TransferRecord, PanelState } from './state.js';
export { errorEnvelope } from './remote.js';
