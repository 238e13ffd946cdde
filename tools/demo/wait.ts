import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/**
 * Polls `fn` every `intervalMs` until it returns a truthy value (returned) or `timeoutMs` passed
 * (an error naming `what` and the last error `fn` threw). For the demo and the test harness: a state
 * that another process reaches (a daemon's answer, a file appearing) has no event to wait on here.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  { timeoutMs = 15_000, intervalMs = 25, what = 'condition' } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

/** `p`, or an error naming `what` once `ms` passed first; the timer stops when `p` settles. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const settled = new AbortController();
  const timeout = sleep(ms, undefined, { signal: settled.signal }).then(() => {
    throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    settled.abort();
  }
}
