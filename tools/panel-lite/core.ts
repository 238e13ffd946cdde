/**
 * panel-lite's model: nodes, servers and transfers as the Panel keeps them, the calls it received
 * and the faults it injects; the remote API (remote.ts) and the admin API (admin.ts) call into it.
 * One class past 400 lines on purpose: its operations share the records and the calls to the
 * nodes, and splitting it would scatter one transfer's steps over several files.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isUuidV4 } from '../../src/uuid.js';
import { callNode, type NodeResponse } from './node-client.js';
import { nodeConfigYaml } from './render.js';
import {
  randomAlnum,
  StateStore,
  type Allocation,
  type BuildLimits,
  type ConfigFile,
  type InstallScript,
  type Mount,
  type NodeEnvironment,
  type NodeRecord,
  type ServerRecord,
  type ServerStatus,
  type StopConfig,
  type TransferRecord,
} from './state.js';
import { ROOT_ADMIN_PERMISSIONS, connectionAddress, transferToken, websocketToken, type JwtClaims, type JwtHeader } from './jwt.js';

/** A remote API call received from a node. */
export interface RemoteCall {
  seq: number;
  method: string;
  path: string;
  query: string;
  node_id: number | null;
  status: number;
  body: unknown;
  at: string;
  duration_ms: number;
  /** id of the fault that answered this call, if any */
  fault: number | null;
}

export interface FaultSpec {
  /** regular expression matched against the path (without query), e.g. `/transfer/success$` */
  path: string;
  method?: string;
  /** answer this status instead of handling the call; omitted = only delay, then handle normally */
  status?: number;
  /** body for `status` (default: the Panel error envelope for that status) */
  body?: unknown;
  delay_ms?: number;
  /** how many matching calls this fault applies to (default 1) */
  count?: number;
}

export interface Fault extends Required<Pick<FaultSpec, 'path'>> {
  id: number;
  method: string | null;
  status: number | null;
  body: unknown;
  delay_ms: number;
  remaining: number;
  regex: RegExp;
}

export interface ActivityEntry {
  node_id: number;
  at: string;
  entry: unknown;
}

/**
 * A refusal panel-lite answers with: the HTTP status, `{error: message, ...extra}` as the body.
 * Not the daemon's PanelError (src/panel/client.ts), which is an answer the daemon received from a
 * Panel.
 */
export class PanelLiteError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'PanelLiteError';
  }
}

export interface CreateNodeInput {
  name: string;
  url: string;
  data_root?: string | null;
  location?: string;
  /** `process` (default) or `docker`: the node's config.yml `environment`. */
  environment?: NodeEnvironment;
  config_overrides?: Record<string, unknown>;
}

export interface CreateServerInput {
  node_id: number;
  uuid?: string;
  name?: string;
  description?: string;
  invocation: string;
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
  build?: Partial<BuildLimits>;
  allocation?: Partial<Allocation>;
  additional_ports?: number[];
  startup_done?: string[];
  user_interaction?: string[];
  strip_ansi?: boolean;
  stop?: StopConfig;
  configs?: ConfigFile[];
  mounts?: Mount[];
  file_denylist?: string[];
  install?: Partial<InstallScript>;
  skip_egg_scripts?: boolean;
  suspended?: boolean;
  create_on_node?: boolean;
  start_on_completion?: boolean;
}

export type UpdateServerInput = Partial<
  Omit<CreateServerInput, 'node_id' | 'uuid' | 'create_on_node' | 'start_on_completion' | 'build' | 'install'>
> & {
  build?: Partial<BuildLimits>;
  install?: Partial<InstallScript>;
  status?: ServerStatus;
  /** tell the node (POST /api/servers/:uuid/sync), default true */
  sync_node?: boolean;
};

const DEFAULT_BUILD: BuildLimits = {
  memory_limit: 0,
  swap: 0,
  io_weight: 500,
  cpu_limit: 0,
  threads: null,
  disk_space: 0,
  oom_disabled: true,
};

export function nodeView(n: NodeRecord, publicUrl: string): Record<string, unknown> {
  return { ...n, config: nodeConfigYaml(n, publicUrl) };
}

function nowIso(): string {
  return new Date().toISOString();
}

export class PanelCore {
  readonly store: StateStore;
  readonly log: Logger;
  publicUrl = '';
  readonly calls: RemoteCall[] = [];
  readonly activity: ActivityEntry[] = [];
  faults: Fault[] = [];
  private callSeq = 0;
  private faultSeq = 0;

  constructor(store: StateStore, log: Logger) {
    this.store = store;
    this.log = log;
  }

  get state() {
    return this.store.state;
  }

  // ---- calls and faults ----

  recordCall(c: Omit<RemoteCall, 'seq'>): void {
    this.calls.push({ seq: ++this.callSeq, ...c });
  }

