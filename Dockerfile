# syntax=docker/dockerfile:1
# The portal's image: one image for every process kind of the production shape (docker-compose.yml runs it as
# web, ws, worker, devices, beat, listener and nginx). Multi-stage: the build stage installs the dependencies into
# a virtualenv (wheels or pure-Python sources: no compiler is installed in either stage); the final stage
# copies that virtualenv and the source, adds Debian's nginx, and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY devices ./devices
COPY provisioning ./provisioning
COPY conax ./conax
COPY components ./components
# The dependencies only: the portal itself runs from /app (its templates and deploy files live beside the code).
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes provisioning-portal

FROM python:3.11-slim-bookworm
# Debian's nginx, as `make prod` uses it; versions follow the Debian release of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app --shell /usr/sbin/nologin portal
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_ENV=production \
    PORTAL_VAR_DIR=/app/var \
    STATIC_ROOT=/app/static \
    PROMETHEUS_MULTIPROC_DIR=/app/var/metrics
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=portal:portal manage.py Procfile ./
COPY --chown=portal:portal portal ./portal
COPY --chown=portal:portal devices ./devices
COPY --chown=portal:portal provisioning ./provisioning
COPY --chown=portal:portal conax ./conax
COPY --chown=portal:portal components ./components
COPY --chown=portal:portal templates ./templates
COPY --chown=portal:portal deploy ./deploy
# Static files are collected at build time with throw-away production settings (nothing connects anywhere).
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    ALLOWED_HOSTS=localhost DATABASE_URL=postgres://build@localhost/build CAS_GATEWAY_URL=inprocess: \
    python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var/metrics \
    && chown -R portal:portal /app/var /app/static
USER 10001:10001
EXPOSE 8000
# Each compose service names its own command; alone, the image runs the whole shape (honcho, as `make prod`).
CMD ["python", "manage.py", "prod"]
