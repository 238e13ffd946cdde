import { setTimeout as sleep } from 'node:timers/promises';

/** Resource sampling period: Docker's stats stream delivers about one sample a second. */
export const STATS_INTERVAL_MS = 1_000;

/**
 * Takes a resource sample right away and then `intervalMs` after each sample finished, one at a
 * time, until `signal` aborts. `sample` gets the signal too: a sample that finishes after the
 * abort (the instance exited meanwhile) must be dropped, not emitted. A failing sample is the
 * sampler's to log; the loop goes on. The timers do not keep the daemon alive.
 */
export async function sampleEvery(
  intervalMs: number,
  signal: AbortSignal,
  sample: (signal: AbortSignal) => Promise<void>,
): Promise<void> {
  while (!signal.aborted) {
    await sample(signal).catch(() => {});
    await sleep(intervalMs, undefined, { signal, ref: false }).catch(() => {});
  }
}
