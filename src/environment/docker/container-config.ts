import path from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { ServerSettings } from '../server-configuration.js';

// Shared with the process environment; re-exported where the Docker tests and callers look for it.
export { stopSignal } from '../stop.js';

/**
 * Pure builders for the Docker container configuration of
 * docs/protocol.md W14, W15.2–W15.4 and W15.10. No engine calls here, so every rule can be
 * unit-tested.
 */

/** Label every wings-ts container carries: the uuid of the node that owns it (docs/protocol.md D9.4). */
export const NODE_LABEL = 'wings-ts.node';

/** Capabilities dropped from server containers (docs/protocol.md W15.2). */
export const DROPPED_CAPABILITIES = [
  'setpcap',
  'mknod',
  'audit_write',
  'net_raw',
  'dac_override',
  'fowner',
  'fsetid',
  'net_bind_service',
  'sys_chroot',
  'setfcap',
];

export type Build = ServerSettings['build'];

export function containerName(config: Config, uuid: string): string {
  return `${config.docker.container_name_prefix}${uuid}`;
}

export function installerContainerName(config: Config, uuid: string): string {
  return `${containerName(config, uuid)}_installer`;
}

/** Network modes in which wings-ts touches no Docker network at all. */
export function isIsolatedNetworkMode(mode: string): boolean {
  return mode === 'none' || mode === 'host';
}

/** The image name Docker knows: a leading `~` (local-only image) is removed. */
export function imageName(image: string): string {
  return image.startsWith('~') ? image.slice(1) : image;
}

/** Memory overhead multiplier (docs/protocol.md W15.3). */
export function memoryMultiplier(config: Config, memoryMb: number): number {
  const overhead = config.docker.overhead;
  if (overhead.override) {
    let best: { threshold: number; multiplier: number } | null = null;
    for (const [key, multiplier] of Object.entries(overhead.multipliers)) {
      const threshold = Number.parseInt(key, 10);
      if (!Number.isFinite(threshold) || threshold < memoryMb) continue;
      if (best === null || threshold < best.threshold) best = { threshold, multiplier };
    }
    return best ? best.multiplier : overhead.default_multiplier;
  }
  if (memoryMb <= 2048) return 1.15;
  if (memoryMb <= 4096) return 1.1;
  return 1.05;
}

/**
 * Container resources with the Go arithmetic of docs/protocol.md W15.3; `pidsLimit` only for server
 * containers.
 */
export function containerResources(
  config: Config,
  build: Build,
  options: { pidsLimit: boolean },
): Dockerode.HostConfig {
  const memoryMb = build.memory_limit;
  const memory = Math.round(memoryMb * memoryMultiplier(config, memoryMb) * 1_000_000);
  const resources: Dockerode.HostConfig = {
    Memory: memory,
    MemoryReservation: memoryMb * 1_000_000,
    MemorySwap: build.swap < 0 ? -1 : build.swap * 1_000_000 + memory,
    OomKillDisable: build.oom_disabled,
  };
  if (build.io_weight > 0) resources.BlkioWeight = build.io_weight;
  if (options.pidsLimit) resources.PidsLimit = config.docker.container_pid_limit;
  if (build.cpu_limit > 0) {
    resources.CpuQuota = build.cpu_limit * 1000;
    resources.CpuPeriod = 100_000;
    resources.CpuShares = 1024;
  }
  if (build.threads !== '') resources.CpusetCpus = build.threads;
  return resources;
}

/** The build used for the installer container (docs/protocol.md W15.10): memory floor and CPU rule. */
export function installerBuild(config: Config, build: Build): Build {
  const limits = config.docker.installer_limits;
  let cpu = build.cpu_limit;
  if (limits.cpu === 0) cpu = 0;
  else if (build.cpu_limit !== 0 && build.cpu_limit < limits.cpu) cpu = limits.cpu;
  return { ...build, memory_limit: Math.max(build.memory_limit, limits.memory), cpu_limit: cpu };
}

/**
 * Environment of a server container: `SERVER_IP=127.0.0.1` becomes the network interface
 * (docs/protocol.md W14).
 */
export function containerEnv(config: Config, env: string[]): string[] {
  return env.map((e) => (e === 'SERVER_IP=127.0.0.1' ? `SERVER_IP=${config.docker.network.interface}` : e));
}

/** Panel labels, then the system labels (which win), then the node label. */
export function containerLabels(
  config: Config,
  panelLabels: Record<string, string> | null,
  type: 'server_process' | 'server_installer',
): Record<string, string> {
  return {
    ...(type === 'server_process' ? (panelLabels ?? {}) : {}),
    Service: 'Pterodactyl',
    ContainerType: type,
    [NODE_LABEL]: config.uuid,
  };
}

