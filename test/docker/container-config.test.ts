import { rm } from 'node:fs/promises';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { connectDocker, ensureDockerNetwork } from '../../src/environment/docker/client.js';
import {
  containerEnv,
  containerResources,
  installerBuild,
  installerContainerOptions,
  memoryMultiplier,
  portBindings,
  serverBinds,
  stopSignal,
} from '../../src/environment/docker/container-config.js';
import { DockerEnvironment } from '../../src/environment/docker/docker-environment.js';
import { engineMessage } from '../../src/environment/docker/errors.js';
import { registryAuth } from '../../src/environment/docker/images.js';
import { cpuAbsolute, memoryUsage, toEnvironmentStats } from '../../src/environment/docker/stats.js';
import { makeHarness, makeRoot } from './helpers.js';

const build = (over: Record<string, unknown> = {}) => ({
  memory_limit: 1024,
  swap: 0,
  io_weight: 500,
  cpu_limit: 0,
  threads: '',
  disk_space: 0,
  oom_disabled: false,
  ...over,
});

describe('resource limits (docs/protocol.md W15.3)', () => {
  const config = ConfigSchema.parse({});

  it('uses the built-in multiplier table', () => {
    expect(memoryMultiplier(config, 2048)).toBe(1.15);
    expect(memoryMultiplier(config, 2049)).toBe(1.1);
    expect(memoryMultiplier(config, 4096)).toBe(1.1);
    expect(memoryMultiplier(config, 4097)).toBe(1.05);
  });

  it('uses the smallest threshold >= M with overhead.override, else the default', () => {
    const c = ConfigSchema.parse({
      docker: { overhead: { override: true, default_multiplier: 1.01, multipliers: { '512': 1.5, '2048': 1.2, '1024': 1.3 } } },
    });
    expect(memoryMultiplier(c, 100)).toBe(1.5);
    expect(memoryMultiplier(c, 600)).toBe(1.3);
    expect(memoryMultiplier(c, 2048)).toBe(1.2);
    expect(memoryMultiplier(c, 9000)).toBe(1.01);
  });

  it('computes memory, swap, reservation, blkio, pids and cpu like Go', () => {
    const r = containerResources(config, build({ memory_limit: 3000, swap: 500, cpu_limit: 150, threads: '0-1' }), { pidsLimit: true });
    expect(r).toEqual({
      Memory: Math.round(3000 * 1.1 * 1_000_000),
      MemoryReservation: 3_000_000_000,
      MemorySwap: 500_000_000 + Math.round(3000 * 1.1 * 1_000_000),
      OomKillDisable: false,
      BlkioWeight: 500,
      PidsLimit: 512,
      CpuQuota: 150_000,
      CpuPeriod: 100_000,
      CpuShares: 1024,
      CpusetCpus: '0-1',
    });
    const unlimited = containerResources(config, build({ memory_limit: 0, swap: -1, io_weight: 0 }), { pidsLimit: false });
    expect(unlimited).toEqual({ Memory: 0, MemoryReservation: 0, MemorySwap: -1, OomKillDisable: false });
  });

  it('installer limits: memory floor, CPU rule, no pids limit', () => {
    const c = ConfigSchema.parse({ docker: { installer_limits: { memory: 1024, cpu: 100 } } });
    expect(installerBuild(c, build({ memory_limit: 512, cpu_limit: 50 }))).toMatchObject({ memory_limit: 1024, cpu_limit: 100 });
    expect(installerBuild(c, build({ memory_limit: 4096, cpu_limit: 200 }))).toMatchObject({ memory_limit: 4096, cpu_limit: 200 });
    expect(installerBuild(c, build({ cpu_limit: 0 }))).toMatchObject({ cpu_limit: 0 });
    const free = ConfigSchema.parse({ docker: { installer_limits: { memory: 1024, cpu: 0 } } });
    expect(installerBuild(free, build({ cpu_limit: 50 }))).toMatchObject({ cpu_limit: 0 });
  });
});

