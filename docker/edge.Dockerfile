# The edge runtime (orstream edge run) for x86 hosts with an NVIDIA GPU: GStreamer, ONNX
# Runtime, and TensorRT with CUDA PyTorch for the tensorrt:cuda and torch:cuda backends (the
# TensorRT backend keeps its buffers in torch tensors). No training code runs here.
#
# Build from the repository root (the context is the repository, trimmed by .dockerignore):
#   docker build -f docker/edge.Dockerfile -t orstream-edge:0.1.0 .
# The CPU image: the same file on any Debian or Ubuntu base whose python3 is 3.11 or newer,
# without the GPU packages (scripts/build_offline_image.sh builds it on a Debian bookworm base
# it bootstraps itself):
#   docker build -f docker/edge.Dockerfile --build-arg BASE_IMAGE=orstream-base:bookworm \
#     --build-arg GPU_PACKAGES= --build-arg GPU_INDEX= -t orstream-edge-cpu:0.1.0 .
#
# The final stage installs wheels built in the builder stage through a bind mount (BuildKit),
# so neither the compilers nor the wheels end up in a layer of the image.

# Ubuntu 24.04 (Python 3.12) with the CUDA 12.8 runtime; TensorRT comes as NVIDIA's wheels.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

FROM ${BASE_IMAGE} AS builder
# CUDA 12.8 builds of torch live on PyTorch's own index; TensorRT 10 is the API the backend is
# written against; the torch backend runs the packages' ONNX graphs, so it needs onnx too (the
# edge extra leaves it out, as torch is optional there).
ARG GPU_PACKAGES="torch==2.9.1+cu128 onnx==1.23.2 tensorrt-cu12==10.16.1.11"
ARG GPU_INDEX=https://download.pytorch.org/whl/cu128
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Versions come from the pinned base's release; the packages only build PyGObject and pycairo
# (no wheels on PyPI) against the distribution's GObject introspection and cairo.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config python3-dev python3-venv \
        libgirepository1.0-dev libcairo2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY orstream orstream
COPY streams streams
COPY edge edge
COPY export export
COPY training training
COPY server server
COPY proto proto
COPY client client
# GPU_PACKAGES is a list of requirements: word splitting is wanted.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --wheel-dir /wheels \
        ${GPU_INDEX:+--extra-index-url "$GPU_INDEX"} ".[edge]" $GPU_PACKAGES

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
# Runtime libraries only: GStreamer with the plugins the sources and sinks use (decoders,
# x264enc, mp4mux, RTSP server), the introspection data PyGObject loads, cairo for pycairo.
# No display plugins: the OR display runs on the host. Versions as in the builder stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv \
        gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
        gstreamer1.0-rtsp gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
        gir1.2-gst-rtsp-server-1.0 libgirepository-1.0-1 libcairo2 libcairo-gobject2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/orstream --shell /usr/sbin/nologin orstream \
    && install -d -o orstream -g orstream \
        /var/lib/orstream/recordings /var/lib/orstream/outbox
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python3 -m venv /opt/venv \
    && pip install --no-index --find-links=/wheels /wheels/*.whl
# The shipped model packages, owned by root: the runtime user can read them, not change them.
# compose.yaml mounts the host's packages over them, read-only.
COPY edge/packages /opt/orstream/packages
# Named volumes mounted here start with this ownership, so the runtime user can write them.
VOLUME ["/var/lib/orstream/recordings", "/var/lib/orstream/outbox"]
# Numeric, so a runtime that checks for non-root (Kubernetes runAsNonRoot) can tell.
USER 10001:10001
WORKDIR /var/lib/orstream
EXPOSE 50051
# The edge is healthy while a stream delivers and no model failed (grpc.health.v1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["orstream", "client", "health", "--address", "127.0.0.1:50051"]
# `docker stop` sends this; the edge drains (recordings finalised, CSVs written) within about
# 5 s, inside docker's default 10 s grace period.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orstream"]
# A looping phantom through the shipped recognizer, gRPC on loopback (reach it with
# --network host, or give --grpc 0.0.0.0:50051 with TLS and --tokens, or --insecure).
CMD ["edge", "run", "--source", "endo=phantom://?seed=1&seconds=120&loop=1", \
     "--model", "/opt/orstream/packages/pitvis_workflow", "--grpc", "127.0.0.1:50051"]
