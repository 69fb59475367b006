# Build a static teleport binary, then ship it alone in a minimal image that
# runs as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /teleport .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /teleport /usr/local/bin/teleport
USER nonroot:nonroot
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/teleport"]
CMD ["-config", "/etc/teleport/config.yml"]
