/**
 * Problems an operator fixes in config.yml (or around it: a port taken by another process). Each one
 * names the file and, when there is one, the key, so that the fatal line at boot reads
 * `wings: /etc/pterodactyl/config.yml: api.port: expected number, received string` without a stack.
 * docs/configuration.md, "When the daemon refuses to start".
 */
export interface ConfigProblem {
  /** Dotted key in the file (`api.port`, `allowed_origins[0]`); null for the file as a whole. */
  key: string | null;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(
    readonly file: string,
    problems: ConfigProblem[],
    options?: { cause?: unknown },
  ) {
    super(problems.map((p) => problemLine(file, p)).join('\n'), options);
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** One line per problem: `<file>: <key>: <message>`. */
  lines(): string[] {
    return this.problems.map((p) => problemLine(this.file, p));
  }
}

function problemLine(file: string, p: ConfigProblem): string {
  return `${file}: ${p.key === null ? '' : `${p.key}: `}${p.message}`;
}

/** A system error without the syscall and path Node appends (`ENOTDIR: not a directory`), the path being named already. */
export function systemErrorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (err as NodeJS.ErrnoException | undefined)?.code ? message.replace(/, \w+ '[^']*'( -> '[^']*')?$/, '') : message;
}

/** A schema path as the operator writes it: `docker.registries.ghcr.io.password`, `allowed_origins[0]`. */
export function keyOfPath(path: readonly PropertyKey[]): string | null {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? null : out;
}

/**
 * A listen failure of the API (`api`) or the metrics listener (`metrics`) as a ConfigError naming
 * the key to change and the address; other errors are returned unchanged.
 */
export function listenFailure(err: unknown, file: string, section: 'api' | 'metrics', host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  let problem: ConfigProblem;
  switch (code) {
    case 'EADDRINUSE':
      problem = { key: `${section}.port`, message: `${where} is already in use (EADDRINUSE): stop what listens there or choose another port` };
      break;
    case 'EACCES':
      problem = { key: `${section}.port`, message: `not allowed to listen on ${where} (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE` };
      break;
    case 'EADDRNOTAVAIL':
      problem = { key: `${section}.host`, message: `${host} is not an address of this machine (EADDRNOTAVAIL)` };
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      problem = { key: `${section}.host`, message: `cannot resolve ${host} (${code})` };
      break;
    default:
      return err;
  }
  return new ConfigError(file, [problem], { cause: err });
}
