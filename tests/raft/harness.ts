/**
 * A tiny in-memory cluster for Raft core tests: each node is a {@linkcode Raft} plus a fake
 * storage and state machine, and a FIFO network delivers messages between them.
 *
 * The driver loop follows the Ready contract (types.ts) exactly: send `messages`, install the
 * snapshot, persist entries and hard state, send `messagesAfterPersist`, apply committed
 * entries, advance. Every apply is checked against every other node's applied entry at the
 * same index (state machine safety, Raft §5.4.3), unless a test records violations instead.
 *
 * @module
 */

import { Raft } from "../../src/raft/raft.ts";
import { defaultRaftConfig } from "../../src/raft/config.ts";
import type {
  DroppedRead,
  Entry,
  HardState,
  Membership,
  Message,
  NodeId,
  RaftBootState,
  RaftConfig,
  RaftTestHooks,
  ReadState,
  Ready,
  SnapshotMeta,
} from "../../src/raft/types.ts";
import { EntryType, JOINING_LOST_AFTER } from "../../src/raft/types.ts";
import { createPrng } from "../../src/util/prng.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a test command. */
export function cmd(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A voter-only membership of `ids`. */
export function membershipOf(ids: readonly NodeId[], learners: readonly NodeId[] = []): Membership {
  const members = [
    ...ids.map((id) => ({ id, address: `http://${id}`, voter: true })),
    ...learners.map((id) => ({ id, address: `http://${id}`, voter: false })),
  ];
  members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { members };
}

/** Builds entries 1..n from a list of terms (Raft paper figures list logs by term). */
export function entriesFromTerms(terms: readonly number[], start = 1): Entry[] {
  return terms.map((term, i) => ({
    index: start + i,
    term,
    type: EntryType.Normal,
    data: cmd(`e${start + i}t${term}`),
  }));
}

/** A test configuration: small timeouts, generous limits. */
export function testConfig(id: NodeId, overrides: Partial<RaftConfig> = {}): RaftConfig {
  return {
    ...defaultRaftConfig(id),
    electionTicks: 10,
    heartbeatTicks: 1,
    ...overrides,
  };
}

/** What a node's fake disk holds. */
export interface Storage {
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  /** The state machine image stored with the snapshot: applied commands up to its index. */
  snapshotData: string[];
  entries: Entry[];
  membership: Membership;
  /** The no-vote marker (`RaftBootState.lostAfter`): JOINING_LOST_AFTER for a joining node. */
  lostAfter: number;
}

/** A node of the test cluster. */
export interface TestNode {
  readonly id: NodeId;
  raft: Raft;
  storage: Storage;
  config: RaftConfig;
  /** Applied commands (Normal entries' data) in order; the state machine. */
  stateMachine: string[];
  /** Every entry applied, by index (survives restarts, like the checker's history). */
  applied: Map<number, Entry>;
  appliedIndex: number;
  readStates: ReadState[];
  droppedReads: DroppedRead[];
  /** Every Ready this node produced, for contract checks. */
  readies: Ready[];
  /** A snapshot image received from the leader, waiting for the core to accept it. */
  incomingSnapshot: string[] | null;
  up: boolean;
}

/** Options of {@linkcode Cluster}. */
export interface ClusterOptions {
  /** Voters at boot. */
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  /** Nodes that start outside the configuration (they may join later). */
  readonly outsiders?: readonly NodeId[];
  readonly config?: Partial<RaftConfig>;
  readonly hooks?: RaftTestHooks;
  readonly seed?: number;
  /** Per-node boot logs (entries after index 0) and terms, for paper scenarios. */
  readonly logs?: Readonly<Record<NodeId, { entries: Entry[]; term: number; commit?: number }>>;
  /** When true, conflicting applies are recorded in `violations` instead of thrown. */
  readonly recordViolations?: boolean;
}

/** Decides a message's fate in flight: deliver it (possibly changed) or drop it (null). */
export type Filter = (m: Message) => Message | null;

/** The test cluster. */
export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, FIFO. */
  queue: Message[] = [];
  /** Every message delivered (after filters), for assertions. */
  delivered: Message[] = [];
  filters: Filter[] = [];
  readonly violations: string[] = [];
  readonly #options: ClusterOptions;
  readonly #random: () => number;
  /** The cluster-wide record of the entry applied at each index, for safety checks. */
  readonly #appliedAt = new Map<number, Entry>();

  constructor(options: ClusterOptions) {
    this.#options = options;
    this.#random = createPrng(options.seed ?? 1);
    const membership = membershipOf(options.voters, options.learners ?? []);
    const all = [...options.voters, ...(options.learners ?? []), ...(options.outsiders ?? [])];
    for (const id of all) {
      const scenario = options.logs?.[id];
      const storage: Storage = {
        hardState: { term: scenario?.term ?? 0, vote: null, commit: scenario?.commit ?? 0 },
        snapshot: null,
        snapshotData: [],
        entries: scenario?.entries.slice() ?? [],
        // A joining node boots with the cluster's configuration, which does not list it.
        membership,
        lostAfter: 0,
      };
      const config = testConfig(id, options.config);
      const node: TestNode = {
        id,
        raft: undefined as unknown as Raft,
        storage,
        config,
        stateMachine: [],
        applied: new Map(),
        appliedIndex: 0,
        readStates: [],
        droppedReads: [],
        readies: [],
        incomingSnapshot: null,
        up: true,
      };
      this.nodes.set(id, node);
      this.#boot(node);
    }
  }

  /** The node `id`. */
  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** The Raft core of node `id`. */
  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  /** The current leaders among nodes that are up. */
  leaders(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => n.up && n.raft.status().role === "leader")
      .map((n) => n.id);
  }

  /** Runs one node's Ready loop until it is idle. */
  process(id: NodeId): void {
    const node = this.node(id);
    if (!node.up) return;
    for (let rd = node.raft.ready(); rd !== null; rd = node.raft.ready()) {
      this.handleReady(id, rd);
    }
  }

  /**
   * Carries out one Ready of node `id` as the driver would, ending with advance. With
   * `send: false` the test has delivered `rd.messages` itself.
   */
  handleReady(id: NodeId, rd: Ready, options: { send?: boolean } = {}): void {
    const node = this.node(id);
    node.readies.push(rd);
    // 1. messages that need no durability
    if (options.send !== false) this.queue.push(...rd.messages);
    // 2. snapshot
    if (rd.snapshot !== null) {
      const image = node.incomingSnapshot;
      if (image === null) throw new Error(`${id} installs a snapshot it never received`);
      node.storage.snapshot = rd.snapshot;
      node.storage.snapshotData = image.slice();
      node.storage.entries = [];
      node.stateMachine = image.slice();
      node.appliedIndex = rd.snapshot.index;
      node.incomingSnapshot = null;
    }
    // 3. entries and hard state
    const first = rd.entries[0];
    if (first !== undefined) {
      const keep = node.storage.entries.filter((e) => e.index < first.index);
      node.storage.entries = [...keep, ...rd.entries];
    }
    if (rd.hardState !== null) {
      if (rd.hardState.commit < node.storage.hardState.commit) {
        throw new Error(`${id}: persisted commit moved back`);
      }
      node.storage.hardState = rd.hardState;
    }
    // A joining node that caught up clears its marker durably (as the node driver does).
    if (node.storage.lostAfter === JOINING_LOST_AFTER && !node.raft.status().joining) {
      node.storage.lostAfter = 0;
    }
    // Contract: nothing is applied that is not durable once this batch is persisted.
    const durable = node.storage.entries[node.storage.entries.length - 1]?.index ??
      node.storage.snapshot?.index ?? 0;
    for (const entry of rd.committedEntries) {
      if (entry.index > durable || entry.index > node.storage.hardState.commit) {
        throw new Error(`${id} applies ${entry.index} beyond its durable log or commit`);
      }
    }
    // 4. messages that promise durability
    this.queue.push(...rd.messagesAfterPersist);
    // 5. apply
    for (const entry of rd.committedEntries) this.#apply(node, entry);
    node.readStates.push(...rd.readStates);
    node.droppedReads.push(...rd.droppedReads);
    // 6. advance
    node.raft.advance(rd);
  }

  /** Processes every node's Ready once. */
  processAll(): void {
    for (const id of this.nodes.keys()) this.process(id);
  }

  /** Delivers one message (through the filters). Returns whether it arrived. */
  deliver(m: Message): boolean {
    let message: Message | null = m;
    for (const filter of this.filters) {
      if (message === null) break;
      message = filter(message);
    }
    const to = this.nodes.get(m.to);
    const from = this.nodes.get(m.from);
    if (message === null || to === undefined || !to.up || from === undefined || !from.up) {
      this.drop(m);
      return false;
    }
    if (message.type === "snapshot") {
      // The driver streams the sender's stored snapshot image beside the message.
      const image = from.storage.snapshot?.index === message.snapshot.index
        ? from.storage.snapshotData
        : null;
      if (image === null) throw new Error(`${m.from} sent a snapshot it does not store`);
      to.incomingSnapshot = image.slice();
      from.raft.reportSnapshot(m.to, true);
    }
    this.delivered.push(message);
    to.raft.step(message);
    return true;
  }

  /** Loses `m`. A driver learns that a snapshot stream failed and reports it. */
  drop(m: Message): void {
    const from = this.nodes.get(m.from);
    if (m.type === "snapshot" && from?.up === true) from.raft.reportSnapshot(m.to, false);
  }

  /**
   * Processes readies and delivers messages until nothing moves (or `rounds` runs out).
   * Returns the number of messages delivered.
   */
  stabilize(rounds = 1000): number {
    let count = 0;
    for (let i = 0; i < rounds; i++) {
      this.processAll();
      if (this.queue.length === 0) return count;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) if (this.deliver(m)) count++;
    }
    throw new Error("cluster did not stabilize");
  }

  /** Ticks node `id` `n` times, processing and delivering after each tick. */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      if (this.node(id).up) this.raft(id).tick();
      this.stabilize();
    }
  }

  /** Ticks every node that is up `n` times, stabilizing after each round. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) if (node.up) node.raft.tick();
      this.stabilize();
    }
  }

  /** Makes `id` leader by ticking only it until it wins (the others must be reachable). */
  elect(id: NodeId): void {
    const config = this.node(id).config;
    for (let i = 0; i < 4 * config.electionTicks; i++) {
      this.tick(id);
      if (this.raft(id).status().role === "leader") {
        this.stabilize();
        return;
      }
    }
    throw new Error(`${id} did not become leader`);
  }

  /** Drops every message to or from `id`. Returns a function that undoes it. */
  isolate(id: NodeId): () => void {
    const filter: Filter = (m) => (m.from === id || m.to === id ? null : m);
    this.filters.push(filter);
    return () => {
      this.filters = this.filters.filter((f) => f !== filter);
    };
  }

  /** Drops messages between `a` and `b` (both directions). */
  cut(a: NodeId, b: NodeId): () => void {
    const filter: Filter = (m) =>
      (m.from === a && m.to === b) || (m.from === b && m.to === a) ? null : m;
    this.filters.push(filter);
    return () => {
      this.filters = this.filters.filter((f) => f !== filter);
    };
  }

  /** Removes every filter. */
  heal(): void {
    this.filters = [];
  }

  /** Crashes node `id`: everything not persisted is lost, messages to it are dropped. */
  crash(id: NodeId): void {
    const node = this.node(id);
    node.up = false;
    const lost = this.queue.filter((m) => m.to === id || m.from === id);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    for (const m of lost) this.drop(m);
  }

  /**
   * Replaces node `id` by one with an empty disk and the same id, started with `--join`: a
   * crash, the disk wiped (term, vote and log forgotten), a restart with the joining marker.
   * With `joining: false` it restarts as a plain empty node (what `--join` prevents).
   */
  wipe(id: NodeId, options: { joining?: boolean } = {}): void {
    const node = this.node(id);
    this.crash(id);
    node.storage = {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: null,
      snapshotData: [],
      entries: [],
      membership: node.storage.membership,
      lostAfter: options.joining === false ? 0 : JOINING_LOST_AFTER,
    };
    node.stateMachine = [];
    node.applied = new Map();
    node.appliedIndex = 0;
    this.restart(id);
  }

  /** Restarts node `id` from its storage. */
  restart(id: NodeId): void {
    const node = this.node(id);
    node.up = true;
    this.#boot(node);
  }

  /** Proposes `text` on `id` (which must be leader) and returns the result. */
  propose(id: NodeId, text: string): ReturnType<Raft["propose"]> {
    return this.raft(id).propose(cmd(text));
  }

  /** The driver takes a snapshot of `id`'s state machine at its applied index. */
  takeSnapshot(id: NodeId): SnapshotMeta {
    const node = this.node(id);
    const index = node.appliedIndex;
    const entry = node.applied.get(index);
    const term = entry?.term ?? node.storage.snapshot?.term ?? 0;
    const meta: SnapshotMeta = { index, term, membership: node.raft.membershipAt(index) };
    node.storage.snapshot = meta;
    node.storage.snapshotData = node.stateMachine.slice();
    node.storage.entries = node.storage.entries.filter((e) => e.index > index);
    node.raft.snapshotTaken(meta);
    return meta;
  }

  #boot(node: TestNode): void {
    const boot: RaftBootState = {
      hardState: node.storage.hardState,
      snapshot: node.storage.snapshot,
      entries: node.storage.entries.slice(),
      membership: node.storage.membership,
      applied: node.storage.snapshot?.index ?? 0,
      lostAfter: node.storage.lostAfter,
    };
    node.stateMachine = node.storage.snapshotData.slice();
    node.appliedIndex = boot.applied;
    node.incomingSnapshot = null;
    node.raft = new Raft(node.config, boot, {
      random: this.#random,
      testHooks: this.#options.hooks,
    });
  }

  #apply(node: TestNode, entry: Entry): void {
    if (entry.index !== node.appliedIndex + 1) {
      throw new Error(`${node.id} applies ${entry.index} after ${node.appliedIndex}`);
    }
    const other = this.#appliedAt.get(entry.index);
    if (other !== undefined && (other.term !== entry.term)) {
      const message =
        `${node.id} applied ${entry.index}@${entry.term}, another node ${other.index}@${other.term}`;
      if (this.#options.recordViolations === true) this.violations.push(message);
      else throw new Error(message);
    }
    this.#appliedAt.set(entry.index, entry);
    node.applied.set(entry.index, entry);
    node.appliedIndex = entry.index;
    if (entry.type === EntryType.Normal) node.stateMachine.push(decoder.decode(entry.data));
  }
}

