export { ProcessEnvironment, STATS_INTERVAL_MS } from './process-environment.js';
export { ConsoleLog, CONSOLE_LOG_MAX_BYTES } from './console-log.js';
export { expandInvocation, buildChildEnvironment, stopSignal } from './helpers.js';