describe('container configuration', () => {
  it('rewrites SERVER_IP=127.0.0.1 to the network interface', () => {
    const c = ConfigSchema.parse({ docker: { network: { interface: '10.0.0.1' } } });
    expect(containerEnv(c, ['SERVER_IP=127.0.0.1', 'SERVER_PORT=1'])).toEqual(['SERVER_IP=10.0.0.1', 'SERVER_PORT=1']);
  });

  it('binds tcp+udp ports, rewrites or drops loopback, none for network mode none', () => {
    const c = ConfigSchema.parse({ docker: { network: { interface: '172.18.0.1', network_mode: 'pterodactyl_nw' } } });
    const { exposed, bindings } = portBindings(c, { '127.0.0.1': [25565], '10.1.1.1': [8080] });
    expect(Object.keys(exposed).sort()).toEqual(['25565/tcp', '25565/udp', '8080/tcp', '8080/udp']);
    expect(bindings['25565/udp']).toEqual([{ HostIp: '172.18.0.1', HostPort: '25565' }]);
    expect(bindings['8080/tcp']).toEqual([{ HostIp: '10.1.1.1', HostPort: '8080' }]);
    const ispn = ConfigSchema.parse({ docker: { network: { ispn: true } } });
    expect(Object.keys(portBindings(ispn, { '127.0.0.1': [1] }).bindings)).toEqual([]);
    const none = ConfigSchema.parse({ docker: { network: { network_mode: 'none' } } });
    expect(portBindings(none, { '10.1.1.1': [1] })).toEqual({ exposed: {}, bindings: {} });
  });

  it('accepts only allowed mounts (cleaned, plain prefix)', () => {
    const c = ConfigSchema.parse({ allowed_mounts: ['/srv/shared/'] });
    const binds = serverBinds(c, '/data/u', [
      { source: '/srv/shared//maps/', target: '/home/container/maps/', read_only: true },
      { source: '/srv/sharedother', target: '/x', read_only: false },
      { source: '/etc', target: '/etc2', read_only: false },
    ]);
    expect(binds).toEqual(['/data/u:/home/container', '/srv/shared/maps:/home/container/maps:ro', '/srv/sharedother:/x']);
  });

  it('builds the installer container per docs/protocol.md W15.10', () => {
    const c = ConfigSchema.parse({ uuid: 'node-1', docker: { container_name_prefix: 'p-', network: { network_mode: 'none' } } });
    const o = installerContainerOptions({
      config: c,
      settings: {
        build: build({ memory_limit: 100, cpu_limit: 50 }),
      } as never,
      uuid: 'u1',
      dataDirectory: '/data/u1',
      installDirectory: '/tmp/pt/u1',
      env: ['A=1'],
      image: '~img:1',
      entrypoint: 'bash',
      networkMode: 'none',
    });
    expect(o.name).toBe('p-u1_installer');
    expect(o.Image).toBe('img:1');
    expect(o.Cmd).toEqual(['bash', '/mnt/install/install.sh']);
    expect(o.Hostname).toBe('installer');
    expect(o.Labels).toEqual({ Service: 'Pterodactyl', ContainerType: 'server_installer', 'wings-ts.node': 'node-1' });
    expect(o.HostConfig?.Binds).toEqual(['/data/u1:/mnt/server', '/tmp/pt/u1:/mnt/install']);
    expect(o.HostConfig?.PidsLimit).toBeUndefined();
    expect(o.HostConfig?.Memory).toBe(Math.round(1024 * 1.15 * 1_000_000));
    expect(o.HostConfig?.CpuQuota).toBe(100_000);
    expect(o.HostConfig?.CapDrop).toBeUndefined();
    expect(o.HostConfig?.NetworkMode).toBe('none');
  });

  it('maps stop signals with proper names', () => {
    expect(stopSignal('SIGTERM')).toBe('SIGTERM');
    expect(stopSignal('sigint')).toBe('SIGINT');
    expect(stopSignal('SIGABRT')).toBe('SIGABRT');
    expect(stopSignal('C')).toBe('SIGINT');
    expect(stopSignal('^C')).toBe('SIGINT');
    expect(stopSignal('')).toBe('SIGKILL');
    expect(stopSignal('SIGHUP')).toBe('SIGKILL');
  });

  it('picks registry credentials by prefix', () => {
    const c = ConfigSchema.parse({ docker: { registries: { 'ghcr.io': { username: 'u', password: 'p' } } } });
    expect(registryAuth(c, 'ghcr.io/pterodactyl/yolks:java_17')).toEqual({ username: 'u', password: 'p', serveraddress: 'ghcr.io' });
    expect(registryAuth(c, 'docker.io/library/alpine')).toBeUndefined();
  });

  it('extracts the engine message from docker-modem errors', () => {
    const e = Object.assign(new Error('(HTTP code 404) no such container - No such container: x '), { statusCode: 404, json: { message: 'No such container: x' } });
    expect(engineMessage(e)).toBe('No such container: x');
    expect(engineMessage(new Error('(HTTP code 500) server error - Get "http://x": refused '))).toBe('Get "http://x": refused');
  });
});

