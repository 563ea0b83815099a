#!/usr/bin/env bash
# Installs grasp-edge as a systemd service on the robot (run as root):
#   scripts/install.sh [--bin PATH] [--root DIR]      install (default binary: target/release/grasp-edge)
#   scripts/install.sh --uninstall [--purge] [--root DIR]
# Installs: /usr/local/bin/grasp-edge, /usr/local/share/grasp-edge/models/*.onnx (the shipped
# model), /usr/local/share/doc/grasp-edge/README.md, /etc/grasp-edge/grasp-edge.toml (from
# edge/grasp-edge.example.toml, never overwritten), /etc/default/grasp-edge, the unit in
# /etc/systemd/system and the udev rule in /etc/udev/rules.d. It enables the service but does not
# start it: calibrate first (grasp-calib wizard), then `systemctl start grasp-edge`.
# --uninstall keeps /etc/grasp-edge and /var/lib/grasp-edge unless --purge. --root installs into
# another root directory (packaging, tests) and skips systemctl/udevadm.
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$src/target/release/grasp-edge"; root=""; action=install; purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --root) root="${2%/}"; shift 2 ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=1; shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
live() { [ -z "$root" ]; }
if live && [ "$(id -u)" != 0 ]; then echo "run as root (or with --root DIR)" >&2; exit 1; fi

if [ "$action" = uninstall ]; then
  live && systemctl disable --now grasp-edge.service 2>/dev/null || true
  rm -f "$root/usr/local/bin/grasp-edge" "$root/etc/systemd/system/grasp-edge.service" "$root/etc/udev/rules.d/99-grasp-edge.rules" "$root/etc/default/grasp-edge"
  rm -rf "$root/usr/local/share/grasp-edge" "$root/usr/local/share/doc/grasp-edge"
  [ "$purge" = 1 ] && rm -rf "$root/etc/grasp-edge" "$root/var/lib/grasp-edge" "$root/var/lib/private/grasp-edge"
  live && { systemctl daemon-reload; udevadm control --reload || true; }
  echo "grasp-edge removed$([ "$purge" = 1 ] && echo ', with its configuration and state' || echo '; /etc/grasp-edge and /var/lib/grasp-edge kept (--purge removes them)')"
  exit 0
fi

[ -x "$bin" ] || { echo "no binary at $bin: build it (cargo build --release -p grasp-edge, or scripts/cross-build.sh) or pass --bin" >&2; exit 1; }
install -D -m 0755 "$bin" "$root/usr/local/bin/grasp-edge"
for model in "$src"/models/*.onnx; do
  install -D -m 0644 "$model" "$root/usr/local/share/grasp-edge/models/$(basename "$model")"
done
install -D -m 0644 "$src/README.md" "$root/usr/local/share/doc/grasp-edge/README.md"
install -D -m 0644 "$src/devices/PROTOCOL.md" "$root/usr/local/share/doc/grasp-edge/PROTOCOL.md"
install -D -m 0644 "$src/systemd/grasp-edge.service" "$root/etc/systemd/system/grasp-edge.service"
install -D -m 0644 "$src/systemd/99-grasp-edge.rules" "$root/etc/udev/rules.d/99-grasp-edge.rules"
[ -e "$root/etc/default/grasp-edge" ] || install -D -m 0644 "$src/systemd/grasp-edge.env" "$root/etc/default/grasp-edge"
if [ ! -e "$root/etc/grasp-edge/grasp-edge.toml" ]; then
  install -D -m 0644 "$src/edge/grasp-edge.example.toml" "$root/etc/grasp-edge/grasp-edge.toml"
  echo "wrote /etc/grasp-edge/grasp-edge.toml from the example: set the camera, the arm port and dialect, and the safety box"
fi
if live; then
  udevadm control --reload && udevadm trigger || true
  systemctl daemon-reload
  systemctl enable grasp-edge.service
fi
echo "installed. Next: grasp-calib wizard --config /etc/grasp-edge/grasp-edge.toml --out /etc/grasp-edge/calibration.toml …,"
echo "then: grasp-edge check-config /etc/grasp-edge/grasp-edge.toml && systemctl start grasp-edge && journalctl -fu grasp-edge"
