//! Decoding a call's body into its typed request.

use crate::Call;
use crate::error::{DecodeError, decode};
use crate::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use crate::network::{
    AllocateNetworkRequest, CreateEndpointRequest, CreateNetworkRequest, DiscoveryNotification,
    EndpointRequest, GwAllocCheckRequest, JoinRequest, NetworkRequest,
    ProgramExternalConnectivityRequest,
};

/// A decoded request of any call.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each variant is the call of the same name
pub enum Request {
    Activate,
    GetCapabilities,
    GwAllocCheck(GwAllocCheckRequest),
    AllocateNetwork(AllocateNetworkRequest),
    FreeNetwork(NetworkRequest),
    CreateNetwork(CreateNetworkRequest),
    DeleteNetwork(NetworkRequest),
    CreateEndpoint(CreateEndpointRequest),
    EndpointOperInfo(EndpointRequest),
    DeleteEndpoint(EndpointRequest),
    Join(JoinRequest),
    Leave(EndpointRequest),
    DiscoverNew(DiscoveryNotification),
    DiscoverDelete(DiscoveryNotification),
    ProgramExternalConnectivity(ProgramExternalConnectivityRequest),
    RevokeExternalConnectivity(EndpointRequest),
    IpamGetCapabilities,
    GetDefaultAddressSpaces,
    RequestPool(RequestPoolRequest),
    ReleasePool(ReleasePoolRequest),
    RequestAddress(RequestAddressRequest),
    ReleaseAddress(ReleaseAddressRequest),
}

impl Request {
    /// Decode `body` as the request of `call`. Calls without arguments ignore
    /// the body (the engine sends none).
    pub fn decode(call: Call, body: &[u8]) -> Result<Request, DecodeError> {
        let m = call.method();
        Ok(match call {
            Call::Activate => Request::Activate,
            Call::GetCapabilities => Request::GetCapabilities,
            Call::IpamGetCapabilities => Request::IpamGetCapabilities,
            Call::GetDefaultAddressSpaces => Request::GetDefaultAddressSpaces,
            Call::GwAllocCheck => Request::GwAllocCheck(decode(m, body)?),
            Call::AllocateNetwork => Request::AllocateNetwork(decode(m, body)?),
            Call::FreeNetwork => Request::FreeNetwork(decode(m, body)?),
            Call::CreateNetwork => Request::CreateNetwork(decode(m, body)?),
            Call::DeleteNetwork => Request::DeleteNetwork(decode(m, body)?),
            Call::CreateEndpoint => Request::CreateEndpoint(decode(m, body)?),
            Call::EndpointOperInfo => Request::EndpointOperInfo(decode(m, body)?),
            Call::DeleteEndpoint => Request::DeleteEndpoint(decode(m, body)?),
            Call::Join => Request::Join(decode(m, body)?),
            Call::Leave => Request::Leave(decode(m, body)?),
            Call::DiscoverNew => Request::DiscoverNew(decode(m, body)?),
            Call::DiscoverDelete => Request::DiscoverDelete(decode(m, body)?),
            Call::ProgramExternalConnectivity => {
                Request::ProgramExternalConnectivity(decode(m, body)?)
            }
            Call::RevokeExternalConnectivity => {
                Request::RevokeExternalConnectivity(decode(m, body)?)
            }
            Call::RequestPool => Request::RequestPool(decode(m, body)?),
            Call::ReleasePool => Request::ReleasePool(decode(m, body)?),
            Call::RequestAddress => Request::RequestAddress(decode(m, body)?),
            Call::ReleaseAddress => Request::ReleaseAddress(decode(m, body)?),
        })
    }
}
