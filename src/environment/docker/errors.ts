import { isAbortOf, raceSignal } from '../abortable.js';

/** Helpers for the errors docker-modem produces (`statusCode`, `json.message`). */

export function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

/** The engine's own message when there is one ("No such container: …"), else the error text. */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: unknown } | null)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message;
  }
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  const text = err instanceof Error ? err.message : String(err);
  // docker-modem: "(HTTP code 500) server error - <engine message> "
  const m = /^\(HTTP code \d+\) [^-]*- ([\s\S]*)$/.exec(text);
  return (m ? m[1] : text).trim();
}

/** Wraps an engine error with what we were doing; a dead engine gets a message that says so. */
export function dockerError(action: string, err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'ECONNRESET' || code === 'EPIPE') {
    return new Error(`${action}: Docker engine unreachable (${engineMessage(err)})`, { cause: err });
  }
  return new Error(`${action}: ${engineMessage(err)}`, { cause: err });
}

/**
 * An engine call that must answer within `timeoutMs`: some calls (attach, start) can hang on a
 * wedged engine. Its errors are wrapped by `dockerError(action, …)`; no answer in time is an error
 * that says so, and a result that still arrives later goes to `onLate` (an attach stream to close).
 */
export async function engineCall<T>(
  action: string,
  call: Promise<T>,
  timeoutMs: number,
  onLate?: (value: T) => void,
): Promise<T> {
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    return await raceSignal(call, deadline, onLate);
  } catch (err) {
    if (isAbortOf(err, deadline)) {
      throw new Error(`${action}: no answer from the Docker engine within ${timeoutMs / 1000} s`, { cause: err });
    }
    throw dockerError(action, err);
  }
}
