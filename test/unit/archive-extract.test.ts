import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createArchiveStream, extractArchive } from '../../src/archive/index.js';
import { WingsError } from '../../src/errors.js';
import { collect, craft, craftTar, slowReadable, snapshot, tmpDir, waitForNoWorkers, type CraftEntry } from './archive-helpers.js';

const MiB = 1024 * 1024;

/** base/dst is the extraction root, base/outside must stay empty, base must hold nothing else. */
function sandbox(): { base: string; dst: string; outside: string; clean: () => void } {
  const base = tmpDir('sbx');
  const dst = path.join(base, 'dst');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(outside);
  return {
    base,
    dst,
    outside,
    clean: () => {
      expect(fs.readdirSync(outside)).toEqual([]);
      expect(fs.readdirSync(base).sort()).toEqual(['dst', 'outside']);
    },
  };
}

const file = (name: string, body = 'x'): CraftEntry => ({ header: { name, type: 'file', mode: 0o644 }, body: Buffer.from(body) });
const dir = (name: string): CraftEntry => ({ header: { name, type: 'directory', mode: 0o755 } });
const symlink = (name: string, linkname: string): CraftEntry => ({ header: { name, type: 'symlink', linkname } });

async function extractBuf(buf: Buffer, root: string, extra: Partial<Parameters<typeof extractArchive>[1]> = {}) {
  return extractArchive(Readable.from([buf]), { root, ...extra });
}

