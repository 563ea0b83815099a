#!/usr/bin/env bash
# Installs the Debian packages the build needs, if missing: libclang (bindgen generates the V4L2
# bindings of the `v4l` crate) and pkg-config. Sourced by setup.sh and demo.sh.
# Extra package names may be passed as arguments.
grasp_install_debs() {
  local debs=(libclang1-14 pkg-config "$@") missing=() p sudo_=""
  for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo_ apt-get update >/dev/null && $sudo_ apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}
