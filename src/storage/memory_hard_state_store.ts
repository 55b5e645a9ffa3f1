/**
 * The in-memory twin of {@linkcode FileHardStateStore}.
 *
 * @module
 */

import { assert } from "../util/assert.ts";
import { hardStateProblem } from "./hard_state_codec.ts";
import { type HardStateStore, INITIAL_HARD_STATE, type StoredHardState } from "./types.ts";

/** See the module documentation. */
export class MemoryHardStateStore implements HardStateStore {
  #state: StoredHardState;
  constructor(initial: StoredHardState = INITIAL_HARD_STATE) {
    this.#state = Object.freeze({ ...initial });
  }
  load(): StoredHardState {
    return this.#state;
  }
  save(state: StoredHardState): Promise<void> {
    const problem = hardStateProblem(state);
    assert(problem === null, `refusing to write a bad hard state: ${problem}`);
    this.#state = Object.freeze({ ...state });
    return Promise.resolve();
  }
  close(): void {}
}
