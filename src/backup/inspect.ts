/**
 * `edgeraft inspect`: what a backup archive holds — its manifest, key count, total and largest
 * value sizes and the key prefixes that take the most space (like `consul snapshot inspect`).
 * Built on the verifier's single pass, so inspecting an archive also verifies it; statistics
 * are shown even when a later check fails, as long as the state decoded.
 *
 * @module
 */

import type { BackupManifest } from "./manifest.ts";
import {
  type ArchiveStats,
  verifyArchive,
  type VerifyArchiveOptions,
  type VerifyError,
  type VerifyReport,
} from "./archive_verifier.ts";

/** What {@linkcode inspectArchive} found. */
export interface ArchiveInspection {
  /** True when the archive verified. */
  readonly ok: boolean;
  readonly manifest: BackupManifest | null;
  readonly stats: ArchiveStats | null;
  readonly error: VerifyError | null;
  /** The full verification report. */
  readonly report: VerifyReport;
}

/** Reads and verifies the archive in `stream`, gathering the top 10 prefixes by size. */
export async function inspectArchive(
  stream: ReadableStream<Uint8Array>,
  options: VerifyArchiveOptions = {},
): Promise<ArchiveInspection> {
  const report = await verifyArchive(stream, { topPrefixes: 10, ...options });
  return {
    ok: report.ok,
    manifest: report.manifest,
    stats: report.stats,
    error: report.error,
    report,
  };
}

/** `1234567` → `"1234567 (1.2 MiB)"`; small counts stay bare. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${bytes} B (${value.toFixed(1)} ${units[unit]})`;
}

function row(label: string, value: string): string {
  return `  ${label.padEnd(16)}${value}`;
}

/** The inspection as the human-readable table `edgeraft inspect` prints. */
export function formatInspection(inspection: ArchiveInspection): string {
  const lines: string[] = [];
  const { manifest, stats } = inspection;
  if (manifest !== null) {
    lines.push("Manifest");
    lines.push(row("format", `${manifest.format} version ${manifest.version}`));
    lines.push(row("cluster", manifest.cluster_id));
    lines.push(row("node", manifest.node_id));
    lines.push(row("index", String(manifest.index)));
    lines.push(row("term", String(manifest.term)));
    lines.push(row("created at", manifest.created_at));
    lines.push(row("kind", manifest.kind));
    lines.push(row("written by", `edgeraft ${manifest.edgeraft_version}`));
    manifest.membership.members.forEach((m, i) => {
      lines.push(
        row(i === 0 ? "members" : "", `${m.id} ${m.voter ? "voter" : "learner"} ${m.address}`),
      );
    });
    const file = manifest.files[0];
    if (file !== undefined) {
      lines.push(row("state file", `${file.name} ${formatBytes(file.size)}`));
      lines.push(row("state sha256", file.sha256));
    }
  }
  if (stats !== null) {
    if (lines.length > 0) lines.push("");
    lines.push("State");
    lines.push(
      row(
        "archive",
        `${formatBytes(stats.archiveBytes)}${
          stats.gzip ? `, gzip (tar ${formatBytes(stats.tarBytes)})` : ""
        }`,
      ),
    );
    lines.push(row("applied index", String(stats.appliedIndex)));
    lines.push(row("keys", String(stats.keys)));
    lines.push(row("key bytes", formatBytes(stats.keyBytes)));
    lines.push(row("value bytes", formatBytes(stats.valueBytes)));
    lines.push(
      row(
        "largest value",
        stats.keys === 0
          ? "-"
          : `${formatBytes(stats.largestValue)}, key ${JSON.stringify(stats.largestValueKey)}`,
      ),
    );
    lines.push(row("max revision", String(stats.maxRevision)));
    lines.push(row("blocks", String(stats.blocks)));
    lines.push("");
    lines.push(`Top prefixes by size (${stats.prefixCount} prefixes; key up to the first / or :)`);
    const total = stats.keyBytes + stats.valueBytes;
    lines.push(
      `  ${"prefix".padEnd(32)} ${"keys".padStart(12)} ${"bytes".padStart(14)} ${
        "share".padStart(7)
      }`,
    );
    for (const p of stats.prefixes) {
      const name = p.prefix === "" ? "(no prefix)" : JSON.stringify(p.prefix).slice(1, -1);
      const share = total === 0 ? 0 : (100 * p.bytes) / total;
      lines.push(
        `  ${name.padEnd(32)} ${String(p.keys).padStart(12)} ${String(p.bytes).padStart(14)} ${
          share.toFixed(1).padStart(6)
        }%`,
      );
    }
    if (stats.otherPrefixKeys > 0) {
      lines.push(
        `  (${stats.otherPrefixKeys} keys in prefixes beyond the first ${stats.prefixCount})`,
      );
    }
  }
  if (lines.length > 0) lines.push("");
  const error = inspection.error;
  lines.push(
    error === null
      ? `Verification: sound (${inspection.report.checks.length} checks passed)`
      : `Verification: UNSOUND: ${error.code} in ${
        error.file ?? "archive"
      } (${error.check}): ${error.message}`,
  );
  return lines.join("\n");
}
