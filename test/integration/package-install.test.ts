import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import { REPO, TestNode, freePort, startPanel, tmpDir, waitFor, type TestPanel } from '../helpers/harness.js';

/**
 * docs/operations.md's Install, Upgrade and Rolling back sections, run as written: the commands
 * are the same, with every absolute path of the node (/opt, /usr/local/bin, /etc, /var) under a
 * temporary root, and systemctl replaced by starting the unit's ExecStart command. The install
 * adds `--prefer-offline --no-audit --no-fund` (packages from the cache `npm ci` filled; the
 * registry is asked only for what the cache lacks).
 */

const run = promisify(execFile);
const V = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const [major, minor, patch] = V.split(/[.-]/).map(Number);
/** The version the upgrade goes to: this package with its patch number raised. */
const NEXT = `${major}.${minor}.${patch + 1}`;
const DEV_ONLY = ['eslint', 'typescript', 'typescript-eslint', '@eslint/js', 'vitest', 'vite', 'playwright-core', 'tsx', 'pino-pretty'];
const MiB = 1024 * 1024;

const ROOT = tmpDir('wings-pkg-');
const at = (p: string): string => path.join(ROOT, p);
const CONFIG = at('/etc/pterodactyl/config.yml');
const NPM_FLAGS = '--prefer-offline --no-audit --no-fund';

/**
 * The operator's shell: `wings` found through /usr/local/bin (under ROOT), node beside it, and
 * none of the npm_* variables an enclosing `npm test` sets (a nested npm reads them as its own
 * configuration).
 */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = [at('/usr/local/bin'), path.dirname(process.execPath), process.env.PATH].join(path.delimiter);
  return { ...env, ROOT, V, NEXT, ...extra };
}

async function sh(script: string, cwd = at('/root')): Promise<string> {
  const { stdout } = await run('sh', ['-ec', script], { cwd, env: shellEnv(), maxBuffer: 64 * MiB });
  return stdout;
}

/** Every installed package directory under a node_modules tree, by package name. */
function installedPackages(nodeModules: string, out = new Map<string, string[]>()): Map<string, string[]> {
  if (!fs.existsSync(nodeModules)) return out;
  for (const entry of fs.readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const names = entry.startsWith('@') ? fs.readdirSync(path.join(nodeModules, entry)).map((s) => `${entry}/${s}`) : [entry];
    for (const name of names) {
      const dir = path.join(nodeModules, name);
      out.set(name, [...(out.get(name) ?? []), dir]);
      installedPackages(path.join(dir, 'node_modules'), out);
    }
  }
  return out;
}

const systemdAnalyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((f) => fs.existsSync(f));
const dockerUnit = ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'].some((d) => fs.existsSync(`${d}/docker.service`));

