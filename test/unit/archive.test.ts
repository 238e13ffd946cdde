import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GzipWorkerPool,
  PGZIP_BLOCK_SIZE,
  allocBlock,
  blockCapacity,
  createArchiveStream,
  extractArchive,
  liveGzipWorkers,
} from '../../src/archive/index.js';
import { collect, snapshot, tmpDir, waitForNoWorkers } from './archive-helpers.js';

const MiB = 1024 * 1024;

const NL_NAME = 'sp ace ü 日本\nnl.txt';
const BAD_UTF8 = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]); // "bad\xff\xfe.bin"

/** A source tree exercising every fidelity rule of docs/protocol.md D5.3. */
function buildTree(root: string): void {
  const p = (...s: string[]): string => path.join(root, ...s);
  fs.mkdirSync(p('a/b/c'), { recursive: true });
  fs.mkdirSync(p('empty'));
  fs.mkdirSync(p('private'), { mode: 0o700 });
  fs.chmodSync(p('private'), 0o700);
  const file = (rel: string, content: string | Buffer, mode: number): void => {
    fs.writeFileSync(p(rel), content);
    fs.chmodSync(p(rel), mode);
  };
  file('a/f600', 'secret', 0o600);
  file('a/b/f755.sh', '#!/bin/sh\necho hi\n', 0o755);
  file('a/b/c/f644', 'plain', 0o644);
  file('setuid', 'suid', 0o4755);
  file('empty-file', '', 0o644);
  file('big.bin', crypto.randomBytes(5 * MiB), 0o644);
  file('y2100', 'future', 0o644);
  fs.utimesSync(p('y2100'), 4102444800.5, 4102444800.75); // 2100-01-01, fractions truncated
  file(NL_NAME, 'unicode', 0o644);
  fs.writeFileSync(Buffer.concat([Buffer.from(root + '/'), BAD_UTF8]), 'not utf-8');
  file('hard1', 'linked content', 0o640);
  fs.linkSync(p('hard1'), p('hard2'));
  const seg = 'd'.repeat(60);
  const long = path.join(seg + '1', seg + '2', seg + '3', seg + '4');
  fs.mkdirSync(p(long), { recursive: true });
  file(path.join(long, 'f'.repeat(100) + '.txt'), 'long path', 0o644);
  fs.symlinkSync('../a/b/c/f644', p('a/rel-link'));
  fs.symlinkSync('/etc/hostname', p('abs-link'));
  fs.symlinkSync('nowhere/at/all', p('dangling'));
  fs.symlinkSync('a/b', p('dir-link'));
  fs.lutimesSync(p('dangling'), 1_500_000_000, 1_500_000_000);
  // directory mtimes last (children change them), one in the far future too
  fs.utimesSync(p('a/b'), 1_000_000_000.9, 1_000_000_000.9);
  fs.utimesSync(p('empty'), 4102444800, 4102444800);
  fs.utimesSync(p('a'), 1_234_567_890, 1_234_567_890);
}

function expectSameTree(src: string, dst: string): void {
  const a = snapshot(src);
  const b = snapshot(dst);
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  for (const [k, s] of a) {
    const d = b.get(k)!;
    const want = { ...s, mode: s.mode & 0o777, mtimeMs: undefined };
    expect({ ...d, mtimeMs: undefined }, k).toEqual(want);
    expect(d.mtimeMs % 1000, `${k} has whole-second mtime`).toBe(0);
  }
}

