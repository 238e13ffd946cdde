import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from './config/load.js';
import type { Config } from './config/schema.js';
import { errorMessage } from './errors.js';

/**
 * The system user (`system.username`) whose uid:gid the Docker containers run as, resolved at boot
 * as the Go daemon does: looked up in /etc/passwd (Go's release builds read that file, not NSS),
 * created when missing with the command Go runs, and its ids kept in `system.user.uid`/`gid`
 * (written back to config.yml). Without root it cannot be created: the daemon refuses to start
 * and says the command to run. The process environment runs servers as the daemon's own user, so
 * for it nothing is created.
 */
export interface SystemUserHost {
  passwdFile: string;
  osReleaseFile: string;
  /** The daemon's own uid and gid. */
  uid: number;
  gid: number;
  /** Runs a command, throws when it fails. */
  run(file: string, args: string[]): void;
}

export function systemHost(): SystemUserHost {
  return {
    passwdFile: '/etc/passwd',
    osReleaseFile: '/etc/os-release',
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    run: (file, args) => {
      execFileSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    },
  };
}

export function lookupUser(name: string, passwdFile: string): { uid: number; gid: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(passwdFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** The `ID` of /etc/os-release ('' when unknown). */
function osId(osReleaseFile: string): string {
  try {
    const m = /^ID="?([^"\n]*)"?$/m.exec(fs.readFileSync(osReleaseFile, 'utf8'));
    return m ? m[1] : '';
  } catch {
    return '';
  }
}

/** The Go daemon's commands: useradd, except on Alpine (busybox), where the group comes first. */
export function createUserCommands(name: string, os: string): string[][] {
  if (os.startsWith('alpine')) {
    return [
      ['addgroup', '-S', name],
      ['adduser', '-S', '-D', '-H', '-G', name, '-s', '/sbin/nologin', name],
    ];
  }
  return [['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]];
}

function commandFailure(err: unknown): string {
  const e = err as { code?: string; stderr?: Buffer | string };
  if (e.code === 'ENOENT') return 'command not found';
  const stderr = e.stderr?.toString().trim();
  return stderr || errorMessage(err);
}

/** Sets `system.user.uid`/`gid` (see the module comment); throws a ConfigError naming the command to run. */
export function resolveSystemUser(config: Config, logger: Logger, configFile: string, host: SystemUserHost = systemHost()): void {
  const user = config.system.user;
  if (user.rootless.enabled) {
    user.uid = host.uid;
    user.gid = host.gid;
    return;
  }
  const name = config.system.username;
  const found = lookupUser(name, host.passwdFile);
  if (found) {
    user.uid = found.uid;
    user.gid = found.gid;
    return;
  }
  if (config.environment === 'process') {
    user.uid = host.uid;
    user.gid = host.gid;
    logger.info(
      { username: name, uid: host.uid, gid: host.gid },
      "system user not found; the process environment runs servers as the daemon's own user",
    );
    return;
  }

  const commands = createUserCommands(name, osId(host.osReleaseFile));
  const shown = commands.map((c) => c.join(' ')).join(' && ');
  if (host.uid !== 0) {
    throw new ConfigError(configFile, [
      {
        key: 'system.username',
        message: `the user "${name}" does not exist and only root can create it: run \`${shown}\` as root, or set system.user.rootless.enabled`,
      },
    ]);
  }
  logger.info({ username: name, command: shown }, 'system user not found; creating it');
  for (const [file, ...args] of commands) {
    try {
      host.run(file, args);
    } catch (err) {
      throw new ConfigError(
        configFile,
        [{ key: 'system.username', message: `creating the user "${name}" failed (${file}: ${commandFailure(err)}); create it with \`${shown}\`` }],
        { cause: err },
      );
    }
  }
  const created = lookupUser(name, host.passwdFile);
  if (!created) {
    throw new ConfigError(configFile, [{ key: 'system.username', message: `"${name}" is not in ${host.passwdFile} after \`${shown}\`` }]);
  }
  user.uid = created.uid;
  user.gid = created.gid;
  logger.info({ username: name, uid: created.uid, gid: created.gid }, 'created the system user');
}