describe('the packed package, installed, upgraded and rolled back as docs/operations.md says', () => {
  let packed: string[] = [];
  let tp: TestPanel;
  let node: TestNode | undefined;

  beforeAll(async () => {
    for (const d of ['/root', '/usr/local/bin', '/etc/pterodactyl', '/opt/wings-ts']) fs.mkdirSync(at(d), { recursive: true });
    // The artefact: `npm pack` in the checkout (its prepare script builds dist/).
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', at('/root')], {
      cwd: REPO,
      env: shellEnv(),
      maxBuffer: 64 * MiB,
    });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    expect(info.filename).toBe(`wings-ts-${V}.tgz`);
    packed = info.files.map((f) => f.path).sort();
    // The daemon's `#!/usr/bin/env node` finds node through PATH, as under systemd.
    process.env.PATH = shellEnv().PATH;
    tp = await startPanel();
  }, 300_000);

  afterAll(async () => {
    await node?.stop();
    await tp?.close();
  });

  it('holds the compiled daemon and tools, bin, docs, contrib, README and CHANGELOG; no sources, tests or source maps', () => {
    for (const f of [
      'package.json',
      'README.md',
      'CHANGELOG.md',
      'bin/wings.js',
      'contrib/wings-ts.service',
      'docs/operations.md',
      'docs/configuration.md',
      'dist/src/cli/index.js',
      'dist/src/daemon.js',
      'dist/tools/cli.js',
      // `wings demo --docker` builds its busybox image with it.
      'scripts/docker-test-image.sh',
    ]) {
      expect(packed).toContain(f);
    }
    const stray = packed.filter((f) => !/^(package\.json|README\.md|CHANGELOG\.md|bin\/|contrib\/|docs\/|dist\/|scripts\/docker-test-image\.sh$)/.test(f));
    expect(stray).toEqual([]);
    expect(packed.filter((f) => f.endsWith('.map') || f.endsWith('.ts'))).toEqual([]);
  });

  it('install: npm install --global into /opt/wings-ts/<version>, current and /usr/local/bin/wings point at it', { timeout: 300_000 }, async () => {
    await sh(`
      npm install --global --prefix "$ROOT/opt/wings-ts/$V" --omit=dev ${NPM_FLAGS} ./wings-ts-$V.tgz
      ln -sfn "$ROOT/opt/wings-ts/$V" "$ROOT/opt/wings-ts/current"
      ln -sfn "$ROOT/opt/wings-ts/current/bin/wings" "$ROOT/usr/local/bin/wings"
    `);
    expect((await sh('command -v wings')).trim()).toBe(at('/usr/local/bin/wings'));
    expect((await sh('wings --version')).trim()).toBe(V);
  });

  it('installs the runtime dependencies only', () => {
    const installed = installedPackages(at(`/opt/wings-ts/${V}/lib/node_modules`));
    expect([...installed.keys()]).toContain('wings-ts');
    expect([...installed.keys()]).toContain('fastify');
    expect(DEV_ONLY.filter((name) => installed.has(name))).toEqual([]);
  });

  it.runIf(systemdAnalyze)('the systemd unit as shipped passes systemd-analyze verify, with the two Docker lines and without them', async () => {
    const shipped = fs.readFileSync(at('/opt/wings-ts/current/lib/node_modules/wings-ts/contrib/wings-ts.service'), 'utf8');
    expect(shipped).toMatch(/^ExecStart=\/opt\/wings-ts\/current\/bin\/wings --config \/etc\/pterodactyl\/config\.yml$/m);
    expect(shipped).toMatch(/^Documentation=file:\/\/\/opt\/wings-ts\/current\/lib\/node_modules\/wings-ts\/docs\/operations\.md$/m);
    const rooted = shipped.replaceAll('/opt/wings-ts/', `${at('/opt/wings-ts')}/`);
    // "With `environment: process` … remove the next two lines."
    const lines = rooted.split('\n');
    const note = lines.findIndex((l) => l.includes('remove the next two lines'));
    expect(lines.slice(note + 1, note + 3)).toEqual(['Requires=docker.service', 'PartOf=docker.service']);
    const variants: [string, string][] = [['process', [...lines.slice(0, note), ...lines.slice(note + 3)].join('\n')]];
    if (dockerUnit) variants.push(['docker', rooted]);
    for (const [name, text] of variants) {
      const dir = at(`/etc/systemd/system/${name}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'wings-ts.service'), text);
      const { stdout, stderr } = await run(systemdAnalyze!, ['verify', path.join(dir, 'wings-ts.service')]);
      expect(`${stdout}${stderr}`).toBe('');
    }
  });

  it("the unit's ExecStart runs the daemon with the Panel's config.yml; logs and data in the default places", { timeout: 60_000 }, async () => {
    const port = await freePort();
    const created = await tp.panel.admin.createNode({ name: 'installed', url: `http://127.0.0.1:${port}` });
    // The Panel's Configuration tab, pasted into /etc/pterodactyl/config.yml; for the test the
    // API on loopback, the default directories under ROOT and the process environment.
    const config = parse(created.config) as Record<string, any>;
    const defaults = ConfigSchema.parse({}).system;
    config.api = { ...config.api, host: '127.0.0.1', port };
    config.environment = 'process';
    for (const key of ['root_directory', 'log_directory', 'data', 'archive_directory', 'backup_directory', 'tmp_directory'] as const) {
      config.system[key] = at(defaults[key]);
    }
    fs.writeFileSync(CONFIG, stringify(config), { mode: 0o600 });

    node = new TestNode(created.id, created.token, `http://127.0.0.1:${port}`, ROOT, CONFIG);
    node.command = [at('/opt/wings-ts/current/bin/wings')];
    await node.start();
    expect((await node.api('GET', '/api/system')).body.version).toBe(V);
    // The daemon writes its log asynchronously: the line can follow the first answer.
    const logFile = at('/var/log/pterodactyl/wings.log');
    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('wings-ts is ready'), { what: 'the ready line in wings.log' });
    expect(fs.statSync(at('/var/lib/pterodactyl/volumes')).isDirectory()).toBe(true);
  });

  it('wings diagnostics --config reads the installed version, the redacted config and the log', async () => {
    const out = await sh('wings diagnostics --config "$ROOT/etc/pterodactyl/config.yml"');
    expect(out).toContain(`wings-ts: ${V}`);
    expect(out).toContain(`node: ${process.version}`);
    expect(out).toContain(`== Configuration (${CONFIG}, secrets redacted)`);
    expect(out).toContain('token: "[redacted]"');
    expect(out).not.toContain(node!.token);
    expect(out).toContain('wings-ts is ready');
  });

  it('the demo, a product feature, runs from the installed package', { timeout: 120_000 }, async () => {
    const out = await sh('wings demo --plain --size-mib 16 --cancel-limit 4');
    expect(out).toMatch(/1\s+A → B\s+completed\s+completed/);
    expect(out).toMatch(/2\s+B → A \(cancel\)\s+cancelled\s+failed/);
    expect(out).toContain('Demo OK');
  });

  it('upgrade: the next version beside the running one, current switched, the daemon restarted', { timeout: 300_000 }, async () => {
    // A next version of this package: the same tarball with the patch number raised.
    await sh(`
      rm -rf next && mkdir next && tar -xzf wings-ts-$V.tgz -C next
      node -e 'const f = process.argv[1], p = JSON.parse(require("fs").readFileSync(f, "utf8")); p.version = process.env.NEXT; require("fs").writeFileSync(f, JSON.stringify(p, null, 2))' next/package/package.json
      tar -czf wings-ts-$NEXT.tgz -C next package
    `);
    await sh(`
      cp "$ROOT/etc/pterodactyl/config.yml" "$ROOT/etc/pterodactyl/config.yml.$V"
      npm install --global --prefix "$ROOT/opt/wings-ts/$NEXT" --omit=dev ${NPM_FLAGS} ./wings-ts-$NEXT.tgz
      ln -sfn "$ROOT/opt/wings-ts/$NEXT" "$ROOT/opt/wings-ts/current"
    `);
    expect((await sh('wings --version')).trim()).toBe(NEXT);
    // The running daemon keeps the files it started from (its modules resolve to /opt/wings-ts/$V).
    expect((await node!.api('GET', '/api/system')).body.version).toBe(V);
    expect(await node!.stop()).toBe(0);
    await node!.start();
    expect((await node!.api('GET', '/api/system')).body.version).toBe(NEXT);
  });

  it('rollback: current back to the previous version, its config.yml restored, the daemon restarted', { timeout: 60_000 }, async () => {
    await sh(`
      ln -sfn "$ROOT/opt/wings-ts/$V" "$ROOT/opt/wings-ts/current"
      cp "$ROOT/etc/pterodactyl/config.yml.$V" "$ROOT/etc/pterodactyl/config.yml"
    `);
    expect(await node!.stop()).toBe(0);
    await node!.start();
    expect((await node!.api('GET', '/api/system')).body.version).toBe(V);
    expect((await sh('wings --version')).trim()).toBe(V);
    expect(fs.existsSync(at(`/opt/wings-ts/${NEXT}/bin/wings`))).toBe(true);
  });
});
