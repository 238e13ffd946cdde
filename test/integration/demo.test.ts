import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO, WINGS_BIN, testEnvironments } from '../helpers/harness.js';

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WINGS_BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`demo did not finish within ${timeoutMs} ms:\n${out.slice(-4000)}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('npm run demo (non-interactive)', () => {
  it('moves a server with verified content, cancels a second transfer, prints a summary and cleans up', async () => {
    const { code, out } = await run(['demo', '--plain', '--size-mib', '40'], 110_000);
    const dir = /Working directory: (\S+)/.exec(out)?.[1];
    expect(dir, out).toBeTruthy();
    expect(code, out.slice(-4000)).toBe(0);
    // plain progress lines (no bar escape codes) from both sides, fed by both nodes
    expect(out).toMatch(/A source (processing|completed) .* \/ (40\.0 MiB|\?)/);
    expect(out).toMatch(/B dest\s+(processing|completed) /);
    expect(out).not.toContain('\u001b[1G');
    // console lines of the running server
    expect(out).toContain('console │ [Server thread/INFO]: Done');
    expect(out).toContain('verification OK');
    // the summary: both transfers' states on both sides, verification, the events came over the websocket
    expect(out).toMatch(/1\s+A → B\s+completed\s+completed\s+\S+\s+\S+ \S+\/s\s+ws\+ws\s+OK \(\d+ entries/);
    expect(out).toMatch(/2\s+B → A \(cancel\)\s+cancelled\s+failed\s+.*destination clean, source intact/);
    expect(out).toContain('Demo OK');
    expect(fs.existsSync(dir!)).toBe(false);
  }, 120_000);

  it('runs with --docker: the servers in containers of the local image, all removed afterwards', async (ctx) => {
    if (!(await testEnvironments()).includes('docker')) ctx.skip();
    const { code, out } = await run(['demo', '--docker', '--plain', '--size-mib', '40', '--cancel-limit', '10'], 110_000);
    expect(code, out.slice(-4000)).toBe(0);
    expect(out).toContain('Docker environment');
    expect(out).toContain('console │ [Server thread/INFO]: Done');
    expect(out).toMatch(/1\s+A → B\s+completed\s+completed/);
    expect(out).toMatch(/2\s+B → A \(cancel\)\s+cancelled\s+failed/);
    const ports = [...out.matchAll(/node [AB] \(id \d+\)\s+http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => m[1]);
    expect(ports).toHaveLength(2);
    const { default: Docker } = await import('dockerode');
    const names = (await new Docker().listContainers({ all: true })).flatMap((c) => c.Names);
    for (const port of ports) expect(names.filter((n) => n.includes(`wings-demo-${port}-`))).toEqual([]);
  }, 120_000);
});
