# OpenOps API image: CPU torch, pinned dependencies, the bundled embedding model.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 ANONYMIZED_TELEMETRY=False \
    OPENOPS_HOME=/var/lib/openops
WORKDIR /app
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY rag ./rag
COPY ingest ./ingest
COPY bot ./bot
COPY api ./api
COPY data ./data
RUN pip install --no-deps . && mkdir -p /var/lib/openops
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)" || exit 1
CMD ["openops", "serve", "--host", "0.0.0.0", "--port", "8080"]
