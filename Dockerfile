# embedsrv as a Docker service: one image, one command.
#
#   docker build -t embedsrv .
#   docker run -d -p 8080:8080 -v embedsrv-data:/data embedsrv
#
# Two stages on Debian 12 (bookworm).  The build stage installs the packages
# in deploy/packages-build.txt (the one list, read by deploy/install-deps.sh)
# and deploy/packages-model.txt, builds, runs the whole test suite and trains
# the default model with deploy/default-model.sh.  The runtime stage is
# bookworm-slim with only deploy/packages-runtime.txt, the binary and the
# model, and runs as an unprivileged user.
#
# deploy/verify-clean.sh reads THIS file and performs the same steps in a
# clean debootstrap'ed Debian 12 root (no Docker needed), so keep to the
# instructions it understands: FROM debian:bookworm[-slim] AS name, ENV k=v
# (literal values), WORKDIR, COPY [--from=stage] src... dst, RUN (shell
# form), USER uid:gid, VOLUME, EXPOSE, HEALTHCHECK/ENTRYPOINT/CMD (exec
# form), STOPSIGNAL, LABEL.  tests/integration/test_deploy.sh checks that.

FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/packages-build.txt deploy/packages-model.txt /src/deploy/
RUN sh deploy/install-deps.sh deploy/packages-build.txt deploy/packages-model.txt \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN sh deploy/build.sh build
RUN meson test -C build --print-errorlogs --num-processes "$(nproc)"
RUN sh deploy/default-model.sh build/embedsrv
RUN ./build/embedsrv --version \
 && install -D -m 755 build/embedsrv /out/usr/local/bin/embedsrv \
 && install -D -m 644 models/default.esm /out/usr/local/share/embedsrv/default.esm

FROM debian:bookworm-slim AS runtime
COPY deploy/install-deps.sh deploy/packages-runtime.txt /tmp/deploy/
RUN sh /tmp/deploy/install-deps.sh /tmp/deploy/packages-runtime.txt \
 && rm -rf /var/lib/apt/lists/* /tmp/deploy
RUN groupadd --system --gid 10001 embedsrv \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin embedsrv \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /out/ /
# Configuration is environment variables: every `embedsrv serve` option has
# one (EMBEDSRV_<OPTION>), e.g. EMBEDSRV_API_KEY, EMBEDSRV_THREADS,
# EMBEDSRV_FSYNC, EMBEDSRV_MAX_BODY; `embedsrv serve --help` lists them.
ENV EMBEDSRV_HOST=0.0.0.0
ENV EMBEDSRV_PORT=8080
ENV EMBEDSRV_DATA_DIR=/data
ENV EMBEDSRV_MODEL=/usr/local/share/embedsrv/default.esm
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 8080
# `embedsrv healthcheck` GETs /healthz on 127.0.0.1:$EMBEDSRV_PORT with a
# plain socket: no curl in the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["embedsrv", "healthcheck", "--quiet"]
# Exec form: embedsrv is PID 1 and gets SIGTERM itself; it stops accepting,
# finishes in-flight requests, flushes the write-ahead log and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["embedsrv"]
CMD ["serve"]
