import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';

/**
 * system.transfers.upload_limit (source) and download_limit (destination), MiB/s (docs/protocol.md D9.5), checked
 * loosely: the rate seen by the limited side's status API while 24 MiB of incompressible data
 * stream must be 8 MiB/s ±25 %. The bench (`bench/transfer.ts --rate`) checks them precisely over
 * at least 30 s.
 */
const MiB = 1024 * 1024;
const SIZE = 24 * MiB;
const LIMIT = 8;

describe('transfer rate limits (docs/protocol.md D9.5)', () => {
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

  /**
   * Starts a transfer and measures the rate on the limited side from its own status API, between
   * 4 MiB and 16 MiB of data moved: setup (stop, Panel calls) and the machine's load elsewhere do
   * not enter the figure, only the streaming does.
   */
  async function measuredRate(from: TestNode, to: TestNode, side: 'source' | 'destination'): Promise<number> {
    const s = await tp.panel.admin.createServer({ node_id: from.id, ...ECHO_SERVER, skip_egg_scripts: true });
    const dir = from.serverDir(s.uuid);
    for (let i = 0; i < SIZE / (4 * MiB); i++) fs.writeFileSync(path.join(dir, `part-${i}.bin`), randomBytes(4 * MiB));
    await tp.panel.admin.startTransfer(s.uuid, { node_id: to.id });
    const status = async () => {
      const r = side === 'source' ? await from.api('GET', `/api/servers/${s.uuid}/transfer`) : await to.api('GET', `/api/transfers/${s.uuid}`);
      return r.status === 200 ? (r.body as { bytes_done: number }) : null;
    };
    const sample = async (atLeast: number) => {
      const st = await waitFor(async () => {
        const v = await status();
        return v && v.bytes_done >= atLeast ? v : null;
      }, { what: `${atLeast} bytes moved`, timeoutMs: 20_000, intervalMs: 20 });
      return { t: performance.now(), bytes: st.bytes_done };
    };
    const first = await sample(4 * MiB);
    const second = await sample(16 * MiB);
    await waitFor(async () => (await tp.panel.admin.getTransfer(s.uuid)).successful === true, { what: 'panel success', timeoutMs: 30_000 });
    expect(fs.readdirSync(to.serverDir(s.uuid)).length).toBe(SIZE / (4 * MiB));
    return (second.bytes - first.bytes) / MiB / ((second.t - first.t) / 1000);
  }

  it(`upload_limit on the source holds the transfer near ${LIMIT} MiB/s`, async () => {
    const rate = await measuredRate(up, plain, 'source');
    expect(rate).toBeGreaterThan(LIMIT * 0.75);
    expect(rate).toBeLessThan(LIMIT * 1.25);
  }, 60_000);

  it(`download_limit on the destination holds the transfer near ${LIMIT} MiB/s`, async () => {
    const rate = await measuredRate(plain, down, 'destination');
    expect(rate).toBeGreaterThan(LIMIT * 0.75);
    expect(rate).toBeLessThan(LIMIT * 1.25);
  }, 60_000);
});
