/**
 * A promise resolved or rejected from outside: the gates unit tests open when they choose
 * (Promise.withResolvers arrives with Node 22; we run on 20).
 */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
