# Serving image: ONNX Runtime + FastAPI only (no torch, no sentence-transformers).
# Build a model first on the host (`make model`), then: docker build -t iccs-coder .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ICCS_HOST=0.0.0.0 \
    ICCS_PORT=8000 \
    ICCS_REGISTRY_DIR=/app/model_registry \
    ICCS_STATE_DIR=/var/lib/iccs

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home /app iccs \
    && mkdir -p /var/lib/iccs && chown iccs /var/lib/iccs
# The promoted model and its binaries, built by `make model` before `docker build`: owned by
# root and read-only to the service user (the loader also checks every file's SHA-256).
COPY model_registry ./model_registry
RUN chmod -R a+rX,go-w model_registry

USER iccs
EXPOSE 8000
VOLUME ["/var/lib/iccs"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["iccs", "serve"]
