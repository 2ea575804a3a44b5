# Build stage: compile a release binary with the locked dependency set.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY reports ./reports
COPY policies ./policies
COPY askama.toml ./
COPY benches ./benches
RUN cargo build --release --locked --bin plumbline

# Runtime stage: the binary alone, running as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/plumbline --create-home plumbline
COPY --from=build /src/target/release/plumbline /usr/local/bin/plumbline
# The built-in policy packs, for `policies: [/usr/share/plumbline/policies]`.
COPY --from=build /src/policies /usr/share/plumbline/policies
USER 10001
WORKDIR /var/lib/plumbline
ENV PLUMBLINE_CACHE=/var/lib/plumbline/cache
ENTRYPOINT ["plumbline"]
CMD ["--help"]
