/**
 * Invariant checks for programming errors (STYLE.md item 12). An `AssertionError` means
 * edgeraft has a bug; it is never caught and mapped to an API error. Expected failures from
 * the world (a corrupt file, a peer that is down) use typed errors instead.
 *
 * @module
 */

/** Thrown when an internal invariant does not hold. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws an {@linkcode AssertionError} with `message` unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch that the type system proves unreachable. */
export function unreachable(value: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
