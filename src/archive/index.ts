export { createArchiveStream, defaultWorkers, type PackOptions, type SkippedKind } from './pack.js';
export { extractArchive, type ExtractOptions, type ExtractResult } from './extract.js';
export { ParallelGzip, createGzip, liveGzipWorkers, PGZIP_BLOCK_SIZE, type ParallelGzipOptions } from './pgzip.js';
