/**
 * Randomized runs of a five-node cluster with message loss, duplication, reordering, delay,
 * partitions, crashes, restarts, snapshots and membership changes, each replayable from its
 * seed. The harness checks state machine safety (§5.4.3) on every apply; this test also
 * checks election safety (§5.2: at most one leader per term), that commit never moves back,
 * and that the healed cluster converges (liveness).
 */

import assert from "node:assert/strict";
import { Cluster } from "./harness.ts";
import type { Message, NodeId } from "../../src/raft/types.ts";
import { createPrng, randomInt } from "../../src/util/prng.ts";

const ids = ["a", "b", "c", "d", "e"];

function run(seed: number): void {
  const random = createPrng(seed * 7919);
  // Flow-control limits vary by seed so that small windows and batches are exercised too.
  const cluster = new Cluster({
    voters: ids,
    seed,
    config: {
      inflightAppendsMax: 1 + (seed % 4),
      appendBytesMax: 1 + (seed % 20),
      applyBytesMax: 1 + (seed % 7),
    },
  });
  const leaderOfTerm = new Map<number, NodeId>();
  const commits = new Map<NodeId, number>();
  let delayed: Message[] = [];
  let proposals = 0;

  const observe = () => {
    for (const node of cluster.nodes.values()) {
      const status = node.raft.status();
      if (node.up && status.role === "leader") {
        const other = leaderOfTerm.get(status.term);
        assert.ok(other === undefined || other === node.id, `seed ${seed}: two leaders`);
        leaderOfTerm.set(status.term, node.id);
      }
      // The persisted commit never moves back, across restarts too.
      const persisted = node.storage.hardState.commit;
      assert.ok(persisted >= (commits.get(node.id) ?? 0), `seed ${seed}: commit moved back`);
      commits.set(node.id, persisted);
    }
  };

  const deliverChaotically = () => {
    cluster.processAll();
    const batch = [...cluster.queue.splice(0), ...delayed];
    delayed = [];
    for (let i = batch.length - 1; i > 0; i--) {
      const j = randomInt(random, 0, i);
      [batch[i], batch[j]] = [batch[j]!, batch[i]!];
    }
    for (const m of batch) {
      const roll = random();
      if (roll < 0.1) {
        cluster.drop(m);
        continue;
      }
      if (roll < 0.2) {
        delayed.push(m);
        continue;
      }
      cluster.deliver(m);
      if (roll > 0.97) cluster.deliver(m); // duplicated
    }
    cluster.processAll();
  };

  let undoPartition: (() => void) | null = null;
  for (let step = 0; step < 600; step++) {
    for (const node of cluster.nodes.values()) if (node.up) node.raft.tick();
    for (let i = 0; i < 3; i++) deliverChaotically();
    observe();

    const [leader] = cluster.leaders();
    if (leader !== undefined && random() < 0.5) {
      const result = cluster.propose(leader, `s${seed}-${proposals++}`);
      if (!result.ok) assert.ok(result.reason !== "too_large");
    }
    if (step % 50 === 25) {
      undoPartition?.();
      undoPartition = random() < 0.6
        ? cluster.isolate(ids[randomInt(random, 0, ids.length - 1)]!)
        : null;
    }
    // At most one node is down at a time; it comes back after about 20 steps.
    const down = ids.filter((id) => !cluster.node(id).up);
    if (down.length > 0 && random() < 0.05) cluster.restart(down[0]!);
    else if (down.length === 0 && random() < 0.02) {
      cluster.crash(ids[randomInt(random, 0, ids.length - 1)]!);
    }
    if (random() < 0.02) {
      const node = cluster.node(ids[randomInt(random, 0, ids.length - 1)]!);
      if (node.up && node.appliedIndex > (node.storage.snapshot?.index ?? 0)) {
        cluster.takeSnapshot(node.id);
      }
    }
    if (leader !== undefined && random() < 0.01) {
      // Toggle e between voter and removed, one change at a time.
      const raft = cluster.raft(leader);
      const inConfig = raft.status().membership.members.some((m) => m.id === "e");
      if (leader !== "e") {
        raft.proposeConfChange(
          inConfig ? { kind: "remove", id: "e" } : { kind: "add_voter", id: "e", address: "e" },
        );
      }
    }
  }

  // Healed phase: everything restarts and the network is reliable.
  undoPartition?.();
  cluster.heal();
  for (const id of ids) if (!cluster.node(id).up) cluster.restart(id);
  for (const m of delayed) cluster.deliver(m);
  cluster.tickAll(80);
  observe();
  const leaders = cluster.leaders();
  assert.equal(leaders.length, 1, `seed ${seed}: leaders ${leaders}`);
  const leader = cluster.raft(leaders[0]!);
  assert.ok(cluster.propose(leaders[0]!, "final").ok, `seed ${seed}: final proposal`);
  cluster.tickAll(5);
  const members = leader.status().membership.members.map((m) => m.id);
  const expected = cluster.node(leaders[0]!).stateMachine;
  assert.equal(expected.at(-1), "final");
  for (const id of members) {
    assert.deepEqual(cluster.node(id).stateMachine, expected, `seed ${seed}: ${id} diverged`);
  }
}

Deno.test("randomized faults keep one leader per term, agree on applied entries, and heal", () => {
  for (let seed = 1; seed <= 40; seed++) run(seed);
});