describe('stats arithmetic (docs/protocol.md W15.8)', () => {
  it('subtracts inactive file memory (v1 first, then v2)', () => {
    expect(memoryUsage({ memory_stats: { usage: 1000, stats: { total_inactive_file: 300, inactive_file: 100 } } })).toBe(700);
    expect(memoryUsage({ memory_stats: { usage: 1000, stats: { inactive_file: 100 } } })).toBe(900);
    expect(memoryUsage({ memory_stats: { usage: 1000, stats: { inactive_file: 2000 } } })).toBe(1000);
  });

  it('computes cpu against the previous one-shot sample, rounded to 3 decimals', () => {
    const sample = { cpu_stats: { cpu_usage: { total_usage: 3_000_000, percpu_usage: [], usage_in_usermode: 0, usage_in_kernelmode: 0 }, system_cpu_usage: 30_000_000, online_cpus: 2, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } } };
    expect(cpuAbsolute(sample, { total: 1_000_000, system: 10_000_000 })).toBe(20);
    expect(cpuAbsolute(sample, { total: 3_000_000, system: 10_000_000 })).toBe(0);
    expect(cpuAbsolute(sample, null)).toBe(0); // one-shot: no precpu
    const s = toEnvironmentStats(
      { ...sample, memory_stats: { usage: 50, limit: 100, stats: {} }, networks: { eth0: { rx_bytes: 1, tx_bytes: 2 } as never, eth1: { rx_bytes: 10, tx_bytes: 20 } as never } },
      { total: 2_000_000, system: 27_000_000 },
      1234.4,
    );
    expect(s).toEqual({ memory_bytes: 50, memory_limit_bytes: 100, cpu_absolute: 66.667, network: { rx_bytes: 11, tx_bytes: 22 }, uptime: 1234 });
  });
});

describe('engine unreachable', () => {
  const roots: string[] = [];
  afterAll(async () => {
    for (const r of roots) await rm(r, { recursive: true, force: true });
  });

  it('connectDocker fails with a clear message', async () => {
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = 'unix:///tmp/wings-ts-no-such-docker.sock';
    try {
      await expect(connectDocker(ConfigSchema.parse({}))).rejects.toThrow(
        /cannot reach the Docker engine at unix:\/\/\/tmp\/wings-ts-no-such-docker\.sock/,
      );
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });

  it('environment calls reject clearly and the state ends offline', async () => {
    const root = await makeRoot();
    roots.push(root);
    const h = await makeHarness({ nodeUuid: 'n', prefix: 'x-', root, startup: 'true' });
    const env = new DockerEnvironment(h.ctx, new Dockerode({ socketPath: '/tmp/wings-ts-no-such-docker.sock' }));
    env.on('state', (s) => h.states.push(s));
    await expect(env.start()).rejects.toThrow(/Docker engine unreachable|ENOENT|connect/);
    expect(env.state).toBe('offline'); // the first inspect failed: it never left offline
    expect(h.states).toEqual([]);
    await expect(env.exists()).rejects.toThrow(/Docker engine unreachable/);
    await expect(env.readLog(10)).rejects.toThrow();
    await expect(env.sendCommand('x')).rejects.toThrow('not attached to instance');
    await env.detach();
  });
});

describe('ensureDockerNetwork', () => {
  const logger = pino({ level: 'silent' });

  it.each(['none', 'host'])('touches no network in network mode %s', async (mode) => {
    const docker = { getNetwork: vi.fn(), createNetwork: vi.fn(), listNetworks: vi.fn() };
    const config = ConfigSchema.parse({ docker: { network: { network_mode: mode } } });
    await ensureDockerNetwork(docker as unknown as Dockerode, config, logger);
    expect(docker.getNetwork).not.toHaveBeenCalled();
    expect(docker.createNetwork).not.toHaveBeenCalled();
  });

  it('creates a missing network the Go way and derives interface/ispn', async () => {
    let created: any = null;
    const notFound = Object.assign(new Error('not found'), { statusCode: 404 });
    const docker = {
      getNetwork: vi.fn(() => ({
        inspect: vi.fn(async () => {
          if (!created) throw notFound;
          return { Driver: 'bridge' };
        }),
      })),
      createNetwork: vi.fn(async (opts: any) => {
        created = opts;
        return {};
      }),
    };
    const config = ConfigSchema.parse({ docker: { network: { interface: '1.2.3.4', ispn: true } } });
    await ensureDockerNetwork(docker as unknown as Dockerode, config, logger);
    expect(created).toMatchObject({
      Name: 'pterodactyl_nw',
      Driver: 'bridge',
      EnableIPv6: true,
      Internal: false,
      IPAM: { Config: [{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }, { Subnet: 'fdba:17c8:6c94::/64', Gateway: 'fdba:17c8:6c94::1011' }] },
      Options: {
        'com.docker.network.bridge.name': 'pterodactyl0',
        'com.docker.network.bridge.enable_icc': 'true',
        'com.docker.network.driver.mtu': '1500',
      },
    });
    expect(config.docker.network.interface).toBe('172.18.0.1');
    expect(config.docker.network.ispn).toBe(false);
    expect(config.docker.network.driver).toBe('bridge');
  });
});
