import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the collectors read at scrape time; every source is optional and read defensively. */
export interface MetricsSources {
  /** Active transfers (docs/protocol.md D8.2 views). */
  transfers?: () => readonly { server: string; direction: string; bytes_done: number; started_at: string }[];
  /** Servers with their process state. */
  servers?: () => readonly { state: string }[];
  /** The websocket hub (its `openSockets` getter). */
  websockets?: () => unknown;
}

/** The shape of a finished transfer the manager hands to `transferFinished`. */
export interface FinishedTransfer {
  server: string;
  direction: string;
  state: string;
  bytesDone: number;
  startedAt: Date;
}

const SERVER_STATES = ['offline', 'starting', 'running', 'stopping'];

/**
 * Prometheus metrics of one daemon (prom-client, private registry; default process metrics
 * prefixed `wings_`). Served on `/metrics` of the API (node token) and, when `metrics.port` is
 * set, without auth on a separate listener.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly transfersTotal: Counter<'direction' | 'state'>;
  readonly transferBytes: Counter<'direction'>;
  readonly transferDuration: Histogram<'direction' | 'state'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  /** Bytes already counted per active transfer (`direction:server:started_at`). */
  private readonly counted = new Map<string, number>();
  private sources: MetricsSources;

  constructor(sources: MetricsSources = {}) {
    this.sources = sources;
    collectDefaultMetrics({ register: this.registry, prefix: 'wings_' });
    const registers = [this.registry];
    this.transfersTotal = new Counter({
      name: 'wings_transfers_total',
      help: 'Finished server transfers by direction (outgoing = source, incoming = destination) and final state.',
      labelNames: ['direction', 'state'],
      registers,
    });
    this.transferBytes = new Counter({
      name: 'wings_transfer_bytes_total',
      help: 'Raw (uncompressed) file bytes transferred, by direction.',
      labelNames: ['direction'],
      registers,
      // Active transfers add what they moved since the last scrape, so the counter grows live.
      collect: () => this.countLiveBytes(this.activeTransfers()),
    });
    this.transferDuration = new Histogram({
      name: 'wings_transfer_duration_seconds',
      help: 'Duration of finished transfers, by direction and final state.',
      labelNames: ['direction', 'state'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'wings_http_requests_total',
      help: 'HTTP requests answered by the API, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    const active: Gauge<'direction'> = new Gauge({
      name: 'wings_transfers_active',
      help: 'Transfers in progress, by direction.',
      labelNames: ['direction'],
      registers,
      collect: () => {
        const list = this.activeTransfers();
        active.reset();
        for (const d of ['outgoing', 'incoming']) active.set({ direction: d }, list.filter((t) => t.direction === d).length);
      },
    });
    const servers: Gauge<'state'> = new Gauge({
      name: 'wings_servers',
      help: 'Servers on this node, by process state.',
      labelNames: ['state'],
      registers,
      collect: () => {
        servers.reset();
        const counts = new Map<string, number>(SERVER_STATES.map((s) => [s, 0]));
        try {
          for (const s of this.sources.servers?.() ?? []) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
        } catch {}
        for (const [state, n] of counts) servers.set({ state }, n);
      },
    });
    const sockets: Gauge = new Gauge({
      name: 'wings_websocket_connections',
      help: 'Open console websocket connections.',
      registers,
      collect: () => {
        let n = 0;
        try {
          const hub = this.sources.websockets?.() as { openSockets?: unknown } | undefined;
          const v = hub?.openSockets;
          if (typeof v === 'number' && Number.isFinite(v)) n = v;
        } catch {}
        sockets.set(n);
      },
    });
  }

  /** Late binding: the daemon builds the metrics before the parts they read. */
  bind(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  private activeTransfers() {
    try {
      return this.sources.transfers?.() ?? [];
    } catch {
      return [];
    }
  }

  private static key(t: { direction: string; server: string; started_at: string }): string {
    return `${t.direction}:${t.server}:${t.started_at}`;
  }

  /** Adds the bytes that active transfers moved since the last scrape, so the counter grows live. */
  private countLiveBytes(list: readonly { server: string; direction: string; bytes_done: number; started_at: string }[]): void {
    for (const t of list) {
      const key = Metrics.key(t);
      const before = this.counted.get(key) ?? 0;
      if (t.bytes_done > before) {
        this.transferBytes.inc({ direction: t.direction }, t.bytes_done - before);
        this.counted.set(key, t.bytes_done);
      }
    }
  }

  /** A transfer left the active list in its final state (TransferManager `onFinished`). */
  transferFinished(t: FinishedTransfer, durationSeconds: number): void {
    const key = Metrics.key({ direction: t.direction, server: t.server, started_at: t.startedAt.toISOString() });
    const before = this.counted.get(key) ?? 0;
    this.counted.delete(key);
    if (t.bytesDone > before) this.transferBytes.inc({ direction: t.direction }, t.bytesDone - before);
    this.transfersTotal.inc({ direction: t.direction, state: t.state });
    this.transferDuration.observe({ direction: t.direction, state: t.state }, Math.max(0, durationSeconds));
  }

  /** One answered HTTP request; `route` is the route pattern (`/api/servers/:server`), never the raw URL. */
  httpRequest(method: string, route: string | undefined, status: number): void {
    this.httpRequests.inc({ method, route: route ?? 'unmatched', status: String(status) });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
