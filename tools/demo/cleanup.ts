/**
 * What the demo created, undone in reverse order: on the normal end, on an error, on SIGINT/SIGTERM
 * (once, however many paths ask) and, for the synchronous part, on process exit.
 */
export class Cleanup {
  private readonly steps: (() => Promise<void> | void)[] = [];
  private readonly syncSteps: (() => void)[] = [];
  private running: Promise<void> | undefined;

  add(step: () => Promise<void> | void, sync?: () => void): void {
    this.steps.unshift(step);
    if (sync) this.syncSteps.unshift(sync);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const s of this.steps) {
        try {
          await s();
        } catch {}
      }
    })();
    return this.running;
  }

  /** Last resort on process exit: no awaiting possible. */
  runSync(): void {
    for (const s of this.syncSteps) {
      try {
        s();
      } catch {}
    }
  }
}
