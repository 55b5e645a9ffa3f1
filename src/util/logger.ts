/**
 * A small structured logger: one line per record, either a JSON object
 * (`{"ts","level","msg",...fields}`, the default, for journald and log shippers) or human text
 * (`2025-01-02T03:04:05.678Z INFO msg key=value`). Records below the configured level are dropped
 * before any formatting work. Output goes to a sink, stderr by default; tests pass their own.
 *
 * Invariants: a record is always exactly one line (newlines inside values are escaped), field
 * order is the caller's (after `ts`, `level`, `msg` and the logger's bound fields), and a field
 * that cannot be serialised (a cycle, a BigInt) degrades to a string instead of throwing: logging
 * never fails the operation that logs.
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** `json`: one JSON object per line; `text`: `ts LEVEL msg key=value ...`. */
export type LogFormat = "json" | "text";
/** Structured context of a record. Errors are rendered as `{name, message, code?, stack?}`. */
export type LogFields = Readonly<Record<string, unknown>>;

/** The levels in order; the index is the severity. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
/** The formats `--log-format` accepts. */
export const LOG_FORMATS: readonly LogFormat[] = ["json", "text"];

/** A structured logger. */
export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every record (e.g. `{component: "http"}`). */
  child(fields: LogFields): Logger;
}

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Records below this level are dropped. Default `info`. */
  readonly level?: LogLevel;
  /** Default `json`. */
  readonly format?: LogFormat;
  /** Receives each line without its newline. Default: writes the line to stderr. */
  readonly sink?: (line: string) => void;
  /** The clock for `ts`. Default `() => new Date()`. */
  readonly now?: () => Date;
  /** Fields bound to every record. */
  readonly fields?: LogFields;
  /** Include error stacks in records (they go to the operator's log, never to clients). */
  readonly stacks?: boolean;
}

function stderrSink(line: string): void {
  console.error(line);
}

/** Creates a logger; see {@linkcode LoggerOptions} for the defaults. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return new StructuredLogger(
    options.level ?? "info",
    options.format ?? "json",
    options.sink ?? stderrSink,
    options.now ?? (() => new Date()),
    options.fields ?? {},
    options.stacks ?? true,
  );
}

/** A logger that drops everything (tests, tools). */
export function nullLogger(): Logger {
  return createLogger({ level: "error", sink: () => {} });
}

class StructuredLogger implements Logger {
  readonly level: LogLevel;
  readonly #format: LogFormat;
  readonly #sink: (line: string) => void;
  readonly #now: () => Date;
  readonly #fields: LogFields;
  readonly #stacks: boolean;
  readonly #minSeverity: number;

  constructor(
    level: LogLevel,
    format: LogFormat,
    sink: (line: string) => void,
    now: () => Date,
    fields: LogFields,
    stacks: boolean,
  ) {
    this.level = level;
    this.#format = format;
    this.#sink = sink;
    this.#now = now;
    this.#fields = fields;
    this.#stacks = stacks;
    this.#minSeverity = LOG_LEVELS.indexOf(level);
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#log("error", msg, fields);
  }

  child(fields: LogFields): Logger {
    return new StructuredLogger(
      this.level,
      this.#format,
      this.#sink,
      this.#now,
      { ...this.#fields, ...fields },
      this.#stacks,
    );
  }

  #log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (LOG_LEVELS.indexOf(level) < this.#minSeverity) return;
    const all: Record<string, unknown> = { ...this.#fields, ...fields };
    for (const [key, value] of Object.entries(all)) all[key] = this.#plain(value);
    const ts = this.#now().toISOString();
    let line: string;
    if (this.#format === "json") {
      line = safeStringify({ ts, level, msg, ...all });
    } else {
      line = `${ts} ${level.toUpperCase()} ${escapeText(msg)}`;
      for (const [key, value] of Object.entries(all)) {
        line += ` ${key}=${textValue(value)}`;
      }
    }
    try {
      this.#sink(line);
    } catch {
      // A broken stderr must not take the node down with it.
    }
  }

  #plain(value: unknown): unknown {
    if (value instanceof Error) {
      const out: Record<string, unknown> = { name: value.name, message: value.message };
      const code = (value as { code?: unknown }).code;
      if (typeof code === "string") out.code = code;
      if (this.#stacks && value.stack !== undefined) out.stack = value.stack;
      if (value.cause !== undefined) out.cause = this.#plain(value.cause);
      return out;
    }
    if (typeof value === "bigint") return value.toString();
    if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
    return value;
  }
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v) => typeof v === "bigint" ? v.toString() : v);
  } catch {
    return JSON.stringify({
      level: "error",
      msg: "unserialisable log record",
      record: String(value),
    });
  }
}

function escapeText(text: string): string {
  return text.replace(/[\n\r]/g, (c) => (c === "\n" ? "\\n" : "\\r"));
}

function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : safeStringify(value) ?? String(value);
  // Bare when unambiguous, else a JSON string (quotes and escapes newlines).
  return /^[^\s"=\\]+$/.test(text) ? text : JSON.stringify(text);
}
