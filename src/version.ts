/** The edgeraft release version, printed by `edgeraft version`. */
export const VERSION = "0.1.0";
