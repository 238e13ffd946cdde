import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

const createdDirs = new Set<string>();

/**
 * A fresh directory under the OS temp dir. Under vitest it is removed after the last hook of the
 * test file that created it (daemon roots hold whole transferred servers, up to 1 GiB each); the
 * file's own afterAll hooks, which stop the daemons, run first.
 */
export function tmpDir(prefix = 'wings-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  createdDirs.add(dir);
  return dir;
}

// Registered while the test file is collected (this module is imported by it), so it is a hook of
// the file's root suite: it runs after every describe block's afterAll. Not under vitest (bench/),
// the caller removes what it created.
if (process.env.VITEST) {
  afterAll(() => {
    for (const d of createdDirs) fs.rmSync(d, { recursive: true, force: true });
    createdDirs.clear();
  });
}
