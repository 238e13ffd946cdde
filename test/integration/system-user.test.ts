import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { lookupUser } from '../../src/system-user.js';
import { startNode, startPanel, type TestNode, type TestPanel } from '../helpers/harness.js';

function hasCommand(name: string): boolean {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].some((dir) => fs.existsSync(`${dir}/${name}`));
}

// Creating a user needs root and useradd (CI runs as root on Debian); elsewhere the unit tests
// cover the same decisions with a fake host.
const canCreate = process.getuid?.() === 0 && hasCommand('useradd') && hasCommand('userdel');

describe.runIf(canCreate)('a missing system user is created at boot, as the Go daemon does', () => {
  const username = `wtst${randomBytes(4).toString('hex')}`;
  let tp: TestPanel;
  let node: TestNode;

  beforeAll(async () => {
    expect(lookupUser(username, '/etc/passwd')).toBeUndefined();
    tp = await startPanel();
    // The docker environment: its containers run as the system user. The node needs no engine
    // to boot (without one it logs that servers cannot start), and network mode none leaves the
    // engine's networks alone when there is one.
    node = await startNode(tp, { environment: 'docker', config: { system: { username } } });
  });
  afterAll(async () => {
    await node?.stop();
    await tp?.close();
    // userdel also removes the user's own group where useradd made one (USERGROUPS_ENAB).
    if (lookupUser(username, '/etc/passwd')) execFileSync('userdel', [username]);
    try {
      execFileSync('groupdel', [username], { stdio: 'ignore' });
    } catch {}
  });

  it('exists afterwards, as a system account without a login shell, and its ids are in config.yml', async () => {
    const created = lookupUser(username, '/etc/passwd');
    expect(created).toBeDefined();
    const entry = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${username}:`))!;
    expect(entry.split(':')[6]).toBe('/usr/sbin/nologin');
    // useradd --system picks an id below UID_MIN (1000 by default).
    expect(created!.uid).toBeLessThan(1000);
    await node.waitForLog('created the system user');
    const written = parse(fs.readFileSync(node.configPath, 'utf8')) as { system: { username: string; user: { uid: number; gid: number } } };
    expect(written.system.username).toBe(username);
    expect(written.system.user).toMatchObject({ uid: created!.uid, gid: created!.gid });
  });

  it('is found, not created again, at the next boot', async () => {
    await node.stop();
    await node.start();
    await node.waitForLog('wings-ts is ready');
    const log = node.log();
    expect(log.split('\n').filter((l) => l.includes('created the system user'))).toHaveLength(1);
  });
});
