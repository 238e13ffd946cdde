import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { LineSplitter } from '../console-lines.js';
import type { EnvironmentContext } from '../environment.js';
import type { EnvironmentState } from '../state.js';
import { isStopCommand } from '../stop.js';
import { dockerError, engineCall, isNotFound, statusCode } from './errors.js';

const ATTACH_TIMEOUT_MS = 30_000;

interface Attachment {
  stream: Duplex;
  splitter: LineSplitter;
  /** Set when we close the stream ourselves (detach, failed start): its end is not an exit. */
  released: boolean;
  ended: boolean;
}

export interface ConsoleListener {
  /** One console output line (line endings removed). */
  line(line: string): void;
  /** The attachment is gone, ended or released: what runs only while attached (stats) stops. */
  detached(): void;
}

/**
 * The console of the server container: one attachment (stdin, stdout, stderr), made before the
 * container starts so no output is missed, read line by line. Its end is the container's exit:
 * state `offline`, unless we closed it ourselves.
 */
export class DockerConsole {
  private attachment: Attachment | null = null;

  constructor(
    private readonly ctx: EnvironmentContext,
    private readonly state: EnvironmentState,
    private readonly listener: ConsoleListener,
  ) {}

  get attached(): boolean {
    return this.attachment !== null;
  }

  /** Attaches to `container`, replacing any earlier attachment. */
  async attach(container: Dockerode.Container): Promise<void> {
    const stream = (await engineCall(
      'attaching to the container',
      container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true }),
      ATTACH_TIMEOUT_MS,
      (late) => (late as unknown as Duplex).destroy(),
    )) as unknown as Duplex;
    this.release();
    const attachment: Attachment = {
      stream,
      splitter: new LineSplitter((line) => this.listener.line(line)),
      released: false,
      ended: false,
    };
    stream.on('data', (chunk: Buffer | string) => {
      attachment.splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    });
    stream.on('error', (err) => {
      if (!attachment.released) this.ctx.logger.warn({ err }, 'console stream error');
    });
    const onEnd = (): void => {
      if (attachment.ended) return;
      attachment.ended = true;
      attachment.splitter.flush();
      if (this.attachment !== attachment) return;
      this.attachment = null;
      this.listener.detached();
      if (!attachment.released) this.state.set('offline');
    };
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    this.attachment = attachment;
  }

  /** Closes our console stream without treating it as an exit. */
  release(): void {
    const attachment = this.attachment;
    this.listener.detached();
    if (!attachment) return;
    this.attachment = null;
    attachment.released = true;
    attachment.stream.destroy();
  }

  /** Writes one line to stdin; the stop command sets `stopping` first. */
  async sendCommand(command: string): Promise<void> {
    if (!this.attachment) throw new Error('not attached to instance');
    if (isStopCommand(this.ctx.processConfiguration(), command)) this.state.set('stopping');
    await this.write(`${command}\n`);
  }

  private write(text: string): Promise<void> {
    const attachment = this.attachment;
    if (!attachment) return Promise.reject(new Error('not attached to instance'));
    return new Promise((resolve, reject) => {
      attachment.stream.write(text, (err) => (err ? reject(new Error(`writing to the console: ${err.message}`)) : resolve()));
    });
  }
}

/** Splits a non-TTY multiplexed log buffer (8-byte frame headers) into its payloads. */
function demux(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const size = buf.readUInt32BE(offset + 4);
    parts.push(buf.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts);
}

/**
 * The last `lines` console lines of the container's current run, from the engine's log of it
 * (the container is re-created at every start, so its log is the current run's).
 */
export async function readContainerLog(
  docker: Dockerode,
  info: Dockerode.ContainerInspectInfo,
  lines: number,
): Promise<string[]> {
  let buf: Buffer;
  try {
    buf = await docker.getContainer(info.Id).logs({ stdout: true, stderr: true, follow: false, tail: lines });
  } catch (err) {
    // 409: the container is being removed (a start re-creates it): no history of a current run.
    if (isNotFound(err) || statusCode(err) === 409) return [];
    throw dockerError('reading the container log', err);
  }
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(String(buf));
  if (!info.Config.Tty) buf = demux(buf);
  const out: string[] = [];
  const splitter = new LineSplitter((line) => out.push(line));
  splitter.push(buf);
  splitter.flush();
  return out.slice(-lines);
}
