import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ECHO_SERVER,
  inspectServerContainer,
  nodeContainers,
  serverOptions,
  startTwoNodes,
  stopTwoNodes,
  testEnvironments,
  waitFor,
  type TestNode,
  type TestPanel,
} from '../helpers/harness.js';
import { snapshot } from '../helpers/tree.js';

const NOT_TRANSFERRING = { error: 'Server is not currently being transferred.' };

const environments = await testEnvironments();

describe.each(environments)('cancelling transfers from either side and deleting mid-transfer (docs/protocol.md D3, D7.3) (%s environment)', (env) => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;
  const opts = serverOptions(env);
  const docker = env === 'docker';

  // The source uploads at 4 MiB/s so that a transfer of 32 MiB is observably mid-stream.
  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({ environment: env, config: { system: { transfers: { upload_limit: 4 } } } }, { environment: env }));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  /** Docker: does `node` hold a container for the server (`docker ps -a --filter label=wings-ts.node=…`)? */
  async function hasContainer(node: TestNode, uuid: string): Promise<boolean> {
    return (await nodeContainers(node)).some((c) => c.name === node.containerName(uuid));
  }

  async function serverWithData(): Promise<string> {
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true });
    const dir = a.serverDir(s.uuid);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(dir, `chunk-${i}.bin`), randomBytes(8 * 1024 * 1024));
    fs.mkdirSync(path.join(dir, 'empty'));
    return s.uuid;
  }

  /** Starts a transfer and waits until bytes arrive on the destination. */
  async function midStream(uuid: string): Promise<void> {
    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    await waitFor(async () => {
      const r = await b.api('GET', `/api/transfers/${uuid}`);
      return r.status === 200 && r.body.state === 'processing' && r.body.bytes_done > 0;
    }, { what: 'destination receiving' });
  }

  /** Both sides terminal, destination clean, source unlocked and startable, Panel told failure. */
  async function expectCleanEnd(uuid: string, sourceSnapshot: unknown): Promise<void> {
    await waitFor(async () => (await a.api('GET', `/api/servers/${uuid}/transfer`)).status === 404, { what: 'source terminal', timeoutMs: 2000 });
    await waitFor(async () => (await b.api('GET', `/api/transfers/${uuid}`)).status === 404, { what: 'destination terminal', timeoutMs: 2000 });
    await waitFor(() => !fs.existsSync(b.serverDir(uuid)), { what: 'destination data removed', timeoutMs: 2000 });
    expect((await b.api('GET', `/api/servers/${uuid}`)).status).toBe(404);
    expect(await snapshot(a.serverDir(uuid))).toEqual(sourceSnapshot);
    if (docker) {
      // the failed incoming transfer left no container behind; the source keeps its own
      expect(await hasContainer(b, uuid)).toBe(false);
      expect(await hasContainer(a, uuid)).toBe(true);
    }
    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === false, { what: 'panel failure' });
    expect((await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status).toBe(202);
    await a.waitForState(uuid, 'running');
    await a.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await a.waitForState(uuid, 'offline');
  }

  it('answers 409 when nothing is being transferred', async () => {
    const uuid = await serverWithData();
    const src = await a.api('DELETE', `/api/servers/${uuid}/transfer`);
    expect(src.status).toBe(409);
    expect(src.body).toEqual(NOT_TRANSFERRING);
    const dst = await b.api('DELETE', `/api/transfers/${uuid}`);
    expect(dst.status).toBe(409);
    expect(dst.body).toEqual(NOT_TRANSFERRING);
    expect((await b.api('DELETE', '/api/transfers/not-even-a-uuid')).status).toBe(409);
    expect((await a.api('GET', `/api/servers/${uuid}/transfer`)).status).toBe(404);
  });

  it('cancels from the source mid-stream; a second cancel is 409; a retry succeeds', async () => {
    const uuid = await serverWithData();
    const snap = await snapshot(a.serverDir(uuid));
    await midStream(uuid);
    const status = await a.api('GET', `/api/servers/${uuid}/transfer`);
    expect(status.body).toMatchObject({ server: uuid, direction: 'outgoing', state: 'processing' });
    expect(status.body.bytes_total).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    // locked while transferring (docs/protocol.md D7.1)
    const power = await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    expect(power.status).toBe(409);
    expect(power.body).toEqual({ error: 'Server is currently being transferred.' });
    const again = await a.api('POST', `/api/servers/${uuid}/transfer`, { url: `${b.url}/api/transfers`, token: 'Bearer x' });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: 'A transfer is already in progress for this server.' });

    const started = Date.now();
    const r = await a.api('DELETE', `/api/servers/${uuid}/transfer`);
    expect(r.status).toBe(202);
    expect(r.text).toBe('');
    const second = await a.api('DELETE', `/api/servers/${uuid}/transfer`);
    expect(second.status).toBe(409);
    await expectCleanEnd(uuid, snap);
    expect(Date.now() - started).toBeLessThan(6000);

    // a retry succeeds
    await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === true, { what: "retry success", timeoutMs: 30_000 }).catch((e) => { console.log(a.log().slice(-6000)); console.log(b.log().slice(-4000)); throw e; });
    await waitFor(async () => (await b.api('GET', `/api/servers/${uuid}`)).status === 200);
    if (docker) {
      expect(await hasContainer(b, uuid)).toBe(true);
      await waitFor(async () => !(await hasContainer(a, uuid)), { what: 'source container removal' });
    }
  });

  it('cancels from the destination mid-stream; the source ends failed with the destination\'s reason', async () => {
    const uuid = await serverWithData();
    const snap = await snapshot(a.serverDir(uuid));
    await midStream(uuid);
    const incoming = await b.api('GET', `/api/transfers/${uuid}`);
    expect(incoming.body).toMatchObject({ direction: 'incoming', state: 'processing' });
    expect(incoming.body.bytes_total).toBeGreaterThan(0);
    const list = await b.api('GET', '/api/transfers');
    expect(list.body.map((t: any) => t.server)).toContain(uuid);
    const r = await b.api('DELETE', `/api/transfers/${uuid}`);
    expect(r.status).toBe(202);
    expect((await b.api('DELETE', `/api/transfers/${uuid}`)).status).toBe(409);
    await expectCleanEnd(uuid, snap);
    await a.waitForLog('The transfer was cancelled on the destination.', { from: 'wings.log' });
  });

  it('deleting the server on the source mid-stream cancels the transfer and leaves the destination clean', async () => {
    const uuid = await serverWithData();
    await midStream(uuid);
    expect((await a.api('DELETE', `/api/servers/${uuid}`)).status).toBe(204);
    await waitFor(async () => (await b.api('GET', `/api/transfers/${uuid}`)).status === 404, { what: 'destination terminal', timeoutMs: 3000 });
    await waitFor(() => !fs.existsSync(b.serverDir(uuid)), { what: 'destination clean' });
    expect((await b.api('GET', `/api/servers/${uuid}`)).status).toBe(404);
    await waitFor(() => !fs.existsSync(a.serverDir(uuid)), { what: 'source files removed' });
    if (docker) {
      expect(await hasContainer(a, uuid)).toBe(false);
      expect(await hasContainer(b, uuid)).toBe(false);
    }
  });

  it('deleting the server on the destination mid-stream cancels the incoming transfer', async () => {
    const uuid = await serverWithData();
    const snap = await snapshot(a.serverDir(uuid));
    await midStream(uuid);
    expect((await b.api('DELETE', `/api/servers/${uuid}`)).status).toBe(204);
    await expectCleanEnd(uuid, snap);
  });

  it('runs several transfers at once in both directions', async () => {
    const s1 = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true });
    const s2 = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true });
    const s3 = await tp.panel.admin.createServer({ node_id: b.id, ...ECHO_SERVER, ...opts, skip_egg_scripts: true });
    for (const [node, s] of [[a, s1], [a, s2], [b, s3]] as const) {
      fs.writeFileSync(path.join(node.serverDir(s.uuid), 'data.bin'), randomBytes(2 * 1024 * 1024));
    }
    await Promise.all([
      tp.panel.admin.startTransfer(s1.uuid, { node_id: b.id }),
      tp.panel.admin.startTransfer(s2.uuid, { node_id: b.id }),
      tp.panel.admin.startTransfer(s3.uuid, { node_id: a.id }),
    ]);
    for (const s of [s1, s2, s3]) {
      await waitFor(async () => (await tp.panel.admin.getTransfer(s.uuid)).successful === true, { what: `transfer of ${s.uuid}`, timeoutMs: 30_000 });
    }
    await waitFor(async () => (await b.api('GET', `/api/servers/${s1.uuid}`)).status === 200);
    await waitFor(async () => (await a.api('GET', `/api/servers/${s3.uuid}`)).status === 200);
    if (docker) {
      for (const [from, to, s] of [[a, b, s1], [a, b, s2], [b, a, s3]] as const) {
        expect((await inspectServerContainer(to, s.uuid))?.Config.Labels['wings-ts.node']).toBe(to.nodeUuid);
        await waitFor(async () => !(await hasContainer(from, s.uuid)), { what: `source container of ${s.uuid} removed` });
      }
    }
  });
});
