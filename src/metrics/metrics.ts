/** Placeholder until the metrics module lands. */
export class Metrics {}
