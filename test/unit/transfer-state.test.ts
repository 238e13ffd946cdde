import { describe, expect, it } from 'vitest';
import { TERMINAL, Transfer, type TransferState } from '../../src/transfer/transfer.js';

const STATES: TransferState[] = ['pending', 'processing', 'cancelling', 'cancelled', 'failed', 'completed'];

/** docs/protocol.md D1.1: the only moves the machine makes; every other pair is refused. */
const ALLOWED = new Set([
  'pending>processing',
  'pending>cancelling',
  'pending>failed',
  'processing>completed',
  'processing>cancelling',
  'processing>failed',
  'cancelling>cancelled',
  'cancelling>failed',
]);

/** A transfer walked to `state` along allowed moves. */
function at(state: TransferState): Transfer {
  const t = new Transfer('8d4e3f52-6a3c-4c2b-9a38-6d5f0b2f9a11', 'incoming');
  const path: Record<TransferState, TransferState[]> = {
    pending: [],
    processing: ['processing'],
    cancelling: ['cancelling'],
    cancelled: ['cancelling', 'cancelled'],
    failed: ['failed'],
    completed: ['processing', 'completed'],
  };
  for (const s of path[state]) expect(t.transition(s)).toBe(true);
  expect(t.state).toBe(state);
  return t;
}

describe('the transfer state machine (docs/protocol.md D1.1)', () => {
  for (const from of STATES) {
    for (const to of STATES) {
      const allowed = ALLOWED.has(`${from}>${to}`);
      it(`${from} → ${to} is ${allowed ? 'allowed' : 'refused'}`, () => {
        const t = at(from);
        expect(t.transition(to)).toBe(allowed);
        expect(t.state).toBe(allowed ? to : from);
      });
    }
  }

  it('has exactly three terminal states, and no move leaves them', () => {
    expect([...TERMINAL].sort()).toEqual(['cancelled', 'completed', 'failed']);
    for (const s of TERMINAL) {
      const t = at(s);
      expect(t.isTerminal).toBe(true);
      for (const to of STATES) expect(t.transition(to)).toBe(false);
    }
  });

  it('is cancellable while pending or processing, until the point of no return', () => {
    for (const s of STATES) expect(at(s).isCancellable, s).toBe(s === 'pending' || s === 'processing');
    const t = at('processing');
    t.passPointOfNoReturn();
    expect(t.pointOfNoReturn).toBe(true);
    expect(t.isCancellable).toBe(false);
  });

  it('keeps the first error and the first abort reason', () => {
    const t = at('processing');
    expect(t.error).toBeNull();
    t.recordError(new Error('first'));
    t.recordError(new Error('second'));
    expect(t.error).toBe('first');
    t.abort('one');
    t.abort('two');
    expect(t.signal.aborted).toBe(true);
    expect(t.signal.reason).toBe('one');
  });

  it('resolves `finished` with the state at settle()', async () => {
    const t = at('failed');
    t.settle();
    await expect(t.finished).resolves.toBe('failed');
  });

  it('counts progress into the status view (docs/protocol.md D8.2)', () => {
    const t = new Transfer('8d4e3f52-6a3c-4c2b-9a38-6d5f0b2f9a11', 'outgoing');
    t.setTotal(1000);
    t.addBytes(400);
    t.addFile();
    expect(t.view()).toEqual({
      server: '8d4e3f52-6a3c-4c2b-9a38-6d5f0b2f9a11',
      state: 'pending',
      direction: 'outgoing',
      bytes_total: 1000,
      bytes_done: 400,
      files_done: 1,
      rate_bytes_per_second: 0,
      eta_seconds: null,
      started_at: t.startedAt.toISOString(),
      error: null,
    });
  });
});
