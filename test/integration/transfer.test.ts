import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_SERVER, startNode, startPanel, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';
import { expectedAfterTransfer, makeFidelityTree, snapshot } from '../helpers/tree.js';

describe('server transfer between two real daemons (process environment)', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    tp = await startPanel();
    [a, b] = await Promise.all([startNode(tp, { name: 'A' }), startNode(tp, { name: 'B' })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await tp?.close();
  });

  async function makeServer(node: TestNode, tree = true) {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...ECHO_SERVER,
      skip_egg_scripts: true,
      file_denylist: ['*.jar'],
    });
    if (tree) makeFidelityTree(node.serverDir(s.uuid));
    return s.uuid;
  }

  it('moves a running server with every file, directory, symlink, mode and mtime', async () => {
    const uuid = await makeServer(a);
    await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    await a.waitForState(uuid, 'running');
    const before = expectedAfterTransfer(snapshot(a.serverDir(uuid)));
    expect(Object.keys(before).length).toBeGreaterThan(20);

    const row = await tp.panel.admin.startTransfer(uuid, { node_id: b.id });
    expect(row.successful).toBeNull();
    // The source stopped the server before answering 202, and it is locked.
    expect((await a.api('GET', `/api/servers/${uuid}`)).body.state).toBe('offline');

    await waitFor(async () => (await tp.panel.admin.getTransfer(uuid)).successful === true, { what: 'panel success', timeoutMs: 30_000 });
    // The Panel deleted the server on the source; the destination holds it, unlocked and offline.
    await waitFor(async () => (await a.api('GET', `/api/servers/${uuid}`)).status === 404, { what: 'source deletion' });
    await waitFor(() => !fs.existsSync(a.serverDir(uuid)), { what: 'source files removed' });
    const onB = await b.api('GET', `/api/servers/${uuid}`);
    expect(onB.status).toBe(200);
    expect(onB.body.state).toBe('offline');
    expect(snapshot(b.serverDir(uuid))).toEqual(before);
    // no active transfers left on either side
    expect((await a.api('GET', '/api/transfers')).body).toEqual([]);
    expect((await b.api('GET', '/api/transfers')).body).toEqual([]);
    // the server runs on its new node
    await b.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    await b.waitForState(uuid, 'running');
    await b.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await b.waitForState(uuid, 'offline');
  });
});
