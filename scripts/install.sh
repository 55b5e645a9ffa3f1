#!/bin/sh
# Installs an edgeraft binary as a hardened systemd service, or removes it.
#
#   sudo sh install.sh --binary FILE [--id ID] [--peers ID=URL,...] [--listen HOST:PORT]
#                      [--advertise URL] [--token-file FILE] [--cluster-secret-file FILE]
#                      [--unit FILE] [--start] [--root DIR]
#   sudo sh install.sh --uninstall [--purge] [--root DIR]
#
# What it puts where (every path below DIR with --root):
#   /usr/local/bin/edgeraft                  the binary (0755)
#   /etc/systemd/system/edgeraft.service     the unit (0644), edgeraft.service next to this script
#   /etc/edgeraft/                           0750 root:edgeraft
#   /etc/edgeraft/edgeraft.json              the node's config (0600 edgeraft:edgeraft)
#   /etc/edgeraft/token                      client bearer token (0600 edgeraft:edgeraft)
#   /etc/edgeraft/cluster-secret             secret that authenticates peers (0600 edgeraft:edgeraft)
#   /var/lib/edgeraft/                       the data directory (0700 edgeraft:edgeraft)
# and the system user and group `edgeraft` (home /var/lib/edgeraft, no login shell).
#
# The config names the token and secret files (tokenFile, clusterSecretFile) instead of
# holding them: that is the only form `edgeraft serve` reads secrets in, and it keeps them out
# of anything that prints or copies the config. They are generated (32 random bytes, hex) when
# absent, or copied from --token-file / --cluster-secret-file: every node of a cluster needs the
# same cluster secret (and, for one client token, the same token).
#
# Idempotent: a second run with the same arguments changes nothing and says "unchanged". An
# existing config, token or secret is never overwritten: a different --token-file or
# --cluster-secret-file is refused, and a config that differs from the flags is kept (with a
# warning). The binary and the unit are replaced when they differ (upgrade).
#
# Secrets follow the node's rules (src/node/config.ts, readSecret): the file's content without
# leading and trailing whitespace must be one run of printable ASCII (no inner spaces or line
# breaks) of at least 16 characters (token) or 32 (cluster secret). A given file that breaks them
# is refused before anything changes. So is an existing token, secret or config in /etc/edgeraft
# that the node would refuse (e.g. empty after a power cut during an earlier install): it is not
# regenerated, because a new cluster secret would lock this node out of its cluster and a new
# token would lock out its clients; only the operator knows the right value, so the message says
# to remove the file and run again (with --cluster-secret-file / --token-file to keep the
# cluster's). Files are written to a temporary name, flushed (sync) and renamed, and the install
# ends with a sync, so a power cut leaves either the old file or the whole new one.
#
# --root DIR installs into a scratch root (image building, tests): no systemctl, and the user is
# created by adding `edgeraft` lines to DIR/etc/passwd and DIR/etc/group (and DIR/etc/shadow,
# DIR/etc/gshadow when present), with the highest uid/gid below 1000 free in both files, as
# `useradd --system` would pick; owners are set by number when running as root. Without --root
# it needs root and uses `useradd --system`.
#
# --uninstall removes the binary and the unit and keeps the data directory, the config, the
# secrets and the user; --purge removes those too.
set -eu

PROG=install.sh
die() { echo "$PROG: $*" >&2; exit 1; }
usage_error() { echo "$PROG: $*" >&2; echo "Try: sh $PROG --help" >&2; exit 2; }

