/** Byte counts as Go's Wings prints them: `512 B`, `1.5 KiB`, `1.0 MiB` (docs/protocol.md W26.3). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.max(0, Math.floor(n))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** The 25-character bar: floor(100·done/total / 4) ticks; 0 ticks when the total is unknown. */
export function progressBar(done: number, total: number | null): string {
  const ticks = total && total > 0 ? Math.max(0, Math.min(25, Math.floor((100 * done) / total / 4))) : 0;
  return `[${'='.repeat(ticks)}${' '.repeat(25 - ticks)}]`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * The progress line of docs/protocol.md D8.4: the Go shape plus percentage, rate and ETA, e.g.
 * `Uploading [=====                    ] 1.2 GiB / 5.9 GiB (20%, 85.3 MiB/s, ETA 56s)`.
 */
export function progressLine(
  verb: string,
  done: number,
  total: number | null,
  rate: number,
  eta: number | null,
): string {
  const pct = total && total > 0 ? `${Math.min(100, Math.floor((100 * done) / total))}%` : '?%';
  const etaText = eta === null ? 'ETA ?' : `ETA ${formatDuration(eta)}`;
  const totalText = total === null ? '?' : formatBytes(total);
  return `${verb} ${progressBar(done, total)} ${formatBytes(done)} / ${totalText} (${pct}, ${formatBytes(rate)}/s, ${etaText})`;
}

/** Go's RFC 1123 time in UTC: `Sun, 17 Mar 2024 20:58:30 UTC`. */
export function rfc1123(date = new Date()): string {
  return date.toUTCString().replace(/GMT$/, 'UTC');
}

/**
 * A transfer log line (docs/protocol.md D2.2): yellow + bold, timestamp, system and side, default
 * colour, message, reset.
 */
export function transferLogLine(side: 'source' | 'destination', message: string, date = new Date()): string {
  const node = side === 'source' ? 'Source Node' : 'Destination Node';
  return `\u001b[33m\u001b[1m${rfc1123(date)} [Transfer System] [${node}]:\u001b[39m ${message}\u001b[0m`;
}
