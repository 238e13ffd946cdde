import type { TransferView } from '../../src/transfer/transfer.js';
import type { PanelLite } from '../panel-lite/index.js';
import type { DemoNode } from './nodes.js';
import { ANSI, C, type ProgressDisplay } from './progress.js';
import type { ServerSocket } from './socket.js';
import { waitFor, withTimeout } from './wait.js';
import { SideWatcher } from './watch.js';

export interface TransferResult {
  title: string;
  source: string;
  destination: string;
  durationMs: number;
  bytes: number;
  verification: string;
  ok: boolean;
  via: string;
}

export interface RunTransferOptions {
  title: string;
  panel: PanelLite;
  uuid: string;
  source: DemoNode;
  destination: DemoNode;
  display: ProgressDisplay;
  sourceSocket?: ServerSocket;
  setSourceWatcher?: (w: SideWatcher) => void;
  tokenFor: (node: DemoNode, uuid: string) => () => string;
  paint: (f: (s: string) => string, s: string) => string;
  /** Cancel from the source once the destination received this fraction. */
  cancelAt?: number;
}

/** One transfer with a bar per side; for a cancel run `verification` carries the cancel-to-terminal time. */
export async function runTransfer(o: RunTransferOptions): Promise<TransferResult> {
  const { display, uuid, panel } = o;
  const sides = [
    { label: `${o.source.name.replace('node-', '').toUpperCase()} source`, node: o.source, side: 'source' as const, socket: o.sourceSocket },
    { label: `${o.destination.name.replace('node-', '').toUpperCase()} dest  `, node: o.destination, side: 'destination' as const, socket: undefined },
  ];
  const watchers = sides.map((s) => {
    const w = new SideWatcher({ node: s.node, side: s.side, uuid, origin: panel.publicUrl, token: o.tokenFor(s.node, uuid), socket: s.socket });
    const bar = display.bar(s.label);
    w.on('state', (state: string, via: string) => {
      bar.update({ ...(w.view ?? {}), state });
      if (via === 'websocket' || state !== 'pending') display.log(`${s.side.padEnd(11)} → ${state}${via === 'polling' ? ' (status API)' : ''}`);
    });
    w.on('progress', (v: TransferView) => bar.update({ ...v, state: w.final ?? v.state }));
    w.on('log', (line: string) => {
      const text = line.replace(ANSI, '');
      if (!/\b(Uploading|Receiving|Downloading|Extracting) \[/.test(text)) display.log(o.paint(C.dim, text));
    });
    w.on('end', (state: string) => bar.update({ ...(w.view ?? {}), state, ...(state === 'completed' && w.view?.bytes_total ? { bytes_done: w.view.bytes_total, eta_seconds: 0 } : {}) }));
    return w;
  });
  const [src, dst] = watchers;
  o.setSourceWatcher?.(src);
  if (!o.sourceSocket) await src.connectEarly();
  for (const w of watchers) w.start();
  const started = Date.now();
  let cancelMs = 0;
  try {
    await o.panel.admin.startTransfer(uuid, { node_id: o.destination.id });
    if (o.cancelAt !== undefined) {
      const cancelAt = o.cancelAt;
      await waitFor(
        () => {
          const v = dst.view;
          return !!v && v.state === 'processing' && v.bytes_done > 0 && (!v.bytes_total || v.bytes_done >= v.bytes_total * cancelAt);
        },
        { timeoutMs: 30_000, what: 'the destination to receive data' },
      );
      display.log(`cancelling from the source: DELETE /api/servers/${uuid}/transfer`);
      const cancelStart = Date.now();
      const res = await o.panel.admin.cancelTransfer(uuid, 'source');
      display.log(`source answered ${res.status}${res.status === 202 ? ' Accepted' : ` ${JSON.stringify(res.body)}`}`);
      await withTimeout(Promise.all(watchers.map((w) => w.ended)), 15_000, 'both sides to end');
      cancelMs = Math.max(src.endedAt, dst.endedAt) - cancelStart;
    } else {
      await withTimeout(Promise.all(watchers.map((w) => w.ended)), 120_000, 'both sides to end');
    }
  } finally {
    for (const w of watchers) w.stop();
  }
  const durationMs = Math.max(src.endedAt, dst.endedAt) - started;
  const via = watchers.map((w) => (w.wsEvents > 0 ? 'ws' : 'poll')).join('+');
  return {
    title: o.title,
    source: String(src.final),
    destination: String(dst.final),
    durationMs,
    bytes: o.cancelAt === undefined ? (dst.view?.bytes_total ?? src.view?.bytes_total ?? 0) : (dst.view?.bytes_done ?? 0),
    verification: o.cancelAt === undefined ? '' : `${cancelMs} ms`,
    ok: true,
    via,
  };
}
