/**
 * Real processes, real HTTP: the key-value API of ../shared/DESIGN.md on a three-node cluster
 * (forwarding, linearizable and stale reads, listing, conditional writes under races, error
 * answers to malformed input, metrics and readiness, configuration refused at start-up).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Cluster,
  curl,
  delay,
  errorOf,
  freePort,
  get,
  list,
  NodeProcess,
  put,
  request,
  serveOnce,
  statusOf,
  waitFor,
  waitHealthy,
} from "./cluster_harness.ts";
import { importPeerKey, sha256Hex, signPeerRequest } from "../../src/transport/peer_auth.ts";
import { encodeBatch } from "../../src/transport/wire_codec.ts";

Deno.test("writes through every node are forwarded to the leader and read back everywhere", async () => {
  const cluster = await Cluster.create(3);
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const [n1, n2, n3] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];

    // A user's round trip with real curl: PUT through a follower, GET from another node.
    const follower = cluster.others(leader)[0]!;
    const other = cluster.nodes.find((n) => n !== leader && n !== follower)!;
    const putAnswer = await curl([
      "-X",
      "PUT",
      "--data-binary",
      "hello from curl",
      `${follower.url}/v1/kv/greeting`,
    ]);
    assert.equal(putAnswer.status, 200, putAnswer.body);
    const written = JSON.parse(putAnswer.body) as { key: string; revision: number };
    assert.equal(written.key, "greeting");
    assert.ok(Number.isInteger(written.revision) && written.revision > 0);
    assert.equal(putAnswer.headers.get("x-edgeraft-forwarded-to"), leader.id);
    const getAnswer = await curl([`${other.url}/v1/kv/greeting`]);
    assert.equal(getAnswer.status, 200);
    assert.equal(getAnswer.body, "hello from curl");
    assert.equal(getAnswer.headers.get("x-edgeraft-revision"), String(written.revision));

    // Write through each node in turn; read at once through the two others, linearizably
    // (the default): every acknowledged write is visible everywhere, revisions only grow.
    let lastRevision = written.revision;
    for (let i = 0; i < 30; i++) {
      const via = cluster.nodes[i % 3]!;
      const key = `round/${String(i).padStart(3, "0")}`;
      const w = await put(via.url, key, `value-${i}`);
      assert.equal(w.status, 200, JSON.stringify(w.body));
      const revision = w.body.revision as number;
      assert.ok(revision > lastRevision, `revision ${revision} after ${lastRevision}`);
      lastRevision = revision;
      for (const reader of cluster.nodes.filter((n) => n !== via)) {
        const r = await get(reader.url, key);
        assert.equal(r.status, 200, `${reader.id} after write via ${via.id}: ${r.text}`);
        assert.equal(r.text, `value-${i}`);
        assert.equal(r.revision, revision);
      }
    }

    // Stale reads: served from the node's applied state; they converge on every node, and
    // the leader's applied state already holds every acknowledged write.
    const staleLeader = await get(leader.url, "round/029", { query: "?consistency=stale" });
    assert.equal(staleLeader.status, 200);
    assert.equal(staleLeader.text, "value-29");
    for (const node of [n1, n2, n3]) {
      assert.ok(
        await waitFor(async () => {
          const r = await get(node.url, "round/029", { query: "?consistency=stale" });
          return r.status === 200 && r.text === "value-29" && r.revision === lastRevision;
        }, 5000),
        `${node.id} stale read never saw round/029`,
      );
    }
    const missing = await get(n2.url, "round/none", { query: "?consistency=stale" });
    assert.equal(missing.status, 404);
    assert.equal(errorOf(missing).code, "ERR_KEY_NOT_FOUND");
    const missingLinearizable = await get(n3.url, "round/none");
    assert.equal(missingLinearizable.status, 404);
    assert.equal(errorOf(missingLinearizable).code, "ERR_KEY_NOT_FOUND");

    // Listing: prefix, limit, after, values (base64 of the raw bytes).
    const binary = new Uint8Array([0, 1, 2, 250, 255]);
    for (const [key, value] of [["list/a", "A"], ["list/b", "B"], ["list/c", binary]] as const) {
      assert.equal((await put(n1.url, key, value)).status, 200);
    }
    assert.equal((await put(n2.url, "listx", "not under list/")).status, 200);
    const page1 = await list(n3.url, "prefix=list%2F&limit=2");
    assert.deepEqual(page1.items.map((i) => i.key), ["list/a", "list/b"]);
    assert.equal(page1.more, true);
    assert.ok(page1.items.every((i) => i.value === undefined && i.revision > 0));
    const page2 = await list(n2.url, "prefix=list%2F&limit=2&after=list%2Fb&values=true");
    assert.deepEqual(page2.items.map((i) => i.key), ["list/c"]);
    assert.equal(page2.more, false);
    const decoded = Uint8Array.from(atob(page2.items[0]!.value!), (c) => c.charCodeAt(0));
    assert.deepEqual(decoded, binary);
    const withValues = await list(leader.url, "prefix=list%2F&values=true&consistency=stale");
    assert.deepEqual(
      withValues.items.map((i) => [i.key, atob(i.value!)]),
      [["list/a", "A"], ["list/b", "B"], ["list/c", String.fromCharCode(...binary)]],
    );
    const everything = await list(n1.url, "limit=1000");
    assert.ok(everything.items.some((i) => i.key === "listx"));
    assert.equal(everything.items.filter((i) => i.key.startsWith("round/")).length, 30);

    // Delete through a follower; gone everywhere.
    const del = await request(`${follower.url}/v1/kv/list%2Fa`, { method: "DELETE" });
    assert.equal(del.status, 200, del.text);
    for (const node of cluster.nodes) assert.equal((await get(node.url, "list/a")).status, 404);
    const again = await request(`${other.url}/v1/kv/list%2Fa`, { method: "DELETE" });
    assert.equal(again.status, 404, again.text);
    assert.equal(errorOf(again).code, "ERR_KEY_NOT_FOUND");

    // Keys are percent-decoded UTF-8: spaces, slashes, "%" and non-ASCII round-trip.
    const odd = ["a b/c", "ünï/cødé ✓", "100%", "?x=1&y", "dir/./..", "tab\tkey"];
    for (const [i, key] of odd.entries()) {
      const w = await put(cluster.nodes[i % 3]!.url, `odd/${key}`, `v:${key}`);
      assert.equal(w.status, 200, JSON.stringify(w.body));
      assert.equal(w.body.key, `odd/${key}`);
    }
    const oddListed = await list(n2.url, "prefix=odd%2F&values=true");
    assert.deepEqual(
      oddListed.items.map((i) => i.key),
      odd.map((k) => `odd/${k}`).sort((a, b) => (a < b ? -1 : 1)),
    );
    for (const key of odd) {
      const r = await get(n3.url, `odd/${key}`);
      assert.equal(r.status, 200, key);
      assert.equal(r.text, `v:${key}`);
    }
    const head = await request(`${n1.url}/v1/kv/greeting`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
    assert.equal(head.headers.get("x-edgeraft-revision"), String(written.revision));

    // A value of exactly the default limit (1 MiB) through a follower: forwarded, replicated
    // in one entry larger than one append message's byte budget, read back everywhere.
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const bigWrite = await put(follower.url, "big", big);
    assert.equal(bigWrite.status, 200, JSON.stringify(bigWrite.body));
    for (const node of cluster.nodes) {
      const response = await fetch(`${node.url}/v1/kv/big`, {
        signal: AbortSignal.timeout(10_000),
      });
      const bytes = new Uint8Array(await response.arrayBuffer());
      assert.equal(response.status, 200);
      assert.equal(bytes.length, big.length, node.id);
      assert.deepEqual(bytes, big, node.id);
    }
    const tooBig = await put(follower.url, "big", new Uint8Array(1024 * 1024 + 1));
    assert.equal(tooBig.status, 413);
    assert.equal((tooBig.body.error as { code: string }).code, "ERR_VALUE_TOO_LARGE");

    // A request already forwarded once is never forwarded again (no loops).
    const looped = await request(`${follower.url}/v1/kv/loop`, {
      method: "PUT",
      body: "x",
      headers: { "x-edgeraft-forwarded-by": other.id },
    });
    assert.equal(looped.status, 503, looped.text);
    assert.equal(errorOf(looped).code, "ERR_NO_LEADER");
    assert.equal((await get(leader.url, "loop")).status, 404);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("concurrent conditional writes on one key: exactly one wins, the rest get 412", async () => {
  const cluster = await Cluster.create(3);
  try {
    await cluster.start();
    await cluster.waitLeader();
    const clients = 8;

    // Compare-and-set race: every client read revision R and writes with prev_revision=R,
    // through different nodes (followers forward), all at once.
    for (let round = 0; round < 3; round++) {
      const key = `cas/${round}`;
      const first = await put(cluster.nodes[round % 3]!.url, key, "initial");
      assert.equal(first.status, 200);
      const revision = first.body.revision as number;
      const answers = await Promise.all(
        Array.from(
          { length: clients },
          (_, i) =>
            put(cluster.nodes[i % 3]!.url, key, `client-${i}`, {
              query: `?prev_revision=${revision}`,
            }),
        ),
      );
      const winners = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
      assert.equal(winners.length, 1, JSON.stringify(answers));
      for (const [i, answer] of answers.entries()) {
        if (i === winners[0]) continue;
        assert.equal(answer.status, 412, JSON.stringify(answer.body));
        assert.equal(errorOf({ text: JSON.stringify(answer.body) }).code, "ERR_REVISION_MISMATCH");
      }
      const won = answers[winners[0]!]!.body.revision as number;
      for (const node of cluster.nodes) {
        const r = await get(node.url, key);
        assert.equal(r.text, `client-${winners[0]}`);
        assert.equal(r.revision, won);
      }
    }

    // Create-if-absent race (prev_revision=0): exactly one creator.
    const created = await Promise.all(
      Array.from(
        { length: clients },
        (_, i) =>
          put(cluster.nodes[i % 3]!.url, "cas/lock", `owner-${i}`, { query: "?prev_revision=0" }),
      ),
    );
    const owners = created.flatMap((a, i) => (a.status === 200 ? [i] : []));
    assert.equal(owners.length, 1, JSON.stringify(created));
    assert.ok(
      created.every((a) =>
        a.status === 200 ||
        (a.status === 412 &&
          (a.body.error as { code: string }).code === "ERR_REVISION_MISMATCH")
      ),
      JSON.stringify(created),
    );
    const owner = await get(cluster.nodes[2]!.url, "cas/lock");
    assert.equal(owner.text, `owner-${owners[0]}`);

    // A conditional delete with a stale revision is refused too; with the right one it works.
    const stale = await request(`${cluster.nodes[1]!.url}/v1/kv/cas%2Flock?prev_revision=1`, {
      method: "DELETE",
    });
    assert.equal(stale.status, 412);
    assert.equal(errorOf(stale).code, "ERR_REVISION_MISMATCH");
    const ok = await request(
      `${cluster.nodes[1]!.url}/v1/kv/cas%2Flock?prev_revision=${owner.revision}`,
      { method: "DELETE" },
    );
    assert.equal(ok.status, 200, ok.text);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("malformed requests get a 4xx JSON error and the node keeps serving", async () => {
  const cluster = await Cluster.create(3, { extraArgs: () => ["--value-bytes-max", "1024"] });
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    const base = follower.url;
    assert.equal((await put(base, "ok", "fine")).status, 200);

    const expectError = (
      what: string,
      answer: { status: number; text: string; headers: Headers },
      status: number,
      code: string,
    ) => {
      assert.equal(answer.status, status, `${what}: ${answer.status} ${answer.text}`);
      assert.match(answer.headers.get("content-type") ?? "", /^application\/json/, what);
      const error = errorOf(answer);
      assert.equal(error.code, code, `${what}: ${answer.text}`);
      return error;
    };
    const viaCurl = async (what: string, args: string[], status: number, code: string) => {
      const answer = await curl(args);
      return expectError(what, { ...answer, text: answer.body }, status, code);
    };

    // Real curl, as a user would type them (curl sends the path bytes as given).
    await viaCurl(
      "bad percent-encoding",
      ["-X", "PUT", "--data-binary", "x", `${base}/v1/kv/bad%ZZkey`],
      400,
      "ERR_BAD_REQUEST",
    );
    await viaCurl(
      "invalid UTF-8 in a key",
      ["-X", "PUT", "--data-binary", "x", `${base}/v1/kv/%FF%FE`],
      400,
      "ERR_BAD_REQUEST",
    );
    await viaCurl(
      "empty key",
      ["-X", "PUT", "--data-binary", "x", `${base}/v1/kv/`],
      400,
      "ERR_BAD_REQUEST",
    );
    const tooLarge = await viaCurl(
      "value over --value-bytes-max",
      ["-X", "PUT", "--data-binary", "x".repeat(1025), `${base}/v1/kv/big`],
      413,
      "ERR_VALUE_TOO_LARGE",
    );
    assert.match(tooLarge.message, /1024/);
    await viaCurl(
      "non-integer prev_revision",
      ["-X", "PUT", "--data-binary", "x", `${base}/v1/kv/ok?prev_revision=abc`],
      400,
      "ERR_BAD_REQUEST",
    );

    // fetch for the rest.
    const at = (path: string, init: RequestInit = {}) => request(`${base}${path}`, init);
    expectError(
      "key over 1024 bytes",
      await at(`/v1/kv/${"k".repeat(1025)}`, { method: "PUT", body: "x" }),
      400,
      "ERR_BAD_REQUEST",
    );
    assert.equal((await put(base, "k".repeat(1024), "at the limit")).status, 200);
    expectError(
      "negative prev_revision",
      await at("/v1/kv/ok?prev_revision=-1", { method: "PUT", body: "x" }),
      400,
      "ERR_BAD_REQUEST",
    );
    expectError(
      "prev_revision as a float",
      await at("/v1/kv/ok?prev_revision=1.5", { method: "DELETE" }),
      400,
      "ERR_BAD_REQUEST",
    );
    expectError(
      "misspelt query parameter",
      await at("/v1/kv/ok?prev_revison=1", { method: "PUT", body: "x" }),
      400,
      "ERR_BAD_REQUEST",
    );
    expectError(
      "unknown consistency",
      await at("/v1/kv/ok?consistency=eventual"),
      400,
      "ERR_BAD_REQUEST",
    );
    expectError("bad list limit", await at("/v1/kv?limit=0"), 400, "ERR_BAD_REQUEST");
    expectError("bad values flag", await at("/v1/kv?values=maybe"), 400, "ERR_BAD_REQUEST");
    expectError("unknown route", await at("/v2/kv/ok"), 404, "ERR_NOT_FOUND");
    const wrongMethod = expectError(
      "wrong method",
      await at("/v1/kv/ok", { method: "POST", body: "x" }),
      405,
      "ERR_METHOD_NOT_ALLOWED",
    );
    assert.ok(wrongMethod.message.length > 0);
    const allow = await at("/v1/status", { method: "DELETE" });
    expectError("DELETE /v1/status", allow, 405, "ERR_METHOD_NOT_ALLOWED");
    assert.match(allow.headers.get("allow") ?? "", /GET/);
    expectError(
      "PUT on the listing",
      await at("/v1/kv", { method: "PUT", body: "x" }),
      405,
      "ERR_METHOD_NOT_ALLOWED",
    );

    // Garbage to the peer endpoint of an open cluster (no secret): refused, not a crash.
    const before = await statusOf(leader);
    const garbage = crypto.getRandomValues(new Uint8Array(300));
    for (const target of [leader, follower]) {
      expectError(
        `garbage peer batch to ${target.id}`,
        await request(`${target.url}/raft/messages`, { method: "POST", body: garbage }),
        400,
        "ERR_BAD_REQUEST",
      );
      expectError(
        `empty peer batch to ${target.id}`,
        await request(`${target.url}/raft/messages`, { method: "POST" }),
        400,
        "ERR_BAD_REQUEST",
      );
      expectError(
        `snapshot without headers to ${target.id}`,
        await request(`${target.url}/raft/snapshot`, { method: "POST", body: garbage }),
        409,
        "ERR_BAD_REQUEST",
      );
    }
    await viaCurl(
      "garbage peer batch via curl",
      ["-X", "POST", "--data-binary", "not a batch", `${leader.url}/raft/messages`],
      400,
      "ERR_BAD_REQUEST",
    );

    // Still healthy, same leader and term, still serving reads and writes through every node.
    for (const node of cluster.nodes) {
      const health = await request(`${node.url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(node.running, true);
    }
    const after = await statusOf(leader);
    assert.equal(after?.role, "leader");
    assert.equal(after?.term, before?.term);
    for (const node of cluster.nodes) {
      const w = await put(node.url, `after/${node.id}`, "still serving");
      assert.equal(w.status, 200, JSON.stringify(w.body));
      assert.equal((await get(node.url, "ok")).text, "fine");
    }
    // Nothing the refused requests carried was written.
    const keys = (await list(leader.url, "limit=100")).items.map((i) => i.key);
    assert.deepEqual(keys.filter((k) => !k.startsWith("after/")).sort(), [
      "k".repeat(1024),
      "ok",
    ]);
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("metrics are Prometheus text; readyz is 200 in a healthy cluster and 503 on a lone node", async () => {
  const cluster = await Cluster.create(3);
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    for (let i = 0; i < 5; i++) assert.equal((await put(leader.url, `m/${i}`, "x")).status, 200);

    const metrics = await request(`${leader.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const samples = new Map<string, number>();
    for (const line of metrics.text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      assert.ok(match !== null, `not a Prometheus sample line: ${JSON.stringify(line)}`);
      samples.set(match[1]!, Number(match[2]));
    }
    for (
      const name of [
        "edgeraft_role",
        "edgeraft_term",
        "edgeraft_commit_index",
        "edgeraft_applied_index",
        "edgeraft_proposals_total",
      ]
    ) {
      assert.match(metrics.text, new RegExp(`^# TYPE ${name} (gauge|counter)$`, "m"), name);
    }
    assert.equal(samples.get('edgeraft_role{role="leader"}'), 1);
    assert.equal(samples.get('edgeraft_role{role="follower"}'), 0);
    const status = (await statusOf(leader))!;
    assert.equal(samples.get("edgeraft_term"), status.term);
    assert.ok(samples.get("edgeraft_commit_index")! >= 6);
    assert.ok(samples.get("edgeraft_applied_index")! >= 6);
    assert.equal(samples.get('edgeraft_proposals_total{result="committed"}'), 5);
    // Every write was appended (and fsynced) on the leader: the latency histograms saw them.
    assert.ok(samples.get("edgeraft_append_seconds_count")! >= 5);
    assert.ok(samples.get("edgeraft_fsync_seconds_count")! >= 5);
    const followerMetrics = await request(`${cluster.others(leader)[0]!.url}/metrics`);
    assert.match(followerMetrics.text, /^edgeraft_role\{role="follower"\} 1$/m);

    for (const node of cluster.nodes) {
      const ready = await request(`${node.url}/readyz`);
      assert.equal(ready.status, 200, `${node.id}: ${ready.text}`);
    }

    // Kill both other nodes: the survivor loses its leader (a leader steps down without a
    // quorum, check-quorum; a follower stops hearing heartbeats) and is no longer ready.
    const lone = cluster.nodes[0]!;
    await Promise.all(cluster.others(lone).map((n) => n.kill9()));
    // Election timeout: 6..12 ticks of 50 ms; give it well over that.
    await delay(1200);
    let answer = await request(`${lone.url}/readyz`);
    assert.ok(
      await waitFor(async () => {
        answer = await request(`${lone.url}/readyz`);
        return answer.status === 503;
      }, 5000),
      `lone node still ready: ${answer.text}`,
    );
    assert.equal(errorOf(answer).code, "ERR_NO_LEADER");
    assert.ok(answer.headers.get("retry-after") !== null);
    const loneStatus = (await statusOf(lone))!;
    assert.notEqual(loneStatus.role, "leader");
    assert.equal(loneStatus.leader, null);
    // Still alive, and honest about it: healthz 200, writes 503 ERR_NO_LEADER.
    assert.equal((await request(`${lone.url}/healthz`)).status, 200);
    const write = await put(lone.url, "m/lone", "x", { timeoutMs: 8000 });
    assert.ok(write.status === 503 || write.status === 504, JSON.stringify(write));
    // A node without a quorum still shuts down cleanly (SIGINT, as Ctrl-C would).
    const stopped = await lone.stop("SIGINT");
    assert.equal(stopped.code, 0, lone.logs.slice(-20).join("\n"));
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});

Deno.test("serve refuses a bad configuration with one-line reasons and a non-zero exit", async () => {
  const root = await Deno.makeTempDir({ prefix: "edgeraft-it-config-" });
  try {
    const expectRefused = async (what: string, args: string[], pattern: RegExp) => {
      const { code, stderr } = await serveOnce(args);
      assert.notEqual(code, 0, `${what}: exit code 0\n${stderr}`);
      const lines = stderr.split("\n").filter((l) => l !== "");
      assert.ok(lines.length > 0, `${what}: nothing on stderr`);
      for (const line of lines) assert.match(line, /^edgeraft serve: /, `${what}: ${line}`);
      assert.match(stderr, pattern, what);
    };
    const port = 20_000 + Math.floor(Math.random() * 20_000);

    await expectRefused(
      "missing --id",
      ["--data-dir", `${root}/a`, "--listen", `127.0.0.1:${port}`],
      /--id is required/,
    );
    await expectRefused(
      "non-loopback listen without token",
      [
        "--id",
        "n1",
        "--data-dir",
        `${root}/b`,
        "--listen",
        `0.0.0.0:${port}`,
        "--advertise",
        `http://10.0.0.1:${port}`,
      ],
      /non-loopback.*--token-file/,
    );
    await expectRefused(
      "unknown flag and bad number together",
      ["--id", "n1", "--data-dir", `${root}/c`, "--tick-ms", "zero", "--frobnicate"],
      /tick-ms[\s\S]*frobnicate|frobnicate[\s\S]*tick-ms/,
    );
    await expectRefused(
      "token file too short",
      ["--id", "n1", "--data-dir", `${root}/d`, "--token-file", await short(root)],
      /token/i,
    );

    // A data directory created by n1 is not n2's; refusing it changes nothing in it.
    const dir = `${root}/n1`;
    const lonePort = freePort();
    const lone = new NodeProcess({
      id: "n1",
      port: lonePort,
      dataDir: dir,
      url: `http://127.0.0.1:${lonePort}`,
    });
    const loneArgs = [
      "--id",
      "n1",
      "--data-dir",
      dir,
      "--listen",
      `127.0.0.1:${lonePort}`,
      "--peers",
      `n1=http://127.0.0.1:${lonePort}`,
      "--segment-bytes",
      String(2 * 1024 * 1024),
    ];
    try {
      lone.start(loneArgs);
      await waitHealthy(lone);
      assert.ok(await waitFor(async () => (await statusOf(lone))?.role === "leader", 5000));
      assert.equal((await put(lone.url, "kept", "yes")).status, 200);
      const stopped = await lone.stop();
      assert.equal(stopped.code, 0, lone.logs.join("\n"));

      await expectRefused(
        "data dir of another node",
        ["--id", "n2", "--data-dir", dir, "--listen", `127.0.0.1:${lonePort}`],
        /belongs to node "n1"/,
      );

      lone.start(loneArgs);
      await waitHealthy(lone);
      assert.ok(await waitFor(async () => (await statusOf(lone))?.role === "leader", 5000));
      assert.equal((await get(lone.url, "kept")).text, "yes");
    } finally {
      if (lone.running) await lone.kill9();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function short(root: string): Promise<string> {
  await Deno.writeTextFile(`${root}/short-token`, "tooshort\n");
  return `${root}/short-token`;
}

Deno.test("with a token and a cluster secret: clients need the token, forged peer requests are refused", async () => {
  const token = "it-token-0123456789abcdef";
  const secret = "it-cluster-secret-0123456789abcdef-0123456789";
  const cluster = await Cluster.create(3, { token, clusterSecret: secret });
  try {
    await cluster.start();
    const leader = await cluster.waitLeader();
    const follower = cluster.others(leader)[0]!;
    const auth = { authorization: `Bearer ${token}` };

    // Clients: no token, a wrong token, another scheme → 401 with WWW-Authenticate.
    const expect401 = (
      what: string,
      answer: { status: number; headers: Headers; text: string },
    ) => {
      assert.equal(answer.status, 401, `${what}: ${answer.text}`);
      assert.equal(errorOf(answer).code, "ERR_UNAUTHORIZED", what);
      assert.match(answer.headers.get("www-authenticate") ?? "", /^Bearer/, what);
      assert.match(answer.headers.get("content-type") ?? "", /^application\/json/, what);
    };
    const noToken = await curl(["-X", "PUT", "--data-binary", "x", `${follower.url}/v1/kv/secret`]);
    expect401("curl PUT without a token", { ...noToken, text: noToken.body });
    const wrong = await curl([
      "-H",
      "Authorization: Bearer not-the-token-at-all",
      `${leader.url}/v1/kv/secret`,
    ]);
    expect401("curl GET with a wrong token", { ...wrong, text: wrong.body });
    for (
      const [path, headers] of [
        ["/v1/kv/secret", { authorization: `Basic ${btoa(`user:${token}`)}` }],
        ["/v1/kv/secret", { authorization: `Bearer ${token}x` }],
        ["/v1/kv?prefix=", {}],
        ["/v1/status", {}],
        ["/v1/cluster", {}],
        ["/metrics", {}],
      ] as const
    ) {
      expect401(`GET ${path}`, await request(`${follower.url}${path}`, { headers }));
    }
    // Probes need no token.
    for (const node of cluster.nodes) {
      assert.equal((await request(`${node.url}/healthz`)).status, 200);
      assert.equal((await request(`${node.url}/readyz`)).status, 200);
    }
    // With the token: a write through a follower (forwarded with the token) and reads.
    const ok = await curl([
      "-X",
      "PUT",
      "-H",
      `Authorization: Bearer ${token}`,
      "--data-binary",
      "classified",
      `${follower.url}/v1/kv/secret`,
    ]);
    assert.equal(ok.status, 200, ok.body);
    for (const node of cluster.nodes) {
      const r = await get(node.url, "secret", { headers: auth });
      assert.equal(r.status, 200);
      assert.equal(r.text, "classified");
    }
    assert.equal((await request(`${leader.url}/metrics`, { headers: auth })).status, 200);

    // Peers. A forged message would be dangerous if accepted: a vote request with a huge
    // term (a leadership transfer, which even skips the leader lease) from "n2".
    const before = (await statusOf(leader, auth))!;
    const clusterId = before.cluster_id as string;
    const forged = encodeBatch([{
      type: "vote",
      from: follower.id,
      to: leader.id,
      term: before.term + 1000,
      preVote: false,
      lastLogIndex: 1_000_000,
      lastLogTerm: before.term + 999,
      transfer: true,
    }], { clusterId }) as Uint8Array<ArrayBuffer>;
    const bodySha256 = await sha256Hex(forged);
    const post = (target: string, headers: Record<string, string>, body: BodyInit = forged) =>
      request(`${target}/raft/messages`, { method: "POST", headers, body });
    const expectPeer401 = (what: string, answer: { status: number; text: string }) => {
      assert.equal(answer.status, 401, `${what}: ${answer.text}`);
      assert.equal(errorOf(answer).code, "ERR_UNAUTHORIZED", what);
    };

    expectPeer401("garbage without signature", await post(leader.url, {}, "garbage"));
    expectPeer401("forged batch without signature", await post(leader.url, {}));
    expectPeer401("forged batch with a client token", await post(leader.url, auth));
    const random = (n: number) =>
      Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0"))
        .join("");
    expectPeer401(
      "forged batch with made-up signature headers",
      await post(leader.url, {
        "x-edgeraft-node": follower.id,
        "x-edgeraft-timestamp": String(Date.now()),
        "x-edgeraft-nonce": random(16),
        "x-edgeraft-content-sha256": bodySha256,
        "x-edgeraft-signature": random(32),
      }),
    );
    const otherKey = await importPeerKey("a-different-secret-0123456789abcdef-0123");
    const signedElsewhere = await signPeerRequest({
      method: "POST",
      path: "/raft/messages",
      bodySha256,
      timestampMs: Date.now(),
      nodeId: follower.id,
    }, otherKey);
    expectPeer401("batch signed with a different secret", await post(leader.url, signedElsewhere));
    expectPeer401(
      "snapshot signed with a different secret",
      await request(`${follower.url}/raft/snapshot`, {
        method: "POST",
        headers: {
          ...(await signPeerRequest({
            method: "POST",
            path: "/raft/snapshot",
            bodySha256,
            timestampMs: Date.now(),
            nodeId: leader.id,
          }, otherKey)),
          "x-edgeraft-cluster": clusterId,
          "x-edgeraft-snapshot-sha256": bodySha256,
          "x-edgeraft-snapshot-size": String(forged.length),
          "x-edgeraft-snapshot-request": "AAAA",
        },
        body: forged,
      }),
    );
    // The right secret but a timestamp far outside the window, or a replayed nonce: refused.
    // (An empty batch is harmless if accepted.)
    const key = await importPeerKey(secret);
    const empty = encodeBatch([], { clusterId }) as Uint8Array<ArrayBuffer>;
    const emptySha = await sha256Hex(empty);
    const old = await signPeerRequest({
      method: "POST",
      path: "/raft/messages",
      bodySha256: emptySha,
      timestampMs: Date.now() - 10 * 60_000,
      nodeId: follower.id,
    }, key);
    expectPeer401("a request signed 10 minutes ago", await post(leader.url, old, empty));
    const fresh = await signPeerRequest({
      method: "POST",
      path: "/raft/messages",
      bodySha256: emptySha,
      timestampMs: Date.now(),
      nodeId: follower.id,
    }, key);
    const first = await post(leader.url, fresh, empty);
    assert.equal(first.status, 204, `correctly signed empty batch: ${first.text}`);
    expectPeer401("the same request replayed", await post(leader.url, fresh, empty));
    expectPeer401(
      "a signed empty batch with the forged body swapped in",
      await post(leader.url, {
        ...(await signPeerRequest({
          method: "POST",
          path: "/raft/messages",
          bodySha256: emptySha,
          timestampMs: Date.now(),
          nodeId: follower.id,
        }, key)),
      }),
    );

    // An unauthenticated sender cannot make a node read its body: a batch that never ends is
    // refused from its headers at once (the node does not wait for, or buffer, the body).
    let stopBody = false;
    const endless = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (stopBody) return controller.close();
        controller.enqueue(new Uint8Array(64 * 1024));
        await delay(10);
      },
    });
    const endlessStarted = performance.now();
    try {
      const endlessAnswer = await request(
        `${leader.url}/raft/messages`,
        {
          method: "POST",
          body: endless,
          duplex: "half",
          timeoutMs: 3000,
        } as RequestInit & { timeoutMs: number },
      );
      expectPeer401("an endless unsigned batch", endlessAnswer);
    } finally {
      stopBody = true;
    }
    console.log(
      `endless unsigned peer batch refused after ${
        Math.round(performance.now() - endlessStarted)
      } ms`,
    );

    // Nothing changed: same leader, same term, every node healthy, writes still commit.
    const after = (await statusOf(leader, auth))!;
    assert.equal(after.role, "leader");
    assert.equal(after.term, before.term);
    for (const node of cluster.nodes) {
      assert.equal((await request(`${node.url}/healthz`)).status, 200);
      const w = await put(node.url, `after/${node.id}`, "ok", { headers: auth });
      assert.equal(w.status, 200, JSON.stringify(w.body));
    }
    assert.ok(await leader.waitLogged("peer request refused"));
  } catch (error) {
    console.error(cluster.dumpLogs());
    throw error;
  } finally {
    await cluster.destroy();
  }
});
