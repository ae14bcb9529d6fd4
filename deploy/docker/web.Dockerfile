# syntax=docker/dockerfile:1
#
# The web app (web/) as a small static image: built with Node, served by Caddy on :8080
# behind Traefik, which routes every path no service takes here (traefik/, k8s/base/gateway).
# The build context is the repository root (codegen reads services/media/schema.graphql):
#
#   docker build -f deploy/docker/web.Dockerfile -t kino/web .

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY services/media/schema.graphql services/media/schema.graphql
COPY web/package.json web/package-lock.json web/
RUN cd web && npm ci --no-audit --no-fund
COPY web web
RUN cd web && npm run build

FROM caddy:2.11-alpine
# Caddy keeps nothing (admin off, no certificates); its data and config dirs go to /tmp so
# the root filesystem can be read-only and the user unprivileged.
ENV XDG_DATA_HOME=/tmp/caddy XDG_CONFIG_HOME=/tmp/caddy
COPY deploy/docker/web.Caddyfile /etc/caddy/Caddyfile
COPY --from=build /src/web/dist /srv
USER 10001:10001
EXPOSE 8080
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
