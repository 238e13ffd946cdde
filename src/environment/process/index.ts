export { ProcessEnvironment } from './process-environment.js';
export { STATS_INTERVAL_MS } from '../stats-loop.js';
export { ConsoleLog, CONSOLE_LOG_MAX_BYTES } from './console-log.js';
export { expandInvocation, buildChildEnvironment, stopSignal } from './helpers.js';
