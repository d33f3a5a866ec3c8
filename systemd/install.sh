#!/usr/bin/env bash
# Install (or upgrade in place) masterbox on a Raspberry Pi OS / Debian box.
#
# Run from a checkout as root:  sudo systemd/install.sh        (or: make install-box)
# Running it again upgrades the code and keeps presets, captures, state and the config file.
#
# What it lays down (defaults; every path can be moved, see --help):
#   /opt/masterbox/src            the source tree (copied from this checkout)
#   /opt/masterbox/venv           a virtual environment with masterbox installed (editable from src)
#   /opt/masterbox/share/doc      the documentation
#   /var/lib/masterbox            data root: presets/, captures/, state.json   (owned by masterbox)
#   /var/cache/masterbox/numba    the numba cache, warmed here because entries are CPU-specific
#   /etc/masterbox/config.toml    from firmware/config-template.toml, only when missing; the folder
#                                 root:masterbox 2770 and the file 0660 (the web UI writes [audio])
#   /etc/systemd/system/masterbox-*.service, /etc/avahi/services/masterbox.service,
#   /etc/polkit-1/rules.d/50-masterbox.rules (the panel may power the box off)
#
# --root DIR installs into a directory tree (an SD-card image, a test) instead of this machine;
# it needs --no-system, which skips everything that acts on the running system (apt-get,
# useradd/groupadd, chown, hostnamectl, systemctl start). Units are then enabled offline with
# `systemctl --root`, which only writes symlinks under DIR.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=""
PREFIX="/opt/masterbox"
DATA_ROOT="/var/lib/masterbox"
CONFIG_DIR="/etc/masterbox"
CACHE_DIR="/var/cache/masterbox"
RUN_DIR="/run/masterbox"
UNIT_DIR="/etc/systemd/system"
AVAHI_DIR="/etc/avahi/services"
POLKIT_DIR="/etc/polkit-1/rules.d"
USER_NAME="masterbox"
PYTHON="${PYTHON:-python3}"
HOSTNAME_WANTED=""
NO_SYSTEM=0
NO_WARM=0
NO_START=0
REUSE_SITE=""

usage() {
  cat <<EOF
usage: $0 [options]
  --root DIR          install into DIR as if it were / (needs --no-system)
  --prefix DIR        code and venv               (default $PREFIX)
  --data-root DIR     presets, captures, state    (default $DATA_ROOT)
  --config-dir DIR    config.toml                 (default $CONFIG_DIR)
  --cache-dir DIR     numba cache                 (default $CACHE_DIR)
  --unit-dir DIR      systemd units               (default $UNIT_DIR)
  --avahi-dir DIR     avahi service files         (default $AVAHI_DIR)
  --polkit-dir DIR    polkit rules (panel power-off) (default $POLKIT_DIR)
  --user NAME         service user                (default $USER_NAME)
  --python EXE        interpreter for the venv    (default python3)
  --hostname NAME     rename this machine (for http://NAME.local:8080); by default only a
                      Raspberry Pi OS default name ('raspberrypi') is changed, to 'masterbox'
  --no-system         do not touch the running system: no apt-get, useradd, chown, hostnamectl,
                      systemctl (say so explicitly; nothing is skipped silently)
  --no-warm           do not compile the numba kernels now (the engine then compiles at first start)
  --no-start          enable the units but do not (re)start them
  --reuse-site-packages DIR
                      offline/development: let the new venv use the packages in DIR (a venv's
                      site-packages) instead of downloading them; masterbox itself is still installed
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2%/}"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --data-root) DATA_ROOT="$2"; shift 2 ;;
    --config-dir) CONFIG_DIR="$2"; shift 2 ;;
    --cache-dir) CACHE_DIR="$2"; shift 2 ;;
    --unit-dir) UNIT_DIR="$2"; shift 2 ;;
    --avahi-dir) AVAHI_DIR="$2"; shift 2 ;;
    --polkit-dir) POLKIT_DIR="$2"; shift 2 ;;
    --user) USER_NAME="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --hostname) HOSTNAME_WANTED="$2"; shift 2 ;;
    --no-system) NO_SYSTEM=1; shift ;;
    --no-warm) NO_WARM=1; shift ;;
    --no-start) NO_START=1; shift ;;
    --reuse-site-packages) REUSE_SITE="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }
