import { readdir, readFile } from 'node:fs/promises';
import type { EnvironmentStats } from '../environment.js';

/**
 * Resource usage of a process tree from Linux /proc, for the process environment's stats (the
 * counterpart of Docker's stats stream, docs/protocol.md W15.8).
 *
 * The tree is every process whose process group or session is the leader's pid: the environment
 * spawns the server with `detached: true` (setsid), so the server and everything it starts share
 * the session even if a child makes its own process group.
 */

/** USER_HZ: the unit of the tick counters in /proc/<pid>/stat; 100 on every Linux ABI in use. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface TreeUsage {
  /** Resident memory of all processes of the tree, bytes. */
  rssBytes: number;
  /** utime + stime + cutime + cstime summed over the tree, clock ticks. */
  cpuTicks: number;
  /** Number of processes found. */
  processes: number;
}

interface StatFields {
  pgrp: number;
  session: number;
  ticks: number;
}

/** Parses /proc/<pid>/stat; the command name (field 2) may contain spaces and parentheses. */
export function parseProcStat(text: string): StatFields | null {
  const close = text.lastIndexOf(')');
  if (close === -1) return null;
  // Fields from 3 (state) on; field k is at index k - 3.
  const f = text.slice(close + 2).split(' ');
  if (f.length < 15) return null;
  const num = (i: number): number => Number(f[i]);
  const fields = { pgrp: num(2), session: num(3), ticks: num(11) + num(12) + num(13) + num(14) };
  if (!Number.isFinite(fields.pgrp) || !Number.isFinite(fields.ticks)) return null;
  return fields;
}

/** VmRSS of /proc/<pid>/status in bytes (0 for kernel threads and zombies). */
export function parseVmRss(status: string): number {
  const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Sums the usage of the tree led by `leader`; null when /proc is not available (not Linux). */
export async function sampleProcessTree(leader: number): Promise<TreeUsage | null> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return null;
  }
  const usage: TreeUsage = { rssBytes: 0, cpuTicks: 0, processes: 0 };
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (pid) => {
        try {
          const stat = parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
          if (!stat || (stat.pgrp !== leader && stat.session !== leader)) return;
          const rss = parseVmRss(await readFile(`/proc/${pid}/status`, 'utf8'));
          usage.rssBytes += rss;
          usage.cpuTicks += stat.ticks;
          usage.processes++;
        } catch {
          // The process ended while we looked at it.
        }
      }),
  );
  return usage;
}

/**
 * Successive samples of one run's process tree as EnvironmentStats: CPU as the share of one core
 * since the previous sample (100 = one core busy, like Docker's absolute CPU), memory as the
 * tree's resident size, no network counters (the process shares the host's network).
 */
export class ProcessTreeStats {
  private lastCpu: { ticks: number; at: number } | null = null;

  constructor(
    private readonly leader: number,
    private readonly startedAt: number,
  ) {}

  async sample(memoryLimitBytes: number): Promise<EnvironmentStats> {
    const usage = await sampleProcessTree(this.leader);
    const now = Date.now();
    let cpu = 0;
    if (usage && this.lastCpu) {
      const seconds = (now - this.lastCpu.at) / 1000;
      const ticks = usage.cpuTicks - this.lastCpu.ticks;
      if (seconds > 0 && ticks > 0) cpu = Math.round((ticks / CLOCK_TICKS_PER_SECOND / seconds) * 100 * 1000) / 1000;
    }
    if (usage) this.lastCpu = { ticks: usage.cpuTicks, at: now };
    return {
      memory_bytes: usage?.rssBytes ?? 0,
      memory_limit_bytes: memoryLimitBytes,
      cpu_absolute: cpu,
      network: { rx_bytes: 0, tx_bytes: 0 },
      uptime: now - this.startedAt,
    };
  }
}
