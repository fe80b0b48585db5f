# The digest application: one image for every process (web, worker, beat, migrate).
#
#   docker build -t digest .
#   docker run --rm -e DIGEST_SECRET_KEY=... digest                 # web on :8000
#   docker run --rm -e DIGEST_SECRET_KEY=... digest digest worker   # or beat, db upgrade...
#
# docker-compose.yml wires it to PostgreSQL, Redis and a Mailpit SMTP sink.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIGEST_DATA_DIR=/app/data

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml
# changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The repository layout is kept as is under /app: the settings find templates/
# relative to the installed packages (config/ -> ../templates), which an editable
# install preserves. Only what the application needs is copied, so no .venv, data
# or caches from the build context end up in the image.
COPY README.md ./
COPY config ./config
COPY digest ./digest
COPY workers ./workers
COPY templates ./templates
RUN pip install --no-deps -e . \
    && useradd --system --create-home --uid 10001 --user-group digest \
    && mkdir -p /app/data \
    && chown digest:digest /app/data

# Beat keeps its schedule in /app/data (DIGEST_DATA_DIR): mount a volume there to
# keep it across restarts (docker-compose.yml does).
USER digest

EXPOSE 8000

CMD ["digest", "web", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