describe('pack + extract round trip', () => {
  for (const workers of [2, 1]) {
    it(`preserves every fidelity rule (workers=${workers})`, async () => {
      const src = tmpDir('src');
      buildTree(src);
      let bytes = 0;
      let files = 0;
      const gz = await collect(
        createArchiveStream({ root: src, level: 1, workers, onFileBytes: (n) => (bytes += n), onFileDone: () => files++ }),
      );
      expect(files).toBe(12);
      expect(bytes).toBe(fs.statSync(path.join(src, 'big.bin')).size + 6 + 18 + 5 + 4 + 6 + 7 + 9 + 14 * 2 + 9);

      if (workers === 2) {
        // GNU tar reads the multi-member archive without a warning
        const file = path.join(tmpDir('gz'), 'a.tar.gz');
        fs.writeFileSync(file, gz);
        const r = spawnSync('tar', ['-tzvf', file, '--full-time'], { encoding: 'latin1' });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.stdout).toContain('2100-01-01 00:00:00 y2100');
        expect(r.stdout).toMatch(/-rwxr-xr-x .* setuid\n/); // setuid bit dropped
        expect(r.stdout).not.toMatch(/rws/);
        expect(r.stdout).toContain('dangling -> nowhere/at/all');
        expect(r.stdout).toContain('f'.repeat(100) + '.txt');
        // and extracts to the same tree
        const gnu = tmpDir('gnu');
        execFileSync('tar', ['-xzf', file, '-C', gnu, '--warning=no-timestamp']);
        expect(snapshot(gnu).get(BAD_UTF8.toString('latin1'))?.type).toBe('file');
      }

      const dst = path.join(tmpDir('dst'), 'root'); // absent: created
      let xbytes = 0;
      const res = await extractArchive(Readable.from([gz]), { root: dst, onFileBytes: (n) => (xbytes += n) });
      expect(res).toEqual({ files: 12, bytes });
      expect(xbytes).toBe(bytes);
      expectSameTree(src, dst);
      const st = snapshot(dst);
      expect(st.get('setuid')!.mode).toBe(0o755);
      expect(st.get('empty')!.mtime).toBe(4102444800);
      expect(st.get('a/b')!.mtime).toBe(1_000_000_000);
      expect(st.get('dangling')!.mtime).toBe(1_500_000_000);
      expect(st.get(Buffer.from(NL_NAME).toString('latin1'))!.sha).toBe(
        crypto.createHash('sha256').update('unicode').digest('hex'),
      );
      expect(fs.lstatSync(path.join(dst, 'hard2')).nlink).toBe(1);
      expect(fs.readlinkSync(path.join(dst, 'abs-link'))).toBe('/etc/hostname');
      expect(await waitForNoWorkers()).toBe(0);
    });
  }

  it('walks depth-first in bytewise lexical order with names relative to root', async () => {
    const src = tmpDir('order');
    for (const d of ['b', 'a', 'a/z', 'a/B']) fs.mkdirSync(path.join(src, d));
    for (const f of ['c', 'a/z/1', 'a/0', 'A']) fs.writeFileSync(path.join(src, f), f);
    const tarBytes = zlib.gunzipSync(await collect(createArchiveStream({ root: src, level: 6, workers: 1 })));
    const f = path.join(tmpDir('lst'), 'x.tar');
    fs.writeFileSync(f, tarBytes);
    expect(execFileSync('tar', ['-tf', f], { encoding: 'utf8' }).trim().split('\n')).toEqual([
      'A',
      'a/',
      'a/0',
      'a/B/',
      'a/z/',
      'a/z/1',
      'b/',
      'c',
    ]);
  });

  it('level 0 is still a gzip stream', async () => {
    const src = tmpDir('l0');
    fs.writeFileSync(path.join(src, 'x'), Buffer.alloc(100_000, 1));
    const gz = await collect(createArchiveStream({ root: src, level: 0 }));
    expect(gz[0]).toBe(0x1f);
    expect(gz.length).toBeGreaterThan(100_000);
    const dst = tmpDir('l0d');
    expect(await extractArchive(Readable.from([gz]), { root: dst })).toEqual({ files: 1, bytes: 100_000 });
  });

  it('skips and reports FIFOs and unix sockets', async () => {
    const src = tmpDir('special');
    fs.writeFileSync(path.join(src, 'keep'), 'k');
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(path.join(src, 'sock'), r));
    try {
      const skipped: [string, string][] = [];
      const gz = await collect(createArchiveStream({ root: src, level: 1, onSkipped: (p, k) => skipped.push([p, k]) }));
      expect(skipped).toEqual([
        ['fifo', 'fifo'],
        ['sock', 'socket'],
      ]);
      const dst = tmpDir('special-dst');
      await extractArchive(Readable.from([gz]), { root: dst });
      expect(fs.readdirSync(dst)).toEqual(['keep']);
    } finally {
      server.close();
    }
  });

  it('fails clearly when a file changes size while it is read', async () => {
    const src = tmpDir('grow');
    const f = path.join(src, 'log');
    fs.writeFileSync(f, Buffer.alloc(3 * MiB, 1));
    const stream = createArchiveStream({
      root: src,
      level: 1,
      workers: 1,
      onFileBytes: () => fs.appendFileSync(f, 'more'), // grows after the header was written
    });
    await expect(collect(stream)).rejects.toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/changed while being archived/) });
  });
});

