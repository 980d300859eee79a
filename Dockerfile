# Déjà API image: `deja serve` on Python 3.11, ONNX Runtime models inside the package, no PyTorch.
#   docker build -t deja:0.1.0 .
#   docker run --rm -p 8000:8000 -e DEJA_DATABASE_URL=postgresql+asyncpg://deja:…@db:5432/deja deja:0.1.0
# The database role must not be a superuser (row-level security); see docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: compilers and headers live only here -------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# For any dependency without a wheel for this platform; the runtime stage never sees them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Dependencies first, from pyproject.toml and the pins alone, so that code changes reuse this layer.
# Only [project.dependencies]: the `train` extra (PyTorch) and the test tools stay out.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --upgrade pip setuptools wheel \
 && pip install -c constraints.txt -r /tmp/requirements.txt

# The package, built as a wheel would be: alembic.ini, migrations/ and sql/ go inside it
# (app/_resources, setup.py), so the runtime stage needs nothing but the venv.
COPY README.md setup.py MANIFEST.in alembic.ini ./
COPY migrations ./migrations
COPY sql ./sql
COPY app ./app
RUN pip install --no-deps . \
 && cd / && python -c "import app.resources as r, app.cache.onnx_models as m; assert (m.DEFAULT_EMBEDDER_DIR / 'model.onnx').exists(), 'embedder model missing'; assert r.resource_root().name == '_resources', r.resource_root()"

# ---- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="deja" \
      org.opencontainers.image.description="Déjà: a semantic cache for LLM responses, on Postgres and pgvector" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DEJA_HOST=0.0.0.0 \
    DEJA_PORT=8000 \
    DEJA_DATA_DIR=/var/lib/deja

RUN groupadd --system --gid 10001 deja \
 && useradd --system --uid 10001 --gid deja --home-dir /var/lib/deja --no-create-home \
        --shell /usr/sbin/nologin deja \
 && mkdir -p /var/lib/deja \
 && chown deja:deja /var/lib/deja

COPY --from=builder /opt/venv /opt/venv
WORKDIR /var/lib/deja

# Local state (ledger spool, metrics files of the workers); mount a volume to keep the spool.
VOLUME ["/var/lib/deja"]
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('DEJA_PORT', '8000'), timeout=4)"]

# exec form: `deja` is PID 1 and receives SIGTERM itself (graceful shutdown, docs/operations.md).
ENTRYPOINT ["deja"]
CMD ["serve", "--host", "0.0.0.0"]
