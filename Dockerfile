# The plugin rootfs: the static binary and nothing else. `make bundle` lays
# out the same tree without a Docker daemon; this file is for those who
# build plugin rootfs images with `docker build`. Build the binary first
# (`make build`); nothing here needs the network.
FROM scratch
COPY target/x86_64-unknown-linux-gnu/release/ipvlan-rs /ipvlan-rs
ENTRYPOINT ["/ipvlan-rs"]
