/**
 * Archive-only micro-benchmark: pack a directory (optionally extracting it again in the same
 * process) without HTTP, to tell compression limits from transfer limits.
 *
 *   node --import tsx bench/archive.ts <dir> [level=1] [workers=2] [--extract]
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createArchiveStream, extractArchive } from '../src/archive/index.js';

const [dir, levelArg = '1', workersArg = '2', extract] = process.argv.slice(2);
if (!dir) throw new Error('usage: bench/archive.ts <dir> [level] [workers] [--extract]');
const t0 = performance.now();
const c0 = process.cpuUsage();
let raw = 0;
let wire = 0;
const hash = createHash('sha256');
const archive = createArchiveStream({ root: dir, level: Number(levelArg), workers: Number(workersArg), onFileBytes: (n) => (raw += n) });
if (extract === '--extract') {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'wings-bench-x-'));
  const tap = new PassThrough({ highWaterMark: 1 << 20 });
  archive.on('data', (c: Buffer) => {
    wire += c.length;
    hash.update(c);
  });
  archive.pipe(tap);
  await extractArchive(tap, { root: dest });
  fs.rmSync(dest, { recursive: true, force: true });
} else {
  for await (const c of archive as AsyncIterable<Buffer>) {
    wire += c.length;
    hash.update(c);
  }
}
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
const MiB = 1024 * 1024;
const rss = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
console.log(
  `${(raw / MiB).toFixed(0)} MiB -> ${(wire / MiB).toFixed(0)} MiB in ${s.toFixed(2)} s: ${(raw / MiB / s).toFixed(1)} MiB/s, ` +
    `main-thread+workers CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s, peak RSS ${(Number(rss) / 1024).toFixed(0)} MiB`,
);
