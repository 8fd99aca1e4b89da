//! Shape tests: every request the engines were seen sending decodes, every
//! response encodes to what the engine parses, including the additions of
//! Docker 28/29 that the 20.10 capture lacks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ipvlan_rs_protocol::ipam::*;
use ipvlan_rs_protocol::network::*;
use ipvlan_rs_protocol::options::AddressKind;
use ipvlan_rs_protocol::{Call, ErrorResponse, MacAddress, Request};
use serde_json::{Value, json};
use std::net::IpAddr;

fn fixture_lines(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["path"].as_str().unwrap().to_string(),
                v["raw"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_captured_request_decodes() {
    for file in [
        "dockerd-20.10-requests.jsonl",
        "dockerd-28.5-requests.jsonl",
        "dockerd-29.x-requests.jsonl",
    ] {
        let lines = fixture_lines(file);
        assert!(lines.len() > 40, "{file} has {} lines", lines.len());
        for (path, raw) in lines {
            let call = Call::from_path(&path).unwrap_or_else(|| panic!("unknown path {path}"));
            if let Err(e) = Request::decode(call, raw.as_bytes()) {
                panic!("{file}: {path} {raw}: {e}");
            }
        }
    }
}

#[test]
fn create_network_docker_28_shape() {
    let raw = r#"{"NetworkID":"d2b8047dab07f69cc179e22f8949908d7dd11d270478e6bcb40a14a06578d290","Options":{"com.docker.network.enable_ipv4":true,"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{"parent":"hp0","ipvlan_mode":"l3"}},"IPv4Data":[{"AddressSpace":"local","Gateway":"10.99.0.1/24","Pool":"10.99.0.0/24","AuxAddresses":{"a":"10.99.0.5/24"}}],"IPv6Data":[{"AddressSpace":"local","Pool":"fd00:95::/64"}]}"#;
    let Request::CreateNetwork(req) = Request::decode(Call::CreateNetwork, raw.as_bytes()).unwrap()
    else {
        panic!("wrong variant")
    };
    assert_eq!(req.options.enable_ipv4, Some(true));
    assert_eq!(req.options.generic["ipvlan_mode"], "l3");
    let v4 = &req.ipv4_data[0];
    assert_eq!(v4.pool.to_string(), "10.99.0.0/24");
    assert_eq!(v4.gateway.unwrap().to_string(), "10.99.0.1/24");
    assert_eq!(v4.aux_addresses["a"].addr().to_string(), "10.99.0.5");
    assert_eq!(req.ipv6_data[0].gateway, None);
    // round trip keeps the meaning
    let again: CreateNetworkRequest =
        serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
    assert_eq!(again, req);
}

#[test]
fn create_network_with_nulls() {
    let raw = r#"{"NetworkID":"abc","Options":null,"IPv4Data":null,"IPv6Data":null}"#;
    let req: CreateNetworkRequest = serde_json::from_str(raw).unwrap();
    assert!(req.ipv4_data.is_empty() && req.ipv6_data.is_empty());
    assert!(req.options.generic.is_empty());
}

#[test]
fn ids_are_required_and_well_formed() {
    assert!(
        serde_json::from_str::<NetworkRequest>("{}")
            .unwrap_err()
            .to_string()
            .contains("NetworkID")
    );
    let err = serde_json::from_str::<NetworkRequest>(r#"{"NetworkID":""}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid NetworkID"), "{err}");
    let err = serde_json::from_str::<EndpointRequest>(r#"{"NetworkID":"n1","EndpointID":"../x"}"#)
        .unwrap_err();
    assert!(err.to_string().contains("EndpointID"), "{err}");
    assert!(serde_json::from_str::<NetworkRequest>(r#"{"NetworkID":7}"#).is_err());
    // Swarm network IDs are 25 base-36 characters
    let ok: NetworkRequest =
        serde_json::from_str(r#"{"NetworkID":"q4x5ngjzhvk2ei7xsv1eqtf4a"}"#).unwrap();
    assert_eq!(ok.network_id.as_str(), "q4x5ngjzhvk2ei7xsv1eqtf4a");
    assert!(ok.network_id.is_swarm());
    let local: NetworkRequest = serde_json::from_str(&format!(
        r#"{{"NetworkID":"{}"}}"#,
        "d2b8047dab07f69cc179e22f8949908d7dd11d270478e6bcb40a14a06578d290"
    ))
    .unwrap();
    assert!(!local.network_id.is_swarm());
    let upper: NetworkRequest =
        serde_json::from_str(r#"{"NetworkID":"Q4X5NGJZHVK2EI7XSV1EQTF4A"}"#).unwrap();
    assert!(!upper.network_id.is_swarm());
}

#[test]
fn gw_alloc_check_docker_28() {
    let req: GwAllocCheckRequest =
        serde_json::from_str(r#"{"Options":{"com.docker.network.generic":{"ipvlan_mode":"l3"}}}"#)
            .unwrap();
    assert_eq!(req.options.generic["ipvlan_mode"], "l3");
    let resp = serde_json::to_value(GwAllocCheckResponse {
        skip_ipv4: true,
        skip_ipv6: false,
    })
    .unwrap();
    assert_eq!(resp, json!({"SkipIPv4": true, "SkipIPv6": false}));
    let empty: GwAllocCheckRequest = serde_json::from_str("{}").unwrap();
    assert!(empty.options.generic.is_empty());
}

#[test]
fn capabilities_encode_as_the_engine_reads_them() {
    let caps = ipvlan_rs_protocol::network::CapabilitiesResponse {
        scope: Scope::Local,
        connectivity_scope: Scope::Global,
        gw_alloc_checker: true,
    };
    assert_eq!(
        serde_json::to_value(caps).unwrap(),
        json!({"Scope": "local", "ConnectivityScope": "global", "GwAllocChecker": true})
    );
    let ipam = ipvlan_rs_protocol::ipam::CapabilitiesResponse::default();
    assert_eq!(
        serde_json::to_value(ipam).unwrap(),
        json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
    );
    assert_eq!("global".parse::<Scope>(), Ok(Scope::Global));
    assert!("swarm".parse::<Scope>().unwrap_err().contains("swarm"));
}

#[test]
fn allocate_network_round_trip() {
    let raw = r#"{"NetworkID":"q4x5ngjzhvk2ei7xsv1eqtf4a","Options":{"parent":"hp0","foo":"bar"},"IPv4Data":[{"AddressSpace":"","Pool":"10.88.0.0/24","Gateway":"10.88.0.1/24"}],"IPv6Data":null}"#;
    let req: AllocateNetworkRequest = serde_json::from_str(raw).unwrap();
    assert_eq!(req.options["parent"], "hp0");
    assert!(req.ipv6_data.is_empty());
    let resp = AllocateNetworkResponse {
        options: req.options.clone(),
    };
    assert_eq!(
        serde_json::to_value(resp).unwrap(),
        json!({"Options": {"parent": "hp0", "foo": "bar"}})
    );
}

#[test]
fn create_endpoint_interface_and_mac() {
    let raw = r#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.99.0.50/24","AddressIPv6":"","MacAddress":"02:00:00:00:00:50"},"Options":{"com.docker.network.endpoint.macaddress":"AgAAAABQ","com.docker.network.portmap":[]}}"#;
    let req: CreateEndpointRequest = serde_json::from_str(raw).unwrap();
    assert_eq!(req.interface.address.unwrap().to_string(), "10.99.0.50/24");
    assert_eq!(req.interface.address_ipv6, None);
    assert_eq!(
        req.interface.mac_address,
        Some(MacAddress([2, 0, 0, 0, 0, 0x50]))
    );
    assert_eq!(
        req.options.mac_address().unwrap(),
        Some(MacAddress([2, 0, 0, 0, 0, 0x50]))
    );
    assert!(!req.options.has_port_mappings());
    let null_iface: CreateEndpointRequest = serde_json::from_str(
        r#"{"NetworkID":"n","EndpointID":"e","Interface":null,"Options":null}"#,
    )
    .unwrap();
    assert_eq!(null_iface.interface, EndpointInterface::default());
    assert!(
        serde_json::from_str::<CreateEndpointRequest>(
            r#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.0.0.300/24"}}"#
        )
        .is_err()
    );
    assert_eq!(
        serde_json::to_value(CreateEndpointResponse::default()).unwrap(),
        json!({})
    );
}

#[test]
fn join_response_shapes() {
    let l2 = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: "ipv1a2b3c4d5e6".into(),
            dst_prefix: "eth".into(),
        }),
        gateway: Some("10.99.0.1".parse().unwrap()),
        gateway_ipv6: None,
        static_routes: vec![],
        disable_gateway_service: true,
    };
    assert_eq!(
        serde_json::to_value(&l2).unwrap(),
        json!({"InterfaceName": {"SrcName": "ipv1a2b3c4d5e6", "DstPrefix": "eth"}, "Gateway": "10.99.0.1", "DisableGatewayService": true})
    );
    let l3 = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: "x".into(),
            dst_prefix: "eth".into(),
        }),
        static_routes: vec![
            StaticRoute {
                destination: "0.0.0.0/0".parse().unwrap(),
                route_type: RouteType::Connected,
                next_hop: None,
            },
            StaticRoute {
                destination: "10.9.0.0/16".parse().unwrap(),
                route_type: RouteType::NextHop,
                next_hop: Some("10.99.0.254".parse().unwrap()),
            },
        ],
        disable_gateway_service: true,
        ..JoinResponse::default()
    };
    let v = serde_json::to_value(&l3).unwrap();
    assert_eq!(
        v["StaticRoutes"][0],
        json!({"Destination": "0.0.0.0/0", "RouteType": 1})
    );
    assert_eq!(
        v["StaticRoutes"][1],
        json!({"Destination": "10.9.0.0/16", "RouteType": 0, "NextHop": "10.99.0.254"})
    );
    let back: JoinResponse = serde_json::from_value(v).unwrap();
    assert_eq!(back, l3);
}

#[test]
fn discovery_node_data() {
    let n: DiscoveryNotification = serde_json::from_str(
        r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"192.168.77.1","BindAddress":"0.0.0.0","Self":true}}"#,
    )
    .unwrap();
    let node = n.node().unwrap();
    assert!(node.is_self);
    assert_eq!(node.address, "192.168.77.1");
    let other: DiscoveryNotification =
        serde_json::from_str(r#"{"DiscoveryType":2,"DiscoveryData":{}}"#).unwrap();
    assert!(other.node().is_none());
}

#[test]
fn ipam_requests_docker_29_shapes() {
    // Docker >= 29 names the endpoint in RequestAddress options
    let raw = r#"{"PoolID":"local/10.99.0.0/24","Address":"","Options":{"com.docker.network.endpoint.name":"web"}}"#;
    let req: RequestAddressRequest = serde_json::from_str(raw).unwrap();
    assert_eq!(req.address, None);
    assert_eq!(req.address_options().endpoint_name.as_deref(), Some("web"));
    assert_eq!(req.address_options().kind(), AddressKind::Other);
    let gw: RequestAddressRequest = serde_json::from_str(
        r#"{"PoolID":"p","Address":"10.99.0.1","Options":{"RequestAddressType":"com.docker.network.gateway","com.docker.network.ipam.serial":"true"}}"#,
    )
    .unwrap();
    assert_eq!(gw.address, Some("10.99.0.1".parse::<IpAddr>().unwrap()));
    assert_eq!(gw.address_options().kind(), AddressKind::Gateway);
    assert_eq!(gw.address_options().serial, Some(true));
    let cidr: RequestAddressRequest =
        serde_json::from_str(r#"{"PoolID":"p","Address":"10.0.0.9/24"}"#).unwrap();
    assert_eq!(cidr.address, Some("10.0.0.9".parse::<IpAddr>().unwrap()));
    assert!(
        serde_json::from_str::<RequestAddressRequest>(r#"{"PoolID":"p","Address":"nope"}"#)
            .is_err()
    );

    let pool: RequestPoolRequest = serde_json::from_str(
        r#"{"AddressSpace":"local","Pool":"fd00:95::/64","SubPool":"","Options":null,"V6":true}"#,
    )
    .unwrap();
    assert!(pool.v6 && pool.sub_pool.is_none());
    assert_eq!(pool.pool.unwrap().to_string(), "fd00:95::/64");
    let release: ReleaseAddressRequest =
        serde_json::from_str(r#"{"PoolID":"","Address":"10.0.0.2"}"#).unwrap();
    assert!(release.pool_id.is_empty());
}

#[test]
fn ipam_responses_are_cidr() {
    let r = RequestPoolResponse {
        pool_id: "local/10.99.0.0/24".into(),
        pool: "10.99.0.0/24".parse().unwrap(),
        data: Default::default(),
    };
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"PoolID": "local/10.99.0.0/24", "Pool": "10.99.0.0/24", "Data": {}})
    );
    let a = RequestAddressResponse {
        address: "10.99.0.2/24".parse().unwrap(),
        data: Default::default(),
    };
    assert_eq!(serde_json::to_value(&a).unwrap()["Address"], "10.99.0.2/24");
    let spaces = AddressSpacesResponse {
        local_default_address_space: "local".into(),
        global_default_address_space: "global".into(),
    };
    assert_eq!(
        serde_json::to_value(spaces).unwrap(),
        json!({"LocalDefaultAddressSpace": "local", "GlobalDefaultAddressSpace": "global"})
    );
}

#[test]
fn bodyless_calls_accept_empty_bodies_and_others_do_not() {
    for &call in Call::ALL {
        let result = Request::decode(call, b"");
        let bodyless = matches!(
            call,
            Call::Activate
                | Call::GetCapabilities
                | Call::IpamGetCapabilities
                | Call::GetDefaultAddressSpaces
        );
        // IPAM release calls and GwAllocCheck have no required field: an empty body is "nothing".
        let all_optional = matches!(
            call,
            Call::ReleasePool
                | Call::ReleaseAddress
                | Call::RequestPool
                | Call::RequestAddress
                | Call::GwAllocCheck
                | Call::DiscoverNew
                | Call::DiscoverDelete
        );
        if bodyless || all_optional {
            assert!(result.is_ok(), "{call:?}: {result:?}");
        } else {
            assert!(result.is_err(), "{call:?} accepted an empty body");
        }
    }
}

#[test]
fn error_envelope() {
    assert_eq!(
        serde_json::to_value(ErrorResponse::new("x")).unwrap(),
        json!({"Err": "x", "Error": "x"})
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(call in 0..Call::ALL.len(), body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Request::decode(Call::ALL[call], &body);
        }

        #[test]
        fn request_address_round_trips(a in any::<[u8; 4]>(), serial in any::<bool>()) {
            let req = RequestAddressRequest {
                pool_id: "local/10.0.0.0/8".into(),
                address: Some(IpAddr::from(a)),
                options: [("com.docker.network.ipam.serial".to_string(), serial.to_string())].into_iter().collect(),
            };
            let back: RequestAddressRequest = serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
            prop_assert_eq!(back, req);
        }
    }
}
