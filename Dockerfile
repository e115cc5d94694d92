# credit-edge: the edge (and the credit controller: same image, other command).
# Production runs it against drachtio-server (see docker-compose.yml); the embedded SIP engine is
# for development.
ARG NODE_VERSION=24

# 1. Build: all dependencies, compile TypeScript to dist/.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The product alone: tsconfig.build.json leaves out src/dev (the development kit: credit-edge-dev).
RUN npx tsc -p tsconfig.build.json

# 2. Production dependencies only (npm's cache stays in this stage: only node_modules is copied on).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

# 3. Runtime: compiled code + production node_modules, as the unprivileged `node` user.
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY config/credit-edge.example.yaml ./config/credit-edge.example.yaml
USER node
# SIP goes to drachtio-server, not here; 8080 is the admin API (health, metrics, accounts, reload).
EXPOSE 8080
# The image has no curl: Node's fetch asks /healthz (process up).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ADMIN_PORT || '8080') + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --min-semi-space-size=16: a 16 MB young generation from the start, fewer garbage collections per
# call (docs/benchmarks.md, "The edge's CPU per call"); the benchmark starts the edge with the same flags. Node
# takes it on the command line only, not in NODE_OPTIONS. The controller gets it too (harmless).
ENTRYPOINT ["node", "--min-semi-space-size=16", "dist/src/cli.js"]
CMD ["edge", "--config", "/etc/credit-edge/credit-edge.yaml"]
