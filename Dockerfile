# One image for the server and the workers. EXTRAS="" gives a light server image; the default
# installs the ML extra for workers (torch's CPU build first, from PyTorch's CPU index).
FROM python:3.11-slim
ARG EXTRAS=ml
ENV PYTHONUNBUFFERED=1 RLHF_AUDIT_HOME=/data
WORKDIR /srv/rlhf-audit
COPY pyproject.toml README.md ./
COPY ledger ledger
COPY app app
COPY trainers trainers
COPY migrations migrations
COPY templates templates
COPY static static
# editable: the portal finds templates/ and static/ at the top of the source tree
RUN if [ -n "$EXTRAS" ]; then \
      pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && \
      pip install --no-cache-dir -e ".[$EXTRAS]"; \
    else pip install --no-cache-dir -e .; fi
RUN useradd --create-home --uid 10001 rlhf && mkdir -p /data && chown rlhf /data
USER rlhf
VOLUME /data
EXPOSE 8000
CMD ["rlhf-audit", "serve", "--host", "0.0.0.0", "--port", "8000"]
