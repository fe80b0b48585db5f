# The digest application: one image for every process (web, worker, beat, migrate).
#
#   docker build -t digest .
#   docker run --rm -e DIGEST_SECRET_KEY=... digest                 # web on :8000
#   docker run --rm -e DIGEST_SECRET_KEY=... digest digest worker   # or beat, db upgrade...
#
# docker-compose.yml wires it to PostgreSQL, Redis and a Mailpit SMTP sink.

# The wheel, built from what it is made of: templates/, config/*.toml, the sample
# papers and the migrations ship inside it as package data.
FROM python:3.12-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY digest ./digest
COPY workers ./workers
COPY templates ./templates
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIGEST_DATA_DIR=/app/data

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml
# changes, not on every source edit.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; deps = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt /tmp/pyproject.toml

# Only the installed wheel: no checkout in the image, the processes find their
# templates, configuration and migrations inside the installed packages.
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && useradd --system --create-home --uid 10001 --user-group digest \
    && mkdir -p /app/data \
    && chown digest:digest /app/data

# Beat keeps its schedule in /app/data (DIGEST_DATA_DIR): mount a volume there to
# keep it across restarts (docker-compose.yml does).
USER digest

EXPOSE 8000

CMD ["digest", "web", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
