import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTwoNodes, stopTwoNodes, waitFor, type TestNode, type TestPanel } from '../helpers/harness.js';

/** docs/protocol.md D7.2: the graceful stop before a transfer, its timeout, and a cancel that arrives during it. */
describe('stopping the server before a transfer', () => {
  let tp: TestPanel;
  let a: TestNode;
  let b: TestNode;

  beforeAll(async () => {
    ({ tp, a, b } = await startTwoNodes({ config: { system: { transfers: { stop_timeout: 2 } } } }, {}));
  });
  afterAll(() => stopTwoNodes({ tp, a, b }));

  /** A server that takes `seconds` to stop after SIGTERM (or never stops, with `ignore`). */
  async function slowStopper(seconds: number | 'ignore'): Promise<string> {
    const trap = seconds === 'ignore' ? "trap '' TERM" : `trap 'sleep ${seconds}; exit 0' TERM`;
    const s = await tp.panel.admin.createServer({
      node_id: a.id,
      invocation: `${trap}; echo "Done (up)"; while true; do sleep 0.1; done`,
      startup_done: ['Done ('],
      stop: { type: 'signal', value: 'SIGTERM' },
      skip_egg_scripts: true,
    });
    await a.api('POST', `/api/servers/${s.uuid}/power`, { action: 'start' });
    await a.waitForState(s.uuid, 'running');
    return s.uuid;
  }

  const initiate = (uuid: string) =>
    a.api('POST', `/api/servers/${uuid}/transfer`, {
      server_id: uuid,
      url: `${b.url}/api/transfers`,
      token: 'Bearer unused',
      server: { uuid, start_on_completion: false },
    });

  it('answers 500 when the server does not stop within stop_timeout, ends failed and unlocks', async () => {
    const uuid = await slowStopper('ignore');
    const started = Date.now();
    const r = await initiate(uuid);
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ error: 'Failed to stop the server before initiating transfer.' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await a.api('GET', `/api/servers/${uuid}/transfer`)).status).toBe(404);
    // never killed, and unlocked: power actions work again
    expect((await a.api('GET', `/api/servers/${uuid}`)).body.state).not.toBe('offline');
    expect((await a.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' })).status).toBe(202);
    await a.waitForState(uuid, 'offline');
    // no Panel report: the Panel learns it from the answer
    expect((await tp.panel.admin.calls({ path: `/servers/${uuid}/transfer/failure$` })).length).toBe(0);
  });

  it('a cancel during the stop makes the initiating POST answer 409', async () => {
    const uuid = await slowStopper(1.5);
    const post = initiate(uuid);
    await waitFor(async () => (await a.api('GET', `/api/servers/${uuid}/transfer`)).body?.state === 'pending', { what: 'pending transfer' });
    const del = await a.api('DELETE', `/api/servers/${uuid}/transfer`);
    expect(del.status).toBe(202);
    const r = await post;
    expect(r.status).toBe(409);
    expect(r.body).toEqual({ error: 'The transfer was cancelled.' });
    await waitFor(async () => (await a.api('GET', `/api/servers/${uuid}/transfer`)).status === 404, { what: 'terminal' });
    await a.waitForState(uuid, 'offline');
    expect((await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status).toBe(202);
    await a.waitForState(uuid, 'running');
    await a.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await a.waitForState(uuid, 'offline');
  });

  it('validates the initiating body like Wings', async () => {
    const s = await tp.panel.admin.createServer({ node_id: a.id, invocation: 'true', skip_egg_scripts: true });
    const missing = await a.api('POST', `/api/servers/${s.uuid}/transfer`, { url: `${b.url}/api/transfers` });
    expect(missing.status).toBe(400);
    expect(missing.body.request_id).toBe(missing.headers['x-request-id']);
    expect((await a.api('GET', `/api/servers/${s.uuid}/transfer`)).status).toBe(404);
  });
});
