import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { stringify } from 'yaml';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { describeUnknownKey } from '../config/unknown-keys.js';
import { errorMessage } from '../errors.js';
import { scrubSecrets } from '../log.js';
import { PanelClient, PanelError } from '../panel/client.js';
import { formatBytes } from '../transfer/format.js';
import { VERSION } from '../version.js';
import { targetFromConfig } from './transfers.js';

const REDACTED = '[redacted]';

/** The configuration with every secret replaced (token, token_id, registry passwords). */
export function redactConfig(cfg: Config): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(cfg)) as Config;
  const mark = (v: unknown) => (typeof v === 'string' && v !== '' ? REDACTED : '(empty)');
  copy.token = mark(copy.token);
  copy.token_id = mark(copy.token_id);
  for (const reg of Object.values(copy.docker.registries)) reg.password = mark(reg.password);
  return copy;
}

/** Every secret of the configuration, to scrub from free text. */
export function configSecrets(cfg: Config): string[] {
  const out = [cfg.token, cfg.token_id];
  for (const reg of Object.values(cfg.docker.registries)) out.push(reg.password);
  return out.filter((s) => s && s.length > 0);
}

function scrubAll(text: string, secrets: string[]): string {
  let out = scrubSecrets(text, secrets);
  // scrubSecrets ignores short values; a node's secrets are scrubbed whatever their length.
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  return out;
}

function osRelease(): string {
  try {
    const text = fs.readFileSync('/etc/os-release', 'utf8');
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text);
    if (m) return m[1];
  } catch {}
  return `${os.type()} ${os.release()}`;
}

async function engineReport(cfg: Config): Promise<string[]> {
  if (cfg.environment !== 'docker') return ['environment: process (servers run as child processes; no engine needed)'];
  const lines = ['environment: docker'];
  try {
    const { connectDocker } = await import('../environment/docker/index.js');
    const docker = await connectDocker(cfg, { timeoutMs: 3000 });
    lines.push('engine ping: OK');
    try {
      const v = (await docker.version()) as { Version?: string; ApiVersion?: string; Os?: string; Arch?: string };
      lines.push(`engine version: ${v.Version ?? '?'} (API ${v.ApiVersion ?? '?'}, ${v.Os ?? '?'}/${v.Arch ?? '?'})`);
    } catch {}
  } catch (err) {
    lines.push(`engine ping: FAILED: ${errorMessage(err)}`);
  }
  lines.push(`DOCKER_HOST: ${process.env.DOCKER_HOST ?? '(unset: /var/run/docker.sock)'}`);
  return lines;
}

async function diskReport(dir: string): Promise<string> {
  try {
    const st = await fs.promises.statfs(dir);
    const free = st.bavail * st.bsize;
    const total = st.blocks * st.bsize;
    return `${dir}: ${formatBytes(free)} free of ${formatBytes(total)} (${total > 0 ? Math.round((100 * free) / total) : 0}% free)`;
  } catch (err) {
    return `${dir}: cannot stat: ${errorMessage(err)}`;
  }
}

/** How long each reachability check may take: a diagnostics run must finish even when nothing answers. */
const CHECK_TIMEOUT_S = 5;

/** Does the Panel answer this node's credentials? One page of its server list, no retries. */
async function panelReport(cfg: Config): Promise<string> {
  if (!cfg.remote) return 'panel: FAILED: `remote` is empty';
  const bounded: Config = { ...cfg, remote_query: { ...cfg.remote_query, timeout: Math.min(cfg.remote_query.timeout, CHECK_TIMEOUT_S) } };
  const client = new PanelClient(() => bounded, pino({ level: 'silent' }));
  const what = `panel: GET ${cfg.remote.replace(/\/+$/, '')}/api/remote/servers?page=0&per_page=1`;
  const started = Date.now();
  try {
    const { status } = await client.call('GET', '/servers?page=0&per_page=1', undefined, { retry: false });
    return `${what}: OK (HTTP ${status}, ${Date.now() - started} ms)`;
  } catch (err) {
    if (err instanceof PanelError) return `${what}: FAILED (HTTP ${err.status}: ${err.panelCode}: ${err.detail})`;
    return `${what}: FAILED (${errorMessage(err)})`;
  }
}

/** Is this node's own API up? GET /api/system with the node token, where `wings transfers` would ask. */
async function localApiReport(cfg: Config): Promise<string> {
  const target = targetFromConfig(cfg);
  const what = `local API: GET ${target.url}/api/system`;
  try {
    const res = await request(`${target.url}/api/system`, {
      headers: { authorization: `Bearer ${target.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(CHECK_TIMEOUT_S * 1000),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return `${what}: FAILED (HTTP ${res.statusCode}: ${text.slice(0, 200)})`;
    let version = '?';
    try {
      const v = (JSON.parse(text) as { version?: unknown }).version;
      if (typeof v === 'string' && v !== '') version = v;
    } catch {}
    return `${what}: OK (HTTP 200, version ${version})`;
  } catch (err) {
    return `${what}: FAILED (${errorMessage(err)}; is the daemon running?)`;
  }
}

function tailLines(file: string, n: number): string[] | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 256 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    if (len < size) lines.shift();
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** `wings diagnostics`: what an operator pastes into a bug report. Returns the text. */
export async function diagnostics(configPath: string, opts: { logLines?: number } = {}): Promise<string> {
  const out: string[] = [];
  const section = (title: string) => out.push('', `== ${title}`);
  out.push(`wings-ts diagnostics, ${new Date().toISOString()}`);
  section('Versions');
  out.push(`wings-ts: ${VERSION}`);
  out.push(`node: ${process.version} (${process.platform}/${process.arch})`);
  out.push(`os: ${osRelease()}`);
  out.push(`kernel: ${os.type()} ${os.release()}`);
  out.push(`cpus: ${os.cpus().length}, memory: ${formatBytes(os.totalmem())} (${formatBytes(os.freemem())} free)`);

  section(`Configuration (${path.resolve(configPath)}, secrets redacted)`);
  let loaded: LoadedConfig | undefined;
  try {
    loaded = loadConfig(configPath);
    out.push(stringify(redactConfig(loaded.config)).trimEnd());
  } catch (err) {
    out.push(`cannot load the configuration: ${errorMessage(err)}`);
  }
  if (!loaded) return out.join('\n');
  const cfg = loaded.config;
  const secrets = configSecrets(cfg);

  section('Unknown keys (ignored by wings-ts, kept in the file)');
  if (loaded.unknown.length === 0) out.push('(none)');
  else out.push(...loaded.unknown.map(describeUnknownKey));

  section('Reachability');
  const [panel, api] = await Promise.all([panelReport(cfg), localApiReport(cfg)]);
  out.push(scrubAll(panel, secrets), scrubAll(api, secrets));

  section('Engine');
  out.push(...(await engineReport(cfg)));

  section('Disk');
  out.push(await diskReport(cfg.system.data));
  if (cfg.system.root_directory !== cfg.system.data) out.push(await diskReport(cfg.system.root_directory));

  const n = opts.logLines ?? 50;
  const logFile = path.join(cfg.system.log_directory, 'wings.log');
  section(`Last ${n} lines of ${logFile} (secrets scrubbed)`);
  const lines = tailLines(logFile, n);
  if (!lines) out.push('(no log file)');
  else out.push(...lines.map((l) => scrubAll(l, secrets)));
  return out.join('\n');
}
