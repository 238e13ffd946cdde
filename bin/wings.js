#!/usr/bin/env node
// Entry point of the `wings` command (npm install builds dist/ via `prepare`). `panel-lite` and `demo`
// are tools outside the daemon (tools/): they go to their own compiled entry point, so that the
// daemon's CLI never imports them; everything else is the daemon's CLI.
const TOOLS = new Set(['panel-lite', 'demo']);
const entry = TOOLS.has(process.argv[2]) ? '../dist/tools/cli.js' : '../dist/src/cli/index.js';
import(entry).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(entry.slice(3))) {
    console.error('wings-ts is not built: run `npm install` (or `npm run build`) first.');
  } else {
    console.error(err);
  }
  process.exit(1);
});
