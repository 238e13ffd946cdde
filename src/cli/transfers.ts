import cliProgress from 'cli-progress';
import { request } from 'undici';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { formatBytes, formatDuration, progressBar } from '../transfer/format.js';
import type { TransferView } from '../transfer/transfer.js';

export interface NodeTarget {
  url: string;
  token: string;
}

/** The API URL of a node from its config.yml (a wildcard bind address is reached on loopback). */
export function targetFromConfig(cfg: Config): NodeTarget {
  const host = cfg.api.host === '0.0.0.0' || cfg.api.host === '' ? '127.0.0.1' : cfg.api.host === '::' ? '[::1]' : cfg.api.host;
  const scheme = cfg.api.ssl.enabled ? 'https' : 'http';
  return { url: `${scheme}://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${cfg.api.port}`, token: cfg.token };
}

/**
 * The node to ask: `--url`/`--token`, or the node of a config.yml (`--config`, else the daemon's
 * default path when no `--url` is given either); `--token` wins over the file's.
 */
export function resolveTarget(
  opts: { url?: string; token?: string; config?: string },
  defaultConfig: string = DEFAULT_CONFIG_PATH,
): NodeTarget {
  let fromConfig: NodeTarget | undefined;
  const configPath = opts.config ?? (opts.url === undefined ? defaultConfig : undefined);
  if (configPath) fromConfig = targetFromConfig(loadConfig(configPath).config);
  const url = opts.url ?? fromConfig?.url;
  const token = opts.token ?? fromConfig?.token;
  if (!url || !token) throw new Error('give --url and --token, or --config <path to config.yml>');
  return { url: url.replace(/\/+$/, ''), token };
}

export async function fetchTransfers(target: NodeTarget): Promise<TransferView[]> {
  const res = await request(`${target.url}/api/transfers`, {
    headers: { authorization: `Bearer ${target.token}`, accept: 'application/json' },
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    let msg = text;
    try {
      msg = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {}
    throw new Error(`GET ${target.url}/api/transfers answered ${res.statusCode}: ${msg}`);
  }
  return JSON.parse(text) as TransferView[];
}

function pct(t: TransferView): string {
  return t.bytes_total && t.bytes_total > 0 ? `${Math.min(100, Math.floor((100 * t.bytes_done) / t.bytes_total))}%` : '?%';
}

function elapsed(t: TransferView): string {
  return formatDuration((Date.now() - Date.parse(t.started_at)) / 1000);
}

/** One line per transfer, with the 25-character bar of the progress log line. */
export function transferLine(t: TransferView): string {
  const total = t.bytes_total === null ? '?' : formatBytes(t.bytes_total);
  const eta = t.eta_seconds === null ? '?' : formatDuration(t.eta_seconds);
  const dir = t.direction === 'outgoing' ? 'out' : 'in ';
  return (
    `${t.server}  ${dir}  ${t.state.padEnd(10)} ${progressBar(t.bytes_done, t.bytes_total)} ` +
    `${formatBytes(t.bytes_done)} / ${total} (${pct(t)}, ${formatBytes(t.rate_bytes_per_second)}/s, ETA ${eta}), ` +
    `${t.files_done} files, running ${elapsed(t)}${t.error ? `, error: ${t.error}` : ''}`
  );
}

export function printTransfers(list: TransferView[], out: (l: string) => void): void {
  if (list.length === 0) {
    out('No active transfers.');
    return;
  }
  for (const t of list) out(transferLine(t));
}

const key = (t: TransferView) => `${t.direction}:${t.server}`;

/**
 * The `--watch` bar on a terminal. Its tokens are named `*_text` on purpose: cli-progress fills
 * `{total}`, `{value}` and `{eta}` itself (a raw byte count, `INF`), whatever the payload says, so
 * each side of the bar uses the transfer's own units only through these names.
 */
export const BAR_FORMAT = ' {server} {dir} {state} {bar} {pct} {done_text} / {total_text}  {rate_text}  ETA {eta_text}';

export function barPayload(t: TransferView): Record<string, string> {
  return {
    server: t.server.slice(0, 8),
    dir: t.direction === 'outgoing' ? 'out' : 'in ',
    state: t.state.padEnd(10),
    pct: pct(t).padStart(4),
    done_text: formatBytes(t.bytes_done).padStart(9),
    total_text: t.bytes_total === null ? '?' : formatBytes(t.bytes_total),
    rate_text: `${formatBytes(t.rate_bytes_per_second)}/s`.padStart(10),
    eta_text: t.eta_seconds === null || !Number.isFinite(t.eta_seconds) ? '?' : formatDuration(t.eta_seconds),
  };
}

export function createMultiBar(stream: NodeJS.WritableStream): cliProgress.MultiBar {
  return new cliProgress.MultiBar(
    {
      format: BAR_FORMAT,
      barsize: 20,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      forceRedraw: true,
      stream,
    },
    cliProgress.Presets.shades_classic,
  );
}

/** `--watch`: a bar per transfer (TTY) or a block of lines per refresh, until Ctrl-C. */
export async function watchTransfers(target: NodeTarget, intervalMs: number, tty: boolean, out: (l: string) => void): Promise<never> {
  let stopped = false;
  const multibar = tty ? createMultiBar(process.stdout) : undefined;
  const bars = new Map<string, cliProgress.SingleBar>();
  const stop = () => {
    if (stopped) process.exit(130);
    stopped = true;
    multibar?.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let lastError = '';
  for (;;) {
    try {
      const list = await fetchTransfers(target);
      lastError = '';
      if (multibar) {
        const seen = new Set<string>();
        for (const t of list) {
          seen.add(key(t));
          const payload = barPayload(t);
          const total = t.bytes_total && t.bytes_total > 0 ? t.bytes_total : Math.max(1, t.bytes_done);
          let bar = bars.get(key(t));
          if (!bar) {
            bar = multibar.create(total, t.bytes_done, payload);
            bars.set(key(t), bar);
          }
          bar.setTotal(total);
          bar.update(t.bytes_done, payload);
        }
        for (const [k, bar] of bars) {
          if (seen.has(k)) continue;
          bar.update({ state: 'finished  ', rate_text: '', eta_text: '-' });
          bar.stop();
          multibar.remove(bar);
          bars.delete(k);
          multibar.log(`${k.split(':')[1]} (${k.split(':')[0]}) left the active list\n`);
        }
      } else {
        out(`--- ${new Date().toISOString()} ${target.url}: ${list.length} active transfer(s)`);
        printTransfers(list, out);
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== lastError) {
        if (multibar) multibar.log(`${msg}\n`);
        else out(msg);
      }
      lastError = msg;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
