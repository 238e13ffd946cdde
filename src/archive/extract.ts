/**
 * Over 400 lines on purpose: the safety rules above hold only as a whole (every path goes through
 * the same descriptor-relative walk), so they stay in one file that can be read against them.
 *
 * Extracts a gzip-compressed tar into an empty directory without ever writing outside it
 * (docs/protocol.md D5.5).
 *
 * Safety rules:
 * - names that are absolute or hold a `..` component are refused (BAD_ARCHIVE); `.` and empty
 *   components are dropped, so `./a//b` is `a/b`;
 * - hard links and unknown entry types are refused; devices and FIFOs are skipped (onSkipped);
 * - symlinks are created only after every other entry (delayed symlinks), so nothing is ever
 *   written through one; an entry whose parent is a pending symlink is refused;
 * - every parent directory is one this extraction created or lstat-verified as a real
 *   directory; files are opened with O_CREAT|O_EXCL|O_NOFOLLOW|O_WRONLY.
 * Duplicates: a later entry for the same path wins, as with GNU tar: a regular file replaces an
 * earlier regular file (unlinked first, the quota still counts both), a directory or file entry
 * cancels an earlier pending symlink, a symlink replaces an earlier regular file. Anything that
 * would replace a directory with a non-directory is refused.
 * Directory modes and mtimes are applied at the very end, deepest first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WingsError } from '../errors.js';
import { TolerantGunzip } from './gunzip.js';
import { SLICE_MS, yieldToLoop } from './slice.js';
import { ByteReader, TarFormatError, paddingFor, readEntryHeader, type ParsedEntry } from './tar.js';

export interface ExtractOptions {
  /** destination directory: must be empty or absent (created then) */
  root: string;
  signal?: AbortSignal;
  /** quota: total file-content bytes that may be written; exceeding => DISK_FULL */
  maxBytes?: number;
  /** raw bytes written (progress) */
  onFileBytes?: (n: number) => void;
  onFileDone?: () => void;
  /** device/fifo entries are skipped, never created */
  onSkipped?: (name: string, type: string) => void;
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

const SMALL_FILE = 256 * 1024;
const WRITE_GATHER = 1024 * 1024;
const MAX_PENDING_SYMLINKS = 1_000_000;
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = fs.constants;
const OPEN_FLAGS = O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY;

