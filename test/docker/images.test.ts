import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { PULL_FINISHED, PULL_STARTED, ensureImage } from '../../src/environment/docker/images.js';

/** A Dockerode whose image calls are faked; followProgress is docker-modem's own. */
function fakeDocker(present: boolean, lines: object[]) {
  const docker = new Dockerode({ socketPath: '/tmp/wings-ts-unused.sock' });
  const notFound = Object.assign(new Error('(HTTP code 404) no such image - No such image: x '), { statusCode: 404 });
  const pull = vi.fn(async () => Readable.from(lines.map((l) => `${JSON.stringify(l)}\r\n`)));
  Object.assign(docker, {
    getImage: vi.fn(() => ({ inspect: vi.fn(async () => (present ? { Id: 'sha256:x' } : Promise.reject(notFound))) })),
    pull,
  });
  return { docker, pull };
}

function ctx(registries: Record<string, unknown> = {}) {
  const messages: string[] = [];
  const output: string[] = [];
  return {
    messages,
    output,
    ctx: {
      config: () => ConfigSchema.parse({ docker: { registries } }),
      logger: pino({ level: 'silent' }),
      publishDaemonMessage: (m: string) => messages.push(m),
      publishInstallOutput: (l: string) => output.push(l),
    },
  };
}

describe('ensureImage', () => {
  it('never pulls an image that is present locally', async () => {
    const { docker, pull } = fakeDocker(true, []);
    const c = ctx();
    expect(await ensureImage(docker, c.ctx, 'ghcr.io/pterodactyl/yolks:java_17')).toBe('ghcr.io/pterodactyl/yolks:java_17');
    expect(pull).not.toHaveBeenCalled();
    expect(c.messages).toEqual([]);
  });

  it('pulls a missing image with credentials and publishes progress', async () => {
    const { docker, pull } = fakeDocker(false, [
      { status: 'Pulling from pterodactyl/yolks', id: 'java_17' },
      { status: 'Downloading', progress: '[=>   ] 1MB/10MB', id: 'abc' },
      { status: 'Download complete', id: 'abc' },
    ]);
    const c = ctx({ 'ghcr.io': { username: 'u', password: 'p' } });
    await ensureImage(docker, c.ctx, 'ghcr.io/pterodactyl/yolks:java_17');
    expect(pull).toHaveBeenCalledWith(
      'ghcr.io/pterodactyl/yolks:java_17',
      expect.objectContaining({ authconfig: { username: 'u', password: 'p', serveraddress: 'ghcr.io' } }),
    );
    expect(c.output).toEqual(['Pulling from pterodactyl/yolks', 'Downloading [=>   ] 1MB/10MB', 'Download complete']);
    expect(c.messages).toEqual([PULL_STARTED, PULL_FINISHED]);
  });

  it('fails on an error inside the pull stream and publishes it', async () => {
    const { docker } = fakeDocker(false, [
      { status: 'Pulling from x' },
      { error: 'manifest unknown', errorDetail: { message: 'manifest for x:1 not found: manifest unknown' } },
    ]);
    const c = ctx();
    await expect(ensureImage(docker, c.ctx, 'x:1')).rejects.toThrow('pulling image x:1: manifest for x:1 not found: manifest unknown');
    expect(c.messages).toEqual([PULL_STARTED, 'Failed to pull Docker container image: manifest for x:1 not found: manifest unknown']);
  });
});
