/**
 * The simulated cluster: nodes, the network between them, one seeded random generator, a
 * simulated clock in ms and the agenda of events. It is the {@linkcode NodeWorld} every
 * {@linkcode SimNode} talks to: it routes their messages through the {@linkcode SimNetwork},
 * transfers snapshots beside snapshot messages, owns the safety and read checkers, records the
 * trace, and keeps the committed membership (from the first apply of each conf change entry),
 * stopping nodes once their removal commits.
 *
 * Everything is deterministic: the only chance is `random`, events at the same time run in the
 * order they were scheduled, and nothing reads the wall clock.
 *
 * @module
 */

import { applyConfChange, decodeConfChange } from "../raft/conf_change.ts";
import type {
  Entry,
  Membership,
  Message,
  NodeId,
  RaftConfig,
  RaftTestHooks,
} from "../raft/types.ts";
import { EntryType } from "../raft/types.ts";
import { createPrng, type Random } from "../util/prng.ts";
import { EventQueue } from "./event_queue.ts";
import { ReadChecker } from "./linearizability.ts";
import { type LinkQuality, SimNetwork } from "./network.ts";
import type { WriteCommand } from "./register_state.ts";
import { SafetyChecker } from "./safety_checker.ts";
import type { StoredSnapshot } from "./sim_disk.ts";
import { type NodeWorld, SimNode } from "./sim_node.ts";
import { Trace } from "./trace.ts";
import type { Violation } from "./violation.ts";

/** How a cluster is built. */
export interface SimClusterOptions {
  readonly seed: number;
  /** Every node id the run may use; the first `voters` form the bootstrap membership. */
  readonly nodeIds: readonly NodeId[];
  readonly voters: number;
  /** Each node ticks every `tickMs` simulated milliseconds. */
  readonly tickMs: number;
  /** The core's tunables (the id is filled in per node). */
  readonly raft: Omit<RaftConfig, "id">;
  readonly snapshotEntries: number;
  readonly links: LinkQuality;
  readonly testHooks?: RaftTestHooks;
  /** Receives every trace line (`--verbose`). */
  readonly traceSink?: (line: string) => void;
}

type SimEvent =
  | { readonly kind: "tick"; readonly node: SimNode; readonly incarnation: number }
  | {
    readonly kind: "deliver";
    readonly message: Message;
    readonly snapshot: StoredSnapshot | null;
    /** For snapshot messages: the sender's incarnation to report the transfer to. */
    readonly senderIncarnation: number;
    readonly report: boolean;
  }
  | { readonly kind: "action"; readonly label: string; readonly run: () => void };

/** Counters of what a run did, so tests can tell real work from a vacuous pass. */
export interface ClusterCounters {
  messagesSent: number;
  messagesDelivered: number;
  messagesDropped: number;
  snapshotsSent: number;
  confChangesCommitted: number;
}

/** A simulated cluster and its event loop. */
export class SimCluster implements NodeWorld {
  readonly random: Random;
  readonly checker = new SafetyChecker();
  readonly reads = new ReadChecker();
  readonly network: SimNetwork;
  readonly traceLog: Trace;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly counters: ClusterCounters = {
    messagesSent: 0,
    messagesDelivered: 0,
    messagesDropped: 0,
    snapshotsSent: 0,
    confChangesCommitted: 0,
  };
  readonly options: SimClusterOptions;
  readonly bootstrap: Membership;
  #queue = new EventQueue<SimEvent>();
  #now = 0;
  #steps = 0;
  #clock = 0;
  #violation: Violation | null = null;
  #appliedMax = 0;
  #membership: Membership;
  /** Nodes whose removal committed: stopped, and not restarted unless re-added. */
  readonly #decommissioned = new Set<NodeId>();
  /** See {@linkcode NodeWorld.tornTermChangeRate}; 0 once the network heals. */
  tornTermChangeRate = 0;
  /** Called after the committed membership changes. */
  onMembershipChange: ((previous: Membership, next: Membership) => void) | null = null;
  /** Called when a node wins an election, before its first Ready as leader sends anything. */
  onNewLeader: ((node: SimNode, term: number) => void) | null = null;
  /** Called when a leader's commit index advances (see {@linkcode NodeWorld.leaderCommitted}). */
  onLeaderCommit:
    | ((
      node: SimNode,
      term: number,
      commit: number,
      commitTerm: number | undefined,
      first: boolean,
    ) => void)
    | null = null;

  constructor(options: SimClusterOptions) {
    this.options = options;
    this.random = createPrng(options.seed);
    this.network = new SimNetwork(this.random, options.links);
    this.traceLog = new Trace({ keepLines: 30, sink: options.traceSink });
    this.bootstrap = {
      members: options.nodeIds.slice(0, options.voters).map((id) => ({
        id,
        address: `sim://${id}`,
        voter: true,
      })).sort((a, b) => (a.id < b.id ? -1 : 1)),
    };
    this.#membership = this.bootstrap;
    for (const id of options.nodeIds) {
      this.nodes.set(
        id,
        new SimNode(this, {
          config: { ...options.raft, id },
          bootstrap: this.bootstrap,
          snapshotEntries: options.snapshotEntries,
          testHooks: options.testHooks,
        }),
      );
    }
  }

