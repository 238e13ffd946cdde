import fs from 'node:fs';
import { NODE_TOKEN } from '../../answers.js';
import os from 'node:os';
import { z } from 'zod';
import { VERSION } from '../../../version.js';
import type { Routes } from '../../types.js';

function goArch(): string {
  const a = os.arch();
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

function osPrettyName(): string {
  try {
    const text = fs.readFileSync('/etc/os-release', 'utf8');
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1];
    const name = /^NAME="?([^"\n]*)"?/m.exec(text)?.[1];
    return pretty || name || os.type();
  } catch {
    return os.type();
  }
}

/** GET /api/system */
/** The fields of the engine's `GET /info` this route reports (dockerode types it as any). */
interface DockerInfo {
  CgroupDriver?: string;
  CgroupVersion?: string;
  Containers?: number;
  ContainersRunning?: number;
  ContainersPaused?: number;
  ContainersStopped?: number;
  Driver?: string;
  DriverStatus?: [string, string][];
  RuncCommit?: { ID?: string };
  MemTotal?: number;
}

export const systemRoutes: Routes = async (app, ctx) => {
  app.get(
    '/api/system',
    { schema: { description: 'Node information (legacy shape; `?v=2` for the detailed one).', querystring: z.object({ v: z.string().optional() }),
      answers: { 200: z.looseObject({ version: z.string() }), ...NODE_TOKEN } } },
    async (request) => {
      const { v } = request.query;
      const system = {
        architecture: goArch(),
        cpu_threads: os.cpus().length,
        memory_bytes: os.totalmem(),
        kernel_version: os.release(),
        os: osPrettyName(),
        os_type: os.platform(),
      };
      if (v !== '2') {
        return {
          architecture: system.architecture,
          cpu_count: system.cpu_threads,
          kernel_version: system.kernel_version,
          os: system.os_type,
          version: VERSION,
        };
      }
      const docker = {
        version: '',
        cgroups: { driver: '', version: '' },
        containers: { total: 0, running: 0, paused: 0, stopped: 0 },
        storage: { driver: '', filesystem: '' },
        runc: { version: '' },
      };
      if (ctx.docker && ctx.config().environment === 'docker') {
        const info = (await ctx.docker.info()) as DockerInfo;
        const version = (await ctx.docker.version()) as { Version?: string };
        docker.version = String(version.Version ?? '');
        docker.cgroups = { driver: String(info.CgroupDriver ?? ''), version: String(info.CgroupVersion ?? '') };
        docker.containers = {
          total: Number(info.Containers ?? 0),
          running: Number(info.ContainersRunning ?? 0),
          paused: Number(info.ContainersPaused ?? 0),
          stopped: Number(info.ContainersStopped ?? 0),
        };
        const backing = info.DriverStatus?.find((d) => d[0] === 'Backing Filesystem');
        docker.storage = { driver: String(info.Driver ?? ''), filesystem: backing?.[1] ?? '' };
        docker.runc = { version: String(info.RuncCommit?.ID ?? '') };
        system.memory_bytes = Number(info.MemTotal ?? system.memory_bytes);
      }
      return { version: VERSION, docker, system };
    },
  );
};
