import { EventEmitter } from 'node:events';

export interface BusEvent {
  event: string;
  /** A string is sent as is; null becomes "null"; anything else is JSON-encoded (docs/protocol.md W19.2). */
  data: unknown;
}

/** A server's event bus: every topic of docs/protocol.md W12 (the transfer events included). */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(event: string, data: unknown = ''): void {
    this.emitter.emit('event', { event, data } satisfies BusEvent);
  }

  subscribe(fn: (e: BusEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  get listenerCount(): number {
    return this.emitter.listenerCount('event');
  }

  destroy(): void {
    this.emitter.removeAllListeners();
  }
}
