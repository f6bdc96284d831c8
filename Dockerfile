# syntax=docker/dockerfile:1
# potproxy container image: a release build on Debian bookworm, run as a non-root user.
#   docker build -t potproxy .                            (add --build-arg WITH_CHROMIUM=1 for the
#                                                          browser minter's Chromium)
#   docker run -d -p 127.0.0.1:8080:8080 -p 127.0.0.1:4416:4416 -v potproxy-state:/var/lib/potproxy potproxy
#   docker exec <container> potproxy ca --pem > potproxy-ca.pem

FROM rust:1-bookworm AS builder
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in throughput minting proxies; do echo 'fn main() {}' > benches/$b.rs; done \
    && cargo fetch --locked \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
# Touch so cargo rebuilds the crate over the placeholder built above.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin potproxy \
    && install -m 0755 target/release/potproxy /usr/local/bin/potproxy \
    && potproxy completions bash > /potproxy.bash \
    && potproxy man > /potproxy.1

FROM debian:bookworm-slim AS runtime
ARG WITH_CHROMIUM=0
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && if [ "$WITH_CHROMIUM" = "1" ]; then \
         apt-get install -y --no-install-recommends chromium fonts-liberation; \
       fi \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 potproxy \
    && useradd --system --uid 10001 --gid potproxy --home-dir /var/lib/potproxy \
       --shell /usr/sbin/nologin potproxy \
    && install -d -m 0700 -o potproxy -g potproxy /var/lib/potproxy
COPY --from=builder /usr/local/bin/potproxy /usr/local/bin/potproxy
COPY --from=builder /potproxy.bash /usr/share/bash-completion/completions/potproxy
COPY --from=builder /potproxy.1 /usr/share/man/man1/potproxy.1
COPY LICENSE-MIT LICENSE-APACHE /usr/share/doc/potproxy/

# Inside the container the listeners face the container network; publish them on loopback
# (-p 127.0.0.1:8080:8080) unless [auth] is configured (see SECURITY.md). The API off loopback
# needs [api] token or [api] public: the image chooses public (the published port is the
# boundary); set [api] token (or POTPROXY_API_PUBLIC=false) before publishing it wider.
ENV POTPROXY_STATE_DIR=/var/lib/potproxy \
    POTPROXY_LISTEN=0.0.0.0:8080 \
    POTPROXY_API_LISTEN=0.0.0.0:4416 \
    POTPROXY_API_PUBLIC=true \
    NO_COLOR=1
VOLUME ["/var/lib/potproxy"]
EXPOSE 8080 4416
USER potproxy:potproxy
WORKDIR /var/lib/potproxy
# SIGTERM (docker stop) drains in-flight requests; give it the drain time: docker stop -t 45.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/potproxy"]
CMD ["run"]
