import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { settlesBefore } from '../abortable.js';
import { LineSplitter } from '../console-lines.js';
import type { EnvironmentContext, InstallerOptions } from '../environment.js';
import { withInstallScript } from '../install-script.js';
import type { ServerContainer } from './container.js';
import { installerContainerName, installerContainerOptions } from './container-config.js';
import { dockerError, engineCall, isNotFound } from './errors.js';
import { ensureImage } from './images.js';
import { serverNetworkMode } from './network.js';

const ATTACH_TIMEOUT_MS = 30_000;
/** After the installer exited: how long its output stream may take to deliver the rest. */
const OUTPUT_DRAIN_MS = 2_000;

/**
 * Runs the egg's install script in a container of its own, `<server container>_installer`: the
 * script mounted at /mnt/install, the server's files at /mnt/server. Its output goes to
 * `onOutput` line by line. Resolves true iff the script exited 0 and was not aborted; an abort kills
 * the container (false). The container and the script directory are removed afterwards.
 */
export async function runDockerInstaller(
  ctx: EnvironmentContext,
  docker: Dockerode,
  serverContainer: ServerContainer,
  options: InstallerOptions,
): Promise<boolean> {
  const config = ctx.config();
  return withInstallScript(config.system.tmp_directory, ctx.uuid, options.script, ctx.logger, async (script) => {
    let container: Dockerode.Container | null = null;
    const kill = (): void => {
      container?.kill({ signal: 'SIGKILL' }).catch(() => {});
    };
    try {
      options.signal.throwIfAborted();
      const image = await ensureImage(docker, ctx, options.image, options.signal);
      const name = installerContainerName(config, ctx.uuid);
      const old = await serverContainer.inspectOwned(name);
      if (old) await serverContainer.remove(old);
      options.signal.throwIfAborted();

      const settings = ctx.settings();
      const createOptions = installerContainerOptions({
        config,
        settings,
        uuid: ctx.uuid,
        dataDirectory: ctx.dataDirectory,
        installDirectory: script.directory,
        env: ctx.environmentVariables(),
        image,
        entrypoint: options.entrypoint,
        networkMode: await serverNetworkMode(docker, config, settings),
      });
      try {
        container = await docker.createContainer(createOptions);
      } catch (err) {
        throw dockerError(`creating installer container ${name}`, err);
      }

      const stream = (await engineCall(
        'attaching to the installer',
        container.attach({ stream: true, stdin: false, stdout: true, stderr: true }),
        ATTACH_TIMEOUT_MS,
      )) as unknown as Duplex;
      const splitter = new LineSplitter((line) => options.onOutput(line));
      const ended = new Promise<void>((resolve) => {
        stream.on('data', (chunk: Buffer | string) => splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
        stream.on('error', (err) => ctx.logger.warn({ err }, 'installer output stream error'));
        stream.on('end', resolve);
        stream.on('close', resolve);
      });

      options.signal.addEventListener('abort', kill, { once: true });
      if (options.signal.aborted) {
        stream.destroy();
        return false;
      }
      try {
        await container.start();
      } catch (err) {
        stream.destroy();
        throw dockerError('starting the installer container', err);
      }
      let result: { StatusCode?: number };
      try {
        result = (await container.wait()) as { StatusCode?: number };
      } catch (err) {
        stream.destroy();
        throw dockerError('waiting for the installer container', err);
      }
      await settlesBefore(ended, AbortSignal.timeout(OUTPUT_DRAIN_MS));
      splitter.flush();
      stream.destroy();
      const ok = result.StatusCode === 0 && !options.signal.aborted;
      ctx.logger.info({ exitCode: result.StatusCode, ok }, 'installer finished');
      return ok;
    } catch (err) {
      if (options.signal.aborted) return false;
      throw err;
    } finally {
      options.signal.removeEventListener('abort', kill);
      if (container) {
        await container.remove({ force: true, v: true }).catch((err: unknown) => {
          if (!isNotFound(err)) ctx.logger.warn({ err }, 'removing the installer container failed');
        });
      }
    }
  });
}