/** Exposed ports and bindings from the allocations (docs/protocol.md W15.2); none in network mode `none`. */
export function portBindings(
  config: Config,
  mappings: Record<string, number[]> | null,
): { exposed: Record<string, object>; bindings: Record<string, { HostIp: string; HostPort: string }[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  const network = config.docker.network;
  if (network.network_mode === 'none' || !mappings) return { exposed, bindings };
  for (const [rawIp, ports] of Object.entries(mappings)) {
    let ip = rawIp;
    if (ip === '127.0.0.1') {
      if (network.ispn) continue;
      ip = network.interface;
    }
    for (const port of ports) {
      for (const proto of ['tcp', 'udp']) {
        const key = `${port}/${proto}`;
        exposed[key] = {};
        (bindings[key] ??= []).push({ HostIp: ip, HostPort: String(port) });
      }
    }
  }
  return { exposed, bindings };
}

/** Go's filepath.Clean for absolute/relative POSIX paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const normalized = path.posix.normalize(p);
  return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
}

/** Bind mounts of a server container (docs/protocol.md W15.4), as `source:target[:ro]` strings. */
export function serverBinds(
  config: Config,
  dataDirectory: string,
  mounts: ServerSettings['mounts'],
  logger?: Logger,
): string[] {
  const binds = [`${dataDirectory}:/home/container`];
  const allowed = config.allowed_mounts.map(cleanPath);
  for (const mount of mounts ?? []) {
    const source = cleanPath(mount.source);
    const target = cleanPath(mount.target);
    if (!allowed.some((a) => source.startsWith(a))) {
      logger?.warn({ source, target }, 'skipping custom server mount, not in the list of allowed mount points');
      continue;
    }
    binds.push(`${source}:${target}${mount.read_only ? ':ro' : ''}`);
  }
  return binds;
}

export function tmpfs(config: Config): Record<string, string> {
  return { '/tmp': `rw,exec,nosuid,size=${config.docker.tmpfs_size}M` };
}

export function logConfig(config: Config): Dockerode.HostConfig['LogConfig'] {
  const lc = config.docker.log_config;
  return lc.type === '' ? undefined : { Type: lc.type, Config: { ...lc.config } };
}

export function containerUser(config: Config): string {
  const user = config.system.user;
  return user.rootless.enabled
    ? `${user.rootless.container_uid}:${user.rootless.container_gid}`
    : `${user.uid}:${user.gid}`;
}

/** The bridge network used with `force_outgoing_ip` (docs/protocol.md W15.2). */
export function outgoingIpNetworkName(ip: string): string {
  return `ip-${ip.replace(/[.:]/g, '-')}`;
}

export interface ServerContainerInput {
  config: Config;
  settings: ServerSettings;
  uuid: string;
  dataDirectory: string;
  env: string[];
  /** Network mode to use (the configured one, or the force_outgoing_ip network). */
  networkMode: string;
  logger?: Logger;
}

/** Create options of a server container (docs/protocol.md W15.2). */
export function serverContainerOptions(input: ServerContainerInput): Dockerode.ContainerCreateOptions {
  const { config, settings } = input;
  const ports = portBindings(config, settings.allocations.mappings);
  return {
    name: containerName(config, input.uuid),
    Hostname: input.uuid,
    Domainname: config.docker.domainname,
    Image: imageName(settings.container.image ?? ''),
    User: containerUser(config),
    Tty: true,
    OpenStdin: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    ExposedPorts: ports.exposed,
    Env: containerEnv(config, input.env),
    Labels: containerLabels(config, settings.labels, 'server_process'),
    HostConfig: {
      PortBindings: ports.bindings,
      Binds: serverBinds(config, input.dataDirectory, settings.mounts, input.logger),
      Tmpfs: tmpfs(config),
      ...containerResources(config, settings.build, { pidsLimit: true }),
      Dns: [...config.docker.network.dns],
      LogConfig: logConfig(config),
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      CapDrop: [...DROPPED_CAPABILITIES],
      NetworkMode: input.networkMode,
      UsernsMode: config.docker.userns_mode,
      Init: true,
    },
  };
}

export interface InstallerContainerInput {
  config: Config;
  settings: ServerSettings;
  uuid: string;
  dataDirectory: string;
  installDirectory: string;
  env: string[];
  image: string;
  entrypoint: string;
  networkMode: string;
}

/** Create options of the installer container (docs/protocol.md W15.10). */
export function installerContainerOptions(input: InstallerContainerInput): Dockerode.ContainerCreateOptions {
  const { config } = input;
  return {
    name: installerContainerName(config, input.uuid),
    Hostname: 'installer',
    Image: imageName(input.image),
    Cmd: [input.entrypoint, '/mnt/install/install.sh'],
    Tty: true,
    OpenStdin: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Env: [...input.env],
    Labels: containerLabels(config, null, 'server_installer'),
    HostConfig: {
      Binds: [`${input.dataDirectory}:/mnt/server`, `${input.installDirectory}:/mnt/install`],
      Tmpfs: tmpfs(config),
      ...containerResources(config, installerBuild(config, input.settings.build), { pidsLimit: false }),
      Dns: [...config.docker.network.dns],
      LogConfig: logConfig(config),
      NetworkMode: input.networkMode,
      UsernsMode: config.docker.userns_mode,
      Init: true,
    },
  };
}
