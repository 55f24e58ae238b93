# One image for the server and the workers.
#   EXTRAS=""  the server: no ML stack (small)
#   EXTRAS=ml  the workers: torch first, alone, from TORCH_INDEX (CPU wheels by default; a CUDA
#              index such as https://download.pytorch.org/whl/cu128 for GPU workers), then the
#              ML extra, which then finds torch already installed and pulls no second build.
FROM python:3.11-slim

ARG EXTRAS=ml
ARG TORCH=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RLHF_AUDIT_HOME=/data \
    RLHF_AUDIT_KEYS_DIR=/keys

WORKDIR /srv/rlhf-audit

RUN if [ -n "$EXTRAS" ]; then pip install "$TORCH" --index-url "$TORCH_INDEX"; fi

COPY pyproject.toml setup.py README.md ./
COPY ledger ledger
COPY app app
COPY trainers trainers
COPY migrations migrations
COPY templates templates
COPY static static

# Editable: the portal finds templates/ and static/ at the top of the source tree. gcc and the
# OpenSSL headers build the ledger's compiled fast paths (ledger/_jcs.c, RFC 8785; _merkle.c,
# SHA-256 through OpenSSL, whose runtime library the image keeps) and go again.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && if [ -n "$EXTRAS" ]; then pip install -e ".[$EXTRAS]"; else pip install -e .; fi \
    && python -c "import ledger._jcs, ledger._merkle" \
    && apt-get purge -y gcc libc6-dev libssl-dev && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*

# A non-root user owning the two volume mount points (new named volumes copy this ownership).
RUN useradd --create-home --uid 10001 rlhf \
    && mkdir -p /data /keys \
    && chown rlhf:rlhf /data /keys \
    && chmod 0700 /keys
USER rlhf
VOLUME ["/data", "/keys"]
EXPOSE 8000

# python:slim has no curl: ask /readyz (200 while the database answers) with the standard library.
# compose.yaml gives the workers their own check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

CMD ["rlhf-audit", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
