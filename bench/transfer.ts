/**
 * Transfer benchmark: panel-lite plus two real daemons on loopback, against shell
 * pipelines on the same data. See docs/benchmarks.md.
 *
 *   npm run build && node --import tsx bench/transfer.ts [--sets a,b,c] [--runs 3]
 *       [--compression default|none|both] [--no-baselines] [--no-cancel] [--rate [MiB/s]]
 *       [--work-dir DIR]
 *
 * --work-dir puts the data sets, both daemons' roots and the baselines' destinations under DIR
 * (e.g. /dev/shm/wings-bench, a tmpfs), for disks whose own behaviour drowns the software's
 * (see docs/benchmarks.md: online discard after 50,000-file deletions).
 *
 * One script of ~500 lines: data sets, baselines, runs and the table share its arguments and
 * nothing else uses them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ECHO_SERVER, REPO, startNode, startPanel, tmpDir, waitFor, type TestNode, type TestPanel } from '../test/helpers/harness.js';

const MiB = 1024 * 1024;
const CACHE = path.join(path.dirname(fileURLToPath(import.meta.url)), '.data');
let DATA = CACHE;

// ---------------------------------------------------------------- arguments

interface Args {
  sets: string[];
  runs: number;
  compression: ('default' | 'none')[];
  baselines: boolean;
  cancel: boolean;
  rate: number | null;
  workDir: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { sets: ['a', 'b', 'c'], runs: 3, compression: ['default', 'none'], baselines: true, cancel: true, rate: null, workDir: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    if (k === '--sets') a.sets = next().split(',').filter(Boolean);
    else if (k === '--runs') a.runs = Math.max(1, Number(next()));
    else if (k === '--compression') {
      const v = next();
      a.compression = v === 'both' ? ['default', 'none'] : [v as 'default' | 'none'];
    } else if (k === '--no-baselines') a.baselines = false;
    else if (k === '--no-cancel') a.cancel = false;
    else if (k === '--work-dir') a.workDir = path.resolve(next());
    else if (k === '--rate') {
      const v = argv[i + 1];
      a.rate = v !== undefined && /^\d+(\.\d+)?$/.test(v) ? Number(argv[++i]) : 24;
    } else throw new Error(`unknown argument ${k}`);
  }
  for (const s of a.sets) if (!['a', 'b', 'c'].includes(s)) throw new Error(`unknown set ${s}`);
  return a;
}

// ---------------------------------------------------------------- data sets

const WORDS = (
  'the quick brown fox jumps over lazy dog server world chunk region player block entity spawn config ' +
  'true false level seed version plugin minecraft java log info warn error debug thread main tick save ' +
  'load data file name value key map list item stack count time date user group mode port host'
).split(' ');

/** Deterministic-ish log/config-like text of `size` bytes. */
function text(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed * 2654435761 + 1;
  let off = 0;
  let line = 0;
  while (off < size) {
    let s = `[${String(line++).padStart(6, '0')}] `;
    const n = 6 + (x % 10);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      s += WORDS[(x >>> 8) % WORDS.length] + (i % 4 === 3 ? `=${x % 1000} ` : ' ');
    }
    s += '\n';
    off += out.write(s, off);
  }
  return out;
}

function writeRandom(file: string, size: number): void {
  const fd = fs.openSync(file, 'w');
  for (let done = 0; done < size; ) {
    const n = Math.min(8 * MiB, size - done);
    fs.writeSync(fd, randomBytes(n));
    done += n;
  }
  fs.closeSync(fd);
}

interface DataSet {
  name: string;
  dir: string;
  bytes: number;
  files: number;
  label: string;
}

