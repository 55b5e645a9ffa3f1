/**
 * The simulator's agenda: a binary min-heap of events ordered by simulated time, ties broken
 * by insertion order, so a run is a pure function of its seed (no two events ever compare
 * equal, whatever the heap's internal shape).
 *
 * @module
 */

/** One scheduled event. `seq` is unique and increasing: the deterministic tie-breaker. */
export interface QueuedEvent<T> {
  readonly time: number;
  readonly seq: number;
  readonly value: T;
}

/** A priority queue of events keyed by (time, seq). */
export class EventQueue<T> {
  #heap: QueuedEvent<T>[] = [];
  #seq = 0;

  /** Number of events waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `value` at simulated time `time` (ms). */
  push(time: number, value: T): void {
    const heap = this.#heap;
    const event: QueuedEvent<T> = { time, seq: this.#seq++, value };
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(event, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  /** Removes and returns the earliest event, or undefined when empty. */
  pop(): QueuedEvent<T> | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        let child = left;
        if (right < n && before(heap[right]!, heap[left]!)) child = right;
        const c = heap[child]!;
        if (!before(c, last)) break;
        heap[i] = c;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }

  /** The time of the earliest event, or undefined when empty. */
  peekTime(): number | undefined {
    return this.#heap[0]?.time;
  }
}

function before<T>(a: QueuedEvent<T>, b: QueuedEvent<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
