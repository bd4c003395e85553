# syntax=docker/dockerfile:1
#
# One image for every credit-mesh service. The process runs the services named in SERVICES
# (a comma list of files in dist/services without ".service.js", e.g. `api` or
# `persons,cpf-lookup`; unset = all of them). One-shot schema migration: `node dist/scripts/migrate.js`.
# Settings come from the environment, each secret through NAME_FILE (see config/index.ts and
# docs/deploy.md); nothing secret is baked into the image.
#
#   docker build -t registry.example.com/credit-mesh:0.1.0 .
#   docker build --build-arg NODE_IMAGE=node:24.21.0-bookworm-slim ...   # pin the exact Node release
#
# Debian slim (glibc); no dependency is native, so node:24-alpine would work as well.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: TypeScript -> dist/ --------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: building needs no install script. This skips the `node` devDependency's
# download of a second Node binary (the image's Node runs tsc), esbuild's (tests only), and the
# ones package.json's allowScripts refuses anyway (es5-ext, @scarf/scarf telemetry), whichever
# npm version the base image ships.
RUN npm ci --ignore-scripts --no-audit --no-fund
# The context is filtered by .dockerignore (no .data with its development secrets, no tests).
COPY . .
RUN npm run build

# ---- production dependencies only ------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No production dependency needs an install script (pg is pure JavaScript).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SERVICEDIR=dist/services
WORKDIR /app
# Owned by root and not writable by the `node` user the process runs as.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
# The gateway (SERVICES=api) listens on PORT (3000); set HOST=0.0.0.0 for it to be reachable.
EXPOSE 3000
# One check for every service. Only the gateway speaks HTTP: if this process runs `api` (or
# SERVICES is unset, i.e. all services), it must answer GET /health/live. The other services
# have no port to probe, so their check only says that the main process (PID 1) is alive,
# which is honest but weak: Swarm already restarts a task whose process exits. Whether each
# base answers is reported by the gateway's GET /health/ready over the mesh.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const s=process.env.SERVICES;if(s&&!s.split(',').some(n=>n.trim()==='api')){process.kill(1,0);process.exit(0)}fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# moleculer-runner loads the services named by SERVICEDIR and SERVICES; the broker stops
# gracefully on SIGTERM (docker stop, rolling updates), so node can be PID 1.
CMD ["node", "node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"]