usage() {
  cat <<'EOF'
Usage: sh install.sh --binary FILE [options]      install or upgrade edgeraft as a systemd service
       sh install.sh --uninstall [--purge]        remove it (--purge: also data, config, user)

Options:
  --binary FILE               the edgeraft executable to install (e.g. edgeraft-aarch64-unknown-linux-gnu)
  --id ID                     this node's id (default: the short host name)
  --peers ID=URL,...          every member of the cluster, the same on each node
                              (default: this node alone, on --listen)
  --listen HOST:PORT          where the node listens (default: this node's address and port in
                              --peers when it is an IP address, else 0.0.0.0:PORT; 127.0.0.1:7070
                              without --peers)
  --advertise URL             the URL peers reach this node at (default: its entry in --peers)
  --token-file FILE           client bearer token to use (default: generate one)
  --cluster-secret-file FILE  cluster secret to use; the SAME on every node (default: generate one)
  --unit FILE                 the systemd unit (default: edgeraft.service next to this script)
  --start                     systemctl daemon-reload and enable --now edgeraft afterwards
  --root DIR                  install below DIR instead of / (no systemctl; see the script's header)
  --uninstall [--purge]       remove the binary and the unit; --purge also removes
                              /var/lib/edgeraft, /etc/edgeraft and the edgeraft user
EOF
}

# ---------------------------------------------------------------- arguments
ROOT=""
BINARY=""
ID=""
PEERS=""
LISTEN=""
ADVERTISE=""
TOKEN_SRC=""
SECRET_SRC=""
UNIT_SRC="$(dirname "$0")/edgeraft.service"
START=0
UNINSTALL=0
PURGE=0
CONFIG_FLAGS=0

need_value() { [ "$#" -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a value"; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --binary) need_value "$@"; BINARY=$2; shift 2 ;;
    --id) need_value "$@"; ID=$2; CONFIG_FLAGS=1; shift 2 ;;
    --peers) need_value "$@"; PEERS=$2; CONFIG_FLAGS=1; shift 2 ;;
    --listen) need_value "$@"; LISTEN=$2; CONFIG_FLAGS=1; shift 2 ;;
    --advertise) need_value "$@"; ADVERTISE=$2; CONFIG_FLAGS=1; shift 2 ;;
    --token-file) need_value "$@"; TOKEN_SRC=$2; shift 2 ;;
    --cluster-secret-file) need_value "$@"; SECRET_SRC=$2; shift 2 ;;
    --unit) need_value "$@"; UNIT_SRC=$2; shift 2 ;;
    --root) need_value "$@"; ROOT=$2; shift 2 ;;
    --start) START=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done

if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || usage_error "--root $ROOT is not a directory"
  ROOT=$(cd "$ROOT" && pwd)
  [ "$ROOT" = "/" ] && ROOT=""
fi
[ "$PURGE" -eq 1 ] && [ "$UNINSTALL" -eq 0 ] && usage_error "--purge goes with --uninstall"
[ "$START" -eq 1 ] && [ -n "$ROOT" ] && usage_error "--start runs systemctl and cannot be used with --root"
[ "$START" -eq 1 ] && [ "$UNINSTALL" -eq 1 ] && usage_error "--start does not go with --uninstall"

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
if [ -z "$ROOT" ] && [ "$IS_ROOT" -eq 0 ]; then die "run as root (sudo sh $PROG ...), or use --root DIR"; fi

# Paths as the installed system sees them, and as this script writes them.
BIN_PATH=/usr/local/bin/edgeraft
UNIT_PATH=/etc/systemd/system/edgeraft.service
CONF_DIR=/etc/edgeraft
CONF_PATH=$CONF_DIR/edgeraft.json
TOKEN_PATH=$CONF_DIR/token
SECRET_PATH=$CONF_DIR/cluster-secret
STATE_DIR=/var/lib/edgeraft
USER_NAME=edgeraft

CHANGES=0
note() { printf '  %-9s %s\n' "$1" "$2"; }
changed() { CHANGES=$((CHANGES + 1)); note "$1" "$2"; }

systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# ---------------------------------------------------------------- user (real root or scratch root)
# Prints "uid:gid" of the edgeraft user, or nothing when it does not exist.
user_ids() {
  if [ -z "$ROOT" ]; then
    if id -u "$USER_NAME" >/dev/null 2>&1; then echo "$(id -u "$USER_NAME"):$(id -g "$USER_NAME")"; fi
  elif [ -f "$ROOT/etc/passwd" ]; then
    awk -F: -v u="$USER_NAME" '$1 == u { print $3 ":" $4; exit }' "$ROOT/etc/passwd"
  fi
}

# The highest id below 1000 (down to 100) used by neither passwd nor group of the scratch root.
free_system_id() {
  cat "$ROOT/etc/passwd" "$ROOT/etc/group" 2>/dev/null | awk -F: '
    { used[$3] = 1 }
    END { for (i = 999; i >= 100; i--) if (!(i in used)) { print i; exit } }'
}

