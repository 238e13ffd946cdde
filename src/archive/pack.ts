/**
 * Packs a server's data directory into a gzip-compressed POSIX (pax) tar, streaming (D5).
 */
import fs from 'node:fs';
import os from 'node:os';
import { Readable, pipeline } from 'node:stream';
import { WingsError } from '../errors.js';
import { createGzip } from './pgzip.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar.js';

export type SkippedKind = 'socket' | 'fifo' | 'device' | 'other';

export interface PackOptions {
  /** directory to archive (the server's data dir) */
  root: string;
  /** gzip level 0..9 (0 = store: still a gzip stream, no compression) */
  level: number;
  /** parallel gzip workers; default min(2, os.availableParallelism()); 1 => plain zlib stream */
  workers?: number;
  /** abort: stop walking/reading promptly, destroy the stream with the signal's reason */
  signal?: AbortSignal;
  /** called as raw file-content bytes are read (progress) */
  onFileBytes?: (n: number) => void;
  /** called after each regular file */
  onFileDone?: () => void;
  /** skipped entries (sockets, FIFOs, devices, vanished or unknown files) */
  onSkipped?: (relPath: string, kind: SkippedKind) => void;
}

const READ_SIZE = 1024 * 1024;
const SLASH = Buffer.from('/');

// Callback fs wrapped by hand: fs/promises costs several times more per file (stack.md §4).
function lstat(p: Buffer): Promise<fs.Stats> {
  return new Promise((resolve, reject) => fs.lstat(p, (err, st) => (err ? reject(err) : resolve(st))));
}
function readdir(p: Buffer): Promise<Buffer[]> {
  return new Promise((resolve, reject) => fs.readdir(p, { encoding: 'buffer' }, (err, names) => (err ? reject(err) : resolve(names))));
}
function readlink(p: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => fs.readlink(p, { encoding: 'buffer' }, (err, t) => (err ? reject(err) : resolve(t))));
}
function open(p: Buffer): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
}
function read(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
}
function close(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

function mtimeOf(st: fs.Stats): number {
  return Math.floor(st.mtimeMs / 1000);
}

function display(rel: Buffer): string {
  return rel.toString('utf8');
}

/** Depth-first, bytewise-lexical walk producing the tar byte stream (without compression). */
async function* tarBytes(opts: PackOptions): AsyncGenerator<Buffer> {
  const signal = opts.signal;
  const check = (): void => {
    if (signal?.aborted) throw signal.reason ?? new WingsError('CANCELLED', 'archive cancelled');
  };
  const root = Buffer.from(opts.root);
  const rootSt = fs.statSync(root);
  if (!rootSt.isDirectory()) throw new WingsError('INTERNAL', `archive root is not a directory: ${opts.root}`);

  async function* walk(absDir: Buffer, relDir: Buffer | null): AsyncGenerator<Buffer> {
    const names = await readdir(absDir);
    names.sort((a, b) => Buffer.compare(a, b));
    for (const name of names) {
      check();
      const abs = Buffer.concat([absDir, SLASH, name]);
      const rel = relDir ? Buffer.concat([relDir, SLASH, name]) : name;
      let st: fs.Stats;
      try {
        st = await lstat(abs);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          opts.onSkipped?.(display(rel), 'other'); // vanished since readdir
          continue;
        }
        throw err;
      }
      const base = { name: rel, mode: st.mode & 0o777, mtime: mtimeOf(st), uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        yield encodeHeader({ ...base, type: 'directory', size: 0 });
        yield* walk(abs, rel);
      } else if (st.isSymbolicLink()) {
        yield encodeHeader({ ...base, type: 'symlink', size: 0, linkname: await readlink(abs) });
      } else if (st.isFile()) {
        yield* fileBytes(abs, rel, st, base);
      } else {
        const kind: SkippedKind = st.isSocket() ? 'socket' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() || st.isBlockDevice() ? 'device' : 'other';
        opts.onSkipped?.(display(rel), kind);
      }
    }
  }

  async function* fileBytes(
    abs: Buffer,
    rel: Buffer,
    st: fs.Stats,
    base: { name: Buffer; mode: number; mtime: number; uid: number; gid: number },
  ): AsyncGenerator<Buffer> {
    const size = st.size;
    const fd = await open(abs);
    try {
      yield encodeHeader({ ...base, type: 'file', size });
      let pos = 0;
      for (;;) {
        // Ask for one byte past the expected end: a file that grew is caught without an extra read.
        const want = Math.min(READ_SIZE, size - pos + 1);
        const buf = Buffer.allocUnsafe(want);
        const n = await read(fd, buf, want, pos);
        if (pos + n > size) {
          throw new WingsError('CONFLICT', `file changed while being archived: ${display(rel)} grew beyond ${size} bytes`);
        }
        if (n === 0) {
          if (pos < size) throw new WingsError('CONFLICT', `file changed while being archived: ${display(rel)} shrank from ${size} to ${pos} bytes`);
          break;
        }
        pos += n;
        opts.onFileBytes?.(n);
        yield n === want ? buf : buf.subarray(0, n);
        check();
        // A short read of a regular file is its end: no extra read (a thread-pool round trip
        // per file) to see the 0 (50,000 small files: one of four calls per file).
        if (n < want && pos === size) break;
      }
      const pad = paddingFor(size);
      if (pad) yield END_OF_ARCHIVE.subarray(0, pad);
    } finally {
      await close(fd);
    }
    opts.onFileDone?.();
  }

  check();
  yield* walk(root, null);
  yield END_OF_ARCHIVE;
}

export function defaultWorkers(): number {
  return Math.min(2, os.availableParallelism());
}

/** A readable stream of gzip bytes: the tar of `opts.root`. Errors and aborts destroy it. */
export function createArchiveStream(opts: PackOptions): Readable {
  const level = opts.level;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`gzip level must be 0..9, got ${level}`);
  const workers = opts.workers ?? defaultWorkers();
  const source = Readable.from(tarBytes(opts), { objectMode: false, highWaterMark: 2 * READ_SIZE });
  const gzip = createGzip(level, workers);
  const signal = opts.signal;
  const onAbort = (): void => {
    gzip.destroy(signal?.reason instanceof Error ? signal.reason : new WingsError('CANCELLED', 'archive cancelled'));
  };
  if (signal) {
    if (signal.aborted) queueMicrotask(onAbort);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  pipeline(source, gzip, () => {
    // Errors reach the consumer through `gzip` ('error'); pipeline destroyed the other side.
    signal?.removeEventListener('abort', onAbort);
  });
  return gzip;
}
