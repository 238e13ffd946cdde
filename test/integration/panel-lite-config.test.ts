import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import {
  PanelLiteConfigError,
  loadPanelLiteConfig,
  startPanelLite,
  startPanelLiteFromFile,
  type NodeView,
} from '../../tools/panel-lite/index.js';
import { REPO, WINGS_BIN, tmpDir, waitFor } from '../helpers/harness.js';

/**
 * panel-lite's own settings as an operator meets them (docs/panel-lite.md, "Running it" and
 * "Configuration"): one-line refusals of its config file, ports it cannot take, the log level
 * variable, `wings panel-lite` with and without `--config`, and state files from older versions.
 */

const ADMIN_TOKEN = 'admin-secret-token';
const bearer = (n: NodeView) => `Bearer ${n.token_id}.${n.token}`;

/** A node as panel-lite saved it before nodes had an `environment`. */
function nodeRecord() {
  return {
    id: 1,
    uuid: '3f0c1e9a-6b1d-4c55-9f7e-2a7d1c9e8b01',
    name: 'old',
    url: 'http://127.0.0.1:6',
    token_id: 'AAAAAAAAAAAAAAAA',
    token: 'B'.repeat(64),
    data_root: null,
    location: 'local',
    config_overrides: {},
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
  };
}

describe('panel-lite configuration and `wings panel-lite`', () => {
  const dir = tmpDir('panel-lite-config-');
  const configFile = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const refusal = async (file: string) => {
    const err: unknown = await loadPanelLiteConfig(file).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PanelLiteConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  };

  it('names the file and the key of every mistake, in one line', async () => {
    const empty = configFile('empty.yml', '');
    expect(await refusal(empty)).toBe(
      `${empty}: admin.token is missing (the Bearer token the admin API asks for); ` +
        'data_directory is missing (where panel-lite keeps state.json, relative to this file)',
    );
    const typo = configFile('typo.yml', 'listen: {prot: 8090}\nadmin: {token: t}\ndata_directory: d\n');
    expect(await refusal(typo)).toBe(`${typo}: listen.prot: unknown key (did you mean "listen.port"?)`);
    const wrongType = configFile('type.yml', 'admin: {token: secret-value, port: "8091"}\ndata_directory: d\n');
    const typeMessage = await refusal(wrongType);
    expect(typeMessage).toMatch(new RegExp(`^${wrongType}: admin\\.port: .*expected number`));
    expect(typeMessage).not.toContain('secret-value');
    const url = configFile('url.yml', 'admin: {token: t}\ndata_directory: d\npublic_url: panel.test\n');
    expect(await refusal(url)).toBe(`${url}: public_url: expected an http:// or https:// URL`);
    const list = configFile('list.yml', '- a\n');
    expect(await refusal(list)).toBe(`${list}: the top level must be a mapping (listen, admin, public_url, data_directory)`);
    expect(await refusal(configFile('yaml.yml', 'admin: [\n'))).toMatch(/yaml\.yml: not valid YAML: /);
    expect(await refusal(path.join(dir, 'absent.yml'))).toMatch(/absent\.yml: no such file/);
  });

  it('names the key of a port it cannot listen on', async () => {
    const taken = await startPanelLite({ dataDirectory: path.join(dir, 'taken'), adminToken: ADMIN_TOKEN });
    try {
      const port = new URL(taken.url).port;
      const file = configFile('busy.yml', `listen: {port: ${port}}\nadmin: {token: t}\ndata_directory: busy\n`);
      await expect(startPanelLiteFromFile(file)).rejects.toThrow(
        `${file}: listen.port: cannot listen on 127.0.0.1:${port}: the address is already in use (EADDRINUSE)`,
      );
      const adminPort = new URL(taken.adminUrl).port;
      const file2 = configFile('busy-admin.yml', `admin: {port: ${adminPort}, token: t}\ndata_directory: busy\n`);
      await expect(startPanelLiteFromFile(file2)).rejects.toThrow(`${file2}: admin.port: cannot listen on 127.0.0.1:${adminPort}`);
    } finally {
      await taken.close();
    }
  });

  it('reads a state.json written before nodes had an environment as process nodes', async () => {
    const data = path.join(dir, 'old-state');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'state.json'), JSON.stringify({ version: 1, next_node_id: 2, nodes: [nodeRecord()], servers: [], transfers: [] }));
    const p = await startPanelLite({ dataDirectory: data, adminToken: ADMIN_TOKEN });
    try {
      const node = await p.admin.getNode(1);
      expect(node.environment).toBe('process');
      expect(parseYaml(node.config).environment).toBe('process');
    } finally {
      await p.close();
    }
  });

  function cli(args: string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, [WINGS_BIN, 'panel-lite', ...args], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (c: Buffer) => (out.stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out.stderr += c.toString()));
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    return { child, out, exited };
  }

  it('wings panel-lite with a wrong config or log level: one line on stderr, no stack, exit 1', async () => {
    const empty = configFile('cli-empty.yml', '');
    const run = cli(['--config', empty]);
    expect(await run.exited).toEqual([1, null]);
    expect(run.out.stdout).toBe('');
    expect(run.out.stderr).toBe(`wings panel-lite: ${empty}: admin.token is missing (the Bearer token the admin API asks for); data_directory is missing (where panel-lite keeps state.json, relative to this file)\n`);

    const level = cli(['--config', empty], { PANEL_LITE_LOG_LEVEL: 'verbose' });
    expect(await level.exited).toEqual([1, null]);
    expect(level.out.stderr).toBe('wings panel-lite: PANEL_LITE_LOG_LEVEL: "verbose" is not a level (fatal, error, warn, info, debug, trace, silent)\n');
  });

  it('wings panel-lite without --config: free loopback ports, a temporary directory and a token file, all removed at exit', async () => {
    const run = cli([], { PANEL_LITE_LOG_LEVEL: 'debug' });
    try {
      const line = await waitFor(() => (run.out.stdout.includes('\n') ? run.out.stdout.split('\n')[0] : undefined), {
        what: 'the JSON line',
        timeoutMs: 20_000,
      });
      const info = JSON.parse(line) as { url: string; admin_url: string; data_directory: string; admin_token_file: string };
      expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(info.admin_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(info.admin_token_file).toBe(path.join(info.data_directory, 'admin-token'));
      expect(fs.statSync(info.admin_token_file).mode & 0o777).toBe(0o600);
      const token = fs.readFileSync(info.admin_token_file, 'utf8').trim();
      expect(token).toMatch(/^[0-9a-f]{48}$/);
      expect(run.out.stdout).not.toContain(token);

      const node = (await (
        await request(`${info.admin_url}/admin/api/nodes`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'n', url: 'http://127.0.0.1:5' }),
        })
      ).body.json()) as NodeView;
      expect(ConfigSchema.parse(parseYaml(node.config)).remote).toBe(info.url);
      const listed = await request(`${info.url}/api/remote/servers`, { headers: { authorization: bearer(node), accept: 'application/json' } });
      expect(listed.statusCode).toBe(200);
      await listed.body.dump();
      // PANEL_LITE_LOG_LEVEL: JSON lines on stderr (stdout keeps only the line above), no token in them.
      await waitFor(() => run.out.stderr.includes('"msg":"remote call"'), { what: 'the debug line of the remote call' });
      for (const l of run.out.stderr.trim().split('\n')) expect(JSON.parse(l)).toMatchObject({ name: 'panel-lite' });
      expect(run.out.stderr).toContain('"msg":"node created"');
      for (const secret of [token, node.token, node.token_id]) expect(run.out.stderr).not.toContain(secret);
      expect(run.out.stdout.trim().split('\n')).toHaveLength(1);

      run.child.kill('SIGTERM');
      expect(await run.exited).toEqual([0, null]);
      expect(fs.existsSync(info.data_directory)).toBe(false);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
