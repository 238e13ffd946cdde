import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { liveGzipWorkers } from '../../src/archive/index.js';
import { tmpDir as harnessTmpDir } from '../helpers/tmp.js';

export function tmpDir(prefix: string): string {
  return harnessTmpDir(`wings-archive-${prefix}-`);
}

export async function collect(stream: Readable, ...more: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline([
    stream,
    ...more,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  ]);
  return Buffer.concat(chunks);
}

export interface CraftEntry {
  header: Partial<tar.Header> & { name: string };
  body?: Buffer;
}

/** A gzip'd tar written by tar-stream (an independent writer), for crafted archives. */
export async function craft(entries: CraftEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const out = collect(pack as unknown as Readable, zlib.createGzip());
  for (const e of entries) {
    if (pack.destroying) break;
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(e.header, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      sink.on('error', reject);
    });
  }
  pack.finalize();
  return out;
}

/** The raw tar (not gzip'd) that tar-stream writes, for truncation tests. */
export async function craftTar(entries: CraftEntry[]): Promise<Buffer> {
  return zlib.gunzipSync(await craft(entries));
}

export interface NodeInfo {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  mtime: number;
  mtimeMs: number;
  sha?: string;
  target?: string;
  size?: number;
}

/** Every node under root, keyed by the latin1 spelling of its raw relative path. */
export function snapshot(root: string): Map<string, NodeInfo> {
  const out = new Map<string, NodeInfo>();
  const walk = (abs: Buffer, rel: string): void => {
    for (const name of fs.readdirSync(abs, { encoding: 'buffer' })) {
      const a = Buffer.concat([abs, Buffer.from('/'), name]);
      const r = (rel ? rel + '/' : '') + name.toString('latin1');
      const st = fs.lstatSync(a);
      const base = { mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000), mtimeMs: st.mtimeMs };
      if (st.isDirectory()) {
        out.set(r, { type: 'dir', ...base });
        walk(a, r);
      } else if (st.isSymbolicLink()) {
        out.set(r, { type: 'symlink', ...base, mode: 0, target: fs.readlinkSync(a, { encoding: 'buffer' }).toString('latin1') });
      } else if (st.isFile()) {
        const sha = crypto.createHash('sha256').update(fs.readFileSync(a)).digest('hex');
        out.set(r, { type: 'file', ...base, sha, size: st.size });
      } else out.set(r, { type: 'other', ...base });
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

export async function waitForNoWorkers(timeoutMs = 5000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (liveGzipWorkers() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return liveGzipWorkers();
}

/** A readable that hands out `buf` in small pieces, yielding to the event loop between them. */
export function slowReadable(buf: Buffer, piece = 64 * 1024, onChunk?: (n: number) => void): Readable {
  let off = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (off >= buf.length) this.push(null);
        else {
          const chunk = buf.subarray(off, off + piece);
          off += piece;
          onChunk?.(chunk.length);
          this.push(chunk);
        }
      });
    },
  });
}
