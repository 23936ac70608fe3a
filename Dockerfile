# syntax=docker/dockerfile:1
# Sluice gateway image: a static binary on distroless, running as nonroot (65532).
#   docker build -t ghcr.io/sluice-gateway/sluice:0.1.0 --build-arg VERSION=v0.1.0 .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api ./api
COPY cmd ./cmd
COPY examples ./examples
COPY internal ./internal
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice ./cmd/sluice

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sluice /sluice
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/sluice"]
CMD ["serve", "--listen=0.0.0.0:8080", "--admin-listen=0.0.0.0:9090", "--usage-file="]
