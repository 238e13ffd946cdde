import fs from 'node:fs';
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
import { expectedAfterTransfer, makeFidelityTree, snapshot } from '../helpers/tree.js';

const environments = await testEnvironments();

describe.each(environments)('server transfer between two real daemons (%s environment)', (env) => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;
  const docker = env === 'docker';

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({ environment: env }, { environment: env }));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  async function makeServer(node: TestNode, tree = true) {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...ECHO_SERVER,
      ...serverOptions(env),
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
    const before = expectedAfterTransfer(await snapshot(a.serverDir(uuid)));
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
    if (docker) {
      // The destination created the container before it reported success; the source removed its own.
      const created = await inspectServerContainer(b, uuid);
      expect(created?.State.Status).toBe('created');
      expect(created?.Config.Labels['wings-ts.node']).toBe(b.nodeUuid);
      const [success] = await tp.panel.admin.calls({ path: `^/api/remote/servers/${uuid}/transfer/success$` });
      expect(success.node_id).toBe(b.id);
      expect(Date.parse(created!.Created)).toBeLessThanOrEqual(Date.parse(success.at));
      expect(await inspectServerContainer(a, uuid)).toBeNull();
      expect((await nodeContainers(a)).map((c) => c.name)).not.toContain(a.containerName(uuid));
    }
    expect(await snapshot(b.serverDir(uuid))).toEqual(before);
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
