#!/usr/bin/env bash
# Builds the CPU edge image where no base image can be pulled (no registry reachable, only a
# Debian package mirror and PyPI), runs it on a phantom feed and queries it from the host.
#
#  1. installs mmdebstrap and docker.io with apt when they are missing;
#  2. starts dockerd when none answers, without a bridge or iptables (so every container and
#     build step uses the host's network), and stops it at the end;
#  3. bootstraps a minimal Debian bookworm with mmdebstrap and `docker import`s it;
#  4. builds docker/edge.Dockerfile on it without the GPU packages (BuildKit);
#  5. runs the image as compose.yaml does (non-root, model packages mounted read-only, a named
#     volume for recordings) on a live phantom, waits for its gRPC health check, asks
#     `orstream client status` from the host, stops it with SIGTERM and lists the recording.
#
# Not part of the test suite: it needs root and takes minutes. On a shared machine run it as
#   nice -n 19 bash scripts/build_offline_image.sh
# Environment: MIRROR (Debian mirror, default http://deb.debian.org/debian), PORT (the edge's
# gRPC port on the host, default 50071), RUN_S (seconds the edge runs, default 30),
# KEEP_DOCKERD=1 (leave a dockerd this script started running).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mirror=${MIRROR:-http://deb.debian.org/debian}
port=${PORT:-50071}
run_s=${RUN_S:-30}
base=orstream-base:bookworm-$(date +%Y%m%d)
image=orstream-edge-cpu:0.1.0
container=orstream-edge-offline
volume=orstream-offline-recordings
work=$(mktemp -d)
started_dockerd=
say() { printf '[offline-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
  "${docker[@]:-docker}" rm -f "$container" >/dev/null 2>&1 || true
  "${docker[@]:-docker}" volume rm "$volume" >/dev/null 2>&1 || true
  if [[ -n $started_dockerd && ${KEEP_DOCKERD:-0} != 1 ]]; then
    kill "$started_dockerd" 2>/dev/null && wait "$started_dockerd" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v dockerd >/dev/null || missing+=(docker.io)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# A docker CLI that builds with BuildKit: one with the buildx plugin, else Debian's 20.10
# client, whose `docker build` talks to the daemon's own BuildKit.
docker=(docker)
if ! docker buildx version >/dev/null 2>&1 && [[ -x /usr/bin/docker ]]; then
  docker=(/usr/bin/docker)
fi

if ! "${docker[@]}" info >/dev/null 2>&1; then
  say "starting dockerd (no bridge, no iptables: containers use --network host)"
  dockerd --bridge=none --iptables=false >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 60); do "${docker[@]}" info >/dev/null 2>&1 && break; sleep 1; done
  "${docker[@]}" info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log"; exit 1; }
fi
say "dockerd $("${docker[@]}" version --format '{{.Server.Version}}'), storage $("${docker[@]}" info --format '{{.Driver}}')"

if ! "${docker[@]}" image inspect "$base" >/dev/null 2>&1; then
  say "bootstrapping Debian bookworm from $mirror"
  start=$SECONDS
  # Certificates this host adds to Debian's (a TLS-inspecting proxy's, say) go into the base
  # too, and pip is told to use the system bundle: otherwise pip in the build, which trusts
  # only its own bundle, cannot reach PyPI through such a proxy. Such a base is site-specific.
  hooks=() changes=()
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    hooks=(--customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share'
      --customize-hook='chroot "$1" update-ca-certificates')
    changes=(--change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt")
  fi
  mmdebstrap --variant=minbase --include=ca-certificates --quiet "${hooks[@]}" \
    bookworm "$work/bookworm.tar" "$mirror"
  "${docker[@]}" import "${changes[@]}" "$work/bookworm.tar" "$base" >/dev/null
  say "base $base: $(du -h "$work/bookworm.tar" | cut -f1) tarball, $((SECONDS - start)) s"
fi

say "building $image on $base"
start=$SECONDS
DOCKER_BUILDKIT=1 "${docker[@]}" build --network host --progress plain \
  -f "$root/docker/edge.Dockerfile" \
  --build-arg BASE_IMAGE="$base" --build-arg GPU_PACKAGES= --build-arg GPU_INDEX= \
  -t "$image" "$root" 2>&1 | tail -n 25
say "built in $((SECONDS - start)) s: $("${docker[@]}" image ls "$image" --format '{{.Size}}')"
"${docker[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^orstream' >&2

say "running $image on a live phantom, gRPC on 127.0.0.1:$port"
"${docker[@]}" volume create "$volume" >/dev/null
start=$SECONDS
"${docker[@]}" run -d --name "$container" --network host \
  -v "$root/edge/packages:/opt/orstream/packages:ro" \
  -v "$volume:/var/lib/orstream/recordings" \
  --health-cmd "orstream client health --address 127.0.0.1:$port" \
  --health-interval 2s --health-start-period 120s \
  "$image" edge run \
  --source "endo=phantom://?seed=1&seconds=60&loop=1&width=640&height=360&fps=12" \
  --model /opt/orstream/packages/pitvis_workflow --grpc "127.0.0.1:$port" \
  --record "/var/lib/orstream/recordings/or-{stream}.mp4" >/dev/null
health=starting
for _ in $(seq 180); do
  health=$("${docker[@]}" inspect --format '{{.State.Health.Status}}' "$container")
  [[ $health == starting ]] || break
  sleep 1
done
say "health: $health after $((SECONDS - start)) s"
if [[ $health != healthy ]]; then
  "${docker[@]}" logs --tail 30 "$container" >&2
  exit 1
fi
sleep "$run_s"
"$root/.venv/bin/orstream" client status --address "127.0.0.1:$port"

start=$SECONDS
"${docker[@]}" stop "$container" >/dev/null
say "stopped in $((SECONDS - start)) s, exit code" \
  "$("${docker[@]}" inspect --format '{{.State.ExitCode}}' "$container")"
"${docker[@]}" logs --tail 12 "$container" >&2
"${docker[@]}" run --rm --network host --entrypoint ls -v "$volume:/rec" "$image" -ln /rec
