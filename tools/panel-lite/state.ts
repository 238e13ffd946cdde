import { randomInt, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The persistent state of panel-lite: nodes, servers, transfers. Kept in memory and written to
 * `<dataDirectory>/state.json` after every mutation (write a temporary file, then rename).
 */

export interface Allocation {
  ip: string;
  port: number;
}

export interface NodeRecord {
  id: number;
  uuid: string;
  name: string;
  /** The node's daemon address, `scheme://host:port` (the Panel's scheme + fqdn + daemonListen). */
  url: string;
  token_id: string;
  token: string;
  data_root: string | null;
  /** Location short code, served as P_SERVER_LOCATION. */
  location: string;
  /**
   * The `environment` written into its config.yml. `process` unless the node was created asking for
   * Docker: a node on a machine whose engine is shared must not create containers or networks there
   * just because the Panel's config leaves the key out (the daemon's default is `docker`).
   */
  environment: NodeEnvironment;
  /** Deep-merged into the generated config.yml. */
  config_overrides: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export type NodeEnvironment = 'process' | 'docker';

export interface BuildLimits {
  memory_limit: number;
  swap: number;
  io_weight: number;
  cpu_limit: number;
  threads: string | null;
  disk_space: number;
  oom_disabled: boolean;
}

export interface StopConfig {
  type: 'command' | 'signal' | 'stop';
  value: string;
}

export interface InstallScript {
  container_image: string;
  entrypoint: string;
  script: string;
}

export interface ConfigFileReplace {
  match: string;
  if_value?: string;
  replace_with: unknown;
}

export interface ConfigFile {
  file: string;
  parser: string;
  replace: ConfigFileReplace[];
}

export interface Mount {
  source: string;
  target: string;
  read_only: boolean;
}

export interface InstallReport {
  successful: boolean;
  reinstall: boolean;
  at: string;
}

export type ServerStatus = 'installing' | 'install_failed' | 'reinstall_failed' | 'restoring_backup' | null;

export interface ServerRecord {
  id: number;
  uuid: string;
  uuid_short: string;
  node_id: number;
  name: string;
  description: string;
  status: ServerStatus;
  suspended: boolean;
  invocation: string;
  image: string;
  /** Egg variables as set by the admin; the Panel's own variables are added when served. */
  environment: Record<string, string | number | boolean | null>;
  build: BuildLimits;
  allocation: Allocation;
  additional_ports: number[];
  force_outgoing_ip: boolean;
  skip_egg_scripts: boolean;
  startup_done: string[];
  user_interaction: string[];
  strip_ansi: boolean;
  stop: StopConfig;
  configs: ConfigFile[];
  mounts: Mount[];
  egg: { id: string; file_denylist: string[] };
  install: InstallScript;
  install_reports: InstallReport[];
  installed_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface TransferRecord {
  id: number;
  server_uuid: string;
  server_id: number;
  old_node: number;
  new_node: number;
  old_allocation: Allocation;
  new_allocation: Allocation;
  old_additional_ports: number[];
  new_additional_ports: number[];
  /** null while pending, then true (success report) or false (failure report). */
  successful: boolean | null;
  archived: boolean;
  created_at: string;
  updated_at: string;
}

export interface PanelState {
  version: 1;
  next_node_id: number;
  next_server_id: number;
  next_transfer_id: number;
  /** The admin user that websocket tokens are issued for by default. */
  admin_user: { id: number; uuid: string };
  nodes: NodeRecord[];
  servers: ServerRecord[];
  transfers: TransferRecord[];
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Random alphanumeric string (never contains a dot). */
export function randomAlnum(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALNUM[randomInt(ALNUM.length)];
  return out;
}

export function emptyState(): PanelState {
  return {
    version: 1,
    next_node_id: 1,
    next_server_id: 1,
    next_transfer_id: 1,
    admin_user: { id: 1, uuid: randomUUID() },
    nodes: [],
    servers: [],
    transfers: [],
  };
}

export class StateStore {
  readonly file: string;
  state: PanelState;

  constructor(dataDirectory: string) {
    mkdirSync(dataDirectory, { recursive: true });
    this.file = path.join(dataDirectory, 'state.json');
    this.state = existsSync(this.file) ? StateStore.read(this.file) : emptyState();
  }

  private static read(file: string): PanelState {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<PanelState>;
    const state = { ...emptyState(), ...raw, version: 1 as const };
    // Nodes saved before `environment` existed get the default they would get today.
    state.nodes = state.nodes.map((n) => ({ ...n, environment: n.environment ?? 'process' }));
    return state;
  }

  /** Writes the whole state atomically (synchronously, so a mutation is on disk before its answer). */
  save(): void {
    const tmp = `${this.file}.${process.pid}.${randomAlnum(6)}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  node(id: number): NodeRecord | undefined {
    return this.state.nodes.find((n) => n.id === id);
  }

  nodeByTokenId(tokenId: string): NodeRecord | undefined {
    return this.state.nodes.find((n) => n.token_id === tokenId);
  }

  /** Like the Panel's getByUuid: matches the full uuid or the 8-char short id. */
  server(uuid: string): ServerRecord | undefined {
    return this.state.servers.find((s) => s.uuid === uuid || s.uuid_short === uuid);
  }

  /** The pending transfer of a server (successful IS NULL), newest first. */
  pendingTransfer(serverUuid: string): TransferRecord | undefined {
    return this.state.transfers
      .filter((t) => t.server_uuid === serverUuid && t.successful === null)
      .sort((a, b) => b.id - a.id)[0];
  }

  latestTransfer(serverUuid: string): TransferRecord | undefined {
    return this.state.transfers.filter((t) => t.server_uuid === serverUuid).sort((a, b) => b.id - a.id)[0];
  }

  /** Ports taken on a node: its servers' allocations plus allocations reserved by pending transfers. */
  usedPorts(nodeId: number, ip: string, exceptServer?: string): Set<number> {
    const used = new Set<number>();
    for (const s of this.state.servers) {
      if (s.node_id !== nodeId || s.uuid === exceptServer) continue;
      if (s.allocation.ip === ip) {
        used.add(s.allocation.port);
        for (const p of s.additional_ports) used.add(p);
      }
    }
    for (const t of this.state.transfers) {
      if (t.successful !== null || t.new_node !== nodeId || t.server_uuid === exceptServer) continue;
      if (t.new_allocation.ip === ip) {
        used.add(t.new_allocation.port);
        for (const p of t.new_additional_ports) used.add(p);
      }
    }
    return used;
  }

  freePort(nodeId: number, ip: string, preferred?: number, exceptServer?: string): number {
    const used = this.usedPorts(nodeId, ip, exceptServer);
    if (preferred !== undefined && !used.has(preferred)) return preferred;
    let port = 25565;
    while (used.has(port)) port++;
    return port;
  }
}
