import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, WINGS_BIN, http, tmpDir } from '../helpers/harness.js';

/**
 * bin/wings.js sends `panel-lite` and `demo` to the tools' compiled entry point (dist/tools/cli.js)
 * and everything else to the daemon's CLI, which does not contain them (demo.test.ts runs the demo).
 */
describe('wings panel-lite / wings demo through bin/wings.js', () => {
  it('wings panel-lite --config serves panel-lite, prints its URLs and stops on SIGTERM', async () => {
    const dir = tmpDir('panel-lite-cli-');
    const config = path.join(dir, 'panel.yml');
    fs.writeFileSync(config, 'admin: {token: cli-admin-token}\ndata_directory: .\n');
    const child = spawn(process.execPath, [WINGS_BIN, 'panel-lite', '--config', config], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const firstLine = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
        });
        void exited.then(([code]) => reject(new Error(`panel-lite exited (${code}) before printing its URLs: ${stderr}`)));
      });
      const urls = JSON.parse(firstLine) as { url: string; admin_url: string };
      expect(urls.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const nodes = await http('GET', `${urls.admin_url}/admin/api/nodes`, { token: 'cli-admin-token' });
      expect(nodes.status).toBe(200);
      expect(nodes.body).toEqual([]);
      expect((await http('GET', `${urls.admin_url}/admin/api/nodes`, { token: 'wrong' })).status).toBe(401);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toEqual([0, null]);
  });

  it("wings --help is the daemon's CLI, which points at the tools without containing them", () => {
    const daemon = spawnSync(process.execPath, [WINGS_BIN, '--help'], { cwd: REPO, encoding: 'utf8' });
    expect(daemon.status).toBe(0);
    expect(daemon.stdout).toContain('transfers [options]');
    expect(daemon.stdout).toContain('`wings panel-lite --help`, `wings demo --help`');
    expect(daemon.stdout).not.toMatch(/^\s+(demo|panel-lite) /m);
    const demo = spawnSync(process.execPath, [WINGS_BIN, 'demo', '--help'], { cwd: REPO, encoding: 'utf8' });
    expect(demo.status).toBe(0);
    expect(demo.stdout).toContain('Usage: wings demo [options]');
    expect(demo.stdout).toContain('--size-mib <n>');
  });
});