describe('extraction safety', () => {
  const refused: [string, () => CraftEntry[]][] = [
    ['../x', () => [file('../x')]],
    ['/abs', () => [file('/abs/x')]],
    ['a/../../x', () => [dir('a/'), file('a/../../x')]],
    ['symlink to an absolute outside dir, then a file through it', () => [symlink('link', '<outside>'), file('link/pwned.txt')]],
    ['symlink to .., then a file through it', () => [symlink('up', '..'), file('up/escaped.txt')]],
    ['symlink to .., then a directory through it', () => [symlink('up', '..'), dir('up/newdir/')]],
    ['symlink then nested symlink through it', () => [symlink('up', '..'), symlink('up/l2', 'x')]],
    ['hard link entry', () => [file('target'), { header: { name: 'hl', type: 'link', linkname: 'target' } }]],
    ['file as a parent', () => [file('f'), file('f/child')]],
    ['symlink replacing a directory', () => [dir('d/'), symlink('d', '<outside>')]],
  ];
  for (const [label, entries] of refused) {
    it(`refuses ${label} with BAD_ARCHIVE and writes nothing outside`, async () => {
      const s = sandbox();
      const list = entries().map((e) =>
        e.header.linkname === '<outside>' ? { header: { ...e.header, linkname: s.outside } } : e,
      );
      const err = await extractBuf(await craft(list), s.dst).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WingsError);
      expect((err as WingsError).code).toBe('BAD_ARCHIVE');
      s.clean();
    });
  }

  it('skips device and FIFO entries and reports them', async () => {
    const s = sandbox();
    const skipped: [string, string][] = [];
    const gz = await craft([
      { header: { name: 'dev/tty9', type: 'character-device', devmajor: 4, devminor: 9 } },
      { header: { name: 'dev/sda9', type: 'block-device', devmajor: 8, devminor: 9 } },
      { header: { name: 'pipe', type: 'fifo' } },
      file('ok', 'fine'),
    ]);
    const res = await extractBuf(gz, s.dst, { onSkipped: (n, t) => skipped.push([n, t]) });
    expect(res).toEqual({ files: 1, bytes: 4 });
    expect(skipped).toEqual([
      ['dev/tty9', 'character-device'],
      ['dev/sda9', 'block-device'],
      ['pipe', 'fifo'],
    ]);
    expect(fs.readdirSync(s.dst)).toEqual(['ok']);
    s.clean();
  });

  it('creates symlinks with their exact text, never following them', async () => {
    const s = sandbox();
    const gz = await craft([
      symlink('abs', s.outside),
      symlink('dangling', '../../nowhere'),
      symlink('up', '..'),
      symlink('dot/in/name', './x/../y'),
      file('real', 'r'),
    ]);
    await extractBuf(gz, s.dst);
    expect(fs.readlinkSync(path.join(s.dst, 'abs'))).toBe(s.outside);
    expect(fs.readlinkSync(path.join(s.dst, 'dangling'))).toBe('../../nowhere');
    expect(fs.readlinkSync(path.join(s.dst, 'up'))).toBe('..');
    expect(fs.readlinkSync(path.join(s.dst, 'dot/in/name'))).toBe('./x/../y');
    s.clean();
  });

  it('lets a later entry win for duplicates: file over file, file over pending symlink', async () => {
    const s = sandbox();
    const gz = await craft([file('f', 'first'), file('f', 'second'), symlink('l', s.outside), file('l', 'plain'), file('./g', 'g'), dir('./')]);
    const res = await extractBuf(gz, s.dst);
    expect(res.files).toBe(4);
    expect(fs.readFileSync(path.join(s.dst, 'f'), 'utf8')).toBe('second');
    expect(fs.lstatSync(path.join(s.dst, 'l')).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(s.dst, 'g'), 'utf8')).toBe('g');
    s.clean();
  });

  it('applies modes and mtimes (directories at the end) from a tar-stream archive', async () => {
    const s = sandbox();
    const t = new Date(946684800_000); // 2000-01-01
    const gz = await craft([
      { header: { name: 'ro/', type: 'directory', mode: 0o555, mtime: t } },
      { header: { name: 'ro/x', type: 'file', mode: 0o4750, mtime: t }, body: Buffer.from('x') },
    ]);
    await extractBuf(gz, s.dst);
    const snap = snapshot(s.dst);
    expect(snap.get('ro')).toMatchObject({ type: 'dir', mode: 0o555, mtime: 946684800 });
    expect(snap.get('ro/x')).toMatchObject({ type: 'file', mode: 0o750, mtime: 946684800 });
    fs.chmodSync(path.join(s.dst, 'ro'), 0o755);
  });

  it('refuses a non-empty destination', async () => {
    const d = tmpDir('nonempty');
    fs.writeFileSync(path.join(d, 'x'), '');
    await expect(extractBuf(await craft([file('a')]), d)).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

describe('damaged input', () => {
  it('not gzip => BAD_ARCHIVE', async () => {
    await expect(extractBuf(Buffer.from('this is not gzip at all, not even close'), tmpDir('ng'))).rejects.toMatchObject({
      code: 'BAD_ARCHIVE',
      message: expect.stringMatching(/gzip/),
    });
  });

  it('empty input => BAD_ARCHIVE', async () => {
    await expect(extractBuf(Buffer.alloc(0), tmpDir('empty'))).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
  });

  it('truncated gzip => BAD_ARCHIVE', async () => {
    const gz = await craft([file('a', crypto.randomBytes(100_000).toString('hex'))]);
    await expect(extractBuf(gz.subarray(0, gz.length - 100), tmpDir('tg'))).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
  });

  it('truncated tar inside a valid gzip => BAD_ARCHIVE (mid-entry and at an entry boundary)', async () => {
    const raw = await craftTar([file('a', 'y'.repeat(5000)), file('b', 'z')]);
    await expect(extractBuf(zlib.gzipSync(raw.subarray(0, 3000)), tmpDir('tt1'))).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
    // cut right after the first entry: no end-of-archive marker
    await expect(extractBuf(zlib.gzipSync(raw.subarray(0, 512 + 5120)), tmpDir('tt2'))).rejects.toMatchObject({
      code: 'BAD_ARCHIVE',
      message: expect.stringMatching(/end-of-archive/),
    });
  });

  it('corrupt header checksum => BAD_ARCHIVE', async () => {
    const raw = await craftTar([file('a', 'hello')]);
    raw[0] ^= 0x20;
    await expect(extractBuf(zlib.gzipSync(raw), tmpDir('ck'))).rejects.toMatchObject({ code: 'BAD_ARCHIVE', message: expect.stringMatching(/checksum/) });
  });

  it('drains garbage after the end marker (inside the gzip stream) and zero padding after the gzip stream', async () => {
    const raw = await craftTar([file('a', 'hello')]);
    const garbage = crypto.randomBytes(300_000);
    const inside = zlib.gzipSync(Buffer.concat([raw, garbage]));
    const zeros = Buffer.concat([zlib.gzipSync(raw), Buffer.alloc(10240)]);
    for (const gz of [inside, zeros]) {
      let consumed = 0;
      const src = slowReadable(gz, 50_000, (n) => (consumed += n));
      const d = tmpDir('garbage');
      expect(await extractArchive(src, { root: d })).toEqual({ files: 1, bytes: 5 });
      expect(consumed).toBe(gz.length); // the caller's hash sees every byte
      expect(fs.readFileSync(path.join(d, 'a'), 'utf8')).toBe('hello');
    }
  });

  it('non-zero bytes after the last gzip member are BAD_ARCHIVE (Node zlib limitation, documented)', async () => {
    const raw = await craftTar([file('a', 'hello')]);
    const gz = Buffer.concat([zlib.gzipSync(raw), Buffer.from('not gzip')]);
    await expect(extractBuf(gz, tmpDir('after'))).rejects.toMatchObject({ code: 'BAD_ARCHIVE' });
  });

  it('reads archives written by GNU tar (gnu format long names) and tar-stream (pax)', async () => {
    const src = tmpDir('gnusrc');
    const long = 'n'.repeat(150);
    fs.mkdirSync(path.join(src, 'sub'));
    fs.writeFileSync(path.join(src, 'sub', long), 'long');
    fs.symlinkSync('t'.repeat(120), path.join(src, 'sub', 'lnk'));
    const gz = zlib.gzipSync(
      await new Promise<Buffer>((resolve, reject) => {
        execFile('tar', ['--format=gnu', '-C', src, '-cf', '-', '.'], { encoding: 'buffer', maxBuffer: 1e8 }, (e, out) => (e ? reject(e) : resolve(out)));
      }),
    );
    const d = tmpDir('gnudst');
    expect(await extractBuf(gz, d)).toEqual({ files: 1, bytes: 4 });
    expect(fs.readFileSync(path.join(d, 'sub', long), 'utf8')).toBe('long');
    expect(fs.readlinkSync(path.join(d, 'sub', 'lnk'))).toBe('t'.repeat(120));
    const d2 = tmpDir('tsdst');
    await extractBuf(await craft([file('p'.repeat(200) + '/ü', 'u')]), d2);
    expect(fs.readFileSync(path.join(d2, 'p'.repeat(200), 'ü'), 'utf8')).toBe('u');
  });
});

describe('quota', () => {
  async function bomb(entries: { name: string; size: number }[]): Promise<Buffer> {
    const tar = (await import('tar-stream')).default;
    const pack = tar.pack();
    const out = collect(pack as unknown as Readable, zlib.createGzip({ level: 1 }));
    const zero = Buffer.alloc(MiB);
    for (const e of entries) {
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ name: e.name, size: e.size, type: 'file' }, (err) => (err ? reject(err) : resolve()));
        sink.on('error', reject);
        const write = (left: number): void => {
          while (left > 0) {
            const n = Math.min(left, MiB);
            left -= n;
            if (!sink.write(zero.subarray(0, n))) {
              sink.once('drain', () => write(left));
              return;
            }
          }
          (sink as unknown as { end(): void }).end();
        };
        write(e.size);
      });
    }
    pack.finalize();
    return out;
  }

  it('a 200 MiB gzip bomb with maxBytes 10 MiB fails DISK_FULL quickly, at most 10 MiB written', async () => {
    const gz = await bomb([{ name: 'bomb', size: 200 * MiB }]);
    expect(gz.length).toBeLessThan(2 * MiB);
    const d = tmpDir('bomb');
    const t0 = Date.now();
    await expect(extractBuf(gz, d, { maxBytes: 10 * MiB })).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(Date.now() - t0).toBeLessThan(2000);
    const written = [...snapshot(d).values()].reduce((a, n) => a + (n.size ?? 0), 0);
    expect(written).toBeLessThanOrEqual(10 * MiB);
  });

  it('many files: fails as soon as the total would pass maxBytes', async () => {
    const gz = await bomb(Array.from({ length: 40 }, (_, i) => ({ name: `f${String(i).padStart(2, '0')}`, size: MiB / 2 + 1 })));
    const d = tmpDir('bomb2');
    await expect(extractBuf(gz, d, { maxBytes: 10 * MiB })).rejects.toMatchObject({ code: 'DISK_FULL' });
    const written = [...snapshot(d).values()].reduce((a, n) => a + (n.size ?? 0), 0);
    expect(written).toBeLessThanOrEqual(10 * MiB);
    expect(written).toBeGreaterThan(9 * MiB);
  });
});

