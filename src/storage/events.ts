/**
 * Events the stores report while recovering or repairing, so the node can log them and show
 * them in its status. The default sink writes one line per event to stderr.
 *
 * @module
 */

import type { CorruptionReport, TailCut } from "./types.ts";

/** Something storage did on its own that an operator should be able to find in the log. */
export type StorageEvent =
  | { readonly kind: "tail_cut"; readonly cut: TailCut }
  | { readonly kind: "log_corrupt"; readonly report: CorruptionReport }
  | { readonly kind: "stale_segment_removed"; readonly file: string; readonly reason: string }
  | { readonly kind: "snapshot_set_aside"; readonly name: string; readonly reason: string }
  | { readonly kind: "temp_removed"; readonly path: string };

/** Receives storage events. */
export type StorageEventSink = (event: StorageEvent) => void;

/** A one-line description of `event`. */
export function describeStorageEvent(event: StorageEvent): string {
  switch (event.kind) {
    case "tail_cut":
      return `log: cut torn tail of "${event.cut.file}" at offset ${event.cut.offset} ` +
        `(${event.cut.bytes} bytes): ${event.cut.reason}`;
    case "log_corrupt":
      return `log: ERR_LOG_CORRUPT in "${event.report.file}" at offset ${event.report.offset}: ` +
        `${event.report.reason}; kept entries through ${event.report.keptThrough}, ` +
        `highest index seen ${event.report.highestSeen}, moved aside: ` +
        (event.report.movedTo.join(", ") || "nothing");
    case "stale_segment_removed":
      return `log: removed "${event.file}": ${event.reason}`;
    case "snapshot_set_aside":
      return `snapshots: set aside "${event.name}": ${event.reason}`;
    case "temp_removed":
      return `storage: removed stray temporary "${event.path}"`;
  }
}

/** The default sink: one line on stderr. */
export function consoleStorageEventSink(event: StorageEvent): void {
  console.warn(`edgeraft storage: ${describeStorageEvent(event)}`);
}