  addFault(spec: FaultSpec): Fault {
    const f: Fault = {
      id: ++this.faultSeq,
      path: spec.path,
      method: spec.method ? spec.method.toUpperCase() : null,
      status: spec.status ?? null,
      body: spec.body,
      delay_ms: spec.delay_ms ?? 0,
      remaining: spec.count ?? 1,
      regex: new RegExp(spec.path),
    };
    this.faults.push(f);
    return f;
  }

  /** Takes one use of the first fault matching this call, if any. */
  takeFault(method: string, p: string): Fault | undefined {
    const f = this.faults.find((x) => x.remaining > 0 && (!x.method || x.method === method) && x.regex.test(p));
    if (!f) return undefined;
    f.remaining--;
    if (f.remaining <= 0) this.faults = this.faults.filter((x) => x !== f);
    return f;
  }

  // ---- nodes ----

  createNode(input: CreateNodeInput): NodeRecord {
    const url = normalizeNodeUrl(input.url);
    const ts = nowIso();
    const node: NodeRecord = {
      id: this.state.next_node_id++,
      uuid: randomUUID(),
      name: input.name,
      url,
      token_id: randomAlnum(16),
      token: randomAlnum(64),
      data_root: input.data_root ?? null,
      location: input.location ?? 'local',
      environment: input.environment ?? 'process',
      config_overrides: input.config_overrides ?? {},
      created_at: ts,
      updated_at: ts,
    };
    this.state.nodes.push(node);
    this.store.save();
    this.log.info({ node: node.id, url, environment: node.environment }, 'node created');
    return node;
  }

  updateNode(id: number, patch: Partial<CreateNodeInput>): NodeRecord {
    const node = this.requireNode(id, 404);
    if (patch.url !== undefined) node.url = normalizeNodeUrl(patch.url);
    if (patch.name !== undefined) node.name = patch.name;
    if (patch.data_root !== undefined) node.data_root = patch.data_root;
    if (patch.location !== undefined) node.location = patch.location;
    if (patch.environment !== undefined) node.environment = patch.environment;
    if (patch.config_overrides !== undefined) node.config_overrides = patch.config_overrides;
    node.updated_at = nowIso();
    this.store.save();
    return node;
  }

  requireNode(id: number, status = 422): NodeRecord {
    const node = this.store.node(id);
    if (!node) throw new PanelLiteError(status, `node ${id} does not exist`);
    return node;
  }

  requireServer(uuid: string): ServerRecord {
    const s = this.store.server(uuid);
    if (!s) throw new PanelLiteError(404, `server ${uuid} does not exist`);
    return s;
  }

  // ---- servers ----

  async createServer(input: CreateServerInput): Promise<ServerRecord> {
    const node = this.requireNode(input.node_id);
    const uuid = input.uuid ?? randomUUID();
    if (!isUuidV4(uuid)) {
      throw new PanelLiteError(422, 'uuid must be a lower-case UUID v4');
    }
    if (this.state.servers.some((s) => s.uuid === uuid || s.uuid_short === uuid.slice(0, 8))) {
      throw new PanelLiteError(409, `server ${uuid} already exists`);
    }
    const ip = input.allocation?.ip ?? '127.0.0.1';
    const used = this.store.usedPorts(node.id, ip);
    if (input.allocation?.port !== undefined && used.has(input.allocation.port)) {
      throw new PanelLiteError(409, `allocation ${ip}:${input.allocation.port} is already in use on node ${node.id}`);
    }
    const port = input.allocation?.port ?? this.store.freePort(node.id, ip);
    const createOnNode = input.create_on_node ?? true;
    const ts = nowIso();
    const server: ServerRecord = {
      id: this.state.next_server_id++,
      uuid,
      uuid_short: uuid.slice(0, 8),
      node_id: node.id,
      name: input.name ?? `server-${uuid.slice(0, 8)}`,
      description: input.description ?? '',
      status: createOnNode ? 'installing' : null,
      suspended: input.suspended ?? false,
      invocation: input.invocation,
      image: input.image ?? 'ghcr.io/pterodactyl/yolks:debian',
      environment: input.environment ?? {},
      build: { ...DEFAULT_BUILD, ...(input.build ?? {}) },
      allocation: { ip, port },
      additional_ports: input.additional_ports ?? [],
      force_outgoing_ip: false,
      skip_egg_scripts: input.skip_egg_scripts ?? false,
      startup_done: input.startup_done ?? [],
      user_interaction: input.user_interaction ?? [],
      strip_ansi: input.strip_ansi ?? false,
      stop: input.stop ?? { type: 'command', value: 'stop' },
      configs: input.configs ?? [],
      mounts: input.mounts ?? [],
      egg: { id: randomUUID(), file_denylist: input.file_denylist ?? [] },
      install: {
        container_image: input.install?.container_image ?? 'ghcr.io/pterodactyl/installers:debian',
        entrypoint: input.install?.entrypoint ?? 'bash',
        script: input.install?.script ?? '#!/bin/bash\necho "nothing to install"\n',
      },
      install_reports: [],
      installed_at: null,
      created_at: ts,
      updated_at: ts,
    };
    this.state.servers.push(server);
    this.store.save();
    if (createOnNode) {
      const res = await callNode(node, 'POST', '/api/servers', {
        uuid,
        start_on_completion: input.start_on_completion ?? false,
      });
      if (!res.ok) {
        // The Panel creates the server in a transaction that is rolled back when the daemon refuses.
        this.state.servers = this.state.servers.filter((s) => s !== server);
        this.store.save();
        throw nodeFailure(`node ${node.id} refused to create the server`, res);
      }
    }
    this.log.info({ server: uuid, node: node.id }, 'server created');
    return server;
  }

