import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ProcessState } from './environment.js';

/**
 * The process state of one environment. The environment owns it; every change is emitted as a
 * `state` event on the environment, and only a change (setting the current value again is silent).
 * The two multi-step transitions that both environments make are named here, because the server's
 * crash detection depends on their exact shape: it fires only on a direct `starting`/`running` →
 * `offline`, so an offline that is not a crash always goes through `stopping` first.
 */
export class EnvironmentState {
  private value: ProcessState = 'offline';

  constructor(
    private readonly events: EventEmitter,
    private readonly logger: Logger,
  ) {}

  get current(): ProcessState {
    return this.value;
  }

  set(state: ProcessState): void {
    if (state === this.value) return;
    const previous = this.value;
    this.value = state;
    this.logger.debug({ from: previous, to: state }, 'process state changed');
    this.events.emit('state', state);
  }

  /** Calls `listener` with every change until the returned function is called. */
  watch(listener: (state: ProcessState) => void): () => void {
    this.events.on('state', listener);
    return () => this.events.off('state', listener);
  }

  /** The instance turned out gone or stopped (terminate, destroy): offline, not as a crash. */
  settleOffline(): void {
    if (this.value === 'offline') return;
    this.set('stopping');
    this.set('offline');
  }

  /** A start failed: forced through `stopping` to `offline`, whatever the state was. */
  failStart(): void {
    this.set('stopping');
    this.set('offline');
  }
}