  /** Simulated time in ms. */
  get now(): number {
    return this.#now;
  }

  /** Events processed so far. */
  get steps(): number {
    return this.#steps;
  }

  /** The first broken invariant, or null. */
  get violation(): Violation | null {
    return this.#violation;
  }

  /** The membership as of the last committed (first applied) conf change. */
  get membership(): Membership {
    return this.#membership;
  }

  /** Whether `id` was removed and stopped, and not re-added since. */
  isDecommissioned(id: NodeId): boolean {
    return this.#decommissioned.has(id);
  }

  /** A strictly increasing logical time for client histories (exact real-time order). */
  clock(): number {
    return ++this.#clock;
  }

  /** The node with `id` (which must exist). */
  node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`Cannot find simulated node "${id}"`);
    return node;
  }

  /** Live nodes, in id order. */
  liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((node) => node.alive);
  }

  /** The live node that believes it leads the highest term, or null. */
  leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.nodes.values()) {
      if (node.alive && node.role === "leader" && (best === null || node.term > best.term)) {
        best = node;
      }
    }
    return best;
  }

  // ---- NodeWorld -------------------------------------------------------------------------

  trace(node: NodeId, text: string): void {
    this.traceLog.record(this.#now, `${node}: ${text}`);
  }

  fail(problem: Violation): void {
    if (this.#violation !== null) return;
    this.#violation = problem;
    this.traceLog.record(this.#now, `VIOLATION ${problem.invariant}: ${problem.detail}`);
  }

  send(from: SimNode, message: Message, snapshot: StoredSnapshot | null): void {
    this.counters.messagesSent++;
    const isSnapshot = message.type === "snapshot";
    if (isSnapshot) this.counters.snapshotsSent++;
    const fate = this.network.route(message.from, message.to);
    if (fate.kind !== "deliver") {
      this.counters.messagesDropped++;
      this.traceLog.record(
        this.#now,
        `drop ${describeMessage(message)} (${fate.kind})`,
      );
      const incarnation = from.incarnation;
      if (isSnapshot) {
        this.#reportSnapshotLater(from, incarnation, message.to, false, this.#lossTimeoutMs());
      }
      if (fate.kind === "blocked" && (isSnapshot || message.type === "append")) {
        // A real transport sees the connection fail; tell the core so it can back off.
        this.after(1, "unreachable", () => {
          if (from.incarnation === incarnation) from.reportUnreachable(message.to);
        });
      }
      return;
    }
    fate.delaysMs.forEach((delay, copy) => {
      // Snapshots take longer than a message: the bytes stream beside it.
      const extra = isSnapshot ? 5 + this.random() * 20 : 0;
      this.#queue.push(this.#now + delay + extra, {
        kind: "deliver",
        message,
        snapshot,
        senderIncarnation: from.incarnation,
        report: isSnapshot && copy === 0,
      });
    });
  }

  applied(node: SimNode, entry: Entry, _write: WriteCommand | null): void {
    if (entry.index <= this.#appliedMax) return;
    // The first apply of an index anywhere: it is committed, in index order.
    this.#appliedMax = entry.index;
    if (entry.type !== EntryType.ConfChange) return;
    const change = decodeConfChange(entry.data);
    if (change === null) return;
    const previous = this.#membership;
    const next = applyConfChange(previous, change);
    if (typeof next === "string") {
      this.traceLog.record(this.#now, `conf change ${entry.index} is a no-op: ${next}`);
      return;
    }
    this.#membership = next;
    this.counters.confChangesCommitted++;
    this.traceLog.record(
      this.#now,
      `committed membership @${entry.index} (applied first by ${node.id}): ` +
        describeMembership(next),
    );
    for (const member of next.members) {
      // A member again (re-added while its stop was pending): it must run.
      if (!this.#decommissioned.has(member.id)) continue;
      this.#decommissioned.delete(member.id);
      this.after(this.random() * 100, "start re-added node", () => this.startNode(member.id));
    }
    for (const member of previous.members) {
      if (next.members.some((m) => m.id === member.id)) continue;
      this.#decommissioned.add(member.id);
      // The removed process keeps running a little, as an operator would take a moment.
      this.after(this.random() * 300, "stop removed node", () => {
        const removed = this.node(member.id);
        if (this.#decommissioned.has(member.id) && removed.alive) {
          removed.crash("stopped: removed from the cluster");
        }
      });
    }
    this.onMembershipChange?.(previous, next);
  }

  restartLater(node: SimNode): void {
    this.after(20 + this.random() * 480, "restart", () => {
      if (!node.alive && !this.#decommissioned.has(node.id)) this.startNode(node.id);
    });
  }

  becameLeader(node: SimNode, term: number): void {
    this.onNewLeader?.(node, term);
  }

  leaderCommitted(
    node: SimNode,
    term: number,
    commit: number,
    commitTerm: number | undefined,
    first: boolean,
  ): void {
    this.onLeaderCommit?.(node, term, commit, commitTerm, first);
  }

  // ---- control -----------------------------------------------------------------------------

  /** Schedules `run` after `delayMs` of simulated time. */
  after(delayMs: number, label: string, run: () => void): void {
    this.#queue.push(this.#now + delayMs, { kind: "action", label, run });
  }

  /** Starts (or restarts) node `id` from its disk and schedules its ticks. */
  startNode(id: NodeId): void {
    const node = this.node(id);
    this.#decommissioned.delete(id);
    if (node.alive) return;
    node.start(createPrng(Math.floor(this.random() * 0x1_0000_0000)));
    if (!node.alive) return;
    const incarnation = node.incarnation;
    // A random phase so that nodes do not tick in lockstep.
    this.#queue.push(this.#now + this.random() * this.options.tickMs, {
      kind: "tick",
      node,
      incarnation,
    });
  }

  /** Runs events until `done()` holds, time passes `untilMs`, or an invariant breaks. */
  runUntil(done: () => boolean, untilMs: number): boolean {
    while (this.#violation === null) {
      if (done()) return true;
      const time = this.#queue.peekTime();
      if (time === undefined || time > untilMs) {
        this.#now = Math.max(this.#now, untilMs);
        return done();
      }
      const event = this.#queue.pop()!;
      this.#now = event.time;
      this.#steps++;
      this.#dispatch(event.value);
    }
    return false;
  }

  #dispatch(event: SimEvent): void {
    switch (event.kind) {
      case "tick": {
        const node = event.node;
        if (!node.alive || node.incarnation !== event.incarnation) return;
        node.tick();
        if (node.alive && node.incarnation === event.incarnation) {
          this.#queue.push(this.#now + this.options.tickMs, event);
        }
        return;
      }
      case "deliver": {
        const { message, snapshot } = event;
        const to = this.nodes.get(message.to);
        const sender = this.nodes.get(message.from);
        const arrived = to !== undefined && to.alive &&
          !this.network.isBlocked(message.from, message.to);
        if (!arrived) {
          this.counters.messagesDropped++;
          this.traceLog.record(
            this.#now,
            `lost ${describeMessage(message)} (receiver down or cut)`,
          );
          if (event.report && sender !== undefined) {
            this.#reportSnapshotLater(sender, event.senderIncarnation, message.to, false, 0);
          }
          return;
        }
        this.counters.messagesDelivered++;
        this.traceLog.record(this.#now, describeMessage(message));
        to.receive(message, snapshot);
        if (event.report && sender !== undefined) {
          const back = this.network.quality.delayMinMs;
          this.#reportSnapshotLater(sender, event.senderIncarnation, message.to, true, back);
        }
        return;
      }
      case "action":
        event.run();
        return;
    }
  }

  #reportSnapshotLater(
    sender: SimNode,
    incarnation: number,
    to: NodeId,
    ok: boolean,
    delayMs: number,
  ): void {
    this.after(delayMs, "snapshot report", () => {
      if (sender.alive && sender.incarnation === incarnation) {
        this.traceLog.record(
          this.#now,
          `${sender.id}: snapshot to ${to} ${ok ? "done" : "failed"}`,
        );
        sender.reportSnapshot(to, ok);
      }
    });
  }

  #lossTimeoutMs(): number {
    return 2 * this.network.quality.delayMaxMs + 20;
  }
}

