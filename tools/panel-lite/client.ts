import { request } from 'undici';
import type { z } from 'zod';
import type { CreateNodeBody, CreateServerBody, UpdateServerBody } from './admin.js';
import type { ActivityEntry, FaultSpec, RemoteCall } from './core.js';
import type { NodeRecord, ServerRecord, TransferRecord } from './state.js';

/** A typed client of the panel-lite admin API, for the demo, the CLI and the tests. */

export type NodeView = NodeRecord & { config: string };
export type ServerView = ServerRecord & {
  transferring: boolean;
  configuration: { settings: Record<string, unknown>; process_configuration: Record<string, unknown> };
};
export type CreateNodeRequest = z.input<typeof CreateNodeBody>;
export type CreateServerRequest = z.input<typeof CreateServerBody>;
export type UpdateServerRequest = z.input<typeof UpdateServerBody>;
export interface FaultView {
  id: number;
  path: string;
  method: string | null;
  status: number | null;
  body: unknown;
  delay_ms: number;
  remaining: number;
}
export interface NodeAnswer {
  status: number;
  body: unknown;
}

export class PanelLiteAdminError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
    this.name = 'PanelLiteAdminError';
  }
}

export class PanelLiteAdmin {
  private readonly base: string;

  constructor(
    adminUrl: string,
    private readonly adminToken: string,
  ) {
    this.base = adminUrl.replace(/\/+$/, '');
  }

  /** Raw call: never throws for an HTTP status. */
  async raw(method: string, p: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const res = await request(this.base + p, {
      method: method as 'GET',
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return { status: res.statusCode, body: parsed };
  }

  private async call<T>(method: string, p: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, p, body);
    if (res.status < 200 || res.status >= 300) {
      const msg = (res.body as { error?: string } | null)?.error ?? `HTTP ${res.status}`;
      throw new PanelLiteAdminError(res.status, res.body, `panel-lite ${method} ${p}: ${res.status} ${msg}`);
    }
    return res.body as T;
  }

  createNode(body: CreateNodeRequest): Promise<NodeView> {
    return this.call('POST', '/admin/api/nodes', body);
  }
  listNodes(): Promise<NodeView[]> {
    return this.call('GET', '/admin/api/nodes');
  }
  getNode(id: number): Promise<NodeView> {
    return this.call('GET', `/admin/api/nodes/${id}`);
  }
  updateNode(id: number, patch: Partial<CreateNodeRequest>): Promise<NodeView> {
    return this.call('PATCH', `/admin/api/nodes/${id}`, patch);
  }

  createServer(body: CreateServerRequest): Promise<ServerView> {
    return this.call('POST', '/admin/api/servers', body);
  }
  listServers(nodeId?: number): Promise<ServerView[]> {
    return this.call('GET', `/admin/api/servers${nodeId === undefined ? '' : `?node_id=${nodeId}`}`);
  }
  getServer(uuid: string): Promise<ServerView> {
    return this.call('GET', `/admin/api/servers/${uuid}`);
  }
  updateServer(uuid: string, patch: UpdateServerRequest): Promise<ServerView & { node_sync: unknown }> {
    return this.call('PATCH', `/admin/api/servers/${uuid}`, patch);
  }
  deleteServer(uuid: string, force = false): Promise<{ deleted: true; node_status: number | null; node_body: unknown }> {
    return this.call('DELETE', `/admin/api/servers/${uuid}${force ? '?force=1' : ''}`);
  }

  /** Starts a transfer as the Panel does; throws PanelLiteAdminError (502 `{error,node_status,node_body}`) on rollback. */
  startTransfer(
    uuid: string,
    body: { node_id: number; allocation?: { ip?: string; port?: number }; scope?: string },
  ): Promise<TransferRecord> {
    return this.call('POST', `/admin/api/servers/${uuid}/transfer`, body);
  }
  getTransfer(uuid: string): Promise<TransferRecord> {
    return this.call('GET', `/admin/api/servers/${uuid}/transfer`);
  }
  listTransfers(): Promise<TransferRecord[]> {
    return this.call('GET', '/admin/api/transfers');
  }
  /** Forwards a cancel to the source or destination node; answers the node's status and body. */
  async cancelTransfer(uuid: string, side: 'source' | 'destination'): Promise<NodeAnswer> {
    return this.raw('DELETE', `/admin/api/servers/${uuid}/transfer?side=${side}`);
  }

  websocketToken(
    uuid: string,
    body: { permissions?: string[]; user_uuid?: string; user_id?: number; expires_in?: number; scope?: string } = {},
  ): Promise<{ data: { token: string; socket: string } }> {
    return this.call('POST', `/admin/api/servers/${uuid}/websocket`, body);
  }
  /** A transfer JWT; extra keys override claims (`null` removes one); `header`, `secret`, `scope` as named. */
  transferToken(body: {
    server_uuid: string;
    node_id: number;
    scope?: string;
    header?: Record<string, unknown>;
    secret?: string;
    [claim: string]: unknown;
  }): Promise<{ token: string; authorization: string; url: string }> {
    return this.call('POST', '/admin/api/tokens/transfer', body);
  }

  calls(filter: { path?: string | RegExp; method?: string; since?: number } = {}): Promise<RemoteCall[]> {
    const q = new URLSearchParams();
    if (filter.path !== undefined) q.set('path', typeof filter.path === 'string' ? filter.path : filter.path.source);
    if (filter.method) q.set('method', filter.method);
    if (filter.since !== undefined) q.set('since', String(filter.since));
    const qs = q.toString();
    return this.call('GET', `/admin/api/calls${qs ? `?${qs}` : ''}`);
  }
  /** Polls until a recorded remote call matches (e.g. `/transfer/failure$`), or throws after `timeoutMs`. */
  async waitForCall(
    filter: { path: string | RegExp; method?: string; status?: number },
    timeoutMs = 30_000,
  ): Promise<RemoteCall> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = (await this.calls(filter)).find((c) => filter.status === undefined || c.status === filter.status);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`panel-lite: no remote call matching ${String(filter.path)} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  clearCalls(): Promise<null> {
    return this.call('DELETE', '/admin/api/calls');
  }
  activity(): Promise<ActivityEntry[]> {
    return this.call('GET', '/admin/api/activity');
  }
  addFault(spec: FaultSpec): Promise<FaultView> {
    return this.call('POST', '/admin/api/faults', spec);
  }
  listFaults(): Promise<FaultView[]> {
    return this.call('GET', '/admin/api/faults');
  }
  clearFaults(): Promise<null> {
    return this.call('DELETE', '/admin/api/faults');
  }
}
