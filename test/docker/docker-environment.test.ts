import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DockerEnvironment } from '../../src/environment/docker/docker-environment.js';
import { NODE_LABEL } from '../../src/environment/docker/container-config.js';
import { PULL_STARTED } from '../../src/environment/docker/images.js';
import type { EnvironmentStats } from '../../src/environment/environment.js';
import { TEST_IMAGE, makeHarness, makeRoot, probeEngine, waitFor, type Harness, type HarnessOptions } from './helpers.js';

const probe = await probeEngine();
const required = Boolean(process.env.WINGS_TEST_DOCKER);

if (!probe.docker) {
  if (required) {
    describe('docker environment', () => {
      it('needs a Docker engine (WINGS_TEST_DOCKER is set)', () => {
        throw new Error(`WINGS_TEST_DOCKER is set but the Docker tests cannot run: ${probe.reason}`);
      });
    });
  } else {
    console.warn(`[test/docker] skipping Docker environment tests: ${probe.reason}`);
  }
}

const LOOP = 'echo ready; while read l; do echo "got $l"; [ "$l" = stop ] && exit 0; done';

describe.skipIf(!probe.docker)('DockerEnvironment (engine)', () => {
  const docker = probe.docker as Dockerode;
  const nodeUuid = randomUUID();
  const prefix = `wtst-${randomUUID().slice(0, 8)}-`;
  let root = '';
  const envs: DockerEnvironment[] = [];

  async function setup(o: Partial<HarnessOptions> & { startup?: string } = {}): Promise<{ h: Harness; env: DockerEnvironment }> {
    const h = await makeHarness({ nodeUuid, prefix, root, startup: o.startup ?? LOOP, ...o });
    const env = new DockerEnvironment(h.ctx, docker);
    env.on('state', (s) => h.states.push(s));
    env.on('console', (l) => h.lines.push(l));
    envs.push(env);
    return { h, env };
  }

  beforeAll(async () => {
    root = await makeRoot();
  });

  afterEach(async () => {
    for (const env of envs.splice(0)) await env.detach();
  });

  afterAll(async () => {
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${NODE_LABEL}=${nodeUuid}`] } });
    for (const c of leftovers) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {});
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('creates the container with the Go limits, mounts, labels and security options', async () => {
    const { h, env } = await setup();
    await env.create();
    expect(await env.exists()).toBe(true);
    expect(await env.isRunning()).toBe(false);
    const info = await docker.getContainer(`${prefix}${h.ctx.uuid}`).inspect();
    const hc = info.HostConfig;
    expect(info.Name).toBe(`/${prefix}${h.ctx.uuid}`);
    expect(info.Config.Image).toBe(TEST_IMAGE);
    expect(hc.Memory).toBe(Math.round(128 * 1.15 * 1_000_000));
    expect(hc.MemoryReservation).toBe(128_000_000);
    expect(hc.MemorySwap).toBe(Math.round(128 * 1.15 * 1_000_000));
    expect(hc.PidsLimit).toBe(64);
    expect(hc.CpuQuota).toBe(50_000);
    expect(hc.CpuPeriod).toBe(100_000);
    expect(hc.CpuShares).toBe(1024);
    expect(hc.NetworkMode).toBe('none');
    expect(hc.Binds).toEqual([`${h.ctx.dataDirectory}:/home/container`]);
    expect(hc.Tmpfs).toEqual({ '/tmp': 'rw,exec,nosuid,size=16M' });
    expect(hc.Init).toBe(true);
    expect(hc.ReadonlyRootfs).toBe(true);
    expect(hc.SecurityOpt).toEqual(['no-new-privileges']);
    expect(hc.CapDrop).toEqual(expect.arrayContaining(['setpcap', 'net_raw', 'dac_override', 'setfcap']));
    expect(hc.LogConfig).toEqual({ Type: 'local', Config: { 'max-size': '5m', 'max-file': '1', compress: 'false', mode: 'non-blocking' } });
    expect(hc.Dns).toEqual(['1.1.1.1', '1.0.0.1']);
    expect(hc.PortBindings ?? {}).toEqual({});
    expect(info.Config.Labels).toMatchObject({
      Service: 'Pterodactyl',
      ContainerType: 'server_process',
      [NODE_LABEL]: nodeUuid,
      'panel.label': 'yes',
    });
    expect(info.Config.User).toBe('988:988');
    expect(info.Config.Hostname).toBe(h.ctx.uuid);
    expect(info.Config.Tty).toBe(true);
    expect(info.Config.OpenStdin).toBe(true);
    expect(info.Config.Env).toEqual(expect.arrayContaining(['SERVER_IP=172.18.0.1', 'SERVER_MEMORY=128', `STARTUP=${LOOP}`]));
    await env.destroy();
    expect(await env.exists()).toBe(false);
    await env.destroy(); // missing is fine
  });

  it('starts, shows console lines, takes commands and stops by command', async () => {
    const { h, env } = await setup();
    await env.start();
    expect(env.state).toBe('starting');
    expect(env.isAttached).toBe(true);
    await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
    expect(h.lines.some((l) => l.startsWith(':/home/container$ echo ready'))).toBe(true);
    await env.sendCommand('hello there');
    await waitFor(() => h.lines.includes('got hello there'), 10_000, 'command echo');
    await env.stop();
    expect(env.state).toBe('stopping');
    await waitFor(() => env.state === 'offline', 10_000, 'offline');
    expect(h.states).toEqual(['starting', 'stopping', 'offline']);
    expect(await env.exitState()).toEqual({ exitCode: 0, oomKilled: false });
    expect(env.isAttached).toBe(false);
    await expect(env.sendCommand('x')).rejects.toThrow('not attached to instance');
  });

  it('a console command equal to the stop command sets stopping first', async () => {
    const { h, env } = await setup();
    await env.start();
    await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
    await env.sendCommand('stop');
    expect(env.state).toBe('stopping');
    await waitFor(() => env.state === 'offline', 10_000, 'offline');
    expect(h.states).toEqual(['starting', 'stopping', 'offline']);
  });

  it('stops by signal (SIGTERM reaches the trap through docker-init)', async () => {
    const { h, env } = await setup({
      startup: "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
      stop: { type: 'signal', value: 'sigterm' },
    });
    await env.start();
    await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
    await env.waitForStop(10_000, false);
    expect(await env.isRunning()).toBe(false);
    expect(h.states).toEqual(['starting', 'stopping', 'offline']);
    expect(await env.exitState()).toEqual({ exitCode: 0, oomKilled: false });
    await waitFor(() => h.lines.includes('bye'), 5_000, 'trap output');
    expect(await env.readLog(2)).toEqual(['ready', 'bye']);
  });

  it('waitForStop: timeout rejects STOP_TIMEOUT without terminate, kills with terminate', async () => {
    const { h, env } = await setup({
      startup: "trap '' TERM; echo ready; while true; do sleep 0.1; done",
      stop: { type: 'signal', value: 'SIGTERM' },
    });
    await env.start();
    await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
    const t0 = Date.now();
    await expect(env.waitForStop(1_200, false)).rejects.toMatchObject({ code: 'STOP_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await env.isRunning()).toBe(true);
    await env.waitForStop(1_200, true);
    expect(await env.isRunning()).toBe(false);
    expect((await env.exitState()).exitCode).toBe(137);
    expect(env.state).toBe('offline');
  });

  it('a crash goes straight from starting to offline and exitState reports the code', async () => {
    const { h, env } = await setup({ startup: 'echo boom; exit 3' });
    await env.start();
    await waitFor(() => env.state === 'offline', 15_000, 'offline');
    expect(h.states).toEqual(['starting', 'offline']);
    expect(h.lines).toContain('boom');
    expect(await env.exitState()).toEqual({ exitCode: 3, oomKilled: false });
  });

  it('readLog and console work after detach, a new environment and attach', async () => {
    const { h, env } = await setup({ startup: `echo line1; echo line2; ${LOOP}` });
    await env.start();
    await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
    await env.detach();
    expect(env.isAttached).toBe(false);
    expect(await env.isRunning()).toBe(true);

    const again = new DockerEnvironment(h.ctx, docker);
    envs.push(again);
    const lines: string[] = [];
    again.on('console', (l) => lines.push(l));
    expect(await again.readLog(3)).toEqual(['line1', 'line2', 'ready']);
    await again.attach();
    expect(again.state).toBe('running');
    expect(again.isAttached).toBe(true);
    await again.sendCommand('after');
    await waitFor(() => lines.includes('got after'), 10_000, 'echo after re-attach');
    // start() on a running container adopts it.
    await again.start();
    expect(again.state).toBe('running');
    await again.terminate('SIGKILL');
    expect(again.state).toBe('offline');
    await waitFor(async () => !(await again.isRunning()), 10_000, 'killed');
  });

  it('emits stats while running', async () => {
    const { h, env } = await setup();
    const samples: EnvironmentStats[] = [];
    env.on('stats', (s: EnvironmentStats) => samples.push(s));
    await env.start();
    await waitFor(() => samples.length >= 2, 15_000, 'two stats samples');
    const s = samples[samples.length - 1];
    expect(s.memory_bytes).toBeGreaterThan(0);
    // The kernel rounds the limit down to whole pages.
    expect(s.memory_limit_bytes).toBeLessThanOrEqual(Math.round(128 * 1.15 * 1_000_000));
    expect(s.memory_limit_bytes).toBeGreaterThan(Math.round(128 * 1.15 * 1_000_000) - 65_536);
    expect(s.network).toEqual({ rx_bytes: 0, tx_bytes: 0 });
    expect(s.uptime).toBeGreaterThanOrEqual(0);
    expect(s.cpu_absolute).toBeGreaterThanOrEqual(0);
    void h;
    await env.terminate('SIGKILL');
    const count = samples.length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(samples.length).toBeLessThanOrEqual(count + 1);
  });

  it('applies new limits to a live container (inSituUpdate)', async () => {
    const { h, env } = await setup();
    await env.inSituUpdate(); // no container: ignored
    await env.start();
    await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
    h.settings = { ...h.settings, build: { ...h.settings.build, memory_limit: 256, cpu_limit: 150 } };
    await env.inSituUpdate();
    const info = await docker.getContainer(`${prefix}${h.ctx.uuid}`).inspect();
    expect(info.HostConfig.Memory).toBe(Math.round(256 * 1.15 * 1_000_000));
    expect(info.HostConfig.MemoryReservation).toBe(256_000_000);
    expect(info.HostConfig.CpuQuota).toBe(150_000);
    await env.terminate('SIGKILL');
  });

  it('runs the installer: success with output, files and cleanup', async () => {
    const { h, env } = await setup();
    const out: string[] = [];
    const ok = await env.runInstaller({
      image: `~${TEST_IMAGE}`,
      entrypoint: 'sh',
      script: 'echo installing\r\necho "$SERVER_MEMORY" > /mnt/server/installed.txt\r\nls /mnt/install\r\nhostname\r\n',
      onOutput: (l) => out.push(l),
      signal: new AbortController().signal,
    });
    expect(ok).toBe(true);
    expect(out).toEqual(expect.arrayContaining(['installing', 'install.sh', 'installer']));
    expect(await readFile(path.join(h.ctx.dataDirectory, 'installed.txt'), 'utf8')).toBe('128\n');
    expect(existsSync(path.join(h.config.system.tmp_directory, h.ctx.uuid))).toBe(false);
    await expect(docker.getContainer(`${prefix}${h.ctx.uuid}_installer`).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('runs the installer: failure and abort', async () => {
    const { env } = await setup();
    const out: string[] = [];
    const failed = await env.runInstaller({
      image: `~${TEST_IMAGE}`,
      entrypoint: 'sh',
      script: 'echo failing\nexit 2\n',
      onOutput: (l) => out.push(l),
      signal: new AbortController().signal,
    });
    expect(failed).toBe(false);
    expect(out).toContain('failing');

    const ac = new AbortController();
    const lines: string[] = [];
    const t0 = Date.now();
    const run = env.runInstaller({
      image: `~${TEST_IMAGE}`,
      entrypoint: 'sh',
      script: 'echo started\nsleep 60\n',
      onOutput: (l) => {
        lines.push(l);
        if (l === 'started') ac.abort();
      },
      signal: ac.signal,
    });
    expect(await run).toBe(false);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('never touches a container of another node', async () => {
    const { h, env } = await setup();
    const name = `${prefix}${h.ctx.uuid}`;
    const foreign = await docker.createContainer({
      name,
      Image: TEST_IMAGE,
      Entrypoint: ['sleep', '300'],
      Labels: { Service: 'Pterodactyl', ContainerType: 'server_process', [NODE_LABEL]: 'some-other-node' },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      await expect(env.start()).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(env.destroy()).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(env.terminate('SIGKILL')).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(env.attach()).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(env.exists()).rejects.toMatchObject({ code: 'CONFLICT' });
      const info = await foreign.inspect();
      expect(info.Config.Labels[NODE_LABEL]).toBe('some-other-node');
      expect(env.state).toBe('offline');
    } finally {
      await foreign.remove({ force: true });
    }
  });

  it('a local-only image that is missing fails the start without a pull', async () => {
    const { h, env } = await setup({ image: '~wings-ts/does-not-exist:latest' });
    await expect(env.start()).rejects.toThrow(/local-only/);
    expect(h.states).toEqual(['starting', 'stopping', 'offline']);
    expect(h.daemonMessages).not.toContain(PULL_STARTED);
  });

  it('a failed pull fails the start and publishes the engine message (loopback registry)', async () => {
    const { h, env } = await setup({ image: '127.0.0.1:9/wings-ts/nothing:latest' });
    await expect(env.start()).rejects.toThrow(/pulling image/);
    expect(h.states).toEqual(['starting', 'stopping', 'offline']);
    expect(h.daemonMessages[0]).toBe(PULL_STARTED);
    const failure = h.daemonMessages.find((m) => m.startsWith('Failed to pull Docker container image:'));
    expect(failure).toMatch(/^Failed to pull Docker container image: Get "https?:\/\/127\.0\.0\.1:9\/v2\/".*connection refused$/);
    expect(await env.exists()).toBe(false);
  });
});

describe.skipIf(!probe.docker)('DockerEnvironment when the engine goes away mid-run', () => {
  it('ends the console as offline, rejects calls clearly and does not crash', async () => {
    const { createServer, connect } = await import('node:net');
    const Dockerode = (await import('dockerode')).default;
    const root = await makeRoot();
    const sock = path.join(root, 'proxy.sock');
    const sockets = new Set<import('node:net').Socket>();
    // A loopback unix-socket proxy to the engine; closing it looks like the engine dying.
    const proxy = createServer((client) => {
      const upstream = connect('/var/run/docker.sock');
      sockets.add(client).add(upstream);
      client.on('error', () => {}).pipe(upstream);
      upstream.on('error', () => {}).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(sock, resolve));
    const nodeUuid = randomUUID();
    const h = await makeHarness({ nodeUuid, prefix: `wtst-${randomUUID().slice(0, 8)}-`, root, startup: LOOP });
    const env = new DockerEnvironment(h.ctx, new Dockerode({ socketPath: sock }));
    env.on('state', (s) => h.states.push(s));
    env.on('console', (l) => h.lines.push(l));
    try {
      await env.start();
      await waitFor(() => h.lines.includes('ready'), 15_000, 'ready line');
      await new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await waitFor(() => env.state === 'offline', 5_000, 'offline after the engine vanished');
      expect(env.isAttached).toBe(false);
      await expect(env.isRunning()).rejects.toThrow(/Docker engine unreachable/);
      await expect(env.stop()).rejects.toThrow(/Docker engine unreachable/);
      await expect(env.sendCommand('x')).rejects.toThrow('not attached to instance');
    } finally {
      await env.detach();
      const real = probe.docker as Dockerode;
      await real.getContainer(`${h.config.docker.container_name_prefix}${h.ctx.uuid}`).remove({ force: true }).catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });
});
