# syntax=docker/dockerfile:1
# The images of the product, one target each: daprd (the sidecar the injector adds),
# operator, sentry and injector (the control plane the chart installs). Build one with
#
#   docker build --target daprd -t ghcr.io/rdapr/daprd:0.1.0 .
#
# Every binary comes from one cached release build of the workspace; each image is the
# binary alone on a distroless base, running as a non-root user.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin daprd --bin operator --bin sentry --bin injector \
 && mkdir -p /out \
 && cp target/release/daprd target/release/operator target/release/sentry \
       target/release/injector /out/

# No ENTRYPOINT: the injector writes the program as the container's first argument
# (`args: ["/daprd", "--mode", "kubernetes", ...]`), as Dapr's injector does.
FROM gcr.io/distroless/cc-debian12:nonroot AS daprd
COPY --from=build /out/daprd /daprd
USER 65532:65532
CMD ["/daprd"]

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/operator /operator
USER 65532:65532
ENTRYPOINT ["/operator"]

FROM gcr.io/distroless/cc-debian12:nonroot AS sentry
COPY --from=build /out/sentry /sentry
USER 65532:65532
ENTRYPOINT ["/sentry"]

FROM gcr.io/distroless/cc-debian12:nonroot AS injector
COPY --from=build /out/injector /injector
USER 65532:65532
ENTRYPOINT ["/injector"]
