import { access, constants as fsConstants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

// Shared with the Docker environment; re-exported where the process tests and callers look for it.
export { stopSignal } from '../stop.js';

/**
 * Expands `{{VAR}}` in a startup invocation the way the Pterodactyl images' entrypoint does: the
 * yolk entrypoint turns `{{` into `${` and `}}` into `}` and lets the shell expand the result. We
 * do the same for every `{{NAME}}` whose NAME is a valid shell variable name (anything else is left
 * alone, where the entrypoint would produce a "bad substitution" error) and run the result with
 * `/bin/sh -c`, whose environment holds the server's variables: `{{SERVER_MEMORY}}` becomes
 * `${SERVER_MEMORY}`, expanded by the shell. Unlike the entrypoint there is no extra `eval` pass.
 */
export function expandInvocation(invocation: string): string {
  return invocation.replace(/\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}/g, (_m, name: string) => `\${${name}}`);
}

/**
 * The child's environment: the server's variables (docs/protocol.md W14, `KEY=value`, first
 * occurrence wins), then `HOME=<data directory>` (the container's home is its data directory) and
 * the daemon's `PATH` (the Docker image would bring its own).
 */
export function buildChildEnvironment(variables: readonly string[], home: string): NodeJS.ProcessEnv {
  const env: Record<string, string> = {};
  for (const entry of variables) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    if (!Object.hasOwn(env, key)) env[key] = entry.slice(eq + 1);
  }
  env.HOME = home;
  env.PATH = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return env;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds `program` like the shell would (a path as is, else on PATH); null when not found. */
export async function findProgram(program: string, path = process.env.PATH ?? ''): Promise<string | null> {
  if (program.includes('/')) return (await isExecutable(program)) ? program : null;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    if (await isExecutable(candidate)) return candidate;
  }
  return null;
}

/** Sends `signal` to the process group `pgid`; false when the group is gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
