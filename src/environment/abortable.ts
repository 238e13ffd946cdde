/**
 * Waiting on a promise bounded by an AbortSignal: a caller's cancellation, `AbortSignal.timeout`, or
 * both through `AbortSignal.any`. `node:timers/promises` bounds its own timers by a signal, but not
 * an arbitrary promise (an engine call, a process exit); and a promise that loses the race may still
 * deliver something that must be released (an attach stream). These two helpers add exactly that,
 * and remove their abort listener either way, so a long-lived signal does not collect listeners.
 */

/**
 * `promise`'s outcome, or a rejection with `signal.reason` when `signal` aborts first. A value that
 * arrives after that goes to `onLate`, so the caller can release it.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal, onLate?: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    if (onLate) promise.then(onLate, () => {});
    else promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let lost = false;
    const onAbort = (): void => {
      lost = true;
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (!lost) resolve(value);
        else onLate?.(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!lost) reject(err);
      },
    );
  });
}

/** True once `promise` settles (fulfilled or rejected), false when `signal` aborts first. */
export function settlesBefore(promise: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  return raceSignal(settled, signal).catch(() => false);
}

/** Did `err` come from `signal` aborting (its reason), rather than from the work itself? */
export function isAbortOf(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted && err === signal.reason;
}
