/**
 * Benchmark dispatcher: `deno task bench <name> [args...]`. Each benchmark lives in `bench/`,
 * exports `run(args)`, measures its reference (etcd, or the machine's own primitive) in the
 * same run, and reports ratios. Run without a name to list them.
 *
 * @module
 */

interface BenchModule {
  run(args: string[]): Promise<void>;
}

const BENCHES: Record<string, { load: () => Promise<BenchModule>; about: string }> = {
  election: {
    load: () => import("../bench/election_bench.ts"),
    about: "simulated leader crash → new leader, 1000 trials (Raft paper Figure 16)",
  },
  backup: {
    load: () => import("../bench/backup_bench.ts"),
    about: "archive write and verify MB/s, plain and gzip, beside SHA-256 and zlib rates",
  },
  restore: {
    load: () => import("../bench/backup_restore_bench.ts"),
    about: "backup/verify/restore MB/s on real processes, RSS, write p99 during a backup, vs etcd",
  },
  cluster: {
    load: () => import("../bench/cluster_bench.ts"),
    about: "three-node edgeraft vs etcd: sequential put, 16/64 writers, reads, leader kill",
  },
  log: {
    load: () => import("../bench/log_append_bench.ts"),
    about: "log append + group commit vs raw fdatasync, 100 B and 4 KiB, 1/16/256 proposers",
  },
};

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const bench = name === undefined ? undefined : BENCHES[name];
  if (bench === undefined) {
    if (name !== undefined) console.error(`bench: unknown benchmark "${name}"`);
    console.log("usage: deno task bench <name> [args...]\n");
    for (const [key, value] of Object.entries(BENCHES)) {
      console.log(`  ${key.padEnd(10)} ${value.about}`);
    }
    return name === undefined ? 0 : 2;
  }
  await (await bench.load()).run(rest);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
