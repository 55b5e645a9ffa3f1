#!/usr/bin/env bash
# Prints the path of a Deno 2.9.6 binary, installing it into .tools/ from the npm registry
# (package @deno/<platform>) when the `deno` on PATH is missing or another version.
# The tarball's sha512 is checked against the registry's dist.integrity before use.
# Needs bash, curl, openssl, tar and coreutils; no node or npm (npm, when present, only names the
# registry; so does $npm_config_registry, as for npm itself).
set -euo pipefail
DENO_VERSION=2.9.6
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="${EDGERAFT_TOOLS_DIR:-$root/.tools}"
if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -1 | grep -q "^deno $DENO_VERSION "; then
  command -v deno; exit 0
fi
bin="$tools/deno-$DENO_VERSION/deno"
if [ ! -x "$bin" ]; then
  case "$(uname -m)" in
    x86_64) pkg=linux-x64-glibc ;;
    aarch64) pkg=linux-arm64-glibc ;;
    *) echo "ensure_deno: unsupported architecture $(uname -m)" >&2; exit 1 ;;
  esac
  registry=${npm_config_registry:-$(npm config get registry 2>/dev/null || echo "https://registry.npmjs.org/")}
  registry="${registry%/}"
  meta=$(curl -fsSL "$registry/@deno%2f$pkg/$DENO_VERSION") || { echo "ensure_deno: cannot read @deno/$pkg@$DENO_VERSION from $registry" >&2; exit 1; }
  # The first "NAME": "string" of the version document. Only dist holds "tarball" and
  # "integrity", and their values (a URL, base64) hold no quote or escape; both are checked below.
  json_string() { grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'; }
  tarball=$(json_string tarball <<<"$meta" || true)
  integrity=$(json_string integrity <<<"$meta" || true)
  if ! [[ "$tarball" =~ ^https?://[^[:space:]]+$ && "$integrity" =~ ^sha512-[A-Za-z0-9+/]+=*$ ]]; then
    echo "ensure_deno: no dist.tarball and sha512 dist.integrity in $registry's answer for @deno/$pkg@$DENO_VERSION" >&2; exit 1
  fi
  mkdir -p "$tools/deno-$DENO_VERSION"
  tgz="$tools/deno-$DENO_VERSION.tgz"
  curl -fsSL -o "$tgz" "$tarball"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then echo "ensure_deno: integrity mismatch for $tarball" >&2; rm -f "$tgz"; exit 1; fi
  tar -xzf "$tgz" -C "$tools/deno-$DENO_VERSION" --strip-components=1 package/deno
  rm -f "$tgz"
  chmod +x "$bin"
fi
echo "$bin"