skip() { printf '    skipped (--no-system): %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

if [ -n "$ROOT" ] && [ "$NO_SYSTEM" = 0 ]; then
  die "--root installs into a directory tree; add --no-system so apt-get, useradd and systemctl are not run against this machine"
fi
if [ "$NO_SYSTEM" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0), or add --no-system with --root/--prefix for a trial install"
fi
[ -f "$SRC/pyproject.toml" ] && [ -d "$SRC/firmware" ] || die "run from a masterbox checkout ($SRC has no pyproject.toml)"
TEMPLATE="$SRC/firmware/config-template.toml"
[ -f "$TEMPLATE" ] || die "$TEMPLATE is missing: this checkout has no config template"

# Paths as the box sees them ($PREFIX...) and where we write them ($R_PREFIX...).
R_PREFIX="$ROOT$PREFIX"; R_DATA="$ROOT$DATA_ROOT"; R_CONFIG="$ROOT$CONFIG_DIR"; R_CACHE="$ROOT$CACHE_DIR"
R_UNITS="$ROOT$UNIT_DIR"; R_AVAHI="$ROOT$AVAHI_DIR"; R_POLKIT="$ROOT$POLKIT_DIR"
UNITS=(masterbox-engine.service masterbox-control.service masterbox-cpu-performance.service)
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$SRC/pyproject.toml" | head -1)"
UPGRADE=0; [ -f "$R_PREFIX/INSTALLED" ] && UPGRADE=1
say "masterbox $VERSION: $([ $UPGRADE = 1 ] && echo upgrading in place || echo installing) into ${ROOT:-/}"

# 1. Debian packages (only the missing ones).
if [ "$NO_SYSTEM" = 1 ]; then
  skip "apt-get install of systemd/box-packages.txt"
else
  [ -f /etc/debian_version ] || die "this installer is for Debian / Raspberry Pi OS"
  case "$(uname -m)" in aarch64|x86_64) ;; *) say "warning: $(uname -m) is not a 64-bit OS; masterbox is built for 64-bit";; esac
  wanted=$(sed -e 's/#.*//' "$SRC/systemd/box-packages.txt")
  if apt-cache show python3-lgpio >/dev/null 2>&1; then wanted="$wanted python3-lgpio"; fi
  missing=$(for p in $wanted; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
  if [ -n "$missing" ]; then
    say "Debian packages:" $missing
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
fi

# 2. The service user: its own group, plus audio (engine), gpio/spi (front panel) and video (vcgencmd).
if [ "$NO_SYSTEM" = 1 ]; then
  skip "user '$USER_NAME' and groups audio/gpio/spi/video"
else
  for g in audio gpio spi video; do getent group "$g" >/dev/null || groupadd --system "$g"; done
  if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    say "user $USER_NAME"
    useradd --system --user-group --home-dir "$DATA_ROOT" --no-create-home --shell /usr/sbin/nologin \
      --comment "masterbox mastering box" "$USER_NAME"
  fi
  usermod -a -G audio,gpio,spi,video "$USER_NAME"
fi

# 3. Directories. Data and config are created when missing and never emptied.
say "directories"
mkdir -p "$R_PREFIX" "$R_DATA/presets" "$R_DATA/captures" "$R_CONFIG" "$R_CACHE/numba" "$R_UNITS" "$R_AVAHI"
if [ "$NO_SYSTEM" = 1 ]; then
  skip "chown $USER_NAME of $DATA_ROOT and $CACHE_DIR; chown root:$USER_NAME of $CONFIG_DIR and its files"
else
  chown -R "$USER_NAME:$USER_NAME" "$R_DATA" "$R_CACHE"
  chmod 0750 "$R_DATA"
  chown root:"$USER_NAME" "$R_CONFIG"
fi
# The service group writes in the config folder: the web UI's System page replaces config.toml
# (a temporary file beside it, then a rename; firmware/audio_settings.py). setgid, so a file
# written there by anyone keeps the group; nothing for others. On every run (an upgrade fixes
# an older install's 0750); modes are set under --root too, only the owner needs the system.
chmod 2770 "$R_CONFIG"

# 4. The code: a copy of this checkout (without its venv, data and build leftovers).
say "source -> $PREFIX/src"
rm -rf "$R_PREFIX/src.new"
mkdir -p "$R_PREFIX/src.new"
# Top-level development leftovers, then caches wherever they are.
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build --exclude=./dist \
    --exclude=./masterbox.toml --exclude=./bench/out --exclude=./test-results --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis \
    --exclude=node_modules -cf - . | tar -C "$R_PREFIX/src.new" -xf -
rm -rf "$R_PREFIX/src.old"
[ -d "$R_PREFIX/src" ] && mv "$R_PREFIX/src" "$R_PREFIX/src.old"
mv "$R_PREFIX/src.new" "$R_PREFIX/src"
rm -rf "$R_PREFIX/src.old"
mkdir -p "$R_PREFIX/share/doc"
cp "$SRC/README.md" "$R_PREFIX/share/doc/"
[ -d "$SRC/docs" ] && cp -r "$SRC/docs/." "$R_PREFIX/share/doc/"

# 5. The venv. Made with system site packages so Debian's GPIO library (python3-lgpio) is seen.
say "venv $PREFIX/venv"
if [ ! -x "$R_PREFIX/venv/bin/python" ]; then
  if [ -n "$REUSE_SITE" ] && [ -d "$REUSE_SITE/pip" ]; then
    # the reused packages bring pip along (the .pth below): seeding the venv with its own copy
    # through ensurepip would take ~8 s, on every test install
    "$PYTHON" -m venv --system-site-packages --without-pip "$R_PREFIX/venv"
  else
    "$PYTHON" -m venv --system-site-packages "$R_PREFIX/venv"
  fi
fi
VPY="$R_PREFIX/venv/bin/python"
if [ -n "$REUSE_SITE" ]; then
  [ -d "$REUSE_SITE" ] || die "--reuse-site-packages $REUSE_SITE: no such directory"
  site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  echo "$REUSE_SITE" > "$site/masterbox-reuse.pth"
  "$VPY" -m pip install -q --no-deps -e "$R_PREFIX/src"
else
  "$VPY" -m pip install -q --upgrade pip setuptools wheel
  "$VPY" -m pip install -q -e "$R_PREFIX/src"
fi
# Byte-code now: the services see the code read-only (ProtectSystem=strict) and could not cache it.
"$VPY" -m compileall -q "$R_PREFIX/src" >/dev/null || say "warning: some files did not byte-compile"

# `masterbox` on the administrator's PATH: run as the service user with the service's data root,
# config and warmed numba cache, so files it writes stay usable by the services.
mkdir -p "$ROOT/usr/local/bin"
rm -f "$ROOT/usr/local/bin/masterbox"
cat > "$ROOT/usr/local/bin/masterbox" <<WRAPPER
#!/bin/sh
# masterbox-wrapper (written by systemd/install.sh; removed by uninstall.sh)
export MASTERBOX_HOME="\${MASTERBOX_HOME:-$DATA_ROOT}"
export MASTERBOX_CONFIG="\${MASTERBOX_CONFIG:-$CONFIG_DIR/config.toml}"
export MASTERBOX_RUN="\${MASTERBOX_RUN:-$RUN_DIR}"
export NUMBA_CACHE_DIR="\${NUMBA_CACHE_DIR:-$CACHE_DIR/numba}"
if [ "\$(id -u)" = 0 ] && id -u $USER_NAME >/dev/null 2>&1; then
  exec runuser -u $USER_NAME -- $PREFIX/venv/bin/masterbox "\$@"
fi
exec $PREFIX/venv/bin/masterbox "\$@"
WRAPPER
chmod 0755 "$ROOT/usr/local/bin/masterbox"

# 6. Config from the commented template, only when there is none; the new template sits beside it.
if [ -f "$R_CONFIG/config.toml" ]; then
  say "config kept: $CONFIG_DIR/config.toml (new template: config.toml.template)"
else
  say "config $CONFIG_DIR/config.toml from the template"
  cp "$TEMPLATE" "$R_CONFIG/config.toml"
fi
cp "$TEMPLATE" "$R_CONFIG/config.toml.template"
if [ "$NO_SYSTEM" = 0 ]; then
  chown root:"$USER_NAME" "$R_CONFIG/config.toml" "$R_CONFIG/config.toml.template"
fi
# The group reads and writes the config (engine and control read it, the System page writes it);
# the template is for reading. The text of a kept config.toml is never touched.
chmod 0660 "$R_CONFIG/config.toml"
chmod 0640 "$R_CONFIG/config.toml.template"

# 7. The numba cache, compiled on this CPU as the service user (the engine then only loads it).
if [ "$NO_WARM" = 1 ]; then
  say "numba cache: not warmed (--no-warm); the engine compiles at its first start"
elif [ -n "$ROOT" ]; then
  say "numba cache: not warmed under --root (entries are specific to the CPU and the final paths); the engine compiles at its first start"
else
  say "numba cache: compiling kernels for this CPU (minutes on a Pi, once)"
  warm_env=(env "NUMBA_CACHE_DIR=$R_CACHE/numba" "MASTERBOX_HOME=$R_DATA" "HOME=$R_DATA")
  if [ "$NO_SYSTEM" = 1 ]; then
    "${warm_env[@]}" "$VPY" -m firmware.warmup
  else
    runuser -u "$USER_NAME" -- "${warm_env[@]}" "$VPY" -m firmware.warmup
  fi
fi

# 8. Units and the avahi service, with the paths above written in.
say "systemd units -> $UNIT_DIR"
rewrite() {
  sed -e "s#/opt/masterbox#$PREFIX#g" -e "s#/var/lib/masterbox#$DATA_ROOT#g" \
      -e "s#/etc/masterbox#$CONFIG_DIR#g" -e "s#/var/cache/masterbox#$CACHE_DIR#g" \
      -e "s#^User=masterbox#User=$USER_NAME#; s#^Group=masterbox#Group=$USER_NAME#" "$1"
}
for u in "${UNITS[@]}"; do
  rewrite "$SRC/systemd/$u" > "$R_UNITS/$u.tmp" && mv "$R_UNITS/$u.tmp" "$R_UNITS/$u"
  chmod 0644 "$R_UNITS/$u"
done
cp "$SRC/systemd/avahi/masterbox.service" "$R_AVAHI/masterbox.service"
chmod 0644 "$R_AVAHI/masterbox.service"
# polkit: let the service user power the box off from the front panel.
mkdir -p "$R_POLKIT"
sed -e "s/subject.user == \"masterbox\"/subject.user == \"$USER_NAME\"/" "$SRC/systemd/polkit/50-masterbox.rules" \
  > "$R_POLKIT/50-masterbox.rules"
chmod 0644 "$R_POLKIT/50-masterbox.rules"

# 9. The machine's name, so http://masterbox.local:8080 resolves.
current_host="$(cat "$ROOT/etc/hostname" 2>/dev/null || true)"
target_host="$HOSTNAME_WANTED"
if [ -z "$target_host" ] && [ "$current_host" = raspberrypi ]; then target_host=masterbox; fi
if [ -n "$target_host" ] && [ "$target_host" != "$current_host" ]; then
  if [ "$NO_SYSTEM" = 1 ]; then
    skip "hostnamectl set-hostname $target_host"
  else
    say "hostname $current_host -> $target_host"
    hostnamectl set-hostname "$target_host"
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$target_host/" /etc/hosts
  fi
fi

# 10. Record what is installed (the uninstaller and `upgrade` runs read it).
cat > "$R_PREFIX/INSTALLED" <<EOF
version=$VERSION
commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
prefix=$PREFIX
data_root=$DATA_ROOT
config_dir=$CONFIG_DIR
cache_dir=$CACHE_DIR
unit_dir=$UNIT_DIR
avahi_dir=$AVAHI_DIR
polkit_dir=$POLKIT_DIR
user=$USER_NAME
EOF

# 11. Enable (and start) the units.
if [ -n "$ROOT" ]; then
  say "enabling units inside $ROOT (offline)"
  systemctl --root="$ROOT" enable "${UNITS[@]}" 2>&1 | sed 's/^/    /'
elif [ "$NO_SYSTEM" = 1 ]; then
  skip "systemctl daemon-reload; systemctl enable ${UNITS[*]}; start"
else
  systemctl daemon-reload
  systemctl enable "${UNITS[@]}"
  systemctl try-reload-or-restart avahi-daemon.service || true
  if [ "$NO_START" = 1 ]; then
    say "units enabled; not started (--no-start)"
  else
    say "(re)starting masterbox"
    systemctl start masterbox-cpu-performance.service
    systemctl restart masterbox-engine.service masterbox-control.service
  fi
fi

host="${target_host:-${current_host:-masterbox}}"
say "done. Web UI: http://$host.local:8080   status: systemctl status masterbox-engine masterbox-control"
say "set the web password with: sudo masterbox passwd"
