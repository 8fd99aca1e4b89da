//! The closed set of calls the engine makes, and their URL paths.

/// Which plugin subsystem a call belongs to; it decides the error field the
/// engine reads (`Err` for network calls, `Error` for IPAM calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/Plugin.*` handshake (legacy v1 plugins only).
    Plugin,
    /// `/NetworkDriver.*`.
    NetworkDriver,
    /// `/IpamDriver.*`.
    IpamDriver,
}

macro_rules! calls {
    ($($variant:ident => $api:ident, $path:literal;)*) => {
        /// Every call the engine makes to a network + IPAM plugin.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Call {
            $(
                #[doc = concat!("`", $path, "`")]
                $variant,
            )*
        }

        impl Call {
            /// All calls, in protocol order.
            pub const ALL: &'static [Call] = &[$(Call::$variant),*];

            /// The URL path the engine POSTs to.
            pub fn path(self) -> &'static str {
                match self { $(Call::$variant => $path),* }
            }

            /// The subsystem this call belongs to.
            pub fn api(self) -> Api {
                match self { $(Call::$variant => Api::$api),* }
            }

            /// The call for a URL path, if it is one the protocol defines.
            pub fn from_path(path: &str) -> Option<Call> {
                match path { $($path => Some(Call::$variant),)* _ => None }
            }

            /// The method name without the subsystem prefix, for logs.
            pub fn method(self) -> &'static str {
                let path = self.path();
                path.rsplit('.').next().unwrap_or(path)
            }
        }
    };
}

calls! {
    Activate => Plugin, "/Plugin.Activate";
    GetCapabilities => NetworkDriver, "/NetworkDriver.GetCapabilities";
    GwAllocCheck => NetworkDriver, "/NetworkDriver.GwAllocCheck";
    AllocateNetwork => NetworkDriver, "/NetworkDriver.AllocateNetwork";
    FreeNetwork => NetworkDriver, "/NetworkDriver.FreeNetwork";
    CreateNetwork => NetworkDriver, "/NetworkDriver.CreateNetwork";
    DeleteNetwork => NetworkDriver, "/NetworkDriver.DeleteNetwork";
    CreateEndpoint => NetworkDriver, "/NetworkDriver.CreateEndpoint";
    EndpointOperInfo => NetworkDriver, "/NetworkDriver.EndpointOperInfo";
    DeleteEndpoint => NetworkDriver, "/NetworkDriver.DeleteEndpoint";
    Join => NetworkDriver, "/NetworkDriver.Join";
    Leave => NetworkDriver, "/NetworkDriver.Leave";
    DiscoverNew => NetworkDriver, "/NetworkDriver.DiscoverNew";
    DiscoverDelete => NetworkDriver, "/NetworkDriver.DiscoverDelete";
    ProgramExternalConnectivity => NetworkDriver, "/NetworkDriver.ProgramExternalConnectivity";
    RevokeExternalConnectivity => NetworkDriver, "/NetworkDriver.RevokeExternalConnectivity";
    IpamGetCapabilities => IpamDriver, "/IpamDriver.GetCapabilities";
    GetDefaultAddressSpaces => IpamDriver, "/IpamDriver.GetDefaultAddressSpaces";
    RequestPool => IpamDriver, "/IpamDriver.RequestPool";
    ReleasePool => IpamDriver, "/IpamDriver.ReleasePool";
    RequestAddress => IpamDriver, "/IpamDriver.RequestAddress";
    ReleaseAddress => IpamDriver, "/IpamDriver.ReleaseAddress";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_maps_back_to_its_call() {
        for &call in Call::ALL {
            assert_eq!(Call::from_path(call.path()), Some(call));
        }
        assert_eq!(Call::ALL.len(), 22);
    }

    #[test]
    fn unknown_paths_are_not_calls() {
        assert_eq!(Call::from_path("/NetworkDriver.Nope"), None);
        assert_eq!(Call::from_path("/networkdriver.join"), None);
        assert_eq!(Call::from_path(""), None);
    }

    #[test]
    fn method_and_api() {
        assert_eq!(Call::Join.method(), "Join");
        assert_eq!(Call::RequestPool.api(), Api::IpamDriver);
        assert_eq!(
            Call::IpamGetCapabilities.path(),
            "/IpamDriver.GetCapabilities"
        );
        assert_eq!(Call::Activate.api(), Api::Plugin);
    }
}
