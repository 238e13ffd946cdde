import type { Logger } from 'pino';
import { WingsError } from '../errors.js';
import { raceSignal } from './abortable.js';
import type { ProcessConfiguration } from './server-configuration.js';

/** After a kill on timeout: how long to wait for the instance to be reaped before returning anyway. */
const KILL_REAP_MS = 10_000;

/**
 * The signal for a stop of type `signal`, with the upstream fix that sends real signal names:
 * `SIGABRT`, `SIGINT`, `SIGTERM` (case-insensitive, the `SIG` prefix optional); `C` and `^C` (the
 * egg notation) mean SIGINT; anything else, an empty value too, is SIGKILL.
 */
export function stopSignal(value: string): NodeJS.Signals {
  const v = value.trim().toUpperCase();
  if (v === 'C' || v === '^C') return 'SIGINT';
  for (const name of ['SIGABRT', 'SIGINT', 'SIGTERM'] as const) {
    if (v === name || `SIG${v}` === name) return name;
  }
  return 'SIGKILL';
}

/** Is this console command the server's stop command? Then the state becomes `stopping` before it is written. */
export function isStopCommand(processConfiguration: ProcessConfiguration, command: string): boolean {
  const stop = processConfiguration.stop;
  return stop.type === 'command' && command === stop.value;
}

/** What the stop-and-wait sequence needs from an environment. */
export interface Stoppable {
  /** One stop attempt per the stop configuration; does not wait for the exit. */
  stop(): Promise<void>;
  /** Resolves true once the instance is gone (or stopped), false when `signal` aborts first. */
  waitGone(signal: AbortSignal): Promise<boolean>;
  /** Kill with the signal; the state goes through `stopping` to `offline`. */
  terminate(signal: NodeJS.Signals): Promise<void>;
  logger: Logger;
}

/**
 * Stop and wait up to `timeoutMs` (and while `signal` is not aborted) for the instance to be gone.
 * The stop attempt counts against the same grace: an engine that does not answer it is a timeout,
 * any other error of the attempt is returned as is, without a kill. When the grace runs out, the
 * caller cancels, or the wait itself fails: SIGKILL when `terminate` (then a bounded wait for the
 * reaping, so the caller sees the instance stopped), else reject with `STOP_TIMEOUT` (the wait's
 * own error, if it failed) or `CANCELLED` (the caller aborted).
 */
export async function stopAndWait(
  target: Stoppable,
  timeoutMs: number,
  terminate: boolean,
  signal?: AbortSignal,
): Promise<void> {
  const timeout = AbortSignal.timeout(Math.max(0, timeoutMs));
  const deadline = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    await raceSignal(target.stop(), deadline);
  } catch (err) {
    if (!deadline.aborted) throw err;
  }

  let gone = false;
  let waitError: unknown = null;
  try {
    gone = await target.waitGone(deadline);
  } catch (err) {
    waitError = err;
  }
  if (gone) return;
  if (terminate) {
    target.logger.warn({ cancelled: signal?.aborted === true }, 'server did not stop in time, killing it');
    await target.terminate('SIGKILL');
    await target.waitGone(AbortSignal.timeout(KILL_REAP_MS)).catch(() => false);
    return;
  }
  if (waitError !== null) throw waitError;
  throw signal?.aborted
    ? new WingsError('CANCELLED', 'waiting for the server to stop was cancelled')
    : new WingsError('STOP_TIMEOUT', 'timed out waiting for the server to stop');
}
