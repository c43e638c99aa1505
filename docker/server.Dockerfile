# The server tier's job service (orstream server run) with the server extra: OpenSlide, the
# slide and video job kinds, gRPC, and Ray Serve for --engine ray. Every dependency of the
# extra has a wheel for this Python, so nothing is compiled; the builder stage still keeps pip's
# downloads and the source tree out of the final image.
#
# Build from the repository root (the context is the repository, trimmed by .dockerignore):
#   docker build -f docker/server.Dockerfile -t orstream-server:0.1.0 .

ARG BASE_IMAGE=python:3.11.13-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
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
RUN pip wheel --wheel-dir /wheels ".[server]"

FROM ${BASE_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/orstream --shell /usr/sbin/nologin orstream \
    && install -d -o orstream -g orstream /var/lib/orstream/jobs
# The wheels come through a bind mount (BuildKit), so they never become a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python3 -m venv /opt/venv \
    && pip install --no-index --find-links=/wheels /wheels/*.whl
# A named volume mounted here starts with this ownership, so the runtime user can write it.
VOLUME ["/var/lib/orstream/jobs"]
# Numeric, so a runtime that checks for non-root (Kubernetes runAsNonRoot) can tell.
USER 10001:10001
WORKDIR /var/lib/orstream
EXPOSE 50061
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["orstream", "client", "health", "--address", "127.0.0.1:50061"]
# SIGTERM: health goes NOT_SERVING, running jobs are queued again, the store is closed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orstream"]
# Loopback by default (reach it with --network host); any other --address needs TLS and
# --tokens, or --insecure, as compose.yaml shows.
CMD ["server", "run", "--store", "/var/lib/orstream/jobs"]
