# The edge runtime (orstream edge run) for NVIDIA Jetson (aarch64, JetPack 6.1 / L4T R36.4):
# GStreamer and ONNX Runtime on the L4T base, which carries CUDA and TensorRT.
#
# orstream needs Python 3.11 or newer, and JetPack 6 is Ubuntu 22.04 with Python 3.10, so the
# image runs Ubuntu's python3.11. NVIDIA's torch and TensorRT Python bindings for JetPack 6 are
# built for Python 3.10 only, so by default the models run on ONNX Runtime's CPU backend; give
# GPU_PACKAGES (and GPU_INDEX) to add Python 3.11 builds of torch and TensorRT's bindings that
# a site has made for this JetPack, with onnx (the torch backend runs the ONNX graphs), and the
# tensorrt:cuda and torch:cuda backends are chosen.
#
# Build on the Jetson (or with an aarch64 builder), from the repository root:
#   docker build -f docker/edge-jetson.Dockerfile -t orstream-edge-jetson:0.1.0 .
# Run with the NVIDIA container runtime: docker run --runtime nvidia ...

ARG BASE_IMAGE=nvcr.io/nvidia/l4t-jetpack:r36.4.0

FROM ${BASE_IMAGE} AS builder
ARG GPU_PACKAGES=""
ARG GPU_INDEX=""
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Versions come from the pinned base's release; the packages only build PyGObject and pycairo
# (no aarch64 wheels) against the distribution's GObject introspection and cairo.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config python3.11 python3.11-dev python3.11-venv \
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
RUN python3.11 -m venv /opt/build \
    && /opt/build/bin/pip wheel --wheel-dir /wheels \
        ${GPU_INDEX:+--extra-index-url "$GPU_INDEX"} ".[edge]" $GPU_PACKAGES

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
# Runtime libraries only (see edge.Dockerfile); versions as in the builder stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11 python3.11-venv \
        gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
        gstreamer1.0-rtsp gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
        gir1.2-gst-rtsp-server-1.0 libgirepository-1.0-1 libcairo2 libcairo-gobject2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/orstream --shell /usr/sbin/nologin orstream \
    && install -d -o orstream -g orstream \
        /var/lib/orstream/recordings /var/lib/orstream/outbox
# The wheels come through a bind mount (BuildKit), so they never become a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python3.11 -m venv /opt/venv \
    && pip install --no-index --find-links=/wheels /wheels/*.whl
# The shipped model packages, owned by root: readable, not writable, by the runtime user.
COPY edge/packages /opt/orstream/packages
VOLUME ["/var/lib/orstream/recordings", "/var/lib/orstream/outbox"]
# Numeric, so a runtime that checks for non-root (Kubernetes runAsNonRoot) can tell.
USER 10001:10001
WORKDIR /var/lib/orstream
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["orstream", "client", "health", "--address", "127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["orstream"]
CMD ["edge", "run", "--source", "endo=phantom://?seed=1&seconds=120&loop=1", \
     "--model", "/opt/orstream/packages/pitvis_workflow", "--grpc", "127.0.0.1:50051"]
