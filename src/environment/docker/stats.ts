import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { EnvironmentStats } from '../environment.js';
import { STATS_INTERVAL_MS, sampleEvery } from '../stats-loop.js';
import { engineCall } from './errors.js';

/** A one-shot stats answer slower than this is given up (and the next one asked for). */
const STATS_TIMEOUT_MS = 10_000;

/**
 * Resource arithmetic of docs/protocol.md W15.8 for one-shot samples: the engine's one-shot answer
 * has no `precpu_stats`, so the CPU delta is taken against the previous sample we kept.
 */

export interface CpuSample {
  total: number;
  system: number;
}

type MaybeStats = Omit<Partial<Dockerode.ContainerStats>, 'memory_stats'> & {
  memory_stats?: Omit<Partial<Dockerode.MemoryStats>, 'stats'> & { stats?: Record<string, number | undefined> };
};

/** Memory = usage − total_inactive_file (cgroup v1) or − inactive_file (v2) when smaller. */
export function memoryUsage(stats: MaybeStats): number {
  const usage = stats.memory_stats?.usage ?? 0;
  const detail = stats.memory_stats?.stats ?? {};
  const v1 = detail.total_inactive_file;
  if (v1 !== undefined && v1 < usage) return usage - v1;
  const v2 = detail.inactive_file;
  if (v2 !== undefined && v2 < usage) return usage - v2;
  return usage;
}

export function cpuSample(stats: MaybeStats): CpuSample | null {
  const cpu = stats.cpu_stats;
  if (!cpu?.cpu_usage || !cpu.system_cpu_usage) return null;
  return { total: cpu.cpu_usage.total_usage, system: cpu.system_cpu_usage };
}

/** (Δ total / Δ system) × 100 × online CPUs, 0 when a delta is not positive; 3 decimals. */
export function cpuAbsolute(stats: MaybeStats, previous: CpuSample | null): number {
  const current = cpuSample(stats);
  const prev = previous ?? (stats.precpu_stats ? cpuSample({ cpu_stats: stats.precpu_stats }) : null);
  if (!current || !prev) return 0;
  const cpuDelta = current.total - prev.total;
  const systemDelta = current.system - prev.system;
  if (cpuDelta <= 0 || systemDelta <= 0) return 0;
  const cpus = stats.cpu_stats?.online_cpus || stats.cpu_stats?.cpu_usage.percpu_usage?.length || 1;
  return Math.round((cpuDelta / systemDelta) * 100 * cpus * 1000) / 1000;
}

export function networkTotals(stats: MaybeStats): { rx_bytes: number; tx_bytes: number } {
  let rx = 0;
  let tx = 0;
  for (const net of Object.values(stats.networks ?? {})) {
    rx += net.rx_bytes ?? 0;
    tx += net.tx_bytes ?? 0;
  }
  return { rx_bytes: rx, tx_bytes: tx };
}

export function toEnvironmentStats(
  stats: MaybeStats,
  previous: CpuSample | null,
  uptimeMs: number,
): EnvironmentStats {
  return {
    memory_bytes: memoryUsage(stats),
    memory_limit_bytes: stats.memory_stats?.limit ?? 0,
    cpu_absolute: cpuAbsolute(stats, previous),
    network: networkTotals(stats),
    uptime: Math.max(0, Math.round(uptimeMs)),
  };
}

/**
 * The stats loop of a running, attached server container: a one-shot sample about once a second,
 * emitted as EnvironmentStats. It stops when asked (the console detached) and by itself once the
 * environment is no longer active (offline after a kill, before the console stream has ended).
 */
export class ContainerStats {
  private run: AbortController | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly active: () => boolean,
    private readonly emit: (stats: EnvironmentStats) => void,
  ) {}

  /** Starts sampling `container`, whose current run began at `startedAt` (ms since the epoch). */
  start(container: Dockerode.Container, startedAt: number): void {
    this.stop();
    const run = new AbortController();
    this.run = run;
    let previous: CpuSample | null = null;
    void sampleEvery(STATS_INTERVAL_MS, run.signal, async (signal) => {
      if (!this.active()) {
        if (this.run === run) this.stop();
        return;
      }
      try {
        const sample = await engineCall('stats', container.stats({ stream: false, 'one-shot': true }), STATS_TIMEOUT_MS);
        if (signal.aborted) return;
        this.emit(toEnvironmentStats(sample, previous, Date.now() - startedAt));
        previous = cpuSample(sample);
      } catch (err) {
        this.logger.debug({ err }, 'stats sample failed');
      }
    });
  }

  stop(): void {
    this.run?.abort();
    this.run = null;
  }
}
