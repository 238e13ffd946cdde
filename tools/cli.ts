import { rmSync } from 'node:fs';
import { Command } from 'commander';
import { positiveInt } from '../src/cli/arguments.js';

/**
 * `wings panel-lite` and `wings demo`: bin/wings.js runs this entry point instead of the daemon's CLI
 * for these two subcommands, so that the daemon's code never loads (or imports) the tools. Each
 * command loads its tool only when it runs.
 */
const program = new Command();
program.name('wings').description('wings-ts tools: panel-lite and the demo');

program
  .command('panel-lite')
  .description('run panel-lite, the in-repo stand-in for the Panel (docs/panel-lite.md)')
  .option(
    '-c, --config <path>',
    'panel-lite YAML config; without it: free ports on 127.0.0.1, a temporary data directory removed at exit, ' +
      'and a generated admin token in <data directory>/admin-token',
  )
  .addHelpText(
    'after',
    '\nPrints one JSON line once listening: url (the Panel URL for nodes), admin_url, data_directory ' +
      '(and admin_token_file without --config). PANEL_LITE_LOG_LEVEL=info|debug logs to stderr (default silent).',
  )
  .action(async (opts: { config?: string }) => {
    const pl = await import('./panel-lite/index.js');
    const temporary = opts.config === undefined ? pl.temporaryPanelOptions() : null;
    const removeTemporary = () => temporary && rmSync(temporary.dataDirectory, { recursive: true, force: true });
    let panel: Awaited<ReturnType<typeof pl.startPanelLite>>;
    try {
      panel = temporary
        ? await pl.startPanelLite({ dataDirectory: temporary.dataDirectory, adminToken: temporary.adminToken })
        : await pl.startPanelLiteFromFile(opts.config!);
    } catch (err) {
      removeTemporary();
      // A mistake in what the operator passed: one line, no stack (anything else is a bug and keeps its stack).
      if (err instanceof pl.PanelLiteConfigError) {
        console.error(`wings panel-lite: ${err.message}`);
        process.exit(1);
      }
      throw err;
    }
    console.log(
      JSON.stringify({
        url: panel.url,
        admin_url: panel.adminUrl,
        data_directory: panel.dataDirectory,
        ...(temporary ? { admin_token_file: temporary.adminTokenFile } : {}),
      }),
    );
    const stop = () =>
      void panel.close().then(() => {
        removeTemporary();
        process.exit(0);
      });
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program
  .command('demo')
  .description('panel-lite and two nodes on loopback: a verified transfer with live progress, then a cancelled one')
  .option('--plain', 'plain progress lines instead of bars (default without a TTY)', false)
  .option('--size-mib <n>', 'size of the generated server in MiB', (v) => positiveInt(v, '--size-mib'), 300)
  .option('--cancel-limit <mibps>', 'upload limit of node B for the cancelled transfer, MiB/s', (v) => positiveInt(v, '--cancel-limit'), 25)
  .option('--keep', 'keep the temporary directory', false)
  .option('--docker', 'run the servers in Docker containers (a reachable engine; the local busybox image, built when missing, never pulled)', false)
  .action(async (opts: { plain: boolean; sizeMib: number; cancelLimit: number; keep: boolean; docker: boolean }) => {
    const { runDemo } = await import('./demo/index.js');
    const code = await runDemo({
      plain: opts.plain || !process.stdout.isTTY,
      sizeMib: opts.sizeMib,
      cancelUploadLimit: opts.cancelLimit,
      keep: opts.keep,
      docker: opts.docker,
    });
    process.exit(code);
  });

await program.parseAsync(process.argv);
