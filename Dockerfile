# One image for every service; SERVICE picks which one runs (docker-compose.yml).
FROM node:20-slim AS build
WORKDIR /bus
COPY package.json package-lock.json turbo.json tsconfig.base.json biome.json ./
COPY libs libs
COPY services services
COPY streams streams
COPY test/package.json test/package.json
COPY bench/package.json bench/package.json
RUN npm ci --no-audit --no-fund && npx turbo run build --filter='./services/*' --filter='./libs/*'

FROM node:20-slim
WORKDIR /bus
ENV NODE_ENV=production
COPY --from=build /bus /bus
USER node
# SERVICE=ingest|transform|deliver|reconcile …; `bus` (the CLI) when unset
CMD ["sh", "-c", "if [ -n \"$SERVICE\" ]; then exec node services/$SERVICE/dist/main.js; else exec node libs/cli/dist/main.js --help; fi"]
