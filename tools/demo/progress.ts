import cliProgress from 'cli-progress';
import { formatBytes, formatDuration } from '../../src/transfer/format.js';
import type { TransferView } from '../../src/transfer/transfer.js';

/** The demo's terminal colours (used only when it paints: a TTY without --plain). */
export const C = {
  bold: (s: string) => `\u001b[1m${s}\u001b[22m`,
  green: (s: string) => `\u001b[32m${s}\u001b[39m`,
  red: (s: string) => `\u001b[31m${s}\u001b[39m`,
  dim: (s: string) => `\u001b[2m${s}\u001b[22m`,
  cyan: (s: string) => `\u001b[36m${s}\u001b[39m`,
};
/** An ANSI escape sequence, to strip colours from the daemons' transfer log lines. */
export const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

/** What a bar shows: the docs/protocol.md D8.2 view, any state text. */
export type BarValues = Partial<Omit<TransferView, 'state'>> & { state?: string };

export interface BarHandle {
  update(view: BarValues): void;
  stop(): void;
}

/** The progress of a set of transfers: a cli-progress multibar on a TTY, plain lines otherwise. */
export interface ProgressDisplay {
  bar(label: string): BarHandle;
  /** A line printed above the bars (or as is in plain mode). */
  log(line: string): void;
  stop(): void;
}

function payload(v: BarValues) {
  const total = v.bytes_total ?? null;
  const done = v.bytes_done ?? 0;
  const rate = v.rate_bytes_per_second ?? 0;
  return {
    state: (v.state ?? 'waiting').padEnd(10),
    done: formatBytes(done).padStart(9),
    totalText: total === null ? '?' : formatBytes(total),
    rateText: `${formatBytes(rate)}/s`.padStart(10),
    etaText: v.eta_seconds === null || v.eta_seconds === undefined ? '?' : formatDuration(v.eta_seconds),
    pct: total && total > 0 ? `${String(Math.min(100, Math.floor((100 * done) / total))).padStart(3)}%` : '  ?%',
  };
}

export function plainLine(label: string, v: BarValues): string {
  const p = payload(v);
  return `${label} ${p.state.trim()} ${p.done.trim()} / ${p.totalText} (${p.pct.trim()}, ${p.rateText.trim()}, ETA ${p.etaText})`;
}

class TtyDisplay implements ProgressDisplay {
  private readonly multibar = new cliProgress.MultiBar(
    {
      format: ' {label} {state} {bar} {pct} {done} / {totalText} {rateText} ETA {etaText}',
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
      barsize: 14,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 10,
      autopadding: true,
      forceRedraw: true,
    },
    cliProgress.Presets.shades_classic,
  );

  bar(label: string): BarHandle {
    const b = this.multibar.create(1, 0, { label, ...payload({}) });
    let last: BarValues = {};
    return {
      update: (v) => {
        last = { ...last, ...v };
        const total = last.bytes_total ?? null;
        const done = last.bytes_done ?? 0;
        if (total && total > 0) b.setTotal(total);
        else b.setTotal(Math.max(1, done));
        b.update(done, { label, ...payload(last) });
      },
      stop: () => b.stop(),
    };
  }

  log(line: string): void {
    this.multibar.log(`${line}\n`);
  }

  stop(): void {
    this.multibar.stop();
  }
}

class PlainDisplay implements ProgressDisplay {
  constructor(private readonly out: (line: string) => void) {}

  bar(label: string): BarHandle {
    let last: BarValues = {};
    let printedAt = 0;
    let printedState: string | undefined;
    return {
      update: (v) => {
        last = { ...last, ...v };
        const now = Date.now();
        // State changes at once, progress at most once a second.
        if (last.state !== printedState || now - printedAt >= 1000) {
          printedAt = now;
          printedState = last.state;
          this.out(plainLine(label, last));
        }
      },
      stop: () => {},
    };
  }

  log(line: string): void {
    this.out(line);
  }

  stop(): void {}
}

export function createDisplay(opts: { plain: boolean; out?: (line: string) => void }): ProgressDisplay {
  const out = opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  return opts.plain ? new PlainDisplay(out) : new TtyDisplay();
}