  async updateServer(uuid: string, patch: UpdateServerInput): Promise<{ server: ServerRecord; sync: NodeResponse | null }> {
    const s = this.requireServer(uuid);
    const { build, install, allocation, sync_node, file_denylist, ...rest } = patch;
    for (const [k, v] of Object.entries(rest)) {
      if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v;
    }
    if (build) s.build = { ...s.build, ...build };
    if (install) s.install = { ...s.install, ...install };
    if (allocation) s.allocation = { ...s.allocation, ...allocation };
    if (file_denylist) s.egg.file_denylist = file_denylist;
    s.updated_at = nowIso();
    this.store.save();
    let sync: NodeResponse | null = null;
    if (sync_node ?? true) {
      const node = this.store.node(s.node_id);
      if (node) sync = await callNode(node, 'POST', `/api/servers/${s.uuid}/sync`, {});
    }
    return { server: s, sync };
  }

  async deleteServer(uuid: string, force = false): Promise<NodeResponse | null> {
    const s = this.requireServer(uuid);
    const node = this.store.node(s.node_id);
    let res: NodeResponse | null = null;
    if (node) {
      res = await callNode(node, 'DELETE', `/api/servers/${s.uuid}`);
      if (!res.ok && res.status !== 404 && !force) throw nodeFailure(`node ${node.id} refused to delete the server`, res);
    }
    this.state.servers = this.state.servers.filter((x) => x !== s);
    this.state.transfers = this.state.transfers.filter((t) => t.server_uuid !== s.uuid);
    this.store.save();
    return res;
  }

  // ---- transfers ----

  /** The Panel's transfer start (docs/protocol.md W25.2). */
  async startTransfer(
    uuid: string,
    input: { node_id: number; allocation?: Partial<Allocation>; scope?: string },
  ): Promise<TransferRecord> {
    const s = this.requireServer(uuid);
    const dest = this.requireNode(input.node_id);
    const source = this.requireNode(s.node_id, 500);
    if (this.store.pendingTransfer(s.uuid)) {
      throw new PanelLiteError(409, 'This server is already being transferred.');
    }
    const ip = input.allocation?.ip ?? s.allocation.ip;
    const used = this.store.usedPorts(dest.id, ip, s.uuid);
    if (input.allocation?.port !== undefined && used.has(input.allocation.port)) {
      throw new PanelLiteError(409, `allocation ${ip}:${input.allocation.port} is already in use on node ${dest.id}`);
    }
    const port = input.allocation?.port ?? this.store.freePort(dest.id, ip, s.allocation.port, s.uuid);
    const ts = nowIso();
    const transfer: TransferRecord = {
      id: this.state.next_transfer_id++,
      server_uuid: s.uuid,
      server_id: s.id,
      old_node: source.id,
      new_node: dest.id,
      old_allocation: { ...s.allocation },
      new_allocation: { ip, port },
      old_additional_ports: [...s.additional_ports],
      new_additional_ports: [...s.additional_ports],
      successful: null,
      archived: false,
      created_at: ts,
      updated_at: ts,
    };
    this.state.transfers.push(transfer);
    this.store.save();

    const token = transferToken({
      issuer: this.publicUrl,
      destinationUrl: dest.url,
      destinationToken: dest.token,
      serverUuid: s.uuid,
      scope: input.scope,
    });
    const res = await callNode(source, 'POST', `/api/servers/${s.uuid}/transfer`, {
      server_id: s.uuid,
      url: `${connectionAddress(dest.url)}/api/transfers`,
      token: `Bearer ${token}`,
      server: { uuid: s.uuid, start_on_completion: false },
    });
    if (!res.ok) {
      this.state.transfers = this.state.transfers.filter((t) => t !== transfer);
      this.store.save();
      this.log.warn({ server: s.uuid, status: res.status, error: res.error }, 'source node refused the transfer; rolled back');
      throw nodeFailure(`source node ${source.id} refused the transfer`, res);
    }
    this.log.info({ server: s.uuid, from: source.id, to: dest.id }, 'transfer started');
    return transfer;
  }

