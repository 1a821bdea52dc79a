# syntax=docker/dockerfile:1
# Latchkey image: `docker build -t latchkey .` then
#   docker run -p 3000:3000 -e LATCHKEY_SECRET=... -v latchkey-data:/app/data latchkey

# ---- build: compile TypeScript and the native modules (better-sqlite3, argon2) ----------------------
FROM node:24-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# `npm ci` runs the `postinstall` script (patch-package) and the `prepare` script (= `npm run build`), so the sources must be there first.
# package.json's `allowScripts` approves the install scripts of better-sqlite3 and argon2.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# patches/: fixes to dependencies that `npm ci` applies with patch-package (postinstall)
COPY patches ./patches
COPY src ./src
RUN npm ci
RUN npm run build
RUN npm prune --omit=dev

# ---- runtime ----------------------------------------------------------------------------------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production
RUN groupadd --system latchkey \
 && useradd --system --gid latchkey --home-dir /app --shell /usr/sbin/nologin latchkey
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY migrations ./migrations
COPY views ./views
COPY resources ./resources
COPY config ./config
# SQLite database (default DATABASE_URL sqlite:./data/latchkey.db) and the dev secret live here.
RUN mkdir -p /app/data && chown latchkey:latchkey /app/data
VOLUME ["/app/data"]
USER latchkey
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/latchkey.js"]
CMD ["serve"]
