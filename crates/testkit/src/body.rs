//! Request bodies as the engine sends them (Docker 28's field order and
//! options), for tests that build state through the socket. Arguments that
//! are JSON (`generic`, `ipv4`, `interface`) are spliced in as given, so a
//! test may pass a wrong value on purpose.

/// `CreateNetwork` of `id` with these generic (driver) options and
/// `IPv4Data`, IPv4 on and IPv6 off.
pub fn create_network(id: &str, generic: &str, ipv4: &str) -> String {
    format!(
        r#"{{"NetworkID":"{id}","Options":{{"com.docker.network.enable_ipv4":true,"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{generic}}},"IPv4Data":{ipv4},"IPv6Data":[]}}"#
    )
}

/// `IPv4Data` of one pool of the local address space with its gateway
/// (both CIDRs, as the engine sends them).
pub fn ipv4_data(pool: &str, gateway: &str) -> String {
    format!(r#"[{{"AddressSpace":"local","Gateway":"{gateway}","Pool":"{pool}"}}]"#)
}

/// `CreateEndpoint` of `ep` on `net` with this `Interface`.
pub fn create_endpoint(net: &str, ep: &str, interface: &str) -> String {
    format!(
        r#"{{"NetworkID":"{net}","EndpointID":"{ep}","Interface":{interface},"Options":{{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}}}"#
    )
}

/// The `Interface` of a CreateEndpoint: an IPv4 address (CIDR) and a MAC
/// (empty: the driver chooses).
pub fn interface(address: &str, mac: &str) -> String {
    format!(r#"{{"Address":"{address}","AddressIPv6":"","MacAddress":"{mac}"}}"#)
}

/// `Join` of `ep` on `net`.
pub fn join(net: &str, ep: &str) -> String {
    format!(
        r#"{{"NetworkID":"{net}","EndpointID":"{ep}","SandboxKey":"/var/run/docker/netns/x","Options":{{}}}}"#
    )
}

/// The body of the calls that name an endpoint and nothing else:
/// `EndpointOperInfo`, `DeleteEndpoint`, `Leave`, `RevokeExternalConnectivity`.
pub fn endpoint(net: &str, ep: &str) -> String {
    format!(r#"{{"NetworkID":"{net}","EndpointID":"{ep}"}}"#)
}

/// The body of `DeleteNetwork` (and `FreeNetwork`).
pub fn network(id: &str) -> String {
    format!(r#"{{"NetworkID":"{id}"}}"#)
}

/// `RequestPool` of `pool` (a CIDR) in the local address space; `serial`
/// false asks for lowest-free allocation instead of the default serial one.
pub fn request_pool(pool: &str, serial: bool) -> String {
    let options = if serial {
        "{}"
    } else {
        r#"{"com.docker.network.ipam.serial":"false"}"#
    };
    format!(
        r#"{{"AddressSpace":"local","Pool":"{pool}","SubPool":"","Options":{options},"V6":false}}"#
    )
}

/// `RequestAddress` of any free address of `pool` (a PoolID).
pub fn request_address(pool: &str) -> String {
    request_this_address(pool, "")
}

/// `RequestAddress` of `address` (bare, as the engine sends it; empty: any).
pub fn request_this_address(pool: &str, address: &str) -> String {
    format!(r#"{{"PoolID":"{pool}","Address":"{address}","Options":null}}"#)
}

/// `RequestAddress` of the gateway `address` (bare).
pub fn request_gateway(pool: &str, address: &str) -> String {
    format!(
        r#"{{"PoolID":"{pool}","Address":"{address}","Options":{{"RequestAddressType":"com.docker.network.gateway"}}}}"#
    )
}

/// `ReleaseAddress` of `address` (bare) in `pool`.
pub fn release_address(pool: &str, address: &str) -> String {
    format!(r#"{{"PoolID":"{pool}","Address":"{address}"}}"#)
}

/// `ReleasePool` of `pool` (a PoolID).
pub fn release_pool(pool: &str) -> String {
    format!(r#"{{"PoolID":"{pool}"}}"#)
}