ensure_user() {
  if [ -n "$(user_ids)" ]; then note unchanged "user $USER_NAME"; return; fi
  if [ -z "$ROOT" ]; then
    command -v useradd >/dev/null 2>&1 || die "useradd not found: create a system user and group '$USER_NAME' first"
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "edgeraft node" "$USER_NAME"
  else
    mkdir -p "$ROOT/etc"
    id_=$(free_system_id)
    [ -n "$id_" ] || die "no free system uid/gid below 1000 in $ROOT/etc/passwd and group"
    printf '%s:x:%s:%s:edgeraft node:%s:/usr/sbin/nologin\n' "$USER_NAME" "$id_" "$id_" "$STATE_DIR" >>"$ROOT/etc/passwd"
    if ! awk -F: -v u="$USER_NAME" '$1 == u { found = 1 } END { exit !found }' "$ROOT/etc/group" 2>/dev/null; then
      printf '%s:x:%s:\n' "$USER_NAME" "$id_" >>"$ROOT/etc/group"
    fi
    if [ -f "$ROOT/etc/shadow" ]; then
      printf '%s:!*:%s::::::\n' "$USER_NAME" "$(($(date +%s) / 86400))" >>"$ROOT/etc/shadow"
    fi
    if [ -f "$ROOT/etc/gshadow" ]; then printf '%s:!::\n' "$USER_NAME" >>"$ROOT/etc/gshadow"; fi
  fi
  changed created "user $USER_NAME ($(user_ids))"
}

# Removes the user's lines from a scratch root's account files, or runs userdel.
remove_user() {
  if [ -z "$(user_ids)" ]; then return; fi
  if [ -z "$ROOT" ]; then
    userdel "$USER_NAME"
  else
    for f in passwd group shadow gshadow; do
      file=$ROOT/etc/$f
      [ -f "$file" ] || continue
      awk -F: -v u="$USER_NAME" '$1 != u' "$file" >"$file.edgeraft-tmp"
      chmod "$(stat -c %a "$file")" "$file.edgeraft-tmp"
      mv -f "$file.edgeraft-tmp" "$file"
    done
  fi
  changed removed "user $USER_NAME"
}

# ---------------------------------------------------------------- files
# ensure_meta PATH MODE UID:GID: sets mode (and owner, when root) if they differ.
ensure_meta() {
  fixed=0
  if [ "$(stat -c %a "$ROOT$1")" != "$2" ]; then chmod "$2" "$ROOT$1"; fixed=1; fi
  if [ "$IS_ROOT" -eq 1 ] && [ "$(stat -c %u:%g "$ROOT$1")" != "$3" ]; then chown "$3" "$ROOT$1"; fixed=1; fi
  if [ "$fixed" -eq 1 ]; then changed fixed "$1 (mode $2, owner $3)"; fi
}

# ensure_dir PATH MODE UID:GID (parents are created as needed, with default modes).
ensure_dir() {
  if [ -d "$ROOT$1" ]; then
    ensure_meta "$1" "$2" "$3"
  else
    mkdir -p "$(dirname "$ROOT$1")"
    mkdir -m "$2" "$ROOT$1"
    if [ "$IS_ROOT" -eq 1 ]; then chown "$3" "$ROOT$1"; fi
    changed created "$1/"
  fi
}

# put_file SRC DEST MODE UID:GID: copies SRC to DEST (atomically: temporary file, sync, then
# rename) when DEST is missing or different.
put_file() {
  if [ -f "$ROOT$2" ] && cmp -s "$1" "$ROOT$2"; then
    note unchanged "$2"
  else
    verb=created
    [ -e "$ROOT$2" ] && verb=updated
    mkdir -p "$(dirname "$ROOT$2")"
    tmp="$ROOT$2.edgeraft-tmp"
    (umask 077 && cp "$1" "$tmp")
    chmod "$3" "$tmp"
    if [ "$IS_ROOT" -eq 1 ]; then chown "$4" "$tmp"; fi
    sync # the content is on disk before the name points at it
    mv -f "$tmp" "$ROOT$2"
    changed "$verb" "$2"
  fi
  ensure_meta "$2" "$3" "$4"
}

# secret_of FILE: the file's content without leading and trailing whitespace, as the node trims
# it. ASCII whitespace only: the node also trims Unicode spaces such as U+00A0, which
# secret_problem then refuses as not ASCII (stricter than the node, never more lenient).
secret_of() {
  LC_ALL=C awk '{ text = text (NR > 1 ? "\n" : "") $0 }
    END { sub(/^[[:space:]]+/, "", text); sub(/[[:space:]]+$/, "", text); printf "%s", text }' "$1"
}

