import { InvalidArgumentError } from 'commander';

/** A commander argument parser for options that take a count, a size or an interval. */
export function positiveInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
}
