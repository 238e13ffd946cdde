import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { extractArchive } from '../archive/index.js';
import type { JwtVerifier } from '../auth/jwt.js';
import { WingsError, errorMessage, isWingsError } from '../errors.js';
import { freeSpace } from '../filesystem/disk-usage.js';
import { parseServerConfiguration } from '../server/configuration.js';
import type { Server } from '../server/server.js';
import { FIELD_PARTS, type IncomingBody, type PartHandlers } from './incoming-body.js';
import type { TransferManager } from './manager.js';
import { IdleWatchdog, MiB, RateLimiter } from './meter.js';
import { reportOutcome } from './report.js';
import { TransferRunner } from './runner.js';
import type { TransferOutcome } from './transfer.js';
import { authenticateTransfer } from './transfer-token.js';

/** Free space kept on the node's filesystem whatever the archive holds. */
const FREE_SPACE_RESERVE = 64 * MiB;

/** What the destination needs of POST /api/transfers; the HTTP side builds it. */
export interface IncomingRequest {
  authorization: string | undefined;
  contentType: string | undefined;
  /** X-Transfer-Size: the raw file bytes the source is about to send (docs/protocol.md D8.2), when it says. */
  transferSize: string | undefined;
  body: IncomingBody;
  /** Aborts, with a WingsError as its reason, when the source closed the connection before the whole body arrived. */
  closed: AbortSignal;
}

export interface IncomingDeps {
  manager: TransferManager;
  jwt: JwtVerifier;
}

/**
 * What POST /api/transfers answers: 200 when the server was received, else the coded error
 * (docs/protocol.md D4).
 */
export type IncomingAnswer = { ok: true } | { ok: false; error: WingsError };

const refuse = (error: WingsError): IncomingAnswer => ({ ok: false, error });

/**
 * The destination side of POST /api/transfers (docs/protocol.md D1.3, D3–D6). Resolves with the
 * answer as soon as it is known; after a failure the transfer's cleanup and Panel report continue
 * after that.
 */
export async function acceptIncoming(deps: IncomingDeps, req: IncomingRequest): Promise<IncomingAnswer> {
  const { manager } = deps;
  // The checks that create nothing, publish nothing, report nothing (docs/protocol.md D4.2).
  let uuid: string;
  try {
    uuid = await authenticateTransfer(deps.jwt, req.authorization);
  } catch (err) {
    return refuse(isWingsError(err) ? err : new WingsError('AUTH_INVALID', 'Invalid transfer token.'));
  }
  if (manager.incoming(uuid)) return refuse(new WingsError('TRANSFER_IN_PROGRESS', 'A transfer is already in progress for this server.'));
  if (manager.deps.servers.has(uuid)) {
    return refuse(new WingsError('SERVER_EXISTS', 'A server with this identifier already exists on this instance.'));
  }
  // From here on a transfer exists: it ends failed (or cancelled) with a Panel report.
  const transfer = new IncomingTransfer(manager, uuid, req);
  transfer.begin();
  return transfer.answer;
}

/** Reads a part nobody keeps to its end without buffering it. */
function drain(stream: Readable): void {
  stream.on('error', () => {}).resume();
}

/**
 * One incoming transfer, from the request to its terminal state. Every exit (Panel refusal, bad
 * body, disk full, bad archive, checksum mismatch, idle timeout, closed connection, environment
 * failure, refused success report, cancel, delete, shutdown) ends in `finish()`.
 */
export class IncomingTransfer extends TransferRunner {
  /** The outcome POST /api/transfers answers, known before the cleanup ends. */
  readonly answer: Promise<IncomingAnswer>;
  private sendAnswer!: (a: IncomingAnswer) => void;
  private readonly idle: IdleWatchdog;
  private stopProgress = (): void => {};
  /** The server being received, from the Panel's configuration on. */
  private target: Server | undefined;
  private extraction: Promise<unknown> | undefined;
  private readonly onClosed = (): void => this.abortWith(this.req.closed.reason);

  constructor(
    private readonly manager: TransferManager,
    uuid: string,
    private readonly req: IncomingRequest,
  ) {
    super(uuid, 'incoming');
    this.answer = new Promise((resolve) => (this.sendAnswer = resolve));
    const idleTimeout = manager.deps.config().system.transfers.idle_timeout;
    this.idle = new IdleWatchdog(idleTimeout * 1000, () =>
      this.abortWith(new WingsError('IDLE_TIMEOUT', `No data received for ${idleTimeout} seconds. Raise system.transfers.idle_timeout if the link is that slow.`)),
    );
    const size = req.transferSize;
    this.transfer.setTotal(size !== undefined && /^\d+$/.test(size) ? Number(size) : null);
  }

