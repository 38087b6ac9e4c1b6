# ingressproxy as a container: docker run --rm -v "$PWD/k8s:/manifests:ro" -p 8080:8080 ingressproxy
# Build stage: wheels for ingressproxy and its dependencies, installed into a venv that the
# final stage copies. Everything installs from prebuilt wheels, so no compiler is needed here
# and none is ever present in the final image (python:*-slim ships none).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingressproxy ./ingressproxy
RUN python -m venv /opt/ingressproxy \
    && /opt/ingressproxy/bin/pip wheel --wheel-dir /wheels . \
    && /opt/ingressproxy/bin/pip install --no-index --find-links /wheels ingressproxy

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ingressproxy" \
      org.opencontainers.image.description="Routes HTTP by Kubernetes Ingress manifests, no cluster needed" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/ingressproxy/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INGRESSPROXY_MANIFESTS=/manifests \
    INGRESSPROXY_HOST=0.0.0.0 \
    INGRESSPROXY_PORT=8080 \
    INGRESSPROXY_ADMIN_HOST=0.0.0.0 \
    INGRESSPROXY_ADMIN_PORT=9000
COPY --from=build /opt/ingressproxy /opt/ingressproxy
COPY docker/entrypoint.sh /usr/local/bin/ingressproxy-entrypoint
# A fixed non-root uid, so a read-only bind mount of the manifests needs only world-read.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin ingressproxy \
    && mkdir /manifests \
    && chmod 0755 /usr/local/bin/ingressproxy-entrypoint
USER 10001:10001
EXPOSE 8080 9000
# Mount the manifests folder here (read-only is enough). Set INGRESSPROXY_POLL=1 when the
# mount does not deliver file events (Docker Desktop bind mounts, network filesystems).
WORKDIR /manifests
# The admin listener's /ping: 200 once serving, 503 from the start of a graceful shutdown.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["ingressproxy-entrypoint", "healthcheck"]
# What orchestrators send; ingressproxy drains in-flight requests and exits 0 on it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ingressproxy-entrypoint"]
CMD []
