# One image per service: docker build --build-arg SERVICE=auth -t backend-auth .
# Stage 1 builds the service's release binary; stage 2 carries only it and its runtime libraries.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=swift:6.3-bookworm-slim

FROM ${SWIFT_IMAGE} AS build
ARG SERVICE
RUN test -n "$SERVICE" || (echo "build with --build-arg SERVICE=auth|vote|recording|feed" && false)
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies first so source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Shared ./Shared
COPY Services ./Services
COPY Tests ./Tests
RUN swift build -c release --product ${SERVICE}-service --static-swift-stdlib
# The binary and its resource bundles (the OpenAPI document) side by side, as Bundle.module expects.
RUN bin="$(swift build -c release --show-bin-path)" && mkdir -p /out \
    && cp "$bin/${SERVICE}-service" /out/service \
    && find "$bin" -maxdepth 1 -name '*.resources' -exec cp -r {} /out/ \;

FROM ${RUNTIME_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home app \
    && mkdir -p /data && chown app /data
WORKDIR /app
COPY --from=build /out/ /app/
USER app
ENV APP_ENV=production HTTP_HOST=0.0.0.0
# The service listens on HTTP_PORT; by default auth 8081, vote 8082, recording 8083, feed 8084.
EXPOSE 8081 8082 8083 8084
ENTRYPOINT ["/app/service"]
