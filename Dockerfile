# syntax=docker/dockerfile:1
# Portcullis container image: build the TypeScript, install production dependencies only, run as a non-root user.

# 1. Production dependencies (native addons argon2 and better-sqlite3 may need a compiler).
FROM node:20-bookworm-slim AS deps
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci runs the `prepare` script (scripts/build.mjs --prepare), which skips the build here: no src/ yet.
COPY scripts ./scripts
RUN npm ci --omit=dev --no-audit --no-fund

# 2. Compile src/ to dist/ and bundle the command line into dist/bundle/ (dev dependencies: typescript, esbuild).
FROM deps AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# 3. Runtime: dist/ + production node_modules. bin/portcullis.js runs dist/bundle/cli.js because src/ is absent
#    (the argon2 hashing process is dist/bundle/hash-child.js, started by the gateway on the first login). The
#    bundle inlines zod, yaml, jose and OpenTelemetry and imports the rest from node_modules (scripts/bundle.mjs);
#    dist/*.js stays for the package's exports that plugins import.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORTCULLIS_DATA_DIR=/data \
    PORTCULLIS_CONFIG=/app/config/proxy.yaml
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 9090
# Over HTTPS when TLS_CERT_FILE turns TLS on (the probe does not verify the certificate: it only asks "are you up"),
# on PORTCULLIS_PORT when set (config/proxy.yaml's listen_port reads it; a probe fixed on 8080 marked such a
# container unhealthy while it served).
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "const t=!!process.env.TLS_CERT_FILE,p=process.env.PORTCULLIS_PORT||8080;require(t?'node:https':'node:http').get((t?'https':'http')+'://127.0.0.1:'+p+'/health',{rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "bin/portcullis.js"]
CMD ["start"]