/** Options of {@linkcode bootRaft}. */
export interface BootOptions {
  readonly voters?: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly entries?: Entry[];
  readonly term?: number;
  readonly vote?: NodeId | null;
  readonly commit?: number;
  readonly snapshot?: SnapshotMeta | null;
  readonly config?: Partial<RaftConfig>;
  readonly hooks?: RaftTestHooks;
  readonly seed?: number;
}

/** A single core for tests that drive messages by hand. */
export function bootRaft(id: NodeId, options: BootOptions = {}): Raft {
  const snapshot = options.snapshot ?? null;
  return new Raft(testConfig(id, options.config), {
    hardState: {
      term: options.term ?? 0,
      vote: options.vote ?? null,
      commit: options.commit ?? 0,
    },
    snapshot,
    entries: options.entries ?? [],
    membership: membershipOf(options.voters ?? ["a", "b", "c"], options.learners ?? []),
    applied: snapshot?.index ?? 0,
  }, { random: createPrng(options.seed ?? 7), testHooks: options.hooks });
}

/** Calls ready() and advance() once, returning the Ready (which must exist). */
export function readyAndAdvance(raft: Raft): Ready {
  const rd = raft.ready();
  if (rd === null) throw new Error("expected a Ready");
  raft.advance(rd);
  return rd;
}

/** All messages of a Ready, in send order (before-persist first). */
export function allMessages(rd: Ready): Message[] {
  return [...rd.messages, ...rd.messagesAfterPersist];
}
