import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../../src/errors.js';
import { PACKAGE_ROOT } from '../../src/package-root.js';
import { formatBytes } from '../../src/transfer/format.js';
import { ROOT_ADMIN_PERMISSIONS, startPanelLite, websocketToken, type PanelLite } from '../panel-lite/index.js';
import { Cleanup } from './cleanup.js';
import { startDemoNode, type DemoNode } from './nodes.js';
import { ANSI, C, createDisplay, type ProgressDisplay } from './progress.js';
import { runTransfer } from './run-transfer.js';
import { ServerSocket, type SocketEvent } from './socket.js';
import { compareTrees, generateTree, snapshotTree, type TreeSnapshot } from './tree.js';
import { waitFor } from './wait.js';
import type { SideWatcher } from './watch.js';

export interface DemoOptions {
  /** Plain progress lines instead of bars (forced without a TTY). */
  plain: boolean;
  /** Size of the generated server, MiB. */
  sizeMib: number;
  /** Upload limit of node B (the source of the cancelled transfer), MiB/s. */
  cancelUploadLimit: number;
  /** Keep the temporary directory (debugging). */
  keep: boolean;
  /** Run the servers in Docker containers (a reachable engine; the local busybox image, never pulled). */
  docker?: boolean;
  out?: (line: string) => void;
}

/** The local image of scripts/docker-test-image.sh: busybox-static with a Pterodactyl-style entrypoint. */
export const DEMO_IMAGE = 'wings-ts/busybox:latest';

