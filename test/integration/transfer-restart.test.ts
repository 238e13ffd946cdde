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

/** docs/protocol.md D7.4, D7.5: a transfer does not survive a restart, but leaves nothing stuck. */
describe('a daemon killed mid-transfer (SIGKILL) and restarted', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({ config: { system: { transfers: { upload_limit: 4 } } } }, {}));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  async function serverWithData(): Promise<string> {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(a.serverDir(s.uuid), `part-${i}.bin`), randomBytes(8 * 1024 * 1024));
    return s.uuid;
  }

  async function midStream(uuid: string): Promise<void> {
    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    await waitFor(async () => {
      const r = await b.api('GET', `/api/transfers/${uuid}`);
      return r.status === 200 && r.body.bytes_done > 0;
    }, { what: 'destination receiving' });
  }

  const markers = (node: TestNode, dir: 'incoming' | 'outgoing') => {
    try {
      return fs.readdirSync(path.join(node.root, 'lib', 'transfers', dir));
    } catch {
      return [];
    }
  };

  async function retrySucceeds(uuid: string): Promise<void> {
    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === true, { what: 'retry success', timeoutMs: 40_000 });
    await waitFor(async () => (await b.api('GET', `/api/servers/${uuid}`)).status === 200, { what: 'server on B' });
    expect(fs.readdirSync(b.serverDir(uuid)).sort()).toEqual(['part-0.bin', 'part-1.bin', 'part-2.bin']);
  }

  it('destination killed: the source fails and unlocks; the restarted destination deletes the partial data', async () => {
    const uuid = await serverWithData();
    await midStream(uuid);
    expect(markers(b, 'incoming')).toEqual([`${uuid}.json`]);
    expect(markers(a, 'outgoing')).toEqual([`${uuid}.json`]);
    await b.kill();
    // The source sees the stream break: failed, reported, unlocked, its marker dropped.
    await waitFor(async () => (await a.api('GET', `/api/servers/${uuid}/transfer`)).status === 404, { what: 'source terminal' });
    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === false, { what: 'panel failure' });
    expect(markers(a, 'outgoing')).toEqual([]);
    expect(fs.existsSync(b.serverDir(uuid))).toBe(true); // partial data left by the dead process
    await b.start();
    // Boot recovery: the partial data is gone, the marker is dropped, the Panel was told (again).
    expect(fs.existsSync(b.serverDir(uuid))).toBe(false);
    expect(markers(b, 'incoming')).toEqual([]);
    await b.waitForLog('incoming transfer died with the daemon');
    expect((await b.api('GET', `/api/servers/${uuid}`)).status).toBe(404);
    // The source can start the server again.
    expect((await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status).toBe(202);
    await a.waitForState(uuid, 'running');
    await a.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await a.waitForState(uuid, 'offline');
    await retrySucceeds(uuid);
  });

  it('source killed: the destination fails and cleans up; the restarted source reports failure and unlocks', async () => {
    const uuid = await serverWithData();
    await midStream(uuid);
    const failuresBefore = (await tp.panel.admin.calls({ path: `/servers/${uuid}/transfer/failure` })).length;
    await a.kill();
    await waitFor(async () => (await b.api('GET', `/api/transfers/${uuid}`)).status === 404, { what: 'destination terminal' });
    await waitFor(() => !fs.existsSync(b.serverDir(uuid)), { what: 'destination clean' });
    expect(markers(b, 'incoming')).toEqual([]);
    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === false, { what: 'panel failure' });
    expect(markers(a, 'outgoing')).toEqual([`${uuid}.json`]);
    await a.start();
    expect(markers(a, 'outgoing')).toEqual([]);
    await a.waitForLog('outgoing transfer died with the daemon');
    const failuresAfter = (await tp.panel.admin.calls({ path: `/servers/${uuid}/transfer/failure` })).length;
    expect(failuresAfter).toBeGreaterThanOrEqual(failuresBefore + 2); // the destination's and the restarted source's
    expect((await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status).toBe(202);
    await a.waitForState(uuid, 'running');
    await a.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await a.waitForState(uuid, 'offline');
    await retrySucceeds(uuid);
  });

  it('graceful shutdown of the source cancels its transfer and reports it (docs/protocol.md D9.1)', async () => {
    const uuid = await serverWithData();
    await midStream(uuid);
    expect(await a.stop()).toBe(0);
    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === false, { what: 'panel failure' });
    await waitFor(async () => (await b.api('GET', `/api/transfers/${uuid}`)).status === 404, { what: 'destination terminal' });
    await waitFor(() => !fs.existsSync(b.serverDir(uuid)), { what: 'destination clean' });
    expect(markers(a, 'outgoing')).toEqual([]);
    await a.start();
    expect((await a.api('GET', `/api/servers/${uuid}`)).status).toBe(200);
  });
});