  /** Remote `transfer/failure`: mark unsuccessful (the reserved new allocation is freed with it). */
  transferFailure(uuid: string): 'not_found' | 'conflict' | 'ok' {
    const s = this.store.server(uuid);
    if (!s) return 'not_found';
    const t = this.store.pendingTransfer(s.uuid);
    if (!t) return 'conflict';
    t.successful = false;
    t.updated_at = nowIso();
    this.store.save();
    this.log.warn({ server: s.uuid, transfer: t.id }, 'transfer failed');
    return 'ok';
  }

  /**
   * Remote `transfer/success`: move the server to the new node, mark successful, then synchronously
   * delete the server on the old node (errors only logged) before the caller answers 204.
   */
  async transferSuccess(uuid: string): Promise<'not_found' | 'conflict' | 'ok'> {
    const s = this.store.server(uuid);
    if (!s) return 'not_found';
    const t = this.store.pendingTransfer(s.uuid);
    if (!t) return 'conflict';
    s.node_id = t.new_node;
    s.allocation = { ...t.new_allocation };
    s.additional_ports = [...t.new_additional_ports];
    s.updated_at = nowIso();
    t.successful = true;
    t.updated_at = s.updated_at;
    this.store.save();
    this.log.info({ server: s.uuid, transfer: t.id }, 'transfer succeeded');
    const old = this.store.node(t.old_node);
    if (old) {
      const res = await callNode(old, 'DELETE', `/api/servers/${s.uuid}`);
      if (!res.ok) this.log.warn({ server: s.uuid, node: old.id, status: res.status, error: res.error }, 'deleting the server on the old node failed');
    }
    return 'ok';
  }

  async cancelTransfer(uuid: string, side: 'source' | 'destination'): Promise<NodeResponse> {
    const s = this.requireServer(uuid);
    const t = this.store.pendingTransfer(s.uuid) ?? this.store.latestTransfer(s.uuid);
    if (!t) throw new PanelLiteError(404, `server ${uuid} has no transfer`);
    if (side === 'source') return callNode(this.requireNode(t.old_node, 500), 'DELETE', `/api/servers/${s.uuid}/transfer`);
    return callNode(this.requireNode(t.new_node, 500), 'DELETE', `/api/transfers/${s.uuid}`);
  }

  // ---- tokens ----

  websocket(
    uuid: string,
    input: { permissions?: string[]; user_uuid?: string; user_id?: number; expires_in?: number; scope?: string },
  ): { token: string; socket: string } {
    const s = this.requireServer(uuid);
    const node = this.requireNode(s.node_id, 500);
    const permissions = input.permissions ?? ROOT_ADMIN_PERMISSIONS;
    if (this.store.pendingTransfer(s.uuid) && !permissions.includes('admin.websocket.transfer')) {
      throw new PanelLiteError(403, 'You do not have permission to view server transfer logs.');
    }
    const token = websocketToken({
      issuer: this.publicUrl,
      nodeUrl: node.url,
      nodeToken: node.token,
      serverUuid: s.uuid,
      user: { id: input.user_id ?? this.state.admin_user.id, uuid: input.user_uuid ?? this.state.admin_user.uuid },
      permissions,
      expiresIn: input.expires_in,
      scope: input.scope,
    });
    const socket = `${connectionAddress(node.url).replace(/^http/, 'ws')}/api/servers/${s.uuid}/ws`;
    return { token, socket };
  }

  signTransferToken(input: {
    server_uuid: string;
    node_id: number;
    scope?: string;
    header?: JwtHeader;
    secret?: string;
    overrides?: JwtClaims;
  }): { token: string; authorization: string; url: string } {
    const dest = this.requireNode(input.node_id);
    const token = transferToken({
      issuer: this.publicUrl,
      destinationUrl: dest.url,
      destinationToken: dest.token,
      serverUuid: input.server_uuid,
      scope: input.scope,
      overrides: input.overrides,
      headerOverrides: input.header,
      secret: input.secret,
    });
    return { token, authorization: `Bearer ${token}`, url: `${connectionAddress(dest.url)}/api/transfers` };
  }
}

function normalizeNodeUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PanelLiteError(422, `invalid node url: ${url}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PanelLiteError(422, `invalid node url: ${url}`);
  return connectionAddress(url);
}

function nodeFailure(message: string, res: NodeResponse): PanelLiteError {
  return new PanelLiteError(502, res.error ? `${message}: ${res.error}` : message, {
    node_status: res.status,
    node_body: res.body,
  });
}
