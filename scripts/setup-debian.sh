#!/bin/sh
# Installs the Debian 12 packages lfm2-gst needs (only the missing ones) and configures a
# meson build directory. Safe to run again.  usage: scripts/setup-debian.sh [BUILD_DIR] [meson args…]
set -eu
cd "$(dirname "$0")/.."

PACKAGES="
  gcc libc6-dev pkg-config meson ninja-build python3
  libglib2.0-dev libjson-glib-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-x
  libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev
  libopenblas-dev
  clang libclang-rt-14-dev
"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing:$missing"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

BUILD=${1:-build}
[ $# -gt 0 ] && shift
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$@" >/dev/null
fi
ninja -C "$BUILD"
echo "setup: built in $BUILD"
