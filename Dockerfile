# svcdns container: build the TypeScript with dev dependencies, ship only dist/ + production node_modules.
# Runs as the image's non-root "node" user (uid 1000), writes nothing (works with readOnlyRootFilesystem),
# listens on a high port (8053) so it needs no capability; a Service maps 53 to it (deploy/kubernetes/).

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: nothing needs an install script; it also keeps the `node` dev dependency from downloading.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Same as `npm run build`, but with the image's node: the skipped `node` dev dependency leaves no binary behind.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# MALLOC_ARENA_MAX: two glibc malloc arenas, not one per thread (src/require-node.ts SERVER_ENV; README "Memory").
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8053/udp 8053/tcp 8654/tcp
# The build, explicitly: the image has no src/ (so there is no stale-build question, unlike bin/svcdns.js in a
# checkout), and dist/cli.js itself refuses a Node older than 24 with a one-line message and exit 1.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--optimize-for-size", "--no-allocation-site-pretenuring", "dist/cli.js"]
CMD ["--config", "/etc/svcdns/svcdns.yaml"]
