import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ArchiveProducer, createArchiveStream } from '../../src/archive/index.js';
import { collect, tmpDir, waitForNoWorkers } from './archive-helpers.js';

const MiB = 1024 * 1024;

/** Random and text files of sizes around the block size and the small-file limit. */
function tree(): string {
  const root = tmpDir('producer');
  fs.mkdirSync(path.join(root, 'd/e'), { recursive: true });
  fs.writeFileSync(path.join(root, 'random.bin'), crypto.randomBytes(5 * MiB + 123));
  fs.writeFileSync(path.join(root, 'exact-block.bin'), crypto.randomBytes(MiB));
  fs.writeFileSync(path.join(root, 'text.txt'), Buffer.alloc(3 * MiB + 7, 'lorem ipsum '));
  fs.writeFileSync(path.join(root, 'd/small-limit'), crypto.randomBytes(256 * 1024));
  fs.writeFileSync(path.join(root, 'd/over-limit'), crypto.randomBytes(256 * 1024 + 1));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(root, `d/e/f${i}`), crypto.randomBytes(i * 37));
  fs.writeFileSync(path.join(root, 'empty'), '');
  return root;
}

/**
 * Pulls every member, holding `hold` of them before giving the oldest back; at release each held
 * member must still hold the bytes it had when it was handed out (a block reused while held would not).
 */
async function drain(p: ArchiveProducer, hold: number): Promise<Buffer> {
  const copies: Buffer[] = [];
  const held: Array<{ view: Buffer; copy: Buffer }> = [];
  const giveBack = (h: { view: Buffer; copy: Buffer }): void => {
    expect(h.view.equals(h.copy)).toBe(true);
    p.release(h.view);
  };
  for (;;) {
    const m = await p.next();
    if (!m) break;
    const copy = Buffer.from(m);
    copies.push(copy);
    held.push({ view: m, copy });
    // let the walk and the workers run while members are held
    await new Promise((r) => setImmediate(r));
    if (held.length > hold) giveBack(held.shift()!);
  }
  for (const h of held) giveBack(h);
  return Buffer.concat(copies);
}

describe('ArchiveProducer', () => {
  for (const level of [0, 1]) {
    it(`gives the same bytes as the stream, with members held and released late (level ${level})`, async () => {
      const root = tree();
      const viaStream = await collect(createArchiveStream({ root, level }));
      for (const hold of [0, 1, 2]) {
        const p = new ArchiveProducer({ root, level });
        expect(hold).toBeLessThanOrEqual(p.maxBlocks - 2);
        const out = await drain(p, hold);
        expect(out.equals(viaStream), `hold ${hold}`).toBe(true);
      }
      expect(zlib.gunzipSync(viaStream).length % 512).toBe(0);
      expect(await waitForNoWorkers()).toBe(0);
    });
  }

  it('runs on a fixed set of blocks, each with one holder at a time', async () => {
    const root = tree();
    // level 0 frames on this thread, so a block keeps its ArrayBuffer (a worker round trip gives a new one)
    const p = new ArchiveProducer({ root, level: 0, blockSize: 64 * 1024 });
    const seen = new Set<ArrayBufferLike>();
    const held: Buffer[] = [];
    for (;;) {
      const m = await p.next();
      if (!m) break;
      for (const h of held) expect(h.buffer).not.toBe(m.buffer);
      seen.add(m.buffer);
      held.push(m);
      if (held.length > 2) p.release(held.shift()!);
    }
    // a fixed set of blocks travels: never more than maxBlocks distinct buffers
    expect(seen.size).toBeLessThanOrEqual(p.maxBlocks);
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('stops on abort: next() rejects with the reason and the workers end', async () => {
    const root = tree();
    const ac = new AbortController();
    const p = new ArchiveProducer({ root, level: 1, signal: ac.signal });
    const first = await p.next();
    expect(first).not.toBeNull();
    ac.abort(new Error('stop now'));
    await expect(p.next()).rejects.toThrow('stop now');
    p.release(first!); // after the end: ignored
    expect(await waitForNoWorkers()).toBe(0);
  });

  it('does not start walking before the first next() and can be destroyed unused', async () => {
    const p = new ArchiveProducer({ root: '/nonexistent/dir', level: 1 });
    p.destroy();
    await expect(p.next()).rejects.toMatchObject({ code: 'CANCELLED' });
    const q = new ArchiveProducer({ root: '/nonexistent/dir', level: 1 });
    await expect(q.next()).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await waitForNoWorkers()).toBe(0);
  });
});

describe('ArchiveProducer on many small files', () => {
  it('yields to the event loop during a long synchronous walk', async () => {
    const root = tmpDir('producer-many');
    for (let i = 0; i < 20_000; i++) fs.writeFileSync(path.join(root, `f${i}`), '');
    // one block for the whole archive (~10 MiB of headers): no member is handed over before the
    // walk ends, so only the walk's own time slices let the event loop turn meanwhile
    const p = new ArchiveProducer({ root, level: 0, blockSize: 64 * MiB });
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const first = await p.next();
    ticking = false;
    expect(first).not.toBeNull();
    expect(turns).toBeGreaterThan(2);
    p.release(first!);
    expect(await p.next()).toBeNull();
  });
});
