import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCKER_TEST_IMAGE,
  ECHO_SERVER,
  inspectServerContainer,
  nodeContainers,
  removeNodeContainers,
  serverOptions,
  startNode,
  startPanel,
  testEnvironments,
  waitFor,
  type TestEnvironment,
  type TestNode,
  type TestPanel,
} from '../helpers/harness.js';

const environments = await testEnvironments();

/**
 * An install script that writes `file` into the server's data directory: in the docker
 * environment the installer container sees it at /mnt/server; the process environment runs the
 * script with the data directory as working directory.
 */
function installScript(env: TestEnvironment, body: string, file = 'installed.txt'): string {
  const target = env === 'docker' ? `/mnt/server/${file}` : file;
  return `echo installing; echo hello > ${target}; ${body}`;
}

describe.each(environments)('install and reinstall (%s environment)', (env) => {
  let tp: TestPanel;
  let node: TestNode;
  const docker = env === 'docker';

  beforeAll(async () => {
    tp = await startPanel();
    node = await startNode(tp, { environment: env });
  });
  afterAll(async () => {
    await node?.stop();
    await removeNodeContainers(node);
    await tp?.close();
  });

  async function createWithScript(script: string): Promise<string> {
    const s = await tp.panel.admin.createServer({
      node_id: node.id,
      ...ECHO_SERVER,
      ...serverOptions(env),
      skip_egg_scripts: false,
      install: { container_image: DOCKER_TEST_IMAGE, entrypoint: 'sh', script },
    });
    return s.uuid;
  }

  /** The install reports the Panel received for a server, oldest first. */
  async function reports(uuid: string): Promise<{ successful: boolean; reinstall: boolean }[]> {
    const calls = await tp.panel.admin.calls({ path: `^/api/remote/servers/${uuid}/install$`, method: 'POST' });
    return calls.map((c) => c.body as { successful: boolean; reinstall: boolean });
  }

  async function waitForReports(uuid: string, count: number): Promise<{ successful: boolean; reinstall: boolean }[]> {
    return waitFor(async () => {
      const r = await reports(uuid);
      return r.length >= count ? r : null;
    }, { what: `${count} install report(s) for ${uuid}`, timeoutMs: 30_000 });
  }

  const installLog = (uuid: string): string => path.join(node.root, 'log', 'install', `${uuid}.log`);

  async function expectNoInstaller(uuid: string): Promise<void> {
    if (!docker) return;
    await waitFor(async () => !(await nodeContainers(node)).some((c) => c.name === `${node.containerName(uuid)}_installer`), {
      what: 'installer container removal',
    });
  }

  it('runs the install script and reports success to the Panel', async () => {
    const uuid = await createWithScript(installScript(env, 'echo done'));
    const [report] = await waitForReports(uuid, 1);
    expect(report).toMatchObject({ successful: true, reinstall: false });
    expect(fs.readFileSync(path.join(node.serverDir(uuid), 'installed.txt'), 'utf8')).toBe('hello\n');
    const log = await waitFor(() => fs.existsSync(installLog(uuid)) && fs.readFileSync(installLog(uuid), 'utf8'), {
      what: 'install log',
    });
    expect(log).toContain(`Server UUID:          ${uuid}`);
    expect(log).toContain('installing');
    expect((await tp.panel.admin.getServer(uuid)).status).toBeNull();
    await node.waitForState(uuid, 'offline');
    await expectNoInstaller(uuid);
    if (docker) expect(await inspectServerContainer(node, uuid)).not.toBeNull();
    // installed and startable
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    await node.waitForState(uuid, 'running');
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    await node.waitForState(uuid, 'offline');
  });

  it('reports a failing script as an unsuccessful install', async () => {
    const uuid = await createWithScript(installScript(env, 'echo failing; exit 3'));
    const [report] = await waitForReports(uuid, 1);
    expect(report).toMatchObject({ successful: false, reinstall: false });
    expect((await tp.panel.admin.getServer(uuid)).status).toBe('install_failed');
    await waitFor(() => fs.existsSync(installLog(uuid)) && fs.readFileSync(installLog(uuid), 'utf8').includes('failing'), {
      what: 'install log with the output',
    });
    await expectNoInstaller(uuid);
  });

  it('reinstalls a running server: stops it, runs the script again and reports reinstall: true', async () => {
    const uuid = await createWithScript(installScript(env, 'echo first'));
    expect((await waitForReports(uuid, 1))[0]).toMatchObject({ successful: true, reinstall: false });
    await node.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
    await node.waitForState(uuid, 'running');
    await tp.panel.admin.updateServer(uuid, {
      install: { script: installScript(env, 'echo second', 'reinstalled.txt') },
      sync_node: false,
    });
    const r = await node.api('POST', `/api/servers/${uuid}/reinstall`);
    expect(r.status).toBe(202);
    const all = await waitForReports(uuid, 2);
    expect(all[1]).toMatchObject({ successful: true, reinstall: true });
    expect(fs.readFileSync(path.join(node.serverDir(uuid), 'reinstalled.txt'), 'utf8')).toBe('hello\n');
    expect(fs.readFileSync(installLog(uuid), 'utf8')).toContain('second');
    await node.waitForState(uuid, 'offline');
    if (docker) expect((await inspectServerContainer(node, uuid))?.State.Running).toBe(false);
    await expectNoInstaller(uuid);
  });
});
