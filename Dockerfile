# sandpool worker image: `docker build -t sandpool .` then `docker compose -f docker/compose.yaml up`.
# Node 24 runs the TypeScript sources directly (type stripping), so there is no build step: the
# first stage only installs production dependencies (isolated-vm compiles its native addon there).

FROM node:24-slim AS deps
WORKDIR /app
# isolated-vm builds from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# msgpackr-extract (BullMQ's optional native MessagePack decoder) is overridden by an empty local
# package: see stubs/msgpackr-extract and the README.
COPY stubs ./stubs
# --ignore-scripts skips the package's own `prepare` (a tsc build the image does not need);
# the rebuild then runs isolated-vm's install script alone.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild isolated-vm \
 && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    SANDPOOL_METRICS_PORT=9464
WORKDIR /app
RUN groupadd --system --gid 10001 sandpool \
 && useradd --system --uid 10001 --gid sandpool --no-create-home --shell /usr/sbin/nologin sandpool
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/stubs ./stubs
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY workers ./workers
COPY schema ./schema
# Nothing is written at run time (logs go to stdout): the root filesystem can be mounted read-only.
USER 10001:10001
EXPOSE 9464
# With the side port off (SANDPOOL_METRICS_PORT=off, or 0: a port of the system's choosing) there is
# nothing to ask, and the check passes rather than mark every such container unhealthy for ever:
# disable it then (`docker run --no-healthcheck`, compose `healthcheck: { disable: true }`).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const port = process.env.SANDPOOL_METRICS_PORT || '9464'; if (port === 'off' || port === '0') process.exit(0); fetch('http://127.0.0.1:' + port + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --no-node-snapshot: isolated-vm needs it in the processes that load it (the engine's executors
# inherit the flag from here).
CMD ["node", "--no-node-snapshot", "bin/sandpool.js", "worker"]
