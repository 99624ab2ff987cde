# One image for every service; SERVICE picks which one runs (docker-compose.yml).
# Node 22 (supported LTS) in the image; the code itself keeps running on Node 20.19+.
FROM node:22-bookworm-slim AS build
WORKDIR /bus
COPY package.json package-lock.json turbo.json tsconfig.base.json biome.json ./
COPY libs libs
COPY services services
COPY streams streams
COPY examples examples
# the other workspaces' manifests, so npm ci matches the lock file
COPY test/package.json test/package.json
COPY bench/package.json bench/package.json
RUN npm ci --no-audit --no-fund \
  && npx turbo run build --filter='./services/*' --filter='./libs/*' --filter='./examples/*' \
  && npm prune --omit=dev --no-audit --no-fund \
  && rm -rf .turbo node_modules/.cache

FROM node:22-bookworm-slim
WORKDIR /bus
ENV NODE_ENV=production
# only what runs: production dependencies (devDependencies pruned above) and the built workspaces
COPY --from=build /bus/package.json /bus/package-lock.json ./
COPY --from=build /bus/node_modules node_modules
COPY --from=build /bus/libs libs
COPY --from=build /bus/services services
COPY --from=build /bus/streams streams
COPY --from=build /bus/examples examples
USER node
# SERVICE=ingest|transform|deliver|reconcile|sandbox; `bus` (the CLI) when unset
CMD ["sh", "-c", "if [ -n \"$SERVICE\" ]; then exec node services/$SERVICE/dist/main.js; else exec node libs/cli/dist/main.js --help; fi"]
