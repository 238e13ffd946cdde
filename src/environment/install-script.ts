import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/** Where an install script is put for a run of the installer, and its file there. */
export interface InstallScript {
  /** `<system.tmp_directory>/<uuid>` (mounted at /mnt/install in Docker). */
  directory: string;
  /** `<directory>/install.sh`. */
  file: string;
}

/**
 * Writes the egg's install script to `<tmpDirectory>/<uuid>/install.sh` (Windows line endings
 * turned into `\n`, which `sh` would otherwise read as part of each command), runs `run` with it,
 * and removes the directory afterwards, whatever `run` did.
 */
export async function withInstallScript<T>(
  tmpDirectory: string,
  uuid: string,
  script: string,
  logger: Logger,
  run: (installScript: InstallScript) => Promise<T>,
): Promise<T> {
  const directory = path.join(tmpDirectory, uuid);
  const file = path.join(directory, 'install.sh');
  try {
    await mkdir(directory, { recursive: true });
    await writeFile(file, script.replace(/\r\n/g, '\n'), { mode: 0o644 });
    return await run({ directory, file });
  } finally {
    await rm(directory, { recursive: true, force: true }).catch((err: unknown) =>
      logger.warn({ err, directory }, 'could not remove the installer directory'),
    );
  }
}
