# sfconnect as an Airbyte source image.
# Build: docker build -t sfconnect/source-salesforce:0.1.0 .
# The Airbyte platform runs the entrypoint with spec | check | discover | read and the usual
# --config/--catalog/--state files mounted into the container.

FROM rust:1.88-slim-bookworm AS build
WORKDIR /src
COPY . .
# rustls with bundled web PKI roots: no OpenSSL, no system CA bundle needed at run time.
RUN cargo build --release --locked -p sf-cli --bin sfconnect

FROM debian:bookworm-slim
COPY --from=build /src/target/release/sfconnect /usr/local/bin/sfconnect
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/sfconnect"
ENTRYPOINT ["/usr/local/bin/sfconnect"]
LABEL io.airbyte.name="sfconnect/source-salesforce"
LABEL io.airbyte.version="0.1.0"