/**
 * Gzips `input` as the archive producer does: 1 MiB blocks compressed by the worker pool, members
 * concatenated in input order (an empty input is one empty block).
 */
async function poolGzip(pool: GzipWorkerPool, input: Buffer): Promise<Buffer> {
  const jobs: Promise<Buffer>[] = [];
  let o = 0;
  do {
    const part = input.subarray(o, o + PGZIP_BLOCK_SIZE);
    const block = allocBlock(blockCapacity(PGZIP_BLOCK_SIZE));
    part.copy(block);
    jobs.push(new Promise((resolve) => pool.submit(block, part.length, (out, len) => resolve(Buffer.from(out.subarray(0, len))))));
    o += PGZIP_BLOCK_SIZE;
  } while (o < input.length);
  return Buffer.concat(await Promise.all(jobs));
}

describe('parallel gzip (worker pool)', () => {
  const fatal: Error[] = [];
  const newPool = (level: number, workers: number) => new GzipWorkerPool(level, workers, (err) => fatal.push(err));
  afterAll(() => expect(fatal).toEqual([]));

  it('emits ordered independent members that gunzipSync and gzip -dc read', async () => {
    const input = Buffer.concat([crypto.randomBytes(2 * MiB), Buffer.alloc(3 * MiB + 12345, 'abc')]);
    const pool = newPool(6, 3);
    const out = await poolGzip(pool, input);
    pool.terminate();
    // exactly one gzip member per 1 MiB block, in order: the two random blocks are stored
    // (incompressible), the others are exactly what zlib writes at level 6
    const blocks: Buffer[] = [];
    for (let o = 2 * MiB; o < input.length; o += MiB) blocks.push(zlib.gzipSync(input.subarray(o, o + MiB), { level: 6 }));
    expect(blocks.length).toBe(4);
    const tail = Buffer.concat(blocks);
    const head = out.subarray(0, out.length - tail.length);
    expect(out.subarray(head.length).equals(tail)).toBe(true);
    expect(head.length).toBeLessThan(2 * MiB + 512);
    expect(zlib.gunzipSync(head).equals(input.subarray(0, 2 * MiB))).toBe(true);
    expect(zlib.gunzipSync(out).equals(input)).toBe(true);
    const r = spawnSync('gzip', ['-dc'], { input: out, maxBuffer: 64 * MiB });
    expect(r.status).toBe(0);
    expect(r.stdout.equals(input)).toBe(true);
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('handles empty input', async () => {
    const pool = newPool(1, 2);
    const out = await poolGzip(pool, Buffer.alloc(0));
    pool.terminate();
    expect(zlib.gunzipSync(out).length).toBe(0);
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('terminate() with blocks in flight ends the workers and drops their answers', async () => {
    const pool = newPool(1, 2);
    let answered = 0;
    for (let i = 0; i < 4; i++) {
      const block = allocBlock(blockCapacity(PGZIP_BLOCK_SIZE));
      crypto.randomFillSync(block, 0, PGZIP_BLOCK_SIZE);
      pool.submit(block, PGZIP_BLOCK_SIZE, () => answered++);
    }
    expect(liveGzipWorkers()).toBe(2);
    pool.terminate();
    expect(await waitForNoWorkers()).toBe(0);
    expect(answered).toBe(0);
    expect(() => pool.submit(allocBlock(16), 0, () => {})).toThrow('terminated');
  });
});
