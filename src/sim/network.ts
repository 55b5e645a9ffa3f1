/**
 * The simulated network between nodes: per-message delay, loss, duplication and reordering
 * (delays are drawn independently, plus occasional long "spikes", so messages overtake each
 * other), and partitions expressed as blocked directed links, which makes symmetric splits,
 * isolated nodes and asymmetric (one-way) links the same mechanism.
 *
 * The network only decides what happens to a message; the cluster schedules the deliveries.
 * All chance comes from the `random` handed in, so a run replays from its seed.
 *
 * @module
 */

import type { NodeId } from "../raft/types.ts";
import type { Random } from "../util/prng.ts";

/** The fault knobs of the network; changed by the nemesis during a run. */
export interface LinkQuality {
  /** One-way delay is uniform in [delayMinMs, delayMaxMs]. */
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /** Probability that a message is lost. */
  readonly lossRate: number;
  /** Probability that a delivered message is delivered a second time. */
  readonly duplicateRate: number;
  /** Probability that a message is held back by up to `spikeMaxMs` more (reordering). */
  readonly spikeRate: number;
  readonly spikeMaxMs: number;
}

/** A perfect network with the given delay range. */
export function calmLinks(delayMinMs: number, delayMaxMs: number): LinkQuality {
  return { delayMinMs, delayMaxMs, lossRate: 0, duplicateRate: 0, spikeRate: 0, spikeMaxMs: 0 };
}

/** What happens to one message: the delays of its copies, or why it was dropped. */
export type Delivery =
  | { readonly kind: "deliver"; readonly delaysMs: readonly number[] }
  | { readonly kind: "blocked" }
  | { readonly kind: "lost" };

/** The simulated network. */
export class SimNetwork {
  readonly #random: Random;
  readonly #blocked = new Set<string>();
  quality: LinkQuality;

  constructor(random: Random, quality: LinkQuality) {
    this.#random = random;
    this.quality = quality;
  }

  /** Whether messages from `from` to `to` are currently cut. */
  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.#blocked.size > 0 && this.#blocked.has(linkKey(from, to));
  }

  /** Cuts the directed link `from` → `to`. */
  block(from: NodeId, to: NodeId): void {
    this.#blocked.add(linkKey(from, to));
  }

  /** Cuts every link between the groups (both directions); links inside a group stay up. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.block(a, b);
      }
    }
  }

  /** Restores every link (fault knobs are left as they are). */
  heal(): void {
    this.#blocked.clear();
  }

  /** The cut links as `a>b`, sorted (for traces). */
  describeCuts(): string {
    return [...this.#blocked].sort().join(" ") || "none";
  }

  /** Decides the fate of one message sent now from `from` to `to`. */
  route(from: NodeId, to: NodeId): Delivery {
    if (this.isBlocked(from, to)) return { kind: "blocked" };
    const q = this.quality;
    if (q.lossRate > 0 && this.#random() < q.lossRate) return { kind: "lost" };
    const first = this.#delay();
    if (q.duplicateRate > 0 && this.#random() < q.duplicateRate) {
      return { kind: "deliver", delaysMs: [first, this.#delay()] };
    }
    return { kind: "deliver", delaysMs: [first] };
  }

  /** One delay draw from the current quality, without loss or duplication. */
  #delay(): number {
    const q = this.quality;
    let delay = q.delayMinMs + this.#random() * (q.delayMaxMs - q.delayMinMs);
    if (q.spikeRate > 0 && this.#random() < q.spikeRate) delay += this.#random() * q.spikeMaxMs;
    return delay;
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
