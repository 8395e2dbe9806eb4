# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target agent -t hwnas-agent .        slim device agent (no torch)
#   docker build --target controller -t hwnas .         controller with the ML stack

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/hwnas
COPY pyproject.toml setup.py README.md ./
COPY hwnas ./hwnas
COPY protos ./protos
COPY device_agent ./device_agent
COPY controller ./controller
COPY predictors ./predictors

FROM base AS agent
# The local project is installed; its pins live in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[agent]" \
    && useradd --create-home --uid 10001 hwnas
USER 10001
EXPOSE 50151
# Mount the files of `hwnas certs init` at /certs. The agent serves TLS with a bearer token; setting
# HWNAS_TLS_CLIENT_CA=/certs/ca.pem also requires client certificates (mutual TLS).
# These are paths to mounted secrets, not secrets.
# hadolint ignore=DL3064
ENV HWNAS_PORT=50151 HWNAS_TLS_CERT=/certs/agent.pem HWNAS_TLS_KEY=/certs/agent.key \
    HWNAS_TLS_CA=/certs/ca.pem HWNAS_TOKEN_FILE=/certs/token
# grpc.health.v1 over the same TLS, through Python's own client: no extra binary in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "hwnas.device_agent.healthcheck"]
ENTRYPOINT ["hwnas-agent", "serve", "--host", "0.0.0.0", "--port", "50151", "--cache-dir", "/home/hwnas/models"]

FROM base AS controller
# hadolint ignore=DL3013
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir ".[controller]" \
    && useradd --create-home --uid 10001 hwnas
USER 10001
ENTRYPOINT ["hwnas"]
CMD ["--help"]