describe('abort', () => {
  function bigTree(): string {
    const src = tmpDir('abort-src');
    fs.writeFileSync(path.join(src, 'a.bin'), crypto.randomBytes(32 * MiB));
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(src, `s${i}`), crypto.randomBytes(1000));
    return src;
  }

  it('mid-pack: destroys the stream with the reason promptly and terminates workers', async () => {
    const src = bigTree();
    const ac = new AbortController();
    const reason = new Error('stop packing');
    let seen = 0;
    const stream = createArchiveStream({
      root: src,
      level: 1,
      workers: 2,
      signal: ac.signal,
      onFileBytes: (n) => {
        seen += n;
        if (seen >= 4 * MiB && !ac.signal.aborted) ac.abort(reason);
      },
    });
    const t0 = Date.now();
    await expect(collect(stream)).rejects.toBe(reason);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(seen).toBeLessThan(20 * MiB);
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('an already-aborted signal destroys the stream at once', async () => {
    const ac = new AbortController();
    ac.abort(new Error('early'));
    await expect(collect(createArchiveStream({ root: tmpDir('ea'), level: 1, signal: ac.signal }))).rejects.toThrow('early');
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('mid-extract: rejects promptly with the reason, leaves partial files', async () => {
    const src = bigTree();
    const gz = await collect(createArchiveStream({ root: src, level: 0, workers: 1 }));
    const ac = new AbortController();
    const reason = new Error('stop extracting');
    let written = 0;
    const d = tmpDir('abort-dst');
    const t0 = Date.now();
    const p = extractArchive(slowReadable(gz, 256 * 1024), {
      root: d,
      signal: ac.signal,
      onFileBytes: (n) => {
        written += n;
        if (written >= 2 * MiB) ac.abort(reason);
      },
    });
    await expect(p).rejects.toBe(reason);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(fs.statSync(path.join(d, 'a.bin')).size).toBeLessThan(32 * MiB);
  });

  it('mid-extract with abort() and no reason: the AbortError', async () => {
    const gz = await collect(createArchiveStream({ root: bigTree(), level: 0, workers: 1 }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(undefined), 20);
    const err = await extractArchive(slowReadable(gz, 64 * 1024), { root: tmpDir('ab2'), signal: ac.signal }).catch((e: unknown) => e);
    // AbortController.abort() without a reason gives a DOMException AbortError (an Error): passed through
    expect((err as Error).name).toBe('AbortError');
  });
});

describe('small files', () => {
  it('writes them with synchronous calls but yields to the event loop while doing so', async () => {
    const src = tmpDir('many-src');
    for (let i = 0; i < 20_000; i++) fs.writeFileSync(path.join(src, `f${i}`), 'x'.repeat(i % 700));
    // level 0 and one input buffer: the stored-block parser hands every file over at once, so
    // without its own time slices the extraction would never let a timer or a socket in
    const gz = await collect(createArchiveStream({ root: src, level: 0 }));
    const d = tmpDir('many-dst');
    // event-loop turns seen while files were being written (not the waits before the first one)
    let written = 0;
    const midway = new Set<number>();
    let ticking = true;
    const tick = (): void => {
      if (written > 0 && written < 20_000) midway.add(written);
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const res = await extractBuf(gz, d, { onFileDone: () => written++ });
    ticking = false;
    expect(res.files).toBe(20_000);
    expect(midway.size).toBeGreaterThan(5);
    expect(fs.readFileSync(path.join(d, 'f699'), 'utf8')).toBe('x'.repeat(699));
    expect(fs.statSync(path.join(d, 'f0')).size).toBe(0);
  });
});

describe('throughput (informational)', () => {
  it('packs and extracts 64 MiB with workers 1 and 2', async () => {
    const src = tmpDir('tp');
    // half random, half text-like: compresses to about 0.5, like game-server data
    const text = Buffer.from(Array.from({ length: 20000 }, (_, i) => `line ${i} player${i % 97} pos=${(i * 7919) % 10007}\n`).join(''));
    const parts: Buffer[] = [];
    let len = 0;
    while (len < 32 * MiB) {
      parts.push(text);
      len += text.length;
    }
    fs.writeFileSync(path.join(src, 'text.log'), Buffer.concat(parts).subarray(0, 32 * MiB));
    fs.writeFileSync(path.join(src, 'random.bin'), crypto.randomBytes(32 * MiB));
    for (const workers of [1, 2]) {
      const t0 = performance.now();
      const gz = await collect(createArchiveStream({ root: src, level: 1, workers }));
      const t1 = performance.now();
      const d = tmpDir('tpd');
      await extractBuf(gz, d);
      const t2 = performance.now();
      console.log(
        `[archive] 64 MiB L1 workers=${workers}: pack ${(64 / ((t1 - t0) / 1000)).toFixed(1)} MiB/s, ` +
          `extract ${(64 / ((t2 - t1) / 1000)).toFixed(1)} MiB/s, ratio ${(gz.length / (64 * MiB)).toFixed(2)}`,
      );
      fs.rmSync(d, { recursive: true });
    }
    expect(await waitForNoWorkers()).toBe(0);
  });
});
