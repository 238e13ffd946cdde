import { randomUUID } from 'node:crypto';
import { chown, mkdir } from 'node:fs/promises';
import path from 'node:path';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import type { EnvironmentContext, ProcessState } from '../../src/environment/environment.js';
import {
  parseServerConfiguration,
  type ProcessConfiguration,
  type ServerSettings,
} from '../../src/server/configuration.js';
import { tmpDir } from '../helpers/tmp.js';

export const TEST_IMAGE = 'wings-ts/busybox:latest';

/** Is an engine answering, and is the test image there? `reason` says what is missing. */
export async function probeEngine(): Promise<{ docker: Dockerode | null; reason: string }> {
  const docker = new Dockerode();
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('ping timed out')), 3000)),
    ]);
  } catch (err) {
    return {
      docker: null,
      reason: `no Docker engine at ${process.env.DOCKER_HOST || '/var/run/docker.sock'} (${(err as Error).message}); run: bash scripts/start-dockerd.sh && bash scripts/docker-test-image.sh`,
    };
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    return { docker: null, reason: `test image ${TEST_IMAGE} is missing; run: bash scripts/docker-test-image.sh` };
  }
  return { docker, reason: '' };
}

export interface Harness {
  ctx: EnvironmentContext;
  config: Config;
  settings: ServerSettings;
  process: ProcessConfiguration;
  env: string[];
  states: ProcessState[];
  lines: string[];
  daemonMessages: string[];
  installOutput: string[];
}

export interface HarnessOptions {
  nodeUuid: string;
  prefix: string;
  root: string;
  startup: string;
  image?: string;
  stop?: { type: string; value: string };
  build?: Record<string, unknown>;
  configOverrides?: Record<string, unknown>;
  uuid?: string;
}

export async function makeRoot(): Promise<string> {
  return tmpDir('wings-ts-docker-');
}

export async function makeHarness(o: HarnessOptions): Promise<Harness> {
  const uuid = o.uuid ?? randomUUID();
  const config = ConfigSchema.parse({
    uuid: o.nodeUuid,
    system: {
      data: path.join(o.root, 'volumes'),
      tmp_directory: path.join(o.root, 'tmp'),
      user: { uid: 988, gid: 988 },
    },
    docker: {
      network: { network_mode: 'none' },
      container_name_prefix: o.prefix,
      container_pid_limit: 64,
      tmpfs_size: 16,
      installer_limits: { memory: 256, cpu: 100 },
    },
    ...(o.configOverrides ?? {}),
  });
  const parsed = parseServerConfiguration(
    {
      settings: {
        uuid,
        invocation: o.startup,
        labels: { 'panel.label': 'yes' },
        build: { memory_limit: 128, swap: 0, io_weight: 0, cpu_limit: 50, threads: '', disk_space: 0, oom_disabled: false, ...o.build },
        container: { image: o.image ?? `~${TEST_IMAGE}` },
        allocations: { default: { ip: '127.0.0.1', port: 25565 }, mappings: { '127.0.0.1': [25565] } },
      },
      process_configuration: { stop: o.stop ?? { type: 'command', value: 'stop' }, startup: { done: ['ready'] } },
    },
    true,
  );
  const dataDirectory = path.join(config.system.data, uuid);
  await mkdir(dataDirectory, { recursive: true });
  await chown(dataDirectory, 988, 988);
  const env = ['TZ=UTC', `STARTUP=${o.startup}`, 'SERVER_MEMORY=128', 'SERVER_IP=127.0.0.1', 'SERVER_PORT=25565'];
  const h: Harness = {
    config,
    settings: parsed.settings,
    process: parsed.processConfiguration,
    env,
    states: [],
    lines: [],
    daemonMessages: [],
    installOutput: [],
    ctx: undefined as unknown as EnvironmentContext,
  };
  h.ctx = {
    uuid,
    dataDirectory,
    config: () => h.config,
    settings: () => h.settings,
    processConfiguration: () => h.process,
    environmentVariables: () => h.env,
    logger: pino({ level: process.env.WINGS_TEST_LOG ?? 'silent' }),
    publishDaemonMessage: (m) => h.daemonMessages.push(m),
    publishInstallOutput: (l) => h.installOutput.push(l),
  };
  return h;
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