function ensureSet(name: string): DataSet {
  const dir = path.join(DATA, name);
  const marker = path.join(DATA, `${name}.json`);
  const cached = path.join(CACHE, `${name}.json`);
  if (!fs.existsSync(marker) && DATA !== CACHE && fs.existsSync(cached)) {
    // a work dir starts from the cached set: copied, not generated again
    execFileSync('cp', ['-a', path.join(CACHE, name), dir]);
    fs.copyFileSync(cached, marker);
  }
  if (fs.existsSync(marker)) return { ...(JSON.parse(fs.readFileSync(marker, 'utf8')) as DataSet), dir };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  let bytes = 0;
  let files = 0;
  let label = '';
  if (name === 'a') {
    label = '1 GiB, one incompressible file';
    writeRandom(path.join(dir, 'world.bin'), 1024 * MiB);
    bytes = 1024 * MiB;
    files = 1;
  } else if (name === 'b') {
    label = '1 GiB in 1,000 files, half text';
    for (let i = 0; i < 1000; i++) {
      const sub = path.join(dir, `d${String(i % 20).padStart(2, '0')}`);
      fs.mkdirSync(sub, { recursive: true });
      const size = 1024 * 1024 + ((i * 7919) % 1000) - 500 + (i === 0 ? 500 * 1000 : 0);
      const f = path.join(sub, `f${String(i).padStart(4, '0')}.${i % 2 ? 'dat' : 'txt'}`);
      if (i % 2) writeRandom(f, size);
      else fs.writeFileSync(f, text(size, i));
      bytes += size;
      files++;
    }
  } else {
    label = '50,000 files of 1-8 KiB, nested';
    const pool = text(4 * MiB, 7);
    const rnd = randomBytes(4 * MiB);
    for (let i = 0; i < 50_000; i++) {
      const sub = path.join(dir, `p${i % 10}`, `q${Math.floor(i / 10) % 25}`, `r${Math.floor(i / 250) % 20}`);
      if (i < 5000) fs.mkdirSync(sub, { recursive: true });
      const size = 1024 + ((i * 2654435761) >>> 0) % (7 * 1024 + 1);
      const src = i % 4 === 3 ? rnd : pool;
      const start = ((i * 40503) >>> 0) % (src.length - size);
      fs.writeFileSync(path.join(sub, `file${i}.${i % 4 === 3 ? 'bin' : 'yml'}`), src.subarray(start, start + size));
      bytes += size;
      files++;
    }
  }
  const ds = { name, dir, bytes, files, label };
  fs.writeFileSync(marker, JSON.stringify(ds));
  log(`generated set ${name} (${label}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return ds;
}

// ---------------------------------------------------------------- /proc sampling

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after "pid (comm) ": state=0 … utime=11 stime=12
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function hwmMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------- helpers

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

/** Copies a data set into a server directory with hard links (the archive stores them as files). */
function linkInto(src: string, dest: string): void {
  execFileSync('cp', ['-al', `${src}/.`, dest]);
}

interface Pair {
  a: TestNode;
  b: TestNode;
}

async function startPair(tp: TestPanel, sourceTransfers: Record<string, unknown>, destTransfers: Record<string, unknown> = {}): Promise<Pair> {
  const [a, b] = await Promise.all([
    startNode(tp, { name: 'A', config: { system: { disk_check_interval: 0, transfers: sourceTransfers } } }),
    startNode(tp, { name: 'B', config: { system: { disk_check_interval: 0, transfers: destTransfers } } }),
  ]);
  return { a, b };
}

async function stopPair(p: Pair): Promise<void> {
  await Promise.all([p.a.stop(), p.b.stop()]);
  rmrf(p.a.root);
  rmrf(p.b.root);
}

// ---------------------------------------------------------------- our transfer

interface RunResult {
  wall: number;
  rssA: number;
  rssB: number;
  cpuA: number;
  cpuB: number;
}

async function transferOnce(tp: TestPanel, ds: DataSet, sourceTransfers: Record<string, unknown>, destTransfers: Record<string, unknown> = {}): Promise<RunResult> {
  const pair = await startPair(tp, sourceTransfers, destTransfers);
  try {
    const { a, b } = pair;
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    linkInto(ds.dir, a.serverDir(s.uuid));
    const pa = a.child!.pid!;
    const pb = b.child!.pid!;
    const c0a = cpuSeconds(pa);
    const c0b = cpuSeconds(pb);
    const t0 = performance.now();
    await tp.panel.admin.startTransfer(s.uuid, { node_id: b.id });
    let ok = false;
    await waitFor(
      async () => {
        const t = await tp.panel.admin.getTransfer(s.uuid);
        if (t.successful === false) throw new Error(`transfer failed:\n${a.log().slice(-1500)}\n${b.log().slice(-1500)}`);
        ok = t.successful === true;
        return ok;
      },
      { timeoutMs: 600_000, intervalMs: 20, what: 'transfer success' },
    );
    const wall = (performance.now() - t0) / 1000;
    const r: RunResult = { wall, rssA: hwmMiB(pa), rssB: hwmMiB(pb), cpuA: cpuSeconds(pa) - c0a, cpuB: cpuSeconds(pb) - c0b };
    return r;
  } finally {
    await stopPair(pair);
  }
}

// ---------------------------------------------------------------- baselines

type Baseline = 'gzip -1' | 'pigz -p 2 -1' | 'none' | 'none + sha256';

const PIPELINES: Record<Baseline, { send: string; recv: string }> = {
  'gzip -1': { send: 'tar -cf - . | gzip -1', recv: 'gzip -d | tar -xf - -C "$DEST"' },
  'pigz -p 2 -1': { send: 'tar -cf - . | pigz -p 2 -1', recv: 'pigz -d | tar -xf - -C "$DEST"' },
  none: { send: 'tar -cf - .', recv: 'tar -xf - -C "$DEST"' },
  // not a target: the uncompressed pipeline with the SHA-256 of the stream computed on both ends,
  // as the transfer protocol requires of the daemons (openssl, which uses the CPU's SHA
  // instructions as Node does, reads a copy through tee; coreutils' sha256sum is 5x slower here)
  'none + sha256': { send: 'tar -cf - . | tee >(openssl dgst -sha256 > /dev/null)', recv: 'tee >(openssl dgst -sha256 > /dev/null) | tar -xf - -C "$DEST"' },
};

/** A small HTTP sink: each request body goes to `<recv>` in a shell; answers when it exits. */
async function startSink(): Promise<{ port: number; close: () => Promise<void>; next: (recv: string, dest: string) => void }> {
  let job: { recv: string; dest: string } | null = null;
  const server = http.createServer((req, res) => {
    const j = job;
    if (!j) {
      res.writeHead(500).end();
      return;
    }
    const sh = spawn('bash', ['-c', j.recv], { env: { ...process.env, DEST: j.dest }, stdio: ['pipe', 'ignore', 'inherit'] });
    req.pipe(sh.stdin);
    sh.on('exit', (code) => res.writeHead(code === 0 ? 200 : 500).end(String(code)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    next: (recv, dest) => (job = { recv, dest }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function baselineOnce(sink: Awaited<ReturnType<typeof startSink>>, ds: DataSet, kind: Baseline): Promise<number> {
  const dest = tmpDir('wings-bench-sink-');
  try {
    const p = PIPELINES[kind];
    sink.next(p.recv, dest);
    const t0 = performance.now();
    const cmd = `set -o pipefail; ${p.send} | curl -sS -f -o /dev/null -H 'Expect:' -T - http://127.0.0.1:${sink.port}/`;
    await new Promise<void>((resolve, reject) => {
      const sh = spawn('bash', ['-c', cmd], { cwd: ds.dir, stdio: ['ignore', 'ignore', 'inherit'] });
      sh.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`baseline ${kind} exited ${code}`))));
    });
    return (performance.now() - t0) / 1000;
  } finally {
    rmrf(dest);
  }
}

