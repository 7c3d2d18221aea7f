# Stage 2 of ductwork's base image (see build_base_image.py): a venv with ductwork's
# pinned runtime dependencies on top of the imported Debian Python 3.11 rootfs.
ARG BASE=ductwork/python:3.11-root
FROM ${BASE}
ARG REQUIREMENTS
ARG CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# pip/requests/OpenSSL in the container trust the bundle copied from the host, so a
# TLS-intercepting proxy works; containers do not see the host's pip configuration.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=${CA_BUNDLE} \
    PIP_CERT=${CA_BUNDLE} \
    REQUESTS_CA_BUNDLE=${CA_BUNDLE} \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    LANG=C.UTF-8
# No compiler in the image: wheels only.
RUN test -n "$REQUIREMENTS" \
    && python3.11 -m venv /opt/venv \
    && pip install --only-binary :all: $REQUIREMENTS \
    && python -c "import sys; assert sys.prefix == '/opt/venv', sys.prefix"
CMD ["python"]
