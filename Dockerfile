# syntax=docker/dockerfile:1
# The Bud operator image: `docker build -t budai-operator .`
# Stage 1 builds the project's wheel and installs it with the `operator` extra into a venv;
# stage 2 copies only that venv onto a clean slim Python, so no build tools reach the image.
# The image runs as a numeric non-root user, writes nothing outside /tmp (read-only root
# filesystem friendly) and answers its HEALTHCHECK on the operator's health port.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): tests and tooling stay out.
COPY pyproject.toml README.md ./
COPY budai ./budai
COPY gateway ./gateway
COPY operator ./operator
RUN python -m pip wheel . --no-deps --wheel-dir /wheels
# Dependencies come from wheels only (--only-binary), so no compiler is ever needed; pip itself
# is removed from the venv once it has done its job.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --only-binary=:all: "$(ls /wheels/budai-*.whl)[operator]" \
    && /opt/venv/bin/pip uninstall --yes pip \
    && python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="budai-operator" \
      org.opencontainers.image.description="Kubernetes operator for Bud models, deployments and pipelines" \
      org.opencontainers.image.licenses="Apache-2.0"
# The runtime needs no package manager for Python packages either.
RUN python -m pip uninstall --yes pip setuptools wheel
COPY --from=builder /opt/venv /opt/venv
# HOME and the XDG folders point into /tmp, the one writable mount (an emptyDir in the chart);
# bytecode was compiled in the builder, so Python never writes next to its modules.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    XDG_DATA_HOME=/tmp/.local/share
USER 65532:65532
WORKDIR /tmp
# The operator's defaults: health (/healthz) on 8081, Prometheus metrics on 8080.
EXPOSE 8081 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
# With no --namespace the operator serves every namespace; the chart passes its own options.
ENTRYPOINT ["budai-operator", "run"]