  /** Registers the transfer and starts it in the background. */
  begin(): void {
    this.manager.register(this);
    if (this.req.closed.aborted) this.onClosed();
    else this.req.closed.addEventListener('abort', this.onClosed, { once: true });
    void this.run();
  }

  /** docs/protocol.md D7.3: deleting the server cancels its incoming transfer. */
  async serverDeleted(): Promise<void> {
    if (!this.cancel('The server was deleted.')) this.abortWith(new Error('The server was deleted.'));
    await this.finished;
  }

  private async run(): Promise<void> {
    let outcome: TransferOutcome = 'completed';
    let error: WingsError | undefined;
    try {
      await this.receive();
    } catch (err) {
      const { signal } = this.transfer;
      if (this.state === 'cancelling') {
        outcome = 'cancelled';
        error = new WingsError('CANCELLED', 'The transfer was cancelled on the destination.');
      } else {
        outcome = 'failed';
        if (signal.aborted && isWingsError(signal.reason)) error = signal.reason;
        else error = isWingsError(err) ? err : new WingsError('INTERNAL', errorMessage(err));
      }
    }
    await this.finish(outcome, error);
  }

  /** Everything up to a success reported to the Panel; throws on every other way out. */
  private async receive(): Promise<void> {
    const { servers, panel, config } = this.manager.deps;
    const cfg = config();
    const t = this.transfer;

    let raw: unknown;
    try {
      raw = await panel.getServerConfiguration(this.server, t.signal);
    } catch (err) {
      if (t.signal.aborted) throw t.signal.reason;
      throw new WingsError('PANEL', `The Panel did not provide the server's configuration: ${errorMessage(err)}`);
    }
    let data;
    try {
      data = parseServerConfiguration(raw, cfg.system.crash_detection.enabled);
    } catch (err) {
      throw new WingsError('PANEL', `The Panel's server configuration is invalid: ${errorMessage(err)}`);
    }
    if (data.settings.uuid !== this.server) throw new WingsError('PANEL', 'The Panel answered with another server.');
    const target = servers.instantiate(data);
    target.transferring = true;
    servers.add(target);
    this.target = target;
    this.manager.attachBus(this, target.events);
    this.manager.log(this, 'Receiving server data from the source node...');

    const contentType = this.req.contentType ?? '';
    if (!/^multipart\//i.test(contentType) || !/boundary=/i.test(contentType)) {
      throw new WingsError('BAD_REQUEST', `Invalid content type "${contentType}", expected "multipart/form-data".`);
    }

    // Space: the server's disk limit and the node's free space (docs/protocol.md D4.5).
    await fs.promises.mkdir(target.dataDirectory, { recursive: true, mode: 0o755 });
    const free = (await freeSpace(target.dataDirectory)) - FREE_SPACE_RESERVE;
    const limit = target.diskLimitBytes > 0 ? Math.min(target.diskLimitBytes, free) : free;
    const declared = t.bytesTotal;
    if (declared !== null && declared > limit) {
      throw new WingsError('DISK_FULL', `Not enough disk space: the server needs ${declared} bytes, ${Math.max(0, limit)} are available.`);
    }
    if (t.signal.aborted) throw t.signal.reason;

    this.idle.touch();
    const hash = createHash('sha256');
    const checksum = await this.readBody(target, hash, Math.max(0, limit));
    this.idle.stop();
    await this.extraction;
    if (checksum === undefined) throw new WingsError('BAD_REQUEST', 'The checksum part is missing.');
    if (!/^[0-9a-fA-F]{64}$/.test(checksum)) throw new WingsError('BAD_REQUEST', 'The checksum is not 64 hexadecimal characters.');
    const actual = hash.digest();
    if (!timingSafeEqual(actual, Buffer.from(checksum, 'hex'))) {
      throw new WingsError('CHECKSUM_MISMATCH', `Checksum mismatch: the archive hashes to ${actual.toString('hex')}.`);
    }
    this.stopProgress();
    if (t.signal.aborted) throw t.signal.reason;

    // Point of no return (docs/protocol.md D3.2): the archive is verified; the success report is
    // under way.
    t.passPointOfNoReturn();
    this.manager.log(this, 'Archive verified; creating the server environment...');
    try {
      await target.environment.create();
    } catch (err) {
      throw new WingsError('INTERNAL', `Failed to create the server environment: ${errorMessage(err)}`);
    }
    if ((await reportOutcome(panel, this.manager.logger, this.server, true)) === 'conflict') {
      throw new WingsError('PANEL_CONFLICT', 'The Panel refused the success report: the server is no longer being transferred.');
    }
  }

