import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { REPO, freePort, http, tmpDir } from '../helpers/harness.js';

/**
 * docs/panel-lite.md's walk-through, run as an operator would type it: its fenced `sh` blocks, in
 * order, in one bash from the repository's root, with the variables the doc says a test sets (WORK
 * and the four ports, and the admin token). The last block stops everything; it runs after the
 * outcome is checked, and the processes the walk-through started are stopped here anyway when a
 * step fails.
 */

const DOC = path.join(REPO, 'docs/panel-lite.md');

/** The `sh` blocks of the "## Walk-through" section, in order. */
function walkThroughBlocks(markdown: string): string[] {
  const start = markdown.search(/^## Walk-through/m);
  if (start === -1) throw new Error('docs/panel-lite.md has no "## Walk-through" section');
  const rest = markdown.slice(start + 3);
  const next = rest.search(/^## /m);
  const section = next === -1 ? rest : rest.slice(0, next);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** bash -euo pipefail in its own process group (so a failed run's background processes can be found). */
function runBash(script: string, env: Record<string, string>, onSpawn: (pid: number) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    onSpawn(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

describe('docs/panel-lite.md walk-through', () => {
  const work = tmpDir('panel-lite-doc-');
  const groups: number[] = [];
  let started: number[] = [];

  const readPids = () =>
    fs.existsSync(work)
      ? fs
          .readdirSync(work)
          .filter((f) => f.endsWith('.pid'))
          .map((f) => Number(fs.readFileSync(path.join(work, f), 'utf8').trim()))
      : [];

  afterAll(async () => {
    // Only after a failure is anything left: stop the daemons gracefully first (they stop their
    // servers), then whatever remains of the bash process groups.
    const left = [...new Set([...started, ...readPids()])].filter(alive);
    for (const pid of left) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (left.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const pgid of groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // the group is gone: nothing was left
      }
    }
  });

  it('runs as written: panel-lite, two nodes, one server, one transfer, then stops everything', async () => {
    const blocks = walkThroughBlocks(fs.readFileSync(DOC, 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const steps = blocks.slice(0, -1).join('\n');
    const cleanup = blocks[blocks.length - 1];

    const [panelPort, adminPort, nodeAPort, nodeBPort] = await distinctFreePorts(4);
    const adminToken = randomBytes(16).toString('hex');
    const env = {
      WORK: work,
      PANEL_PORT: String(panelPort),
      ADMIN_PORT: String(adminPort),
      NODE_A_PORT: String(nodeAPort),
      NODE_B_PORT: String(nodeBPort),
      ADMIN_TOKEN: adminToken,
    };

    const run = await runBash(steps, env, (pid) => groups.push(pid));
    started = readPids();
    const logs = () =>
      ['panel-lite.log', 'node-a.log', 'node-b.log']
        .map((f) => path.join(work, f))
        .filter((f) => fs.existsSync(f))
        .map((f) => `--- ${path.basename(f)}\n${fs.readFileSync(f, 'utf8').slice(-3000)}`)
        .join('\n');
    expect(run.code, `walk-through failed\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}\n${logs()}`).toBe(0);
    expect(started).toHaveLength(3);

    // What the steps print where the doc says what to expect.
    expect(run.stdout).toContain('environment: process');
    expect(run.stdout).toMatch(/^\.\/world\/level\.dat: OK$/m);
    expect(run.stdout).toMatch(/^\.\/server\.properties: OK$/m);

    // The outcome, through panel-lite's admin API.
    const admin = `http://127.0.0.1:${adminPort}/admin/api`;
    const nodes = (await http('GET', `${admin}/nodes`, { token: adminToken })).body as { id: number; name: string; token: string; config: string }[];
    const a = nodes.find((n) => n.name === 'node-a')!;
    const b = nodes.find((n) => n.name === 'node-b')!;
    for (const n of [a, b]) expect(parseYaml(n.config).environment).toBe('process');
    const servers = (await http('GET', `${admin}/servers`, { token: adminToken })).body as { uuid: string; node_id: number }[];
    expect(servers).toHaveLength(1);
    const uuid = servers[0].uuid;
    expect(servers[0].node_id).toBe(b.id);
    const transfer = await http('GET', `${admin}/servers/${uuid}/transfer`, { token: adminToken });
    expect(transfer.body).toMatchObject({ successful: true, old_node: a.id, new_node: b.id });

    // The server's files on node B, none left on node A, and it runs on node B.
    const onB = path.join(work, 'node-b', 'volumes', uuid);
    const seq = Array.from({ length: 100_000 }, (_, i) => `${i + 1}\n`).join('');
    expect(fs.readFileSync(path.join(onB, 'world', 'level.dat'), 'utf8')).toBe(seq);
    expect(fs.readFileSync(path.join(onB, 'server.properties'), 'utf8')).toBe('motd=moved by wings-ts\n');
    expect(fs.existsSync(path.join(work, 'node-a', 'volumes', uuid))).toBe(false);
    const state = await http('GET', `http://127.0.0.1:${nodeBPort}/api/servers/${uuid}`, { token: b.token });
    expect(state.body.state).toBe('running');
    expect((await http('GET', `http://127.0.0.1:${nodeAPort}/api/servers/${uuid}`, { token: a.token })).status).toBe(404);

    // The last block stops every process it started and removes the directory.
    const stop = await runBash(cleanup, { WORK: work }, (pid) => groups.push(pid));
    expect(stop.code, `cleanup failed: ${stop.stderr}`).toBe(0);
    expect(started.filter(alive)).toEqual([]);
    expect(fs.existsSync(work)).toBe(false);
  }, 240_000);
});

describe('docs/panel-lite.md reference', () => {
  it('documents every key of the config file', async () => {
    const { FileConfig } = await import('../../tools/panel-lite/config.js');
    const doc = fs.readFileSync(DOC, 'utf8');
    const section = doc.slice(doc.search(/^## Configuration/m), doc.search(/^## Admin API/m));
    const documented = [...section.matchAll(/^\| `([a-z_.]+)` \|/gm)].map((m) => m[1]).sort();
    const keys: string[] = [];
    for (const [k, v] of Object.entries(FileConfig.shape)) {
      let inner: unknown = v;
      while (inner && typeof inner === 'object' && 'unwrap' in inner) inner = (inner as { unwrap(): unknown }).unwrap();
      if (inner && typeof inner === 'object' && 'shape' in inner) keys.push(...Object.keys((inner as { shape: object }).shape).map((s) => `${k}.${s}`));
      else keys.push(k);
    }
    expect(documented).toEqual(keys.sort());
  });
});
