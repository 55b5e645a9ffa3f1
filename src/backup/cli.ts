/**
 * The offline commands `edgeraft verify FILE [--json]` and `edgeraft inspect FILE [--json]`.
 *
 * Exit status (like `cmp` and `diff`): 0 the archive is sound; 1 it is unsound, with one line
 * on stderr naming the file, the check and the code; 2 trouble before any verdict — a usage
 * error or a FILE that cannot be opened — with one line on stderr. FILE "-" reads standard
 * input. The archive is read as a stream (never into memory), in a single pass.
 *
 * @module
 */

import { verifyArchive, type VerifyError, type VerifyReport } from "./archive_verifier.ts";
import { formatInspection, inspectArchive } from "./inspect.ts";

/** Where the commands write: one call per line. Defaults to the console. */
export interface CliIo {
  stdout(line: string): void;
  stderr(line: string): void;
}

const consoleIo: CliIo = {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
};

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

interface Parsed {
  readonly file: string;
  readonly json: boolean;
}

function parseArgs(command: string, args: readonly string[], io: CliIo): Parsed | null {
  let file: string | null = null;
  let json = false;
  const usage = `usage: edgeraft ${command} FILE [--json]`;
  for (const arg of args) {
    if (arg === "--json") {
      json = true;
    } else if (arg === "-h" || arg === "--help") {
      io.stdout(usage);
      return null;
    } else if (arg.startsWith("-") && arg !== "-") {
      io.stderr(`edgeraft ${command}: unknown option ${arg} (${usage})`);
      return null;
    } else if (file !== null) {
      io.stderr(`edgeraft ${command}: more than one FILE (${usage})`);
      return null;
    } else {
      file = arg;
    }
  }
  if (file === null) {
    io.stderr(`edgeraft ${command}: missing FILE (${usage})`);
    return null;
  }
  return { file, json };
}

/** Opens FILE as a stream, or writes a one-line error and returns null. */
async function openArchive(
  command: string,
  file: string,
  io: CliIo,
): Promise<ReadableStream<Uint8Array> | null> {
  if (file === "-") return Deno.stdin.readable;
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(file, { read: true });
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Error
      ? error.message
      : String(error);
    io.stderr(`edgeraft ${command}: cannot open "${file}": ${oneLine(reason)}`);
    return null;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile) {
      handle.close();
      io.stderr(`edgeraft ${command}: cannot open "${file}": not a regular file`);
      return null;
    }
  } catch (error) {
    handle.close();
    io.stderr(`edgeraft ${command}: cannot open "${file}": ${oneLine(String(error))}`);
    return null;
  }
  return handle.readable;
}

/** The one-line stderr reason for an unsound archive. */
export function unsoundLine(command: string, file: string, error: VerifyError): string {
  return oneLine(
    `edgeraft ${command}: "${file}" is unsound: ${error.code} in ${
      error.file ?? "the archive"
    }, check "${error.check}": ${error.message}`,
  );
}

/** The human-readable verify report: one line per check, then the verdict. */
export function formatVerifyReport(report: VerifyReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length), 10);
  const lines = report.checks.map((c) =>
    `${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(width)}  ${oneLine(c.detail)}`
  );
  const m = report.manifest;
  if (report.ok && m !== null) {
    lines.push(
      `sound: cluster ${m.cluster_id}, node ${m.node_id}, index ${m.index}, term ${m.term}, ` +
        `${m.state.keys} keys, ${m.state.value_bytes} value bytes, created ${m.created_at}`,
    );
  } else if (report.error !== null) {
    lines.push(`UNSOUND: ${report.error.code}`);
  }
  return lines.join("\n");
}

/** `edgeraft verify FILE [--json]`; returns the exit status. */
export async function runVerify(args: string[], io: CliIo = consoleIo): Promise<number> {
  const parsed = parseArgs("verify", args, io);
  if (parsed === null) return args.includes("-h") || args.includes("--help") ? 0 : 2;
  const stream = await openArchive("verify", parsed.file, io);
  if (stream === null) return 2;
  const report = await verifyArchive(stream);
  if (parsed.json) io.stdout(JSON.stringify(report, null, 2));
  else io.stdout(formatVerifyReport(report));
  if (report.error !== null) {
    io.stderr(unsoundLine("verify", parsed.file, report.error));
    return 1;
  }
  return 0;
}

/** `edgeraft inspect FILE [--json]`; returns the exit status. */
export async function runInspect(args: string[], io: CliIo = consoleIo): Promise<number> {
  const parsed = parseArgs("inspect", args, io);
  if (parsed === null) return args.includes("-h") || args.includes("--help") ? 0 : 2;
  const stream = await openArchive("inspect", parsed.file, io);
  if (stream === null) return 2;
  const inspection = await inspectArchive(stream);
  if (parsed.json) {
    const { ok, manifest, stats, error, report } = inspection;
    io.stdout(JSON.stringify({ ok, manifest, stats, error, checks: report.checks }, null, 2));
  } else {
    io.stdout(formatInspection(inspection));
  }
  if (inspection.error !== null) {
    io.stderr(unsoundLine("inspect", parsed.file, inspection.error));
    return 1;
  }
  return 0;
}