# secret_problem FILE WHAT MIN: why the node would refuse FILE as its WHAT (one line), or nothing.
secret_problem() {
  # A NUL byte is no whitespace to the node, and awk and the shell would drop it: refuse it here.
  if [ "$(LC_ALL=C tr -d '\000' <"$1" | wc -c)" -ne "$(wc -c <"$1")" ]; then
    echo "the $2 must be one line of printable ASCII without spaces"; return
  fi
  s=$(secret_of "$1")
  if [ -z "$s" ]; then echo "the $2 file is empty"; return; fi
  if [ "$(printf '%s' "$s" | LC_ALL=C tr -d '!-~' | wc -c)" -ne 0 ]; then
    echo "the $2 must be one line of printable ASCII without spaces"; return
  fi
  if [ "${#s}" -lt "$3" ]; then
    echo "the $2 is ${#s} characters; use at least $3 (e.g. openssl rand -hex 32)"
  fi
}

generate_secret() {
  if command -v openssl >/dev/null 2>&1; then openssl rand -hex 32
  else od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo; fi
}

# ensure_secret SRC DEST WHAT MIN: copies SRC (or generates) unless DEST exists.
ensure_secret() {
  if [ -f "$ROOT$2" ]; then
    note unchanged "$2"
  else
    tmp=$(mktemp)
    if [ -n "$1" ]; then cp "$1" "$tmp"; else generate_secret >"$tmp"; fi
    put_file "$tmp" "$2" 600 "$UID_GID"
    rm -f "$tmp"
  fi
  ensure_meta "$2" 600 "$UID_GID"
}

# ---------------------------------------------------------------- uninstall
if [ "$UNINSTALL" -eq 1 ]; then
  echo "Removing edgeraft${ROOT:+ from $ROOT}"
  if systemd_running; then
    systemctl disable --now edgeraft >/dev/null 2>&1 || true
  fi
  for f in "$BIN_PATH" "$UNIT_PATH"; do
    if [ -e "$ROOT$f" ]; then rm -f "$ROOT$f"; changed removed "$f"; else note absent "$f"; fi
  done
  if systemd_running; then systemctl daemon-reload; fi
  if [ "$PURGE" -eq 1 ]; then
    for d in "$STATE_DIR" "$CONF_DIR"; do
      if [ -e "$ROOT$d" ]; then rm -rf "$ROOT$d"; changed removed "$d/"; fi
    done
    remove_user
  else
    for d in "$STATE_DIR" "$CONF_DIR"; do
      if [ -e "$ROOT$d" ]; then note kept "$d/"; fi
    done
    if [ -n "$(user_ids)" ]; then note kept "user $USER_NAME"; fi
    echo "Data, config, secrets and the $USER_NAME user are kept; --uninstall --purge removes them."
  fi
  echo "Done: $CHANGES changes."
  exit 0
fi

# ---------------------------------------------------------------- checks before any change
[ -n "$BINARY" ] || usage_error "--binary FILE is required"
if [ "$START" -eq 1 ] && ! systemd_running; then die "--start: systemd is not running here"; fi
[ -f "$BINARY" ] || die "--binary $BINARY: no such file"
[ -f "$UNIT_SRC" ] || die "unit file $UNIT_SRC not found (pass --unit FILE)"
[ -z "$TOKEN_SRC" ] || [ -f "$TOKEN_SRC" ] || die "--token-file $TOKEN_SRC: no such file"
[ -z "$SECRET_SRC" ] || [ -f "$SECRET_SRC" ] || die "--cluster-secret-file $SECRET_SRC: no such file"
if [ -n "$TOKEN_SRC" ]; then
  problem=$(secret_problem "$TOKEN_SRC" token 16)
  [ -z "$problem" ] || die "--token-file $TOKEN_SRC: $problem"
fi
if [ -n "$SECRET_SRC" ]; then
  problem=$(secret_problem "$SECRET_SRC" "cluster secret" 32)
  [ -z "$problem" ] || die "--cluster-secret-file $SECRET_SRC: $problem"
