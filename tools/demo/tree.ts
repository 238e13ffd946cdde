import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** One entry of a server tree, as the demo verifies it after a transfer (docs/protocol.md D5.3). */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  /** 0777 bits (setuid/setgid/sticky are dropped by a transfer); 0 for symlinks. */
  mode: number;
  /** Whole seconds (a transfer truncates); the demo's comparison skips it for symlinks. */
  mtime: number;
  size?: number;
  sha256?: string;
  target?: string;
}

export type TreeSnapshot = Map<string, TreeEntry>;

export interface GeneratedTree {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

const MiB = 1024 * 1024;
const WORDS = (
  'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore ' +
  'et dolore magna aliqua creeper zombie skeleton enderman villager redstone diamond emerald obsidian'
).split(' ');

/** Compressible text: log-like lines with a counter, so that the content is not one repeated block. */
function textChunk(bytes: number, seed: number): Buffer {
  const parts: string[] = [];
  let size = 0;
  let i = seed;
  while (size < bytes) {
    const line = `[${String(i).padStart(8, '0')}] ${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} ${WORDS[(i * 13) % WORDS.length]} x=${(i * 31) % 997}\n`;
    parts.push(line);
    size += line.length;
    i++;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

/**
 * Writes a game-server-like tree of about `totalBytes` under `root`: world region files of random
 * bytes (incompressible), logs and configs of text (compressible), nested directories, an empty
 * directory, symlinks (relative, to a directory, dangling), a few modes and old mtimes.
 */
export async function generateTree(root: string, totalBytes: number): Promise<GeneratedTree> {
  const stats: GeneratedTree = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const p = (...parts: string[]) => path.join(root, ...parts);
  const mkdir = (...parts: string[]) => {
    fs.mkdirSync(p(...parts), { recursive: true });
  };
  const write = async (rel: string, data: Buffer, mode?: number) => {
    await fs.promises.writeFile(p(rel), data);
    if (mode !== undefined) await fs.promises.chmod(p(rel), mode);
    stats.files++;
    stats.bytes += data.length;
  };

  for (const d of ['world/region', 'world/data', 'world_nether/DIM-1/region', 'logs', 'plugins/demo/lang', 'config/deep/er/still', 'cache']) mkdir(d);
  mkdir('empty-dir');
  stats.dirs = 14;

  // Small files first (fixed size), then the random region files fill the rest.
  await write('server.properties', Buffer.from('server-port=25565\nmotd=wings-ts demo\nmax-players=20\nview-distance=10\n'));
  await write('eula.txt', Buffer.from('eula=true\n'));
  await write('start.sh', Buffer.from('#!/bin/sh\nexec java -Xmx1G -jar server.jar nogui\n'), 0o755);
  await write('config/secret.yml', Buffer.from('password: not-really\n'), 0o600);
  await write('config/deep/er/still/leaf.txt', Buffer.from('the bottom of the tree\n'));
  await write('plugins/demo/lang/en.yml', textChunk(64 * 1024, 7));
  await write('world/data/empty.dat', Buffer.alloc(0));
  for (let i = 0; i < 40; i++) await write(`cache/blob-${i}.bin`, randomBytes(4096 + i * 97));

  const textBudget = Math.floor(totalBytes * 0.3);
  const logCount = 6;
  for (let i = 0; i < logCount; i++) await write(`logs/${i === 0 ? 'latest' : `2024-01-0${i}-1`}.log`, textChunk(Math.floor(textBudget / logCount), i * 100_000));

  const remaining = Math.max(MiB, totalBytes - stats.bytes);
  const regionSize = 8 * MiB;
  let left = remaining;
  let n = 0;
  while (left > 0) {
    const size = Math.min(regionSize, left);
    const dir = n % 3 === 2 ? 'world_nether/DIM-1/region' : 'world/region';
    await write(`${dir}/r.${n % 8}.${Math.floor(n / 8)}.mca`, randomBytes(size));
    left -= size;
    n++;
  }

  fs.symlinkSync('server.properties', p('server.properties.link'));
  fs.symlinkSync('world', p('world-link'));
  fs.symlinkSync('../../does/not/exist', p('plugins/dangling'));
  stats.symlinks = 3;

  const old = new Date('2015-06-01T12:00:00Z');
  fs.utimesSync(p('eula.txt'), old, old);
  fs.utimesSync(p('empty-dir'), old, old);
  fs.utimesSync(p('config/deep/er/still'), old, old);
  return stats;
}

/**
 * Every entry below `root` with type, mode, mtime, size, SHA-256 and symlink target, in name order.
 * Keys are the relative paths as latin1 of their raw bytes, so that a name that is not UTF-8
 * survives (the tests transfer such names). The demo and the tests (test/helpers/tree.ts) share it.
 */
export async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const out: TreeSnapshot = new Map();
  const walk = async (dir: Buffer, rel: string): Promise<void> => {
    const names = (await fs.promises.readdir(dir, { encoding: 'buffer' })).sort((x, y) => Buffer.compare(x, y));
    for (const name of names) {
      const full = Buffer.concat([dir, Buffer.from('/'), name]);
      const key = rel ? `${rel}/${name.toString('latin1')}` : name.toString('latin1');
      const st = await fs.promises.lstat(full);
      const base = { mode: st.mode & 0o777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isSymbolicLink()) {
        out.set(key, { type: 'symlink', ...base, mode: 0, target: (await fs.promises.readlink(full, { encoding: 'buffer' })).toString('latin1') });
      } else if (st.isDirectory()) {
        out.set(key, { type: 'dir', ...base });
        await walk(full, key);
      } else if (st.isFile()) {
        out.set(key, { type: 'file', ...base, size: st.size, sha256: await hashFile(full) });
      }
    }
  };
  await walk(Buffer.from(root), '');
  return out;
}

async function hashFile(file: Buffer): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface TreeDiff {
  ok: boolean;
  entries: number;
  files: number;
  bytes: number;
  /** Human-readable differences (at most 20). */
  problems: string[];
}

/** Compares the received tree with the source's snapshot, entry by entry. */
export function compareTrees(expected: TreeSnapshot, actual: TreeSnapshot): TreeDiff {
  const problems: string[] = [];
  const add = (s: string) => {
    if (problems.length < 20) problems.push(s);
  };
  let files = 0;
  let bytes = 0;
  for (const [key, want] of expected) {
    const got = actual.get(key);
    if (!got) {
      add(`missing: ${key}`);
      continue;
    }
    if (got.type !== want.type) add(`${key}: type ${got.type}, expected ${want.type}`);
    else if (want.type === 'symlink') {
      if (got.target !== want.target) add(`${key}: symlink target ${got.target}, expected ${want.target}`);
    } else {
      if (got.mode !== want.mode) add(`${key}: mode ${got.mode.toString(8)}, expected ${want.mode.toString(8)}`);
      if (got.mtime !== want.mtime) add(`${key}: mtime ${got.mtime}, expected ${want.mtime}`);
      if (want.type === 'file') {
        files++;
        bytes += want.size ?? 0;
        if (got.sha256 !== want.sha256) add(`${key}: content differs (sha256)`);
      }
    }
  }
  for (const key of actual.keys()) if (!expected.has(key)) add(`unexpected: ${key}`);
  return { ok: problems.length === 0, entries: expected.size, files, bytes, problems };
}
