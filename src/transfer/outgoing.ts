import { randomBytes } from 'node:crypto';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { ArchiveProducer } from '../archive/index.js';
import { gzipLevel, transferCompressionLevel } from '../config/schema.js';
import { WingsError, isWingsError } from '../errors.js';
import type { Server } from '../server/server.js';
import type { TransferManager } from './manager.js';
import { IdleWatchdog, MiB, Pace } from './meter.js';
import { reportOutcome } from './report.js';
import { TransferRunner } from './runner.js';
import type { TransferOutcome } from './transfer.js';
import { destinationFailure, readText, sendBody } from './upload.js';

export interface OutgoingRequest {
  url: string;
  /** The Authorization header for the destination, verbatim (`Bearer <jwt>` from the Panel). */
  token: string;
}

/** What POST /api/servers/:server/transfer answers. */
export type InitiateResult =
  | { status: 202 }
  | { status: 409 | 500; body: { error: string } };

const ALREADY = 'A transfer is already in progress for this server.';
const CANCELLED = 'The transfer was cancelled.';
const STOP_FAILED = 'Failed to stop the server before initiating transfer.';

/**
 * The source side (docs/protocol.md D1.2, D3, D7.2): lock, graceful stop, then the streamed push in
 * the background. Resolves with the answer for the initiating POST.
 */
export async function initiateOutgoing(manager: TransferManager, server: Server, req: OutgoingRequest): Promise<InitiateResult> {
  if (server.transferring || manager.outgoing(server.uuid) || manager.incoming(server.uuid)) {
    return { status: 409, body: { error: ALREADY } };
  }
  return new OutgoingTransfer(manager, server, req).start();
}

/**
 * One outgoing transfer, from the initiating POST to its terminal state. Every exit (stop failed,
 * cancelled while stopping, streamed and answered, deleted after sending, failed, cancelled) ends
 * in `finish()`, which runs the steps of docs/protocol.md D3.4 in order.
 */
export class OutgoingTransfer extends TransferRunner {
  private readonly idle: IdleWatchdog;
  private stopProgress = (): void => {};
  private producer: ArchiveProducer | null = null;
  private request: ClientRequest | null = null;
  /**
   * Resolves when the Panel deletes the server after the whole archive was sent
   * (docs/protocol.md D7.3: completed).
   */
  private readonly deletedAfterSend: Promise<'deleted'>;
  private markDeleted!: () => void;

  constructor(
    private readonly manager: TransferManager,
    private readonly source: Server,
    private readonly destination: OutgoingRequest,
  ) {
    super(source.uuid, 'outgoing');
    this.deletedAfterSend = new Promise((resolve) => (this.markDeleted = () => resolve('deleted')));
    const idleTimeout = manager.deps.config().system.transfers.idle_timeout;
    this.idle = new IdleWatchdog(idleTimeout * 1000, () =>
      this.abortWith(new WingsError('IDLE_TIMEOUT', `No data moved for ${idleTimeout} seconds. Raise system.transfers.idle_timeout if the link is that slow.`)),
    );
  }

  /**
   * The initiating POST: lock, register, graceful stop bounded by stop_timeout, never a kill
   * (docs/protocol.md D7.2).
   */
  async start(): Promise<InitiateResult> {
    const cfg = this.manager.deps.config();
    this.source.transferring = true;
    this.manager.register(this);
    this.manager.attachBus(this, this.source.events);
    if (this.source.state !== 'offline') {
      try {
        await this.source.environment.waitForStop(cfg.system.transfers.stop_timeout * 1000, false, this.transfer.signal);
      } catch (err) {
        if (!this.transfer.signal.aborted || this.state !== 'cancelling') {
          this.manager.logger.warn({ server: this.server, err }, 'failed to stop the server before the transfer');
          await this.finish('failed', new WingsError('STOP_TIMEOUT', STOP_FAILED));
          return { status: 500, body: { error: STOP_FAILED } };
        }
      }
    }
    if (this.state === 'cancelling') {
      void this.finish('cancelled');
      return { status: 409, body: { error: CANCELLED } };
    }
    void this.push();
    return { status: 202 };
  }

  /**
   * docs/protocol.md D7.3: once the whole archive and checksum were sent, a delete is the Panel's
   * success handler at work: the transfer ends completed. Before that, the delete cancels it.
   */
  async serverDeleted(): Promise<void> {
    if (this.transfer.pointOfNoReturn && this.state === 'processing') this.markDeleted();
    else if (!this.cancel('The server was deleted.')) this.abortWith(new Error('The server was deleted.'));
    await this.finished;
  }