/** --docker: the engine must answer; the local image is built from busybox-static when missing (never pulled). */
async function prepareDocker(out: (l: string) => void): Promise<void> {
  const { connectDocker } = await import('../../src/environment/docker/index.js');
  const docker = await connectDocker();
  try {
    await docker.getImage(DEMO_IMAGE).inspect();
    out(`docker: engine reachable, image ${DEMO_IMAGE} present`);
    return;
  } catch {}
  const script = path.join(PACKAGE_ROOT, 'scripts/docker-test-image.sh');
  out(`docker: building ${DEMO_IMAGE} with ${script} (from busybox-static, no pull)`);
  const r = spawnSync('bash', [script], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`could not build ${DEMO_IMAGE} (is busybox-static installed?): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
  }
}

/** Removes the containers of the demo's nodes (each node names its containers with its own prefix). */
async function removeDemoContainers(nodes: DemoNode[]): Promise<void> {
  const { connectDocker } = await import('../../src/environment/docker/index.js');
  const docker = await connectDocker();
  const prefixes = nodes.map((n) => `wings-demo-${new URL(n.url).port}-`);
  const all = await docker.listContainers({ all: true });
  await Promise.all(
    all
      .filter((c) => c.Names.some((name) => prefixes.some((p) => name.replace(/^\//, '').startsWith(p))))
      .map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})),
  );
}

/** The game server of the demo (process environment): prints a start banner, echoes commands, stops on `stop`. */
const DEMO_SERVER = {
  name: 'demo-survival',
  invocation:
    'echo "[Server thread/INFO]: Starting demo server on *:{{SERVER_PORT}}"; echo "[Server thread/INFO]: Preparing level \\"world\\""; ' +
    'echo "[Server thread/INFO]: Done (0.42s)! For help, type \\"help\\""; ' +
    'while read l; do [ "$l" = stop ] && { echo "[Server thread/INFO]: Stopping the server"; exit 0; }; echo "[Server thread/INFO]: [Server] $l"; done',
  startup_done: ['Done ('],
  stop: { type: 'command' as const, value: 'stop' },
  skip_egg_scripts: true,
  environment: { SERVER_PORT: 25565 },
};

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/**
 * `wings demo`: panel-lite and two real daemons on loopback in a temporary directory; a server of
 * generated files moved from A to B with live progress from both nodes' websockets, verified file
 * by file; a second transfer cancelled mid-way; a summary. Returns the exit code.
 */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const color = !opts.plain;
  const paint = (f: (s: string) => string, s: string) => (color ? f(s) : s);
  const step = (s: string) => out(paint(C.bold, `\n== ${s}`));
  const cleanup = new Cleanup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wings-demo-'));
  cleanup.add(
    () => {
      if (opts.keep) out(`Kept ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    },
    () => {
      if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
    },
  );
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    out(`\n${signal}: cleaning up…`);
    void cleanup.run().then(() => process.exit(130));
  };
  const onExit = () => cleanup.runSync();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);

  const t0 = Date.now();
  let display: ProgressDisplay | undefined;
  try {
    out(paint(C.bold, 'wings-ts demo: two nodes, one server, a verified transfer and a cancelled one'));
    out(`Working directory: ${dir}`);

    step(`Starting panel-lite and two wings daemons (real processes, loopback, ${opts.docker ? 'Docker' : 'process'} environment)`);
    const panel: PanelLite = await startPanelLite({
      dataDirectory: path.join(dir, 'panel'),
      adminToken: randomBytes(24).toString('hex'),
    });
    cleanup.add(() => panel.close());
    out(`panel-lite      ${panel.url} (admin ${panel.adminUrl})`);
    const nodes: DemoNode[] = [];
    if (opts.docker) {
      await prepareDocker(out);
      cleanup.add(() => removeDemoContainers(nodes));
    }
    const envOverride = opts.docker ? { environment: 'docker' } : {};
    cleanup.add(
      async () => {
        await Promise.all(nodes.map((n) => n.stop()));
      },
      () => nodes.forEach((n) => n.killNow()),
    );
    const [a, b] = await Promise.all([
      startDemoNode(panel, 'node-a', path.join(dir, 'node-a'), envOverride, (n) => nodes.push(n)),
      startDemoNode(
        panel,
        'node-b',
        path.join(dir, 'node-b'),
        { ...envOverride, system: { transfers: { upload_limit: opts.cancelUploadLimit } } },
        (n) => nodes.push(n),
      ),
    ]);
    out(`node A (id ${a.id})  ${a.url}   pid ${a.child?.pid}`);
    out(`node B (id ${b.id})  ${b.url}   pid ${b.child?.pid}   upload_limit ${opts.cancelUploadLimit} MiB/s (for the cancel demo)`);

    const tokenFor = (node: DemoNode, uuid: string) => () =>
      websocketToken({
        issuer: panel.publicUrl,
        nodeUrl: node.url,
        nodeToken: node.token,
        serverUuid: uuid,
        user: panel.state.admin_user,
        permissions: ROOT_ADMIN_PERMISSIONS,
      });
    const wsUrl = (node: DemoNode, uuid: string) => `${node.url.replace(/^http/, 'ws')}/api/servers/${uuid}/ws`;

    step(`Creating a server on node A with ~${opts.sizeMib} MiB of generated files`);
    const server = await panel.admin.createServer({ node_id: a.id, ...DEMO_SERVER, ...(opts.docker ? { image: DEMO_IMAGE } : {}) });
    const uuid = server.uuid;
    await waitFor(() => fs.existsSync(a.serverDir(uuid)), { timeoutMs: 10_000, what: 'the server directory' });
    const genStart = Date.now();
    const gen = await generateTree(a.serverDir(uuid), opts.sizeMib * 1024 * 1024);
    out(
      `server ${uuid}: ${gen.files} files, ${gen.dirs} directories (one empty), ${gen.symlinks} symlinks, ` +
        `${formatBytes(gen.bytes)} (text and random) in ${seconds(Date.now() - genStart)}`,
    );
    const before: TreeSnapshot = await snapshotTree(a.serverDir(uuid));
    out(`source snapshot: ${before.size} entries hashed (SHA-256, mode, mtime, symlink targets)`);

    step('Starting the server on node A (console over the websocket)');
    const consoleLines: string[] = [];
    let sourceWatcher: SideWatcher | undefined;
    let serverState = '';
    const onConsole = (e: SocketEvent) => {
      if (e.event === 'console output') {
        const line = (e.args[0] ?? '').replace(ANSI, '');
        consoleLines.push(line);
        (display ?? { log: out }).log(`${paint(C.dim, 'console │')} ${line}`);
      } else if (e.event === 'status') serverState = e.args[0] ?? '';
      sourceWatcher?.handleEvent(e);
    };
    const consoleSocket = new ServerSocket(wsUrl(a, uuid), panel.publicUrl, tokenFor(a, uuid), onConsole);
    let consoleVia = 'websocket';
    try {
      await consoleSocket.connect();
      cleanup.add(() => consoleSocket.close());
    } catch (err) {
      consoleVia = `polling (websocket unavailable: ${errorMessage(err)})`;
      out(`websocket not available (${errorMessage(err)}); falling back to the status APIs`);
    }
    await waitFor(
      async () => {
        const r = await a.api('POST', `/api/servers/${uuid}/power`, { action: 'start' });
        return r.status === 202 || r.status === 204;
      },
      { timeoutMs: 15_000, what: 'the server to accept the start' },
    );
    await waitFor(async () => (await a.api('GET', `/api/servers/${uuid}`)).body?.state === 'running' || serverState === 'running', { timeoutMs: 15_000, what: 'the server to run' });
    if (consoleSocket.authenticated) {
      consoleSocket.send('send command', ['say Hello from the wings-ts demo!']);
      await waitFor(() => consoleLines.some((l) => l.includes('Hello from')), { timeoutMs: 3000, what: 'the console echo' }).catch(() => {});
    }
    out(`server is running on node A (console via ${consoleVia})`);

    // ------------------------------------------------------------------ transfer 1
    step('Transfer 1: node A → node B');
    display = createDisplay({ plain: opts.plain, out });
    const r1 = await runTransfer({
      title: 'A → B',
      panel,
      uuid,
      source: a,
      destination: b,
      display,
      sourceSocket: consoleSocket.authenticated ? consoleSocket : undefined,
      setSourceWatcher: (w) => (sourceWatcher = w),
      tokenFor,
      paint,
    });
    display.stop();
    display = undefined;
    sourceWatcher = undefined;
    consoleSocket.close();

    out(`source: ${r1.source}   destination: ${r1.destination}   (${seconds(r1.durationMs)}, ${formatBytes(r1.bytes / Math.max(0.001, r1.durationMs / 1000))}/s)`);
    const panelRow = await panel.admin.getTransfer(uuid);
    const onB = await b.api('GET', `/api/servers/${uuid}`);
    await waitFor(() => !fs.existsSync(a.serverDir(uuid)), { timeoutMs: 10_000, what: 'the source data to be removed by the Panel' }).catch(() => {});
    out(`panel: successful=${String(panelRow.successful)}; server on B: HTTP ${onB.status} state=${onB.body?.state}; source data removed: ${!fs.existsSync(a.serverDir(uuid))}`);

    step('Verifying the received tree on node B, file by file');
    const vStart = Date.now();
    const diff = compareTrees(before, await snapshotTree(b.serverDir(uuid)));
    if (diff.ok) {
      r1.verification = `OK (${diff.entries} entries, ${diff.files} files, ${formatBytes(diff.bytes)})`;
      out(paint(C.green, `verification OK: ${diff.entries} entries: content hash, mode, mtime, symlink targets (${seconds(Date.now() - vStart)})`));
    } else {
      r1.verification = `FAILED (${diff.problems.length}+ differences)`;
      r1.ok = false;
      out(paint(C.red, `verification FAILED:`));
      for (const p of diff.problems) out(`  ${p}`);
    }
    r1.ok &&= r1.source === 'completed' && r1.destination === 'completed' && panelRow.successful === true && onB.status === 200;

    // ------------------------------------------------------------------ transfer 2 (cancelled)
    step('Transfer 2: node B → node A, cancelled mid-way from the source');
    display = createDisplay({ plain: opts.plain, out });
    const r2 = await runTransfer({
      title: 'B → A (cancel)',
      panel,
      uuid,
      source: b,
      destination: a,
      display,
      tokenFor,
      paint,
      cancelAt: 0.2,
    });
    display.stop();
    display = undefined;
    out(`source: ${r2.source}   destination: ${r2.destination}   (cancel → both terminal in ${r2.verification})`);
    // docs/protocol.md D3.4: the destination removes the server's registration right after publishing its terminal state.
    const isClean = async () => !fs.existsSync(a.serverDir(uuid)) && (await a.api('GET', `/api/servers/${uuid}`)).status === 404;
    const destClean = await waitFor(isClean, { timeoutMs: 5_000, what: 'the destination to be clean' }).then(
      () => true,
      () => false,
    );
    const stillOnB = await b.api('GET', `/api/servers/${uuid}`);
    const panelRow2 = await waitFor(
      async () => {
        const row = await panel.admin.getTransfer(uuid);
        return row.successful === null ? undefined : row;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: "the Panel's transfer result" },
    ).catch(() => undefined);
    const sourceIntact = compareTrees(before, await snapshotTree(b.serverDir(uuid))).ok;
    const startable = (await b.api('POST', `/api/servers/${uuid}/power`, { action: 'start' })).status;
    if (startable === 202 || startable === 204) {
      await waitFor(async () => (await b.api('GET', `/api/servers/${uuid}`)).body?.state === 'running', { timeoutMs: 10_000, what: 'restart on B' }).catch(() => {});
      await b.api('POST', `/api/servers/${uuid}/power`, { action: 'kill' });
    }
    out(
      `destination (A) clean: ${destClean}; server still on B: HTTP ${stillOnB.status}; source data intact: ${sourceIntact}; ` +
        `panel: successful=${String(panelRow2?.successful)}; B unlocked (power start → ${startable})`,
    );
    const cancelTook = r2.verification;
    r2.verification = destClean && sourceIntact ? `destination clean, source intact (${cancelTook})` : 'FAILED: leftovers';
    r2.ok =
      r2.source === 'cancelled' &&
      (r2.destination === 'failed' || r2.destination === 'cancelled') &&
      destClean &&
      sourceIntact &&
      stillOnB.status === 200 &&
      panelRow2?.successful === false &&
      (startable === 202 || startable === 204);

    // ------------------------------------------------------------------ summary
    step('Summary');
    const rows = [
      ['#', 'transfer', 'source', 'destination', 'duration', 'throughput', 'events', 'verification'],
      ...[r1, r2].map((r, i) => [
        String(i + 1),
        r.title,
        r.source,
        r.destination,
        seconds(r.durationMs),
        i === 0 ? `${formatBytes(r.bytes / Math.max(0.001, r.durationMs / 1000))}/s` : `${formatBytes(r.bytes)} sent`,
        r.via,
        r.verification,
      ]),
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    for (const [i, row] of rows.entries()) {
      const line = row.map((cell, c) => cell.padEnd(widths[c])).join('  ');
      out(i === 0 ? paint(C.bold, line) : line);
    }
    const ok = r1.ok && r2.ok;
    out('');
    out(ok ? paint(C.green, `Demo OK in ${seconds(Date.now() - t0)}`) : paint(C.red, `Demo FAILED after ${seconds(Date.now() - t0)}`));
    if (!ok) {
      for (const n of nodes) out(`--- ${n.name} log tail ---\n${n.tail(2000)}`);
    }
    return ok ? 0 : 1;
  } catch (err) {
    display?.stop();
    out(paint(C.red, `demo failed: ${errorMessage(err)}`));
    return 1;
  } finally {
    display?.stop();
    await cleanup.run();
    if (!opts.keep) out(`Removed ${dir}`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
}

