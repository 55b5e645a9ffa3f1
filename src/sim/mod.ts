/**
 * The seeded cluster simulator: run seeds in-process with {@linkcode runSeed}, or build a
 * {@linkcode SimCluster} directly (the election benchmark does).
 *
 * @module
 */

export * from "./client_workload.ts";
export * from "./event_queue.ts";
export * from "./linearizability.ts";
export * from "./nemesis.ts";
export * from "./network.ts";
export * from "./register_state.ts";
export * from "./run_seed.ts";
export * from "./safety_checker.ts";
export * from "./scenario.ts";
export * from "./sim_cluster.ts";
export * from "./sim_disk.ts";
export * from "./sim_node.ts";
export * from "./sim_report.ts";
export * from "./trace.ts";
export * from "./violation.ts";
