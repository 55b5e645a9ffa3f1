/**
 * Reads the ELF header of a release binary: enough to prove that `dist/edgeraft-<target>` is a
 * 64-bit little-endian Linux executable for that target's CPU (a cross-compiled aarch64 binary
 * cannot be run on an x86_64 build machine, but its header can be checked).
 *
 * Layout (System V ABI, ELF64): bytes 0-3 `\x7fELF`, byte 4 EI_CLASS (2 = 64-bit), byte 5
 * EI_DATA (1 = little-endian), bytes 18-19 e_machine (little-endian u16).
 *
 * @module
 */

import type { Target } from "../../scripts/build_info.ts";

/** e_machine of each release target: EM_X86_64 (62) and EM_AARCH64 (183). */
export const ELF_MACHINE: Readonly<Record<Target, number>> = {
  "x86_64-unknown-linux-gnu": 0x3e,
  "aarch64-unknown-linux-gnu": 0xb7,
};

/** What the header says. */
export interface ElfHeader {
  readonly is64Bit: boolean;
  readonly littleEndian: boolean;
  readonly machine: number;
}

/** Parses the first 20 bytes of an ELF file; throws when they are not an ELF header. */
export function parseElfHeader(bytes: Uint8Array): ElfHeader {
  if (bytes.length < 20) throw new Error(`Cannot read ELF header: only ${bytes.length} bytes`);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new Error("Cannot read ELF header: no \\x7fELF magic");
  }
  const littleEndian = bytes[5] === 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { is64Bit: bytes[4] === 2, littleEndian, machine: view.getUint16(18, littleEndian) };
}

/** The ELF header of the file at `path`. */
export async function readElfHeader(path: string): Promise<ElfHeader> {
  using file = await Deno.open(path);
  const bytes = new Uint8Array(20);
  let filled = 0;
  while (filled < bytes.length) {
    const n = await file.read(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return parseElfHeader(bytes.subarray(0, filled));
}
