# syntax=docker/dockerfile:1

# ---- stage 1: build the project wheel and the wheels of all its dependencies ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
# The project's own wheel (the hatch hook compiles the gettext catalogs), then its
# dependencies' wheels (pip reuses the project wheel already in /wheels).
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip wheel --wheel-dir /wheels .

# ---- stage 2: runtime ----
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update && apt-get install -y --no-install-recommends libfribidi0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system tadamon \
 && useradd --system --gid tadamon --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin tadamon \
 && mkdir -p /data \
 && chown tadamon:tadamon /data

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/*.whl

WORKDIR /data

ENV TADAMON_HTTP_HOST=0.0.0.0 \
    TADAMON_DATABASE_URL=sqlite+aiosqlite:////data/tadamon.db

EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TADAMON_HTTP_PORT', '8080') + '/healthz', timeout=4)"]

USER tadamon

ENTRYPOINT ["tadamon"]
CMD ["run"]