fi
# What an earlier install left must be what the node accepts (see the header: never regenerated).
if [ -f "$ROOT$TOKEN_PATH" ]; then
  problem=$(secret_problem "$ROOT$TOKEN_PATH" token 16)
  [ -z "$problem" ] ||
    die "$TOKEN_PATH: $problem, so the node would refuse it (an interrupted install?): remove it and run again (a new token is generated, or pass --token-file)"
fi
if [ -f "$ROOT$SECRET_PATH" ]; then
  problem=$(secret_problem "$ROOT$SECRET_PATH" "cluster secret" 32)
  [ -z "$problem" ] ||
    die "$SECRET_PATH: $problem, so the node would refuse it (an interrupted install?): remove it and run again with --cluster-secret-file (every node needs the same secret)"
fi
if [ -f "$ROOT$CONF_PATH" ] && ! grep -q '[^[:space:]]' "$ROOT$CONF_PATH"; then
  die "$CONF_PATH is empty, so the node would refuse it (an interrupted install?): remove it and run again with the same flags"
fi
if [ -n "$TOKEN_SRC" ] && [ -f "$ROOT$TOKEN_PATH" ] && [ "$(secret_of "$TOKEN_SRC")" != "$(secret_of "$ROOT$TOKEN_PATH")" ]; then
  die "$TOKEN_PATH exists with another token; remove it first to replace it (every client must then change too)"
fi
if [ -n "$SECRET_SRC" ] && [ -f "$ROOT$SECRET_PATH" ] && [ "$(secret_of "$SECRET_SRC")" != "$(secret_of "$ROOT$SECRET_PATH")" ]; then
  die "$SECRET_PATH exists with another cluster secret; remove it first to replace it (all nodes must share one)"
fi

