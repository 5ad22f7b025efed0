# syntax=docker/dockerfile:1
# jwtgate: one static binary on a distroless base, running as a non-root user.
#
#   docker build -t ghcr.io/jwtgate/jwtgate:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/jwtgate/jwtgate:dev .
#
# The chart runs it as `jwtgate controller`; `docker run IMAGE serve -f /config`
# runs it without Kubernetes.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
# CGO_ENABLED=0: a static binary that needs no libc, so it runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/jwtgate ./cmd/jwtgate

# distroless static: CA certificates (for jwksURL over https), tzdata, /etc/passwd
# with the nonroot user (65532), and no shell or package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jwtgate /usr/local/bin/jwtgate
USER 65532:65532
# decisions and sign-in pages, metrics, health probes
EXPOSE 8000 8080 8081
ENTRYPOINT ["/usr/local/bin/jwtgate"]
CMD ["controller"]
