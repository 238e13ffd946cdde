import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ECHO_SERVER,
  startTwoNodes,
  stopTwoNodes,
  waitFor,
  type TestNode,
  type TestPanel,
} from '../helpers/harness.js';

const MiB = 1024 * 1024;

function peakRssMiB(node: TestNode): number {
  const status = fs.readFileSync(`/proc/${node.child!.pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** Memory stays bounded: archives stream from disk to socket to disk, nothing is buffered whole. */
describe('a 1 GiB transfer', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({}, {}));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  // A transfer's memory must not grow with the server's size. Measured: about 140 MiB on each side, of which ~100 MiB is an idle daemon
  // (modules); the source runs on a fixed set of 1 MiB blocks recycled after each socket write.
  it('keeps each daemon\'s peak RSS below 200 MiB', async () => {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    const dir = a.serverDir(s.uuid);
    // 512 MiB incompressible in 4 files, 512 MiB of text in 512 files across nested directories.
    const block = randomBytes(16 * MiB);
    for (let f = 0; f < 4; f++) {
      const fd = fs.openSync(path.join(dir, `random-${f}.bin`), 'w');
      for (let i = 0; i < 8; i++) {
        block[0] = f * 8 + i; // no two blocks alike
        fs.writeSync(fd, block);
      }
      fs.closeSync(fd);
    }
    const line = 'the quick brown fox jumps over the lazy dog 0123456789\n';
    const text = Buffer.from(line.repeat(Math.ceil(MiB / line.length))).subarray(0, MiB);
    for (let d = 0; d < 16; d++) {
      fs.mkdirSync(path.join(dir, `world/dim-${d}`), { recursive: true });
      for (let f = 0; f < 32; f++) fs.writeFileSync(path.join(dir, `world/dim-${d}/chunk-${f}.txt`), text);
    }
    const started = Date.now();
    await tp.panel.admin.startTransfer(s.uuid, { node_id: b.id });
    await waitFor(async () => (await tp.panel.admin.getTransfer(s.uuid)).successful === true, { what: 'success', timeoutMs: 180_000, intervalMs: 250 });
    const seconds = (Date.now() - started) / 1000;
    const rssA = peakRssMiB(a);
    const rssB = peakRssMiB(b);
    console.log(`1 GiB transfer: ${seconds.toFixed(1)} s (${(1024 / seconds).toFixed(1)} MiB/s); peak RSS source ${rssA.toFixed(0)} MiB, destination ${rssB.toFixed(0)} MiB`);
    expect(rssA).toBeLessThan(200);
    expect(rssB).toBeLessThan(200);
    const dest = b.serverDir(s.uuid);
    expect(fs.statSync(path.join(dest, 'random-3.bin')).size).toBe(128 * MiB);
    expect(fs.readdirSync(path.join(dest, 'world')).length).toBe(16);
    expect(fs.readFileSync(path.join(dest, 'world/dim-15/chunk-31.txt')).equals(text)).toBe(true);
  }, 240_000);
});
