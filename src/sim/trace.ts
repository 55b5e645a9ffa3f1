/**
 * The simulator's trace: every notable event of a run as one line of text. It keeps only the
 * last few lines (printed when an invariant fails), folds every line into a running hash (two
 * seeds' traces are equal exactly when their hashes are, which the determinism test relies on)
 * and can stream every line to a sink for `--verbose`.
 *
 * @module
 */

/** Options of {@linkcode Trace}. */
export interface TraceOptions {
  /** How many of the latest lines to keep for failure reports. */
  readonly keepLines?: number;
  /** Receives every line as it is recorded (used by `--verbose`). */
  readonly sink?: (line: string) => void;
}

/** A bounded, hashed event trace. */
export class Trace {
  readonly #ring: string[];
  readonly #keep: number;
  readonly #sink: ((line: string) => void) | undefined;
  #next = 0;
  #count = 0;
  // Two independent 32-bit FNV-1a lanes give a 64-bit hash without BigInt.
  #h1 = 0x811c9dc5;
  #h2 = 0x01000193;

  constructor(options: TraceOptions = {}) {
    this.#keep = Math.max(1, options.keepLines ?? 30);
    this.#ring = [];
    this.#sink = options.sink;
  }

  /** Records one line stamped with the simulated time in ms. */
  record(timeMs: number, text: string): void {
    const line = `${formatTime(timeMs)} ${text}`;
    let h1 = this.#h1, h2 = this.#h2;
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x01000193) ^ (h1 >>> 15);
    }
    h1 = Math.imul(h1 ^ 10, 0x01000193);
    this.#h1 = h1;
    this.#h2 = h2;
    if (this.#ring.length < this.#keep) this.#ring.push(line);
    else this.#ring[this.#next] = line;
    this.#next = (this.#next + 1) % this.#keep;
    this.#count++;
    this.#sink?.(line);
  }

  /** Number of lines recorded so far. */
  get count(): number {
    return this.#count;
  }

  /** The hash of every line recorded so far, as 16 hex digits. */
  get hash(): string {
    return hex32(this.#h1) + hex32(this.#h2);
  }

  /** The latest lines, oldest first. */
  tail(): string[] {
    if (this.#ring.length < this.#keep) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }
}

function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, "0");
}

/** Formats a simulated time as `t=1234.5ms`, fixed width for readable traces. */
export function formatTime(timeMs: number): string {
  return `t=${timeMs.toFixed(1).padStart(8)}ms`;
}
