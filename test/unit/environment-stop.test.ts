import { EventEmitter } from 'node:events';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { raceSignal, settlesBefore } from '../../src/environment/abortable.js';
import type { ProcessState } from '../../src/environment/environment.js';
import { EnvironmentState } from '../../src/environment/state.js';
import { stopAndWait, type Stoppable } from '../../src/environment/stop.js';
import { deferred } from '../helpers/deferred.js';

const logger = pino({ level: 'silent' });

/**
 * An instance that is gone when `exit` resolves; `stop()` and `terminate()` are recorded, and
 * SIGKILL makes it exit at once, like a real kill.
 */
function fakeInstance(stop: () => Promise<void> = async () => {}): Stoppable & { calls: string[]; exit: () => void } {
  const exited = deferred();
  const calls: string[] = [];
  return {
    calls,
    exit: () => exited.resolve(),
    logger,
    stop: () => {
      calls.push('stop');
      return stop();
    },
    waitGone: (signal) => settlesBefore(exited.promise, signal),
    terminate: async (signal) => {
      calls.push(`terminate ${signal}`);
      if (signal === 'SIGKILL') exited.resolve();
    },
  };
}

describe('raceSignal / settlesBefore', () => {
  it('passes the outcome through when the promise settles first', async () => {
    const ac = new AbortController();
    await expect(raceSignal(Promise.resolve(7), ac.signal)).resolves.toBe(7);
    await expect(raceSignal(Promise.reject(new Error('boom')), ac.signal)).rejects.toThrow('boom');
    expect(await settlesBefore(Promise.reject(new Error('x')), ac.signal)).toBe(true);
  });

  it('rejects with the reason on abort and hands a late value to onLate', async () => {
    const ac = new AbortController();
    const work = deferred<string>();
    const late = deferred<string>();
    const racing = raceSignal(work.promise, ac.signal, (v) => late.resolve(v));
    ac.abort(new Error('gave up'));
    await expect(racing).rejects.toThrow('gave up');
    work.resolve('stream');
    expect(await late.promise).toBe('stream');
    expect(await settlesBefore(new Promise(() => {}), ac.signal)).toBe(false);
  });
});

describe('stopAndWait', () => {
  it('returns once the instance is gone, without a kill', async () => {
    const target = fakeInstance(async () => {
      queueMicrotask(() => target.exit());
    });
    await stopAndWait(target, 10_000, true);
    expect(target.calls).toEqual(['stop']);
  });

  it('rejects STOP_TIMEOUT when the grace runs out without terminate', async () => {
    const target = fakeInstance();
    await expect(stopAndWait(target, 50, false)).rejects.toMatchObject({
      code: 'STOP_TIMEOUT',
      message: 'timed out waiting for the server to stop',
    });
    expect(target.calls).toEqual(['stop']);
  });

  it('rejects CANCELLED when the caller aborts, kills instead with terminate', async () => {
    const ac = new AbortController();
    const target = fakeInstance(async () => ac.abort());
    await expect(stopAndWait(target, 60_000, false, ac.signal)).rejects.toMatchObject({ code: 'CANCELLED' });

    const ac2 = new AbortController();
    const killed = fakeInstance(async () => ac2.abort());
    await stopAndWait(killed, 60_000, true, ac2.signal);
    expect(killed.calls).toEqual(['stop', 'terminate SIGKILL']);
  });

  it('a stop attempt that fails is returned as is; one that hangs counts against the grace', async () => {
    const failing = fakeInstance(async () => {
      throw new Error('engine said no');
    });
    await expect(stopAndWait(failing, 60_000, true)).rejects.toThrow('engine said no');
    expect(failing.calls).toEqual(['stop']);

    const hanging = fakeInstance(() => new Promise(() => {}));
    await stopAndWait(hanging, 50, true);
    expect(hanging.calls).toEqual(['stop', 'terminate SIGKILL']);
  });
});

describe('EnvironmentState', () => {
  it('emits changes only, and goes through stopping to offline when it settles or a start fails', () => {
    const events = new EventEmitter();
    const seen: ProcessState[] = [];
    events.on('state', (s: ProcessState) => seen.push(s));
    const state = new EnvironmentState(events, logger);

    state.settleOffline(); // already offline: nothing
    state.set('starting');
    state.set('starting');
    state.settleOffline();
    state.failStart();
    expect(seen).toEqual(['starting', 'stopping', 'offline', 'stopping', 'offline']);
    expect(state.current).toBe('offline');
  });
});
