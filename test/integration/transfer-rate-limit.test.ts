import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';

/**
 * system.transfers.upload_limit (source) and download_limit (destination), MiB/s (D9), checked
 * loosely: 24 MiB of incompressible data at 8 MiB/s must take about 3 s (±25 %). The bench
 * (`bench/transfer.ts --rate`) checks them precisely over at least 30 s.
 */
const MiB = 1024 * 1024;
const SIZE = 24 * MiB;
const LIMIT = 8;
const EXPECTED = SIZE / MiB / LIMIT;

describe('transfer rate limits (D9)', () => {
  let tp: TestPanel;
  let up: TestNode; // source with upload_limit
  let plain: TestNode; // no limits
  let down: TestNode; // destination with download_limit

  beforeAll(async () => {
    tp = await startPanel();
    [up, plain, down] = await Promise.all([
      startNode(tp, { name: 'up', config: { system: { transfers: { upload_limit: LIMIT } } } }),
      startNode(tp, { name: 'plain' }),
      startNode(tp, { name: 'down', config: { system: { transfers: { download_limit: LIMIT } } } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([up?.stop(), plain?.stop(), down?.stop()]);
    await tp?.close();
  });

  async function timedTransfer(from: TestNode, to: TestNode): Promise<number> {
    const s = await tp.panel.admin.createServer({ node_id: from.id, ...ECHO_SERVER, skip_egg_scripts: true });
    const dir = from.serverDir(s.uuid);
    for (let i = 0; i < SIZE / (4 * MiB); i++) fs.writeFileSync(path.join(dir, `part-${i}.bin`), randomBytes(4 * MiB));
    const t0 = performance.now();
    await tp.panel.admin.startTransfer(s.uuid, { node_id: to.id });
    await waitFor(async () => (await tp.panel.admin.getTransfer(s.uuid)).successful === true, {
      what: 'panel success',
      timeoutMs: 30_000,
      intervalMs: 20,
    });
    const seconds = (performance.now() - t0) / 1000;
    expect(fs.readdirSync(to.serverDir(s.uuid)).length).toBe(SIZE / (4 * MiB));
    return seconds;
  }

  it(`upload_limit on the source holds the transfer near ${LIMIT} MiB/s`, async () => {
    const seconds = await timedTransfer(up, plain);
    expect(seconds).toBeGreaterThan(EXPECTED * 0.75);
    expect(seconds).toBeLessThan(EXPECTED * 1.25);
  }, 40_000);

  it(`download_limit on the destination holds the transfer near ${LIMIT} MiB/s`, async () => {
    const seconds = await timedTransfer(plain, down);
    expect(seconds).toBeGreaterThan(EXPECTED * 0.75);
    expect(seconds).toBeLessThan(EXPECTED * 1.25);
  }, 40_000);

  it('without limits the same transfer is much faster', async () => {
    const seconds = await timedTransfer(plain, up);
    expect(seconds).toBeLessThan(EXPECTED * 0.5);
  }, 40_000);
});
