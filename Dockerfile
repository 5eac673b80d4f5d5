# One image for the federated sign-in demo: the IdP, the RP and the client are the
# `tokbind-demo` binary with different roles (see docker-compose.yml).

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tokbind-demo --bin tokbind-demo

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tokbind-demo /usr/local/bin/tokbind-demo
USER nobody
ENTRYPOINT ["tokbind-demo"]
