import path from 'node:path';
import { stringify } from 'yaml';
import type { NodeRecord, ServerRecord } from './state.js';

/** What the Panel serves about servers and nodes: server configuration (docs/protocol.md W23.3) and node config.yml. */

/** The environment the Panel sends: egg variables plus its own (STARTUP, P_SERVER_*, SERVER_*). */
export function serverEnvironment(server: ServerRecord, node: NodeRecord | undefined): Record<string, unknown> {
  return {
    ...server.environment,
    STARTUP: server.invocation,
    P_SERVER_LOCATION: node?.location ?? 'local',
    P_SERVER_UUID: server.uuid,
    P_SERVER_ALLOCATION_LIMIT: 0,
    SERVER_MEMORY: server.build.memory_limit,
    SERVER_IP: server.allocation.ip,
    SERVER_PORT: server.allocation.port,
  };
}

export function serverConfiguration(server: ServerRecord, node: NodeRecord | undefined): {
  settings: Record<string, unknown>;
  process_configuration: Record<string, unknown>;
} {
  const ports = [server.allocation.port, ...server.additional_ports];
  return {
    settings: {
      uuid: server.uuid,
      meta: { name: server.name, description: server.description },
      suspended: server.suspended,
      environment: serverEnvironment(server, node),
      invocation: server.invocation,
      skip_egg_scripts: server.skip_egg_scripts,
      build: { ...server.build },
      container: { image: server.image, oom_disabled: server.build.oom_disabled, requires_rebuild: false },
      allocations: {
        force_outgoing_ip: server.force_outgoing_ip,
        default: { ip: server.allocation.ip, port: server.allocation.port },
        mappings: { [server.allocation.ip]: ports },
      },
      mounts: server.mounts.map((m) => ({ ...m })),
      egg: { id: server.egg.id, file_denylist: [...server.egg.file_denylist] },
    },
    process_configuration: {
      startup: {
        done: [...server.startup_done],
        user_interaction: [...server.user_interaction],
        strip_ansi: server.strip_ansi,
      },
      stop: { ...server.stop },
      configs: server.configs.map((c) => ({ ...c, replace: c.replace.map((r) => ({ ...r })) })),
    },
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const cur = out[k];
    out[k] = isPlainObject(cur) && isPlainObject(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

/**
 * The node's config.yml (the Panel's "Configuration" tab), adjusted for wings-ts: `environment` is
 * always written (the Panel leaves it out and the daemon's default is `docker`, which on a machine
 * with an engine creates the `pterodactyl_nw` bridge network there), and a Docker node gets a
 * container name prefix of its own, so that two nodes of one panel-lite can share an engine and
 * still transfer a server between them (both would otherwise name its container by its uuid).
 * `config_overrides` are merged last and win.
 */
export function nodeConfigObject(node: NodeRecord, publicUrl: string): Record<string, unknown> {
  const u = new URL(node.url);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const config: Record<string, unknown> = {
    debug: false,
    uuid: node.uuid,
    token_id: node.token_id,
    token: node.token,
    api: {
      host: u.hostname,
      port,
      ssl: { enabled: u.protocol === 'https:', cert: '', key: '' },
      upload_limit: 100,
    },
    system: {
      data: node.data_root ? path.join(node.data_root, 'volumes') : '/var/lib/pterodactyl/volumes',
      sftp: { bind_port: 2022 },
    },
    allowed_mounts: [],
    remote: publicUrl,
    environment: node.environment,
  };
  if (node.environment === 'docker') config.docker = { container_name_prefix: dockerPrefix(node) };
  if (node.data_root) {
    const r = node.data_root;
    config.system = {
      root_directory: r,
      log_directory: path.join(r, 'logs'),
      data: path.join(r, 'volumes'),
      archive_directory: path.join(r, 'archives'),
      backup_directory: path.join(r, 'backups'),
      tmp_directory: path.join(r, 'tmp'),
      sftp: { bind_port: 2022 },
    };
  }
  return deepMerge(config, node.config_overrides);
}

/** `<first 8 characters of the node uuid>-`: unique per node, also across panel-lite instances. */
export function dockerPrefix(node: NodeRecord): string {
  return `${node.uuid.slice(0, 8)}-`;
}

export function nodeConfigYaml(node: NodeRecord, publicUrl: string): string {
  return stringify(nodeConfigObject(node, publicUrl));
}
