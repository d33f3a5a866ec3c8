#!/usr/bin/env bash
# Remove masterbox from a box. Keeps presets, captures, state and the config file unless --purge.
#
#   sudo systemd/uninstall.sh            stop and remove the services and the code; keep the data
#   sudo systemd/uninstall.sh --purge    also delete the data root, config, numba cache and the user
#
# Paths come from the installer's record ($PREFIX/INSTALLED); the same --root/--prefix/... options
# as install.sh override them, and --no-system skips systemctl and userdel (needed with --root).
set -euo pipefail

ROOT=""
PREFIX="/opt/masterbox"
NO_SYSTEM=0
PURGE=0
declare -A OVERRIDE=()

usage() {
  cat <<EOF
usage: $0 [--purge] [--root DIR] [--prefix DIR] [--data-root DIR] [--config-dir DIR] [--cache-dir DIR]
          [--unit-dir DIR] [--avahi-dir DIR] [--polkit-dir DIR] [--user NAME] [--no-system]
  --purge       also delete presets, captures, state, config, the numba cache and the service user
  --no-system   do not run systemctl or userdel on this machine (required with --root)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2%/}"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --data-root) OVERRIDE[data_root]="$2"; shift 2 ;;
    --config-dir) OVERRIDE[config_dir]="$2"; shift 2 ;;
    --cache-dir) OVERRIDE[cache_dir]="$2"; shift 2 ;;
    --unit-dir) OVERRIDE[unit_dir]="$2"; shift 2 ;;
    --avahi-dir) OVERRIDE[avahi_dir]="$2"; shift 2 ;;
    --polkit-dir) OVERRIDE[polkit_dir]="$2"; shift 2 ;;
    --user) OVERRIDE[user]="$2"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    --no-system) NO_SYSTEM=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }
skip() { printf '    skipped (--no-system): %s\n' "$*"; }
die() { printf 'uninstall.sh: %s\n' "$*" >&2; exit 1; }

if [ -n "$ROOT" ] && [ "$NO_SYSTEM" = 0 ]; then
  die "--root works on a directory tree; add --no-system so systemctl and userdel are not run against this machine"
fi
if [ "$NO_SYSTEM" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0)"
fi

# What the installer recorded, then the command line on top.
declare -A CFG=([data_root]=/var/lib/masterbox [config_dir]=/etc/masterbox [cache_dir]=/var/cache/masterbox
                [unit_dir]=/etc/systemd/system [avahi_dir]=/etc/avahi/services
                [polkit_dir]=/etc/polkit-1/rules.d [user]=masterbox)
RECORD="$ROOT$PREFIX/INSTALLED"
if [ -f "$RECORD" ]; then
  while IFS='=' read -r key value; do
    [ -n "$key" ] && [ -n "${CFG[$key]+x}" ] && CFG[$key]="$value"
  done < "$RECORD"
else
  say "no $PREFIX/INSTALLED record: using default paths"
fi
for key in "${!OVERRIDE[@]}"; do CFG[$key]="${OVERRIDE[$key]}"; done

UNITS=(masterbox-control.service masterbox-engine.service masterbox-cpu-performance.service)
if [ -n "$ROOT" ]; then
  say "disabling units inside $ROOT (offline)"
  systemctl --root="$ROOT" disable "${UNITS[@]}" >/dev/null 2>&1 || true
elif [ "$NO_SYSTEM" = 1 ]; then
  skip "systemctl disable --now ${UNITS[*]}"
else
  say "stopping and disabling the services"
  systemctl disable --now "${UNITS[@]}" 2>/dev/null || true
fi

say "removing units, avahi service, polkit rule, code ($PREFIX)"
for u in "${UNITS[@]}"; do rm -f "$ROOT${CFG[unit_dir]}/$u"; done
rm -f "$ROOT${CFG[avahi_dir]}/masterbox.service"
rm -f "$ROOT${CFG[polkit_dir]}/50-masterbox.rules"
wrapper="$ROOT/usr/local/bin/masterbox"
if [ -f "$wrapper" ] && grep -q '^# masterbox-wrapper' "$wrapper"; then rm -f "$wrapper"; fi
rm -rf "$ROOT$PREFIX"
if [ -z "$ROOT" ] && [ "$NO_SYSTEM" = 0 ]; then
  systemctl daemon-reload
  systemctl try-reload-or-restart avahi-daemon.service 2>/dev/null || true
fi

if [ "$PURGE" = 1 ]; then
  say "purging data ${CFG[data_root]}, config ${CFG[config_dir]}, cache ${CFG[cache_dir]}"
  rm -rf "$ROOT${CFG[data_root]}" "$ROOT${CFG[config_dir]}" "$ROOT${CFG[cache_dir]}"
  if [ "$NO_SYSTEM" = 1 ]; then
    skip "userdel ${CFG[user]}"
  elif id -u "${CFG[user]}" >/dev/null 2>&1; then
    userdel "${CFG[user]}"
  fi
else
  rm -rf "$ROOT${CFG[cache_dir]}"
  say "kept: ${CFG[data_root]} (presets, captures, state) and ${CFG[config_dir]}; --purge deletes them"
fi
say "masterbox removed"
