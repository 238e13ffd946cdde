/**
 * A minimal HTTP(S) client on node:http for the daemon's Panel calls. undici costs ~18 MiB of RSS
 * per process once loaded (measured: 42 → 60 MiB for `import('undici')` alone), and the daemon
 * makes a handful of small JSON calls; node:http is loaded anyway (the API server).
 */
import http from 'node:http';
import https from 'node:https';

export interface SimpleResponse {
  statusCode: number;
  text: string;
}

export interface SimpleRequest {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** aborts the request; its reason is what the call rejects with */
  signal: AbortSignal;
  /** the response body is cut at this many bytes (default 16 MiB: a page of the server list) */
  maxBytes?: number;
}

/** One request; resolves with the status and the whole body as text. */
export function simpleRequest(url: string, opts: SimpleRequest): Promise<SimpleResponse> {
  const { signal } = opts;
  if (signal.aborted) return Promise.reject(signal.reason);
  const max = opts.maxBytes ?? 16 * 1024 * 1024;
  return new Promise<SimpleResponse>((resolve, reject) => {
    const target = new URL(url);
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
    let settled = false;
    const finish = (err: unknown, res?: SimpleResponse): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err) reject(signal.aborted ? signal.reason : err);
      else resolve(res!);
    };
    const req = (target.protocol === 'https:' ? https : http).request(target, { method: opts.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < max) chunks.push(c);
        size += c.length;
      });
      res.once('end', () => finish(null, { statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).subarray(0, max).toString('utf8') }));
      res.once('error', (err) => finish(err));
      res.once('aborted', () => finish(new Error('the connection closed before the response ended')));
    });
    const onAbort = (): void => {
      req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('error', (err) => finish(err));
    req.end(opts.body);
  });
}