# Does the binary run here? (It may not with --root when preparing another architecture.)
# A copy is run when the file is not executable (e.g. a download).
run_version() {
  case "$BINARY" in */*) path=$BINARY ;; *) path=./$BINARY ;; esac
  if [ -x "$path" ]; then "$path" version 2>/dev/null; return; fi
  copy=$(mktemp)
  cp "$BINARY" "$copy" && chmod 755 "$copy" && "$copy" version 2>/dev/null && rc=0 || rc=1
  rm -f "$copy"
  return "$rc"
}
if VERSION_LINE=$(run_version); then
  :
elif [ -z "$ROOT" ]; then
  die "$BINARY does not run on this machine ($(uname -m)): pick the edgeraft-<target> built for it"
else
  VERSION_LINE="(cannot run $BINARY here: another architecture?)"
fi

# The node's settings.
[ -n "$ID" ] || ID=$(uname -n | cut -d. -f1)
printf '%s' "$ID" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' ||
  usage_error "--id $ID: 1-64 letters, digits, '.', '_' or '-'"
# url_of ID PEERS: the URL of ID in an ID=URL,... list (an exact match: '.' in an id is no
# pattern), or nothing.
url_of() {
  printf '%s\n' "$2" | tr ',' '\n' |
    awk -v id="$1" 'index($0, id "=") == 1 { print substr($0, length(id) + 2); exit }'
}
safe() { printf '%s' "$2" | grep -Eq '^[][A-Za-z0-9._~:/=,%-]+$' || usage_error "$1 $2: unexpected characters"; }
[ -z "$PEERS" ] || safe --peers "$PEERS"
[ -z "$LISTEN" ] || safe --listen "$LISTEN"
[ -z "$ADVERTISE" ] || safe --advertise "$ADVERTISE"
if [ -n "$PEERS" ]; then
  OWN_URL=$(url_of "$ID" "$PEERS")
  [ -n "$OWN_URL" ] || usage_error "--peers does not list this node's id $ID (pass --id)"
  if [ -z "$LISTEN" ]; then
    hostport=${OWN_URL#*://}
    hostport=${hostport%%/*}
    port=${hostport##*:}
    host=${hostport%:*}
    printf '%s' "$port" | grep -Eq '^[0-9]+$' && [ "$host" != "$hostport" ] ||
      usage_error "this node's URL $OWN_URL in --peers needs a port"
    if printf '%s' "$host" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$|^\[[0-9A-Fa-f:.]+\]$'; then
      LISTEN=$host:$port
    else
      LISTEN=0.0.0.0:$port
    fi
  fi
else
  [ -n "$LISTEN" ] || LISTEN=127.0.0.1:7070
  case "$LISTEN" in
    0.0.0.0:*|\[::\]:*)
      [ -n "$ADVERTISE" ] || usage_error "--listen $LISTEN needs --advertise URL (or --peers)"
      OWN_URL=$ADVERTISE ;;
    *) OWN_URL=${ADVERTISE:-http://$LISTEN} ;;
  esac
  PEERS=$ID=$OWN_URL
fi

TMP_CONFIG=$(mktemp)
trap 'rm -f "$TMP_CONFIG"' EXIT
{
  echo "{"
  printf '  "id": "%s",\n' "$ID"
  printf '  "dataDir": "%s",\n' "$STATE_DIR"
  printf '  "listen": "%s",\n' "$LISTEN"
  [ -z "$ADVERTISE" ] || printf '  "advertise": "%s",\n' "$ADVERTISE"
  printf '  "peers": "%s",\n' "$PEERS"
  printf '  "tokenFile": "%s",\n' "$TOKEN_PATH"
  printf '  "clusterSecretFile": "%s"\n' "$SECRET_PATH"
  echo "}"
} >"$TMP_CONFIG"

# ---------------------------------------------------------------- install
echo "Installing $VERSION_LINE${ROOT:+ into $ROOT}"
ensure_user
UID_GID=$(user_ids)
if [ "$IS_ROOT" -eq 0 ]; then
  echo "  note: not running as root, so files keep owner $(id -un); the service needs owner $USER_NAME ($UID_GID)"
fi
GID=${UID_GID#*:}
put_file "$BINARY" "$BIN_PATH" 755 0:0
put_file "$UNIT_SRC" "$UNIT_PATH" 644 0:0
ensure_dir "$CONF_DIR" 750 "0:$GID"
ensure_dir "$STATE_DIR" 700 "$UID_GID"
ensure_secret "$TOKEN_SRC" "$TOKEN_PATH"
ensure_secret "$SECRET_SRC" "$SECRET_PATH"
if [ -f "$ROOT$CONF_PATH" ] && ! cmp -s "$TMP_CONFIG" "$ROOT$CONF_PATH"; then
  note kept "$CONF_PATH"
  if [ "$CONFIG_FLAGS" -eq 1 ]; then
    echo "  warning: $CONF_PATH differs from --id/--peers/--listen/--advertise; kept as it is (edit it, or remove it and run again)"
  fi
  ensure_meta "$CONF_PATH" 600 "$UID_GID"
else
  put_file "$TMP_CONFIG" "$CONF_PATH" 600 "$UID_GID"
fi
URL=$(url_of "$ID" "$PEERS")
[ -z "$ADVERTISE" ] || URL=$ADVERTISE

# Everything written above reaches the disk before this says "Done" (a power cut right after an
# install must not leave empty files behind).
if [ "$CHANGES" -gt 0 ]; then sync; fi

if [ "$START" -eq 1 ]; then
  was_active=0
  systemctl is-active --quiet edgeraft && was_active=1
  systemctl daemon-reload
  systemctl enable --now edgeraft
  # An upgrade (new binary, unit or permissions) takes effect only after a restart.
  if [ "$was_active" -eq 1 ] && [ "$CHANGES" -gt 0 ]; then systemctl restart edgeraft; fi
  echo "Done: $CHANGES changes; edgeraft is running."
else
  echo "Done: $CHANGES changes."
fi

# /etc/edgeraft is 0750 root:edgeraft and the token in it 0600 edgeraft: reading it takes root,
# hence sudo (and the binary by its full path: sudo's PATH may lack /usr/local/bin).
cat <<EOF

Next steps${ROOT:+ (on the system installed in $ROOT)}, as root: only root and $USER_NAME can read $TOKEN_PATH.
EOF
if [ "$START" -eq 0 ]; then
  echo "  sudo systemctl daemon-reload && sudo systemctl enable --now edgeraft   # start now and at boot"
fi
cat <<EOF
  sudo journalctl -u edgeraft -f   # the node's log
  sudo $BIN_PATH status --from $URL --token-file $TOKEN_PATH
  curl -fsS -H "Authorization: Bearer \$(sudo cat $TOKEN_PATH)" -OJ $URL/v1/backup   # first backup
Every node of the cluster needs this cluster secret (and token): copy $SECRET_PATH and
$TOKEN_PATH (as root) to the other machines and install there with the same --peers and
--cluster-secret-file cluster-secret --token-file token.
EOF
