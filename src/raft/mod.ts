/**
 * The pure Raft consensus core: re-exports only. See docs/ARCHITECTURE.md, "The Raft core".
 *
 * @module
 */

export { Raft } from "./raft.ts";
export { defaultRaftConfig, validateRaftConfig } from "./config.ts";
export {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  findMember,
  isVoter,
  sameMembership,
  voterIds,
} from "./conf_change.ts";
export * from "./types.ts";