/** A one-line description of a message for traces. */
export function describeMessage(m: Message): string {
  const head = `${m.from}→${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case "vote":
      return `${head}${m.preVote ? " pre" : ""}${m.transfer ? " transfer" : ""} last ` +
        `${m.lastLogIndex}/${m.lastLogTerm}`;
    case "vote_response":
      return `${head}${m.preVote ? " pre" : ""} ${m.granted ? "granted" : "rejected"}`;
    case "append": {
      const last = m.entries.length > 0 ? m.entries[m.entries.length - 1]! : null;
      return `${head} prev ${m.prevIndex}/${m.prevTerm} ` +
        (last === null ? "" : `+${m.entries.length} → ${last.index}/${last.term} `) +
        `commit ${m.commit}`;
    }
    case "append_response":
      return `${head} ${m.success ? "ok" : "reject"} ${m.index}` +
        (m.success ? "" : ` hint ${m.hintIndex}/${m.hintTerm}`);
    case "heartbeat":
      return `${head} commit ${m.commit} seq ${m.readSeq}`;
    case "heartbeat_response":
      return `${head} seq ${m.readSeq}`;
    case "snapshot":
      return `${head} ${m.snapshot.index}/${m.snapshot.term}`;
    case "timeout_now":
      return head;
    case "read_index":
      return `${head} ${m.requestId}`;
    case "read_index_response":
      return `${head} ${m.requestId} @${m.index}`;
  }
}

/** Members as `n1 n2 n3~` (a tilde marks learners). */
export function describeMembership(membership: Membership): string {
  return membership.members.map((m) => (m.voter ? m.id : `${m.id}~`)).join(" ");
}
