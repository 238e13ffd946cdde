export { ArchiveProducer, createArchiveStream, defaultWorkers, type PackOptions, type SkippedKind } from './pack.js';
export { extractArchive, type ExtractOptions, type ExtractResult } from './extract.js';
export { GzipWorkerPool, allocBlock, blockCapacity, liveGzipWorkers, storeInPlace, PGZIP_BLOCK_SIZE } from './pgzip.js';
