# syntax=docker/dockerfile:1
# One image for every tradeloop process role, chosen by its command:
#   gateway      tradeloop serve --host 0.0.0.0 --port 8080      (the default CMD)
#   controllers  tradeloop controller run trainer deployer monitor
#   training job tradeloop train
#   ingest       tradeloop data snapshot
#   all in one   tradeloop up --host 0.0.0.0
# State goes to mounted volumes (TRADELOOP_HOME, /tmp), so the root filesystem can be read-only.

ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- build: resolve exactly uv.lock into /app/.venv, with bytecode compiled ahead of time
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (cached while only our code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

# ---- runtime: the interpreter, git (the gitops path runs the git CLI) and libgomp (LightGBM)
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tradeloop" \
      org.opencontainers.image.description="Closed-loop MLOps for ML trading models" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tradeloop/tradeloop"
# DL3008 (unpinned apt packages) is justified: Debian's security updates replace these versions
# within a release, so a pin would break the build; the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tradeloop \
    && useradd --system --uid 10001 --gid tradeloop --home-dir /var/lib/tradeloop \
       --shell /usr/sbin/nologin tradeloop \
    && install -d -o tradeloop -g tradeloop /var/lib/tradeloop /var/lib/mlflow /workspace
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRADELOOP_HOME=/var/lib/tradeloop \
    HOME=/var/lib/tradeloop \
    MPLCONFIGDIR=/tmp/matplotlib \
    GIT_CONFIG_NOSYSTEM=1
USER 10001:10001
WORKDIR /workspace
VOLUME ["/var/lib/tradeloop", "/tmp"]
EXPOSE 8080
# The gateway's liveness; the controllers have no HTTP port, so their compose/k8s
# definitions replace this check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["tradeloop"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