// Callback fs, promisified by hand (hot path: on Node 20 the fs/promises helpers cost several
// times more per call).
function cb2p<T>(fn: (cb: (err: NodeJS.ErrnoException | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}
/** The process umask, read once (set it back at once: reading it means setting it). */
const UMASK = ((): number => {
  const m = process.umask(0o022);
  process.umask(m);
  return m;
})();
const mkdir = (p: Buffer): Promise<void> => cb2p((cb) => fs.mkdir(p, 0o755, (err) => cb(err, undefined)));
const lstat = (p: Buffer): Promise<fs.Stats> => cb2p((cb) => fs.lstat(p, cb));
const unlink = (p: Buffer): Promise<void> => cb2p((cb) => fs.unlink(p, (err) => cb(err, undefined)));
const symlink = (target: Buffer, p: Buffer): Promise<void> => cb2p((cb) => fs.symlink(target, p, (err) => cb(err, undefined)));
const lutimes = (p: Buffer, t: number): Promise<void> => cb2p((cb) => fs.lutimes(p, t, t, (err) => cb(err, undefined)));
const chmod = (p: Buffer, m: number): Promise<void> => cb2p((cb) => fs.chmod(p, m, (err) => cb(err, undefined)));
const utimes = (p: Buffer, t: number): Promise<void> => cb2p((cb) => fs.utimes(p, t, t, (err) => cb(err, undefined)));
const fchmod = (fd: number, m: number): Promise<void> => cb2p((cb) => fs.fchmod(fd, m, (err) => cb(err, undefined)));
const futimes = (fd: number, t: number): Promise<void> => cb2p((cb) => fs.futimes(fd, t, t, (err) => cb(err, undefined)));
const closeFd = (fd: number): Promise<void> => cb2p((cb) => fs.close(fd, (err) => cb(err, undefined)));

const writevFd = (fd: number, bufs: Buffer[], pos: number): Promise<number> => cb2p((cb) => fs.writev(fd, bufs, pos, cb));

/** Write every byte of `bufs` at `pos` (one writev, more if the kernel takes less). */
async function writevAll(fd: number, bufs: Buffer[], pos: number): Promise<number> {
  let total = 0;
  for (const b of bufs) total += b.length;
  let done = 0;
  let list = bufs;
  for (;;) {
    const n = await writevFd(fd, list, pos + done);
    done += n;
    if (done >= total) return total;
    let skip = n;
    while (skip >= list[0].length) skip -= list.shift()!.length;
    list = [list[0].subarray(skip), ...list.slice(1)];
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function bad(msg: string): WingsError {
  return new WingsError('BAD_ARCHIVE', msg);
}

function show(name: Buffer): string {
  return JSON.stringify(name.toString('utf8'));
}

interface DirMeta {
  abs: Buffer;
  depth: number;
  mode: number;
  mtime: number;
}

interface PendingSymlink {
  abs: Buffer;
  target: Buffer;
  mtime: number;
}

class Extractor {
  files = 0;
  bytes = 0;
  private reserved = 0;
  private readonly root: Buffer;
  /** keys (latin1 of the relative path) of directories created or verified as real directories */
  private readonly dirs = new Set<string>();
  private readonly dirMeta = new Map<string, DirMeta>();
  private readonly symlinks = new Map<string, PendingSymlink>();
  private sliceStart = performance.now();

  constructor(
    root: string,
    private readonly opts: ExtractOptions,
    private readonly gunzip: TolerantGunzip,
  ) {
    this.root = Buffer.from(path.resolve(root));
  }

  private abs(parts: Buffer[]): Buffer {
    const list: Buffer[] = [this.root];
    for (const p of parts) list.push(Buffer.from('/'), p);
    return Buffer.concat(list);
  }

  private checkAbort(): void {
    const s = this.opts.signal;
    if (s?.aborted) throw abortError(s);
  }

  async run(source: AsyncIterable<unknown>): Promise<void> {
    const r = new ByteReader(source, () => this.gunzip.readableLength);
    const globals = new Map<string, Buffer>();
    try {
      for (;;) {
        this.checkAbort();
        const e = await readEntryHeader(r, globals);
        if (!e) break;
        await this.entry(e, r);
      }
      // The end-of-archive marker was read: whatever follows is trailing garbage. Stop
      // decompressing; TolerantGunzip keeps reading (and dropping) the input to its end.
      this.gunzip.discard();
      await r.drain();
      const gz = this.gunzip.gzipError;
      // Node's gunzip fails on non-zero bytes after the last member (and drops the output of
      // that write); only zero padding after the gzip stream is accepted.
      if (gz) throw bad(`archive is not a valid gzip stream (data after the last gzip member?): ${gz.message}`);
      this.checkAbort();
      await this.finish();
    } catch (err) {
      // A gzip error ends the decompressed data early: report the cause, not the truncation.
      const gz = this.gunzip.gzipError;
      if (err instanceof TarFormatError && gz) throw bad(`archive is not a valid gzip stream: ${gz.message}`);
      throw err;
    }
  }

  private parts(name: Buffer): Buffer[] {
    if (name.length === 0) throw bad('entry with an empty name');
    if (name.includes(0)) throw bad(`entry name holds a NUL byte: ${show(name)}`);
    if (name[0] === 0x2f) throw bad(`absolute path in archive: ${show(name)}`);
    const out: Buffer[] = [];
    let start = 0;
    for (let i = 0; i <= name.length; i++) {
      if (i === name.length || name[i] === 0x2f) {
        const c = name.subarray(start, i);
        start = i + 1;
        if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
        if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) throw bad(`path with '..' in archive: ${show(name)}`);
        out.push(c);
      }
    }
    return out;
  }

  private static key(parts: Buffer[], n = parts.length): string {
    let k = '';
    for (let i = 0; i < n; i++) k += (i ? '/' : '') + parts[i].toString('latin1');
    return k;
  }

  private async ensureParents(parts: Buffer[], name: Buffer): Promise<void> {
    for (let i = 1; i < parts.length; i++) {
      const key = Extractor.key(parts, i);
      if (this.dirs.has(key)) continue;
      if (this.symlinks.has(key)) throw bad(`entry ${show(name)} would be written through a symlink`);
      const abs = this.abs(parts.slice(0, i));
      try {
        await mkdir(abs);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
        const st = await lstat(abs);
        if (!st.isDirectory()) throw bad(`entry ${show(name)}: parent is not a directory`);
      }
      this.dirs.add(key);
    }
  }

  private async skipBody(r: ByteReader, size: number): Promise<void> {
    if (!(await r.skip(size + paddingFor(size)))) throw new TarFormatError('tar archive is truncated');
  }

  private async entry(e: ParsedEntry, r: ByteReader): Promise<void> {
    const name = e.name;
    switch (e.type) {
      case 'link':
        throw bad(`hard link entries are refused: ${show(name)}`);
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.parts(name); // still refuse unsafe names
        this.opts.onSkipped?.(name.toString('utf8'), e.type);
        await this.skipBody(r, e.size);
        return;
      case 'unknown':
        throw bad(`unsupported tar entry type '${e.typeflag}' for ${show(name)}`);
      default:
        break;
    }
    const parts = this.parts(name);
    if (parts.length === 0) {
      // the root itself ("./"): nothing to create
      if (e.type !== 'directory') throw bad(`non-directory entry for the archive root: ${show(name)}`);
      await this.skipBody(r, e.size);
      return;
    }
    const key = Extractor.key(parts);
    await this.ensureParents(parts, name);
    const abs = this.abs(parts);

    if (e.type === 'directory') {
      this.symlinks.delete(key);
      if (!this.dirs.has(key)) {
        try {
          await mkdir(abs);
        } catch (err) {
          if (errno(err) !== 'EEXIST') throw err;
          const st = await lstat(abs);
          if (!st.isDirectory()) throw bad(`directory entry ${show(name)} conflicts with an earlier file`);
        }
        this.dirs.add(key);
      }
      this.dirMeta.set(key, { abs, depth: parts.length, mode: e.mode & 0o777, mtime: e.mtime });
      await this.skipBody(r, e.size);
      return;
    }

    if (e.type === 'symlink') {
      if (this.dirs.has(key)) throw bad(`symlink entry ${show(name)} would replace a directory`);
      if (!this.symlinks.has(key) && this.symlinks.size >= MAX_PENDING_SYMLINKS) throw bad('too many symlinks in archive');
      this.symlinks.set(key, { abs, target: e.linkname, mtime: e.mtime });
      await this.skipBody(r, e.size);
      return;
    }

    // regular file
    this.symlinks.delete(key);
    const max = this.opts.maxBytes;
    if (max !== undefined && this.reserved + e.size > max) {
      throw new WingsError('DISK_FULL', `archive content exceeds the space allowed (${max} bytes)`);
    }
    this.reserved += e.size;
    const mode = e.mode & 0o777;
    if (e.size <= SMALL_FILE) {
      const body = e.size ? await r.readExact(e.size) : Buffer.alloc(0);
      if (!body || !(await r.skip(paddingFor(e.size)))) throw new TarFormatError('tar archive is truncated');
      this.checkAbort();
      this.writeSmall(abs, name, body, mode, e.mtime);
      if (performance.now() - this.sliceStart >= SLICE_MS) {
        await yieldToLoop(); // let the socket, the API and timers in
        this.sliceStart = performance.now();
      }
      return;
    }
    await this.writeLarge(abs, name, r, e.size, mode, e.mtime);
  }

  /** Opens a new file (synchronously: one call, cheaper than a thread-pool round trip). */
  private create(abs: Buffer, name: Buffer, mode = 0o600): number {
    try {
      return fs.openSync(abs, OPEN_FLAGS, mode);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
      if (!fs.lstatSync(abs).isFile()) throw bad(`file entry ${show(name)} conflicts with an earlier directory`);
      fs.unlinkSync(abs); // a later entry for the same path replaces the earlier file
      return fs.openSync(abs, OPEN_FLAGS, mode);
    }
  }

  /**
   * Small files are written with synchronous calls (open, write, futimes, close: a few µs each
   * here, against ~15–25 µs of CPU for each thread-pool round trip and its promise); the caller
   * yields to the event loop every SLICE_MS.
   */
  private writeSmall(abs: Buffer, name: Buffer, body: Buffer, mode: number, mtime: number): void {
    const fd = this.create(abs, name, mode);
    try {
      let off = 0;
      while (off < body.length) off += fs.writeSync(fd, body, off, body.length - off, off);
      // open() created the file with `mode` minus the umask: fchmod only when the umask took bits.
      if (mode & UMASK) fs.fchmodSync(fd, mode);
      fs.futimesSync(fd, mtime, mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.done(body.length);
  }

  private async writeLarge(abs: Buffer, name: Buffer, r: ByteReader, size: number, mode: number, mtime: number): Promise<void> {
    const fd = this.create(abs, name);
    try {
      let pos = 0;
      while (pos < size) {
        this.checkAbort();
        // what has arrived, up to 1 MiB, in one writev: 64 KiB writes cost twice the CPU
        const chunks = await r.readChunks(Math.min(size - pos, WRITE_GATHER));
        if (!chunks) throw new TarFormatError('tar archive is truncated');
        const n = await writevAll(fd, chunks, pos);
        pos += n;
        this.opts.onFileBytes?.(n);
      }
      if (!(await r.skip(paddingFor(size)))) throw new TarFormatError('tar archive is truncated');
      await fchmod(fd, mode);
      await futimes(fd, mtime);
    } finally {
      await closeFd(fd);
    }
    this.files++;
    this.bytes += size;
    this.opts.onFileDone?.();
  }

  private done(n: number): void {
    this.files++;
    this.bytes += n;
    if (n) this.opts.onFileBytes?.(n);
    this.opts.onFileDone?.();
  }

  /** Delayed symlinks, then directory modes and mtimes deepest first. */
  private async finish(): Promise<void> {
    for (const s of this.symlinks.values()) {
      this.checkAbort();
      try {
        await symlink(s.target, s.abs);
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err;
        const st = await lstat(s.abs);
        if (!st.isFile() && !st.isSymbolicLink()) throw bad(`symlink entry conflicts with a directory: ${s.abs.toString('utf8')}`);
        await unlink(s.abs);
        await symlink(s.target, s.abs);
      }
      await lutimes(s.abs, s.mtime);
    }
    const dirs = [...this.dirMeta.values()].sort((a, b) => b.depth - a.depth);
    for (const d of dirs) {
      this.checkAbort();
      await chmod(d.abs, d.mode);
      await utimes(d.abs, d.mtime);
    }
  }
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason instanceof Error ? signal.reason : new WingsError('CANCELLED', 'extraction cancelled');
}

function mapError(err: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) return abortError(signal);
  if (err instanceof WingsError) return err;
  if (err instanceof TarFormatError) return bad(err.message);
  switch (errno(err)) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new WingsError('DISK_FULL', `no space left while extracting: ${(err as Error).message}`, { cause: err });
    case 'ENAMETOOLONG':
      return bad(`entry name too long: ${(err as Error).message}`);
    default:
      return err;
  }
}

/** Extract a gzip-compressed tar stream into `opts.root`. See the module comment for the rules. */
export async function extractArchive(gzipStream: Readable, opts: ExtractOptions): Promise<ExtractResult> {
  const signal = opts.signal;
  if (signal?.aborted) {
    gzipStream.destroy();
    throw abortError(signal);
  }
  await fs.promises.mkdir(opts.root, { recursive: true });
  const st = await fs.promises.stat(opts.root);
  if (!st.isDirectory()) throw new WingsError('INTERNAL', `extraction root is not a directory: ${opts.root}`);
  if ((await fs.promises.readdir(opts.root)).length) throw new WingsError('CONFLICT', `extraction root is not empty: ${opts.root}`);

  const gunzip = new TolerantGunzip();
  const ex = new Extractor(opts.root, opts, gunzip);
  const onAbort = (): void => {
    gunzip.destroy(abortError(signal!) as Error);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let run: Promise<void> | undefined;
  try {
    await pipeline(gzipStream, gunzip, async (source: AsyncIterable<unknown>) => {
      run = ex.run(source);
      await run;
    });
  } catch (err) {
    // Prefer the extractor's own error: the pipeline may report the stream teardown instead.
    const runErr: unknown = run ? await run.then(() => null, (e: unknown) => e) : null;
    throw mapError(runErr ?? err, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { files: ex.files, bytes: ex.bytes };
}
