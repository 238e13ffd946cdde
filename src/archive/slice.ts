/**
 * Time slices for synchronous file work on the main thread (small files are read on the source
 * and written on the destination with synchronous calls: cheaper than a thread-pool round trip
 * each). A run of such calls yields to the event loop after SLICE_MS, so the API, websockets and
 * the transfer's own socket keep being served.
 */
export const SLICE_MS = 5;

/** Lets the event loop turn once (I/O callbacks, timers), then resolves. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