// ---------------------------------------------------------------- cancel latency

async function cancelLatency(tp: TestPanel, ds: DataSet, side: 'source' | 'destination', n: number): Promise<number[]> {
  const pair = await startPair(tp, {});
  const out: number[] = [];
  try {
    const { a, b } = pair;
    const s = await tp.panel.admin.createServer({ node_id: a.id, ...ECHO_SERVER, skip_egg_scripts: true });
    linkInto(ds.dir, a.serverDir(s.uuid));
    for (let i = 0; i < n; i++) {
      await tp.panel.admin.startTransfer(s.uuid, { node_id: b.id });
      await waitFor(async () => {
        const r = await b.api('GET', `/api/transfers/${s.uuid}`);
        return r.status === 200 && r.body.bytes_done > 64 * MiB;
      }, { timeoutMs: 30_000, intervalMs: 10, what: 'destination receiving' });
      const del = side === 'source' ? await a.api('DELETE', `/api/servers/${s.uuid}/transfer`) : await b.api('DELETE', `/api/transfers/${s.uuid}`);
      const t0 = performance.now();
      if (del.status !== 202 && del.status !== 200 && del.status !== 204) throw new Error(`cancel answered ${del.status} ${del.text}`);
      await waitFor(async () => {
        const [x, y] = await Promise.all([a.api('GET', `/api/servers/${s.uuid}/transfer`), b.api('GET', `/api/transfers/${s.uuid}`)]);
        return x.status === 404 && y.status === 404;
      }, { timeoutMs: 30_000, intervalMs: 5, what: 'both sides terminal' });
      out.push((performance.now() - t0) / 1000);
      await waitFor(async () => (await tp.panel.admin.getTransfer(s.uuid)).successful === false, { what: 'panel failure' });
      await waitFor(() => !fs.existsSync(b.serverDir(s.uuid)), { what: 'destination clean' });
    }
  } finally {
    await stopPair(pair);
  }
  return out;
}