  private async push(): Promise<void> {
    let outcome: TransferOutcome = 'completed';
    let error: unknown;
    try {
      await this.stream();
    } catch (err) {
      const { signal } = this.transfer;
      outcome = this.state === 'cancelling' ? 'cancelled' : 'failed';
      error = signal.aborted && isWingsError(signal.reason) ? signal.reason : err;
    }
    await this.finish(outcome, error);
  }

  /** Streams the archive; returns when the transfer completed (docs/protocol.md D1.2), throws otherwise. */
  private async stream(): Promise<void> {
    const cfg = this.manager.deps.config();
    const t = this.transfer;
    this.manager.log(this, 'Preparing to stream server data to destination...');
    this.enter('processing');
    // bytes_total is the server's disk usage (docs/protocol.md D8.2): the cached value when fresh,
    // else a quick scan.
    t.setTotal(this.source.disk.cached > 0 ? this.source.disk.cached : await this.source.disk.refresh());
    this.manager.log(this, 'Streaming archive to destination...');
    this.stopProgress = this.manager.startProgress(this, 'Uploading');

    const boundary = randomBytes(30).toString('hex');
    const producer = new ArchiveProducer({
      root: this.source.dataDirectory,
      level: gzipLevel(transferCompressionLevel(cfg)),
      signal: t.signal,
      onFileBytes: (n) => t.addBytes(n),
      onFileDone: () => t.addFile(),
      onSkipped: (rel, kind) => this.manager.log(this, `Skipped ${kind} ${JSON.stringify(rel)}: not a regular file, directory or symlink.`),
    });
    this.producer = producer;

    const headers: Record<string, string> = {
      authorization: this.destination.token,
      'content-type': `multipart/form-data; boundary=${boundary}`,
    };
    if (t.bytesTotal !== null) headers['x-transfer-size'] = String(t.bytesTotal);
    const url = new URL(this.destination.url);
    // node:http rather than a pooled client: the write callback says when a block may be reused.
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: 'POST', headers, agent: false, signal: t.signal });
    this.request = request;
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    response.catch(() => {});

    const complete = await sendBody(request, producer, boundary, {
      signal: t.signal,
      pace: new Pace(cfg.system.transfers.upload_limit * MiB),
      idle: this.idle,
      onArchiveSent: () => {
        // The destination holds the whole archive: no more cancelling, no idle timer
        // (docs/protocol.md D3.2, D7.6).
        t.passPointOfNoReturn();
        this.idle.stop();
      },
    });
    if (complete) {
      this.stopProgress();
      this.manager.log(this, 'Finished streaming archive to destination.');
    } else {
      producer.destroy();
    }
    const first = await Promise.race([response, this.deletedAfterSend]);
    if (first === 'deleted') return;
    const text = await readText(first);
    const status = first.statusCode ?? 0;
    if (status === 200 && t.pointOfNoReturn) return;
    throw new WingsError('INTERNAL', destinationFailure(status, text));
  }

  /**
   * The end of a source transfer, in the order of docs/protocol.md D3.4: abort, cleanup, the
   * failure line, unlock (not after success: the source stays locked until the Panel deletes it,
   * docs/protocol.md D7.1), terminal state, off the active list, Panel failure report, `Canceled.`
   * line.
   */
  private async finish(outcome: TransferOutcome, error?: unknown): Promise<void> {
    if (!this.beginFinish()) return;
    const t = this.transfer;
    t.abort(error ?? new Error(`transfer ${outcome}`));
    this.idle.stop();
    this.stopProgress();
    this.producer?.destroy();
    this.request?.destroy();
    // A stop that failed is answered 500 to the initiating POST: the Panel learns it from that
    // answer, so there is neither a failure line nor a report (docs/protocol.md D7.2).
    const answered = isWingsError(error, 'STOP_TIMEOUT');
    if (outcome === 'failed') {
      t.recordError(error);
      if (!answered) this.manager.log(this, `Transfer failed: ${t.error}`, 'warn');
    }
    if (outcome !== 'completed') this.source.transferring = false;
    this.enter(outcome);
    this.manager.unregister(this);
    t.settle();
    if (outcome === 'completed' || answered) return;
    await reportOutcome(this.manager.deps.panel, this.manager.logger, this.server, false);
    if (outcome === 'cancelled') this.manager.log(this, 'Canceled.', 'warn');
  }
}
