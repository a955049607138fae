# Switchyard images: one file, two final targets.
#
#   docker build --target runtime  -t ghcr.io/switchyard/runtime:0.1.0  .   # ingestion, forwarders, the switchyard CLI (default target)
#   docker build --target operator -t ghcr.io/switchyard/operator:0.1.0 .   # the operator (runtime CLI included)
#
# Layout: /app/{runtime,operator,client}/{package.json,bin,dist} and their production node_modules;
# the CLIs are /app/runtime/bin/switchyard.js and /app/operator/bin/switchyard-operator.js. The files
# stay owned by root; the processes run as user 10001:10001 (numeric, so Kubernetes' runAsNonRoot can
# check it) and fit a read-only root filesystem. The CLIs trap SIGTERM and drain, so node runs as
# PID 1 without an init. npm runs only in the earlier stages: no npm cache reaches a final image.
# runtime/src/e2e/image.test.ts replays the production-dependency stages and runs the CLIs from them.

# Node 20, the version the test suite runs on. The production dependencies are plain JavaScript
# (no install scripts, no .node addons), so one glibc base serves every stage.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# --- build: every dependency, then tsc, the runtime's assets and the browser tag (client/dist/tag) ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json ./
COPY runtime/package.json runtime/
COPY operator/package.json operator/
COPY client/package.json client/
# --ignore-scripts: the root `prepare` script would build before the sources are here; esbuild
# runs from its platform package without its install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/copy-runtime-assets.mjs scripts/
COPY client/ client/
COPY runtime/ runtime/
COPY operator/ operator/
RUN npm run build

# --- production dependencies of the runtime image: runtime and client workspaces only ---
FROM ${NODE_IMAGE} AS runtime-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY runtime/package.json runtime/
COPY operator/package.json operator/
COPY client/package.json client/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace runtime --workspace client

# --- production dependencies of the operator image: operator, runtime and client workspaces ---
FROM ${NODE_IMAGE} AS operator-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY runtime/package.json runtime/
COPY operator/package.json operator/
COPY client/package.json client/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --workspace operator --workspace runtime --workspace client

# --- operator: `switchyard-operator`; the runtime CLI is present too ---
FROM ${NODE_IMAGE} AS operator
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="switchyard-operator" \
      org.opencontainers.image.description="Switchyard operator: reconciles Source, Integration and Mapping resources" \
      org.opencontainers.image.source="https://github.com/switchyard/switchyard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=operator-deps /app /app
COPY --from=build /app/client/dist /app/client/dist
COPY --from=build /app/runtime/dist /app/runtime/dist
COPY --from=build /app/runtime/bin /app/runtime/bin
COPY --from=build /app/operator/dist /app/operator/dist
COPY --from=build /app/operator/bin /app/operator/bin
USER 10001:10001
ENTRYPOINT ["node", "/app/operator/bin/switchyard-operator.js"]

# --- runtime: `switchyard ingest`, `switchyard forward` and the rest of the CLI ---
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="switchyard-runtime" \
      org.opencontainers.image.description="Switchyard runtime: ingestion API, forwarder and the switchyard CLI" \
      org.opencontainers.image.source="https://github.com/switchyard/switchyard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=runtime-deps /app /app
COPY --from=build /app/client/dist /app/client/dist
COPY --from=build /app/runtime/dist /app/runtime/dist
COPY --from=build /app/runtime/bin /app/runtime/bin
USER 10001:10001
ENTRYPOINT ["node", "/app/runtime/bin/switchyard.js"]
CMD ["--help"]
