import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { VERSION } from '../version.js';
import { simpleRequest } from './http.js';

/** A non-2xx answer of the Panel, parsed from its error envelope (docs/protocol.md W22.3). */
export class PanelError extends Error {
  constructor(
    readonly status: number,
    readonly panelCode: string,
    readonly detail: string,
  ) {
    super(`Error response from Panel: ${panelCode}: ${detail} (HTTP/${status})`);
    this.name = 'PanelError';
  }
}

export interface RawServerEntry {
  uuid: string;
  settings: unknown;
  process_configuration: unknown;
}

export interface RetryPolicy {
  initialMs: number;
  multiplier: number;
  maxIntervalMs: number;
  maxElapsedMs: number;
}

/** cenkalti/backoff defaults as Wings configures them (docs/protocol.md W22.2). */
export const DEFAULT_RETRY: RetryPolicy = { initialMs: 500, multiplier: 1.5, maxIntervalMs: 12_000, maxElapsedMs: 30_000 };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The Panel "remote" API client (docs/protocol.md W22, W23). */
export class PanelClient {
  constructor(
    private readonly getConfig: () => Config,
    private readonly logger: Logger,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  private get base(): string {
    return `${this.getConfig().remote.replace(/\/+$/, '')}/api/remote`;
  }

  /** One call with retries on network errors and non-4xx statuses; 4xx is final. */
  async call<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    opts: { signal?: AbortSignal; retry?: boolean } = {},
  ): Promise<{ status: number; data: T }> {
    const cfg = this.getConfig();
    const started = Date.now();
    let interval = this.retry.initialMs;
    let attempt = 0;
    for (;;) {
      attempt++;
      try {
        const res = await simpleRequest(`${this.base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${cfg.token_id}.${cfg.token}`,
            accept: 'application/vnd.pterodactyl.v1+json',
            'content-type': 'application/json',
            'user-agent': `Pterodactyl Wings/v${VERSION} (id:${cfg.token_id})`,
          },
          body: method === 'GET' ? undefined : JSON.stringify(body ?? null),
          signal: opts.signal
            ? AbortSignal.any([opts.signal, AbortSignal.timeout(cfg.remote_query.timeout * 1000)])
            : AbortSignal.timeout(cfg.remote_query.timeout * 1000),
        });
        const text = res.text;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          return { status: res.statusCode, data: (text ? JSON.parse(text) : null) as T };
        }
        const err = parseEnvelope(res.statusCode, text);
        if (res.statusCode >= 400 && res.statusCode < 500) throw err;
        if (opts.retry === false) throw err;
        this.logger.warn({ path, status: res.statusCode, attempt }, 'panel call failed, retrying');
        // fall through to the back-off below
      } catch (err) {
        if (err instanceof PanelError && (err.status < 500 || opts.retry === false)) throw err;
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (!(err instanceof PanelError)) {
          if ((err as Error).name === 'TimeoutError' || opts.retry === false) throw err;
          this.logger.warn({ path, attempt, err }, 'panel unreachable, retrying');
        }
        if (Date.now() - started + interval > this.retry.maxElapsedMs) throw err;
      }
      if (Date.now() - started + interval > this.retry.maxElapsedMs) {
        throw new PanelError(503, '_RetriesExhausted', `gave up on ${path} after ${attempt} attempts`);
      }
      const jitter = interval * (0.5 + Math.random());
      await sleep(jitter, opts.signal);
      interval = Math.min(interval * this.retry.multiplier, this.retry.maxIntervalMs);
    }
  }

  /** Every server of this node: page 0 first, then the remaining pages in parallel (docs/protocol.md W23.1). */
  async getServers(perPage: number, signal?: AbortSignal): Promise<RawServerEntry[]> {
    type Page = { data: RawServerEntry[]; meta: { current_page: number; last_page: number } };
    const first = await this.call<Page>('GET', `/servers?page=0&per_page=${perPage}`, undefined, { signal });
    const out = [...(first.data.data ?? [])];
    const { current_page, last_page } = first.data.meta ?? { current_page: 1, last_page: 1 };
    const rest: Promise<{ data: Page }>[] = [];
    for (let p = current_page + 1; p <= last_page; p++) {
      rest.push(this.call<Page>('GET', `/servers?page=${p}&per_page=${perPage}`, undefined, { signal }));
    }
    for (const page of await Promise.all(rest)) out.push(...(page.data.data ?? []));
    return out;
  }

  async getServerConfiguration(uuid: string, signal?: AbortSignal): Promise<unknown> {
    return (await this.call('GET', `/servers/${uuid}`, undefined, { signal })).data;
  }

  async resetServersState(): Promise<void> {
    await this.call('POST', '/servers/reset', null);
  }

  async getInstallationScript(uuid: string): Promise<{ container_image: string; entrypoint: string; script: string }> {
    return (await this.call<{ container_image: string; entrypoint: string; script: string }>('GET', `/servers/${uuid}/install`)).data;
  }

  async setInstallationStatus(uuid: string, successful: boolean, reinstall: boolean): Promise<void> {
    await this.call('POST', `/servers/${uuid}/install`, { successful, reinstall });
  }

  async setTransferStatus(uuid: string, successful: boolean, signal?: AbortSignal): Promise<void> {
    await this.call('POST', `/servers/${uuid}/transfer/${successful ? 'success' : 'failure'}`, null, { signal });
  }
}

export function parseEnvelope(status: number, text: string): PanelError {
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; status?: string; detail?: string }[] };
    const first = body.errors?.[0];
    if (first) return new PanelError(status, first.code ?? '_MissingResponseCode', first.detail ?? '');
  } catch {}
  return new PanelError(status, '_MissingResponseCode', 'No error response returned from API endpoint.');
}
