import { request } from 'undici';
import type { NodeRecord } from './state.js';

/** Panel → Wings calls (docs/protocol.md W25.1): `Authorization: Bearer <daemon token>`, JSON, 15 s timeout. */

export interface NodeResponse {
  ok: boolean;
  status: number;
  body: unknown;
  /** set when the request failed before an answer (connection refused, timeout, …) */
  error?: string;
}

export const NODE_TIMEOUT_MS = 15_000;

function joinUrl(base: string, p: string): string {
  return base.replace(/\/+$/, '') + p;
}

export async function callNode(
  node: Pick<NodeRecord, 'url' | 'token'>,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
  p: string,
  body?: unknown,
  timeoutMs = NODE_TIMEOUT_MS,
): Promise<NodeResponse> {
  try {
    const res = await request(joinUrl(node.url, p), {
      method,
      headers: {
        authorization: `Bearer ${node.token}`,
        accept: 'application/json',
        'content-type': 'application/json',
        'user-agent': 'panel-lite',
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.body.text();
    let parsed: unknown = text;
    if (text.length === 0) parsed = null;
    else {
      try {
        parsed = JSON.parse(text);
      } catch {}
    }
    return { ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, body: parsed };
  } catch (err) {
    const e = err as Error;
    const msg = e.name === 'TimeoutError' || e.name === 'AbortError' ? `timeout after ${timeoutMs} ms` : e.message;
    return { ok: false, status: 0, body: null, error: msg || String(err) };
  }
}
