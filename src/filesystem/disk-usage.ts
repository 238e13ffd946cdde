import fs from 'node:fs';
import path from 'node:path';

/** Bytes of regular files below `root` (lstat sizes; symlinks not followed). Missing root = 0. */
export async function directorySize(root: string, signal?: AbortSignal): Promise<number> {
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    if (signal?.aborted) throw signal.reason;
    const dir = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw err;
    }
    const files: string[] = [];
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) files.push(p);
    }
    const sizes = await Promise.all(
      files.map((f) => fs.promises.lstat(f).then((s) => s.size, () => 0)),
    );
    for (const s of sizes) total += s;
  }
  return total;
}

/** Free bytes available to unprivileged writers on the filesystem holding `p`. */
export async function freeSpace(p: string): Promise<number> {
  const s = await fs.promises.statfs(p);
  return s.bavail * s.bsize;
}

/** Cached disk usage of one server (refreshed lazily after `intervalSeconds`; 0 disables). */
export class DiskUsage {
  private value = 0;
  private lastCheck = 0;
  private running: Promise<number> | undefined;

  constructor(
    private readonly root: string,
    private readonly intervalSeconds: () => number,
  ) {}

  get cached(): number {
    return this.value;
  }

  /** The cached value; starts a background refresh when it is stale. */
  current(): number {
    if (this.intervalSeconds() > 0 && Date.now() - this.lastCheck > this.intervalSeconds() * 1000) {
      void this.refresh().catch(() => {});
    }
    return this.value;
  }

  async refresh(): Promise<number> {
    if (this.intervalSeconds() === 0) return 0;
    this.running ??= directorySize(this.root)
      .then((v) => {
        this.value = v;
        this.lastCheck = Date.now();
        return v;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}
