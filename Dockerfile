# The plugin rootfs: the static binary and nothing else. `make bundle` lays
# out the same tree without a Docker daemon; this file is for those who
# build plugin rootfs images with `docker build`. Build the binary first
# (`make build`); nothing here needs the network. For arm64:
# `make build ARCH=arm64`, then --build-arg TARGET=aarch64-unknown-linux-musl.
FROM scratch
ARG TARGET=x86_64-unknown-linux-gnu
COPY target/${TARGET}/release/ipvlan-rs /ipvlan-rs
ENTRYPOINT ["/ipvlan-rs"]
