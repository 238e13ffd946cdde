import { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { VERSION } from '../version.js';

const program = new Command();
program
  .name('wings')
  .description('wings-ts: a TypeScript drop-in replacement for Pterodactyl Wings')
  .version(VERSION, '-v, --version')
  .option('-c, --config <path>', 'path to config.yml', '/etc/pterodactyl/config.yml')
  .option('--debug', 'debug logging (not persisted)', false)
  .action(async (opts: { config: string; debug: boolean }) => {
    let loaded;
    try {
      loaded = loadConfig(opts.config);
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(`\u001b[31m${err.message}\u001b[0m`);
        process.exit(1);
      }
      throw err;
    }
    const daemon = new Daemon({ loaded, debug: opts.debug });
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
      daemon.ctx.logger.fatal({ err }, 'failed to boot');
      await daemon.stop().catch(() => {});
      process.exit(1);
    }
  });

program
  .command('panel-lite')
  .description('run panel-lite, the in-repo stand-in for the Panel')
  .requiredOption('-c, --config <path>', 'panel-lite YAML config')
  .action(async (opts: { config: string }) => {
    const { startPanelLiteFromFile } = await import('../panel/lite/index.js');
    const panel = await startPanelLiteFromFile(opts.config);
    console.log(JSON.stringify({ url: panel.url, admin_url: panel.adminUrl }));
    const stop = () => void panel.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

await program.parseAsync(process.argv);
