import type Dockerode from 'dockerode';
import type { Config } from '../../config/schema.js';
import type { EnvironmentContext } from '../environment.js';
import { imageName } from './container-config.js';
import { engineMessage, isNotFound } from './errors.js';

export const PULL_STARTED = 'Pulling Docker container image, this could take a few minutes to complete...';
export const PULL_FINISHED = 'Finished pulling Docker container image';
const PULL_TIMEOUT_MS = 15 * 60 * 1000;

/** Pull credentials: the first `docker.registries` key that is a prefix of the image (docs/protocol.md W15.9). */
export function registryAuth(
  config: Config,
  image: string,
): { username: string; password: string; serveraddress: string } | undefined {
  for (const [registry, cred] of Object.entries(config.docker.registries)) {
    if (image.startsWith(registry)) {
      return { username: cred.username, password: cred.password, serveraddress: registry };
    }
  }
  return undefined;
}

export async function imageExists(docker: Dockerode, name: string): Promise<boolean> {
  try {
    await docker.getImage(name).inspect();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw new Error(`inspecting image ${name}: ${engineMessage(err)}`, { cause: err });
  }
}

/**
 * Makes sure the image is available locally. A present image is never pulled; an image marked
 * local-only (leading `~`) is never pulled either. Otherwise it is pulled with registry credentials,
 * progress lines going to `install output` and start/finish to the console as daemon messages. A
 * failed pull publishes the engine's message on the console and rejects.
 */
export async function ensureImage(
  docker: Dockerode,
  ctx: Pick<EnvironmentContext, 'config' | 'logger' | 'publishDaemonMessage' | 'publishInstallOutput'>,
  image: string,
  signal?: AbortSignal,
): Promise<string> {
  const name = imageName(image);
  if (name === '') throw new Error('no container image configured for this server');
  if (await imageExists(docker, name)) return name;
  if (image.startsWith('~')) {
    const message = `Image ${name} is marked as local-only and does not exist on this node`;
    ctx.publishDaemonMessage(message);
    throw new Error(message);
  }

  ctx.publishDaemonMessage(PULL_STARTED);
  ctx.logger.info({ image: name }, 'pulling docker image');
  const timeout = AbortSignal.timeout(PULL_TIMEOUT_MS);
  const abortSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const auth = registryAuth(ctx.config(), name);
    const stream = (await docker.pull(name, { abortSignal, ...(auth ? { authconfig: auth } : {}) }));
    await new Promise<void>((resolve, reject) => {
      let streamError: string | null = null;
      const onAbort = (): void => {
        (stream as NodeJS.ReadableStream & { destroy?: (e?: Error) => void }).destroy?.();
        reject(new Error(timeout.aborted ? 'image pull timed out' : 'image pull cancelled'));
      };
      if (abortSignal.aborted) return onAbort();
      abortSignal.addEventListener('abort', onAbort, { once: true });
      stream.on('error', () => {}); // followProgress reports stream errors through its callback
      docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          abortSignal.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else if (streamError !== null) reject(new Error(streamError));
          else resolve();
        },
        (event: { status?: string; progress?: string; error?: string; errorDetail?: { message?: string } }) => {
          if (event.error || event.errorDetail) {
            streamError ??= event.errorDetail?.message || event.error || 'unknown pull error';
            return;
          }
          const line = [event.status, event.progress].filter((s) => s && s !== '').join(' ');
          if (line !== '') ctx.publishInstallOutput(line);
        },
      );
    });
  } catch (err) {
    const message = engineMessage(err);
    ctx.logger.error({ image: name, err: message }, 'image pull failed');
    ctx.publishDaemonMessage(`Failed to pull Docker container image: ${message}`);
    throw new Error(`pulling image ${name}: ${message}`, { cause: err });
  }
  ctx.publishDaemonMessage(PULL_FINISHED);
  return name;
}
