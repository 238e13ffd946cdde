import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/load.js';
import { ConfigSchema, type Config } from '../../src/config/schema.js';
import { resolveSystemUser, type SystemUserHost } from '../../src/system-user.js';
import { tmpDir } from '../helpers/tmp.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';

/**
 * A host with its own passwd and os-release files; `run` records each command and, like useradd,
 * adds the user to the passwd file (unless `fail` says otherwise).
 */
function fakeHost(o: { uid?: number; os?: string; passwd?: string; fail?: Error } = {}) {
  const dir = tmpDir('wings-user-');
  const passwdFile = path.join(dir, 'passwd');
  const osReleaseFile = path.join(dir, 'os-release');
  fs.writeFileSync(passwdFile, o.passwd ?? PASSWD);
  fs.writeFileSync(osReleaseFile, `NAME="Test"\nID=${o.os ?? 'debian'}\n`);
  const commands: string[][] = [];
  const host: SystemUserHost = {
    passwdFile,
    osReleaseFile,
    uid: o.uid ?? 0,
    gid: o.uid ?? 0,
    run: (file, args) => {
      commands.push([file, ...args]);
      if (o.fail) throw o.fail;
      if (file === 'useradd' || file === 'adduser') fs.appendFileSync(passwdFile, `${args.at(-1)}:x:996:994::/:/usr/sbin/nologin\n`);
    },
  };
  return { host, commands };
}

function config(over: Record<string, unknown> = {}): Config {
  return ConfigSchema.parse({ environment: 'docker', ...over });
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('system user (system.username)', () => {
  it('uses the uid and gid of an existing user and runs nothing', () => {
    const { host, commands } = fakeHost({ passwd: `${PASSWD}pterodactyl:x:988:988::/:/usr/sbin/nologin\n` });
    const cfg = config();
    resolveSystemUser(cfg, capture().logger, '/etc/pterodactyl/config.yml', host);
    expect(cfg.system.user).toMatchObject({ uid: 988, gid: 988 });
    expect(commands).toEqual([]);
  });

  it("creates a missing user with the Go daemon's useradd command and uses the new ids", () => {
    const { host, commands } = fakeHost();
    const cfg = config();
    const { logger, lines } = capture();
    resolveSystemUser(cfg, logger, '/etc/pterodactyl/config.yml', host);
    expect(commands).toEqual([['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'pterodactyl']]);
    expect(cfg.system.user).toMatchObject({ uid: 996, gid: 994 });
    expect(lines.find((l) => l.msg === 'created the system user')).toMatchObject({ username: 'pterodactyl', uid: 996, gid: 994 });
  });

  it('on Alpine creates the group first, then the user with busybox adduser', () => {
    const { host, commands } = fakeHost({ os: 'alpine' });
    const cfg = config({ system: { username: 'wings' } });
    resolveSystemUser(cfg, capture().logger, '/etc/pterodactyl/config.yml', host);
    expect(commands).toEqual([
      ['addgroup', '-S', 'wings'],
      ['adduser', '-S', '-D', '-H', '-G', 'wings', '-s', '/sbin/nologin', 'wings'],
    ]);
    expect(cfg.system.user.uid).toBe(996);
  });

  it('refuses to start without root, naming the key, the file and the command to run', () => {
    const { host, commands } = fakeHost({ uid: 1000 });
    const err = catchError(() => resolveSystemUser(config(), capture().logger, '/srv/config.yml', host));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).file).toBe('/srv/config.yml');
    expect(err.message).toBe(
      '/srv/config.yml: system.username: the user "pterodactyl" does not exist and only root can create it: run ' +
        '`useradd --system --no-create-home --shell /usr/sbin/nologin pterodactyl` as root, or set system.user.rootless.enabled',
    );
    expect(commands).toEqual([]);
  });

  it("refuses to start when the command fails, with the command's own error", () => {
    const failure = Object.assign(new Error('Command failed: useradd'), { stderr: Buffer.from('useradd: cannot lock /etc/passwd; try again later.\n') });
    const { host } = fakeHost({ fail: failure });
    const err = catchError(() => resolveSystemUser(config(), capture().logger, '/etc/pterodactyl/config.yml', host));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(
      '/etc/pterodactyl/config.yml: system.username: creating the user "pterodactyl" failed (useradd: useradd: cannot lock /etc/passwd; try again later.); ' +
        'create it with `useradd --system --no-create-home --shell /usr/sbin/nologin pterodactyl`',
    );
  });

  it("the process environment creates nothing and uses the daemon's own ids", () => {
    const { host, commands } = fakeHost({ uid: 1000 });
    const cfg = config({ environment: 'process' });
    const { logger, lines } = capture();
    resolveSystemUser(cfg, logger, '/etc/pterodactyl/config.yml', host);
    expect(commands).toEqual([]);
    expect(cfg.system.user).toMatchObject({ uid: 1000, gid: 1000 });
    expect(lines.map((l) => l.level)).toEqual([30]);
  });

  it("rootless mode uses the daemon's own ids without looking the user up", () => {
    const { host, commands } = fakeHost({ uid: 1000 });
    const cfg = config({ system: { user: { rootless: { enabled: true } } } });
    resolveSystemUser(cfg, capture().logger, '/etc/pterodactyl/config.yml', host);
    expect(commands).toEqual([]);
    expect(cfg.system.user).toMatchObject({ uid: 1000, gid: 1000 });
  });
});

function catchError(fn: () => void): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}