  /**
   * Reads the body part by part: the archive is extracted while it arrives (its bytes hashed on
   * the way), unknown parts are drained. Returns the checksum part's value; rejects as soon as the
   * body or the extraction fails.
   */
  private async readBody(target: Server, hash: Hash, limit: number): Promise<string | undefined> {
    let archiveSeen = false;
    let checksum: string | undefined;
    let failExtraction!: (err: unknown) => void;
    const extractionFailed = new Promise<never>((_, reject) => (failExtraction = reject));
    extractionFailed.catch(() => {});
    const handlers: PartHandlers = {
      activity: () => this.idle.touch(),
      file: (name, stream) => {
        if (name !== 'archive') return drain(stream); // unknown parts are drained, never buffered
        if (archiveSeen) {
          drain(stream);
          throw new WingsError('BAD_REQUEST', 'More than one archive part.');
        }
        archiveSeen = true;
        this.enter('processing');
        this.manager.log(this, 'Extracting archive...');
        this.stopProgress = this.manager.startProgress(this, 'Downloading');
        this.extraction = this.extract(stream, target, hash, limit);
        void this.extraction.catch(failExtraction);
      },
      field: (name, value, truncated) => {
        if (!FIELD_PARTS.includes(name)) return;
        if (!archiveSeen) throw new WingsError('BAD_REQUEST', 'The checksum part was sent before the archive part.');
        if (truncated) throw new WingsError('BAD_REQUEST', 'The checksum part is too large.');
        checksum = value.trim();
      },
    };
    await Promise.race([this.req.body.read(handlers, this.transfer.signal), extractionFailed]);
    if (!archiveSeen) throw new WingsError('BAD_REQUEST', 'The archive part is missing.');
    return checksum;
  }

  /** The archive part, rate-limited, into the server's directory. */
  private extract(part: Readable, target: Server, hash: Hash, limit: number): Promise<unknown> {
    const t = this.transfer;
    const limiter = new RateLimiter(this.manager.deps.config().system.transfers.download_limit * MiB);
    part.on('data', (chunk: Buffer) => hash.update(chunk));
    // pipeline() handles both streams' errors from the start: the extraction attaches its own
    // listeners to the limiter only after a few awaits, and a part that breaks off before that
    // (the body ended inside it) emitted an unhandled 'error' there and killed the daemon.
    pipeline(part, limiter, () => {});
    return extractArchive(limiter, {
      root: target.dataDirectory,
      signal: t.signal,
      maxBytes: limit,
      onFileBytes: (n) => t.addBytes(n),
      onFileDone: () => t.addFile(),
      onSkipped: (entry, type) => this.manager.log(this, `Skipped ${type} entry ${JSON.stringify(entry)}.`),
    });
  }

  /**
   * The end of a destination transfer (docs/protocol.md D3.4): abort, the answer to the source,
   * cleanup of everything the transfer created, unlock, the last line (before the server's bus
   * closes), terminal state, off the active list, the server's registration and sockets, Panel
   * failure report.
   */
  private async finish(outcome: TransferOutcome, error?: WingsError): Promise<void> {
    if (!this.beginFinish()) return;
    const t = this.transfer;
    const { config, servers, panel, closeSockets } = this.manager.deps;
    const logger = this.manager.logger;
    t.abort(error ?? new Error(`transfer ${outcome}`));
    if (error) this.sendAnswer(refuse(error));
    this.idle.stop();
    this.stopProgress();
    this.req.closed.removeEventListener('abort', this.onClosed);
    const target = this.target;
    if (outcome !== 'completed') {
      await this.extraction?.catch(() => {});
      t.recordError(error);
      await fs.promises
        .rm(path.join(config().system.data, this.server), { recursive: true, force: true })
        .catch((err) => logger.error({ server: this.server, err }, 'failed to remove partial transfer data'));
      await target?.environment.destroy().catch((err) => logger.warn({ server: this.server, err }, 'destroy failed'));
    }
    if (target) target.transferring = false;
    if (outcome === 'completed') this.manager.log(this, 'Transfer completed.');
    else this.manager.log(this, outcome === 'cancelled' ? 'Canceled.' : `Transfer failed: ${t.error}`, 'warn');
    this.enter(outcome);
    this.manager.unregister(this);
    if (outcome !== 'completed' && target) {
      if (servers.get(this.server) === target) servers.remove(this.server);
      await target.destroy({ keepFiles: true }).catch(() => {});
      closeSockets(this.server);
    }
    t.settle();
    if (outcome === 'completed') {
      this.sendAnswer({ ok: true });
      return;
    }
    await reportOutcome(panel, logger, this.server, false);
  }
}
