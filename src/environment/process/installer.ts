import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { LineSplitter } from '../console-lines.js';
import type { EnvironmentContext, InstallerOptions } from '../environment.js';
import { withInstallScript } from '../install-script.js';
import { buildChildEnvironment, findProgram, killGroup } from './helpers.js';

/** After the installer exited: how long to wait for its output pipes to close. */
const CLOSE_GRACE_MS = 2000;

/**
 * Runs the install script as a plain process: `<entrypoint or sh> <tmp>/<uuid>/install.sh` with
 * cwd = the data directory and the server's variables. There is no isolation and no `/mnt/server`
 * or `/mnt/install`: real egg scripts that `cd /mnt/server` or install packages will not work
 * here (the image is ignored). An entrypoint missing on this machine (e.g. `ash`) falls back to
 * `/bin/sh`. Resolves true iff the script exits 0; abort kills its process group (false).
 */
export async function runProcessInstaller(ctx: EnvironmentContext, options: InstallerOptions): Promise<boolean> {
  const { entrypoint, script, onOutput, signal } = options;
  const emit = (line: string): void => {
    try {
      onOutput(line);
    } catch (err) {
      ctx.logger.warn({ err }, 'install output listener failed');
    }
  };
  return withInstallScript(ctx.config().system.tmp_directory, ctx.uuid, script, ctx.logger, async ({ file }) => {
    await mkdir(ctx.dataDirectory, { recursive: true });
    if (signal.aborted) return false;
    const wanted = entrypoint.trim() || 'sh';
    let program = await findProgram(wanted);
    if (!program) {
      ctx.logger.warn({ entrypoint: wanted }, 'installer entrypoint not found on this machine, using /bin/sh');
      program = '/bin/sh';
    }
    return runInstallProcess(ctx, program, file, emit, signal);
  });
}

function runInstallProcess(
  ctx: EnvironmentContext,
  program: string,
  scriptPath: string,
  emit: (line: string) => void,
  signal: AbortSignal,
): Promise<boolean> {
  const child = spawn(program, [scriptPath], {
    cwd: ctx.dataDirectory,
    env: buildChildEnvironment(ctx.environmentVariables(), ctx.dataDirectory),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out = new LineSplitter(emit);
  const err = new LineSplitter(emit);
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  return new Promise<boolean>((resolve) => {
    let settled = false;
    let exitCode: number | null = null;
    let closeTimer: NodeJS.Timeout | null = null;
    const killTree = (): void => {
      if (child.pid === undefined) return;
      try {
        killGroup(child.pid, 'SIGKILL');
      } catch (e) {
        ctx.logger.warn({ err: e }, 'could not kill the installer process group');
      }
    };
    const onAbort = (): void => killTree();
    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (closeTimer) clearTimeout(closeTimer);
      signal.removeEventListener('abort', onAbort);
      out.flush();
      err.flush();
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve(exitCode === 0 && !signal.aborted);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      ctx.logger.warn({ err: e, program }, 'installer process error');
      if (child.pid === undefined) finish();
    });
    child.once('exit', (code) => {
      exitCode = code;
      killTree();
      closeTimer = setTimeout(finish, CLOSE_GRACE_MS);
    });
    child.once('close', finish);
  });
}
