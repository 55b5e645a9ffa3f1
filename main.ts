/**
 * edgeraft command line entry point. The subcommands of ../shared/DESIGN.md arrive with the
 * running-node issue; until then only `version` works.
 *
 * @module
 */
import { VERSION } from "./src/version.ts";

function main(args: string[]): number {
  const [command] = args;
  if (command === "version" || command === "--version") {
    console.log(`edgeraft ${VERSION}`);
    return 0;
  }
  console.error(`edgeraft: unknown command "${command ?? ""}"; try "edgeraft version"`);
  return 2;
}

if (import.meta.main) Deno.exit(main(Deno.args));
