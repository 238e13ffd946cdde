import { Command } from 'commander';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { VERSION } from '../version.js';
import { positiveInt } from './arguments.js';
import { printFatal } from './fatal.js';

const program = new Command();
program
  .name('wings')
  .description('wings-ts: a TypeScript drop-in replacement for Pterodactyl Wings')
  .version(VERSION, '-v, --version')
  // Options before a subcommand belong to the daemon; a subcommand parses its own (`diagnostics --config`).
  .enablePositionalOptions()
  .option('-c, --config <path>', 'path to config.yml', DEFAULT_CONFIG_PATH)
  .option('--debug', 'debug logging (not persisted)', false)
  // The two tools live outside the daemon's code (tools/): bin/wings.js hands them to their own entry point.
  .addHelpText('after', '\nTools (not part of the daemon): `wings panel-lite --help`, `wings demo --help`.')
  .action(async (opts: { config: string; debug: boolean }) => {
    let daemon: Daemon;
    try {
      daemon = new Daemon({ loaded: loadConfig(opts.config), debug: opts.debug });
    } catch (err) {
      printFatal(err, 'failed to start');
      process.exit(1);
    }
    let signals = 0;
    const shutdown = (signal: string) => {
      signals++;
      if (signals > 1) process.exit(130);
      daemon.ctx.logger.info({ signal }, 'signal received');
      void daemon.stop().then(() => process.exit(0));
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    try {
      await daemon.start();
    } catch (err) {
      // The log keeps the stack; stderr gets the one line an operator acts on.
      daemon.ctx.logger.fatal({ err }, 'failed to boot');
      await daemon.stop().catch(() => {});
      printFatal(err, 'failed to boot');
      process.exit(1);
    }
  });

program
  .command('transfers')
  .description("the node's active transfers (GET /api/transfers) with a progress bar each")
  .option('--url <url>', 'node API URL, e.g. http://127.0.0.1:8080')
  .option('--token <token>', 'node token')
  .option('-c, --config <path>', `read the URL and token from this config.yml (default ${DEFAULT_CONFIG_PATH} without --url)`)
  .option('--json', 'print the list once as JSON', false)
  .option('--watch', 'keep refreshing (Ctrl-C to stop)', false)
  .option('--interval <ms>', 'refresh interval with --watch', (v) => positiveInt(v, '--interval'), 1000)
  .action(async (opts: { url?: string; token?: string; config?: string; json: boolean; watch: boolean; interval: number }) => {
    const t = await import('./transfers.js');
    const out = (l: string) => process.stdout.write(`${l}\n`);
    try {
      const target = t.resolveTarget(opts);
      if (opts.json) {
        out(JSON.stringify(await t.fetchTransfers(target), null, 2));
        return;
      }
      if (opts.watch) await t.watchTransfers(target, opts.interval, process.stdout.isTTY === true, out);
      t.printTransfers(await t.fetchTransfers(target), out);
    } catch (err) {
      printFatal(err, 'transfers');
      process.exit(1);
    }
  });

program
  .command('diagnostics')
  .description('versions, redacted configuration, engine and disk checks and the recent log, for a bug report')
  .option('-c, --config <path>', 'path to config.yml', DEFAULT_CONFIG_PATH)
  .option('--log-lines <n>', 'lines of wings.log to include', (v) => positiveInt(v, '--log-lines'), 50)
  .action(async (opts: { config: string; logLines: number }) => {
    const { diagnostics } = await import('./diagnostics.js');
    process.stdout.write(`${await diagnostics(opts.config, { logLines: opts.logLines })}\n`);
  });

await program.parseAsync(process.argv);
