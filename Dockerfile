# Build with dev dependencies, ship compiled JavaScript with production dependencies only.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# The bundle (dist/bundle/) starts faster than hundreds of modules; node_modules is kept for the Kubernetes
# client, which is loaded only with cluster access.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && node scripts/bundle.mjs \
 && npm prune --omit=dev --no-audit --no-fund

# Distroless: no shell, no package manager; runs as the numeric non-root user 65532.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/bundle ./dist/bundle
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/bundle/main.js"]
CMD ["serve"]
