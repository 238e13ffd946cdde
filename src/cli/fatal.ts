import { ConfigError } from '../config/errors.js';
import { errorMessage } from '../errors.js';

/**
 * What a command prints on stderr when it cannot go on: one line per problem, no JSON and no stack
 * (those go to the log), e.g. `wings: /etc/pterodactyl/config.yml: api.port: expected number,
 * received string`. docs/configuration.md, "When the daemon refuses to start".
 */
export function fatalLines(err: unknown, context: string): string[] {
  if (err instanceof ConfigError) return err.lines().map((l) => `wings: ${l}`);
  return [`wings: ${context}: ${errorMessage(err).split('\n')[0]}`];
}

/** Writes fatalLines to the stream, in red only on a terminal (and not with NO_COLOR set). */
export function printFatal(err: unknown, context: string, stream: NodeJS.WriteStream = process.stderr): void {
  const colour = stream.isTTY === true && !process.env.NO_COLOR;
  for (const line of fatalLines(err, context)) stream.write(colour ? `\u001b[31m${line}\u001b[0m\n` : `${line}\n`);
}