// ---------------------------------------------------------------- main

function fmt(n: number, d = 1): string {
  return Number.isFinite(n) ? n.toFixed(d) : '-';
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  return [line(rows[0]), `|${w.map((x, i) => (i === 0 ? ':' : '-') + '-'.repeat(x) + (i === 0 ? '-' : ':')).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(REPO, 'dist/src/daemon.js'))) {
    throw new Error('run `npm run build` first: the daemons run dist/');
  }
  if (args.workDir) {
    DATA = path.join(args.workDir, 'data');
    // the harness (daemon roots, panel state) and the baseline sinks make their dirs in os.tmpdir()
    process.env.TMPDIR = args.workDir;
  }
  fs.mkdirSync(DATA, { recursive: true });
  const sets = args.sets.map(ensureSet);
  const mem = execFileSync('free', ['-m']).toString().split('\n')[1]?.trim().split(/\s+/)[1];
  console.log(`# machine: nproc=${os.availableParallelism()} mem=${mem} MiB kernel=${os.release()} node=${process.version}`);
  console.log(`# command: node --import tsx bench/transfer.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
  const fsType = execFileSync('stat', ['-f', '-c', '%T', path.dirname(DATA)]).toString().trim();
  console.log(`# data, daemon roots and sink destinations on: ${args.workDir ? `${args.workDir} (${fsType})` : `${os.tmpdir()} and ${DATA} (${fsType})`}`);

  const tp = await startPanel();
  const rows: string[][] = [];
  const checks: string[] = [];
  try {
    if (args.rate !== null) {
      await rateMode(tp, args.rate, checks);
    } else {
      const sink = args.baselines ? await startSink() : null;
      const head = ['set', 'mode', 'median s', 'MiB/s', 'vs gzip -1', 'vs pigz -p2', 'vs tar (none)', 'RSS A MiB', 'RSS B MiB', 'CPU A s', 'CPU B s', 'runs s'];
      const base: string[][] = [['set', 'baseline pipeline', 'median s', 'MiB/s', 'runs s']];
      for (const ds of sets) {
        log(`set ${ds.name}: ${ds.label} (${(ds.bytes / MiB).toFixed(0)} MiB, ${ds.files} files)`);
        execFileSync('sh', ['-c', 'tar -cf - . > /dev/null'], { cwd: ds.dir }); // warm the page cache
        const bl: Partial<Record<Baseline, number>> = {};
        const kinds = sink
          ? (Object.keys(PIPELINES) as Baseline[]).filter((kind) => {
              if (ds.name === 'c' && kind === 'none' && !args.compression.includes('none')) return false;
              if (!kind.startsWith('none') && !args.compression.includes('default')) return false; // only the baselines this run compares to
              return kind !== 'none + sha256' || (ds.name === 'a' && args.compression.includes('none'));
            })
          : [];
        // Rounds: each round runs every baseline once, then each of our modes once, so that both
        // sides of every ratio see the machine in the same state (a baseline's time moved by 50 %
        // with what ran just before it when all baseline runs came first).
        const times = new Map<Baseline, number[]>(kinds.map((k) => [k, []]));
        const ours = new Map<string, RunResult[]>(args.compression.map((m) => [m, []]));
        for (let i = 0; i < args.runs; i++) {
          for (const kind of kinds) {
            const t = await baselineOnce(sink!, ds, kind);
            times.get(kind)!.push(t);
            log(`  baseline ${kind} run ${i + 1}: ${t.toFixed(2)} s`);
          }
          for (const mode of args.compression) {
            const cfg = mode === 'none' ? { compression_level: 'none' } : {};
            // one retry: a run that fails (it did once, ECONNRESET during setup) is logged, not fatal
            const r = await transferOnce(tp, ds, cfg).catch((err: unknown) => {
              log(`  ours ${mode} run ${i + 1} failed, retrying: ${err instanceof Error ? err.stack : String(err)}`);
              return transferOnce(tp, ds, cfg);
            });
            log(`  ours ${mode} run ${i + 1}: ${r.wall.toFixed(2)} s, RSS ${r.rssA.toFixed(0)}/${r.rssB.toFixed(0)} MiB, CPU ${r.cpuA.toFixed(1)}/${r.cpuB.toFixed(1)} s`);
            ours.get(mode)!.push(r);
          }
        }
        for (const kind of kinds) {
          const ts = times.get(kind)!;
          bl[kind] = median(ts);
          const label = {
            'gzip -1': 'tar > gzip -1 > curl > gzip -d > tar -x',
            'pigz -p 2 -1': 'tar > pigz -p 2 -1 > curl > pigz -d > tar -x',
            none: 'tar > curl > tar -x',
            'none + sha256': 'tar > tee openssl sha256 > curl > tee openssl sha256 > tar -x (not a target)',
          }[kind];
          base.push([ds.name, label, fmt(bl[kind], 2), fmt(ds.bytes / MiB / bl[kind]), ts.map((t) => t.toFixed(2)).join(' ')]);
        }
        for (const mode of args.compression) {
          const results = ours.get(mode)!;
          const wall = median(results.map((r) => r.wall));
          const mibs = ds.bytes / MiB / wall;
          const ratio = (k: Baseline) => (bl[k] ? `${fmt(bl[k] / wall, 2)}x` : '-');
          const rssA = Math.max(...results.map((r) => r.rssA));
          const rssB = Math.max(...results.map((r) => r.rssB));
          rows.push([
            ds.name,
            mode === 'none' ? 'none' : 'best_speed',
            fmt(wall, 2),
            fmt(mibs),
            mode === 'none' ? '-' : ratio('gzip -1'),
            mode === 'none' ? '-' : ratio('pigz -p 2 -1'),
            mode === 'none' ? ratio('none') : '-',
            fmt(rssA, 0),
            fmt(rssB, 0),
            fmt(median(results.map((r) => r.cpuA))),
            fmt(median(results.map((r) => r.cpuB))),
            results.map((r) => r.wall.toFixed(2)).join(' '),
          ]);
          const rssOk = rssA < 256 && rssB < 256;
          checks.push(`${rssOk ? 'PASS' : 'FAIL'} set ${ds.name} ${mode}: peak RSS A ${fmt(rssA, 0)} / B ${fmt(rssB, 0)} MiB < 256`);
          if (mode === 'default' && bl['gzip -1'] && bl['pigz -p 2 -1']) {
            const g = bl['gzip -1'] / wall;
            const p = bl['pigz -p 2 -1'] / wall;
            if (ds.name === 'c') checks.push(`${g >= 0.6 ? 'PASS' : 'FAIL'} set c: ${fmt(g, 2)}x gzip -1 pipeline (target >= 0.6)`);
            else {
              checks.push(`${g >= 1.2 ? 'PASS' : 'FAIL'} set ${ds.name}: ${fmt(g, 2)}x gzip -1 pipeline (target >= 1.2)`);
              checks.push(`${p >= 0.75 ? 'PASS' : 'FAIL'} set ${ds.name}: ${fmt(p, 2)}x pigz -p 2 -1 pipeline (target >= 0.75)`);
            }
          }
          if (mode === 'none' && bl.none && ds.name === 'a') {
            const n = bl.none / wall;
            checks.push(`${n >= 0.8 ? 'PASS' : 'FAIL'} set a none: ${fmt(n, 2)}x uncompressed pipeline (target >= 0.8)`);
            const h = bl['none + sha256'];
            if (h) checks.push(`(info) set a none: ${fmt(h / wall, 2)}x the uncompressed pipeline that also hashes the stream on both ends`);
          }
        }
      }
      await sink?.close();
      rows.unshift(head);
      console.log('\n## Transfers (median of %d; MiB/s of source data; ratios are speed ratios, >1 = faster than the baseline)\n', args.runs);
      console.log(table(rows));
      if (base.length > 1) {
        console.log('\n## Baselines (same run)\n');
        console.log(table(base));
      }
      if (args.cancel) {
        const ds = ensureSet('a');
        const cancel: string[][] = [['cancel from', 'median s', 'runs s']];
        for (const side of ['source', 'destination'] as const) {
          const xs = await cancelLatency(tp, ds, side, 5);
          log(`  cancel ${side}: ${xs.map((x) => x.toFixed(3)).join(' ')} s`);
          cancel.push([side, fmt(median(xs), 3), xs.map((x) => x.toFixed(3)).join(' ')]);
          checks.push(`${median(xs) < 1 ? 'PASS' : 'FAIL'} cancel from ${side}: median ${fmt(median(xs), 3)} s < 1 (DELETE answered -> both status APIs 404)`);
        }
        console.log('\n## Cancel latency (set a mid-stream, median of 5)\n');
        console.log(table(cancel));
      }
    }
    console.log('\n## Targets\n');
    for (const c of checks) console.log(`- ${c}`);
  } finally {
    await tp.close();
  }
}

/** Rate limits, precisely: set a (incompressible, so wire bytes ~ file bytes) at `limit` MiB/s, >= 30 s. */
async function rateMode(tp: TestPanel, limit: number, checks: string[]): Promise<void> {
  const ds = ensureSet('a');
  if (ds.bytes / MiB / limit < 30) throw new Error(`--rate ${limit}: set a lasts under 30 s at that rate; use <= ${Math.floor(ds.bytes / MiB / 30)}`);
  const rows: string[][] = [['limit', 'config', 'wall s', 'measured MiB/s', 'error']];
  for (const [what, src, dst] of [
    ['upload_limit', { upload_limit: limit }, {}],
    ['download_limit', {}, { download_limit: limit }],
  ] as const) {
    const r = await transferOnce(tp, ds, src, dst);
    const rate = ds.bytes / MiB / r.wall;
    const err = rate / limit - 1;
    rows.push([what, `${limit} MiB/s`, fmt(r.wall, 2), fmt(rate, 2), `${(err * 100).toFixed(1)} %`]);
    checks.push(`${Math.abs(err) <= 0.1 ? 'PASS' : 'FAIL'} ${what} ${limit} MiB/s: measured ${fmt(rate, 2)} MiB/s over ${fmt(r.wall, 1)} s (within 10 %)`);
  }
  console.log(`\n## Rate limits (set a, ${(ds.bytes / MiB).toFixed(0)} MiB incompressible; rate = source bytes / wall time)\n`);
  console.log(table(rows));
}

// A daemon stopped between runs sometimes resets a socket that panel-lite (in this process) holds
// with no 'error' listener; that must not end the bench.
process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') log(`ignored ${err.code}: ${err.stack ?? err.message}`);
  else throw err;
});

await main();
