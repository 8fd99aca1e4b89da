//! The closed set of calls the engine makes, and their URL paths.

macro_rules! calls {
    ($($variant:ident => $path:literal;)*) => {
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
    Activate => "/Plugin.Activate";
    GetCapabilities => "/NetworkDriver.GetCapabilities";
    GwAllocCheck => "/NetworkDriver.GwAllocCheck";
    AllocateNetwork => "/NetworkDriver.AllocateNetwork";
    FreeNetwork => "/NetworkDriver.FreeNetwork";
    CreateNetwork => "/NetworkDriver.CreateNetwork";
    DeleteNetwork => "/NetworkDriver.DeleteNetwork";
    CreateEndpoint => "/NetworkDriver.CreateEndpoint";
    EndpointOperInfo => "/NetworkDriver.EndpointOperInfo";
    DeleteEndpoint => "/NetworkDriver.DeleteEndpoint";
    Join => "/NetworkDriver.Join";
    Leave => "/NetworkDriver.Leave";
    DiscoverNew => "/NetworkDriver.DiscoverNew";
    DiscoverDelete => "/NetworkDriver.DiscoverDelete";
    ProgramExternalConnectivity => "/NetworkDriver.ProgramExternalConnectivity";
    RevokeExternalConnectivity => "/NetworkDriver.RevokeExternalConnectivity";
    IpamGetCapabilities => "/IpamDriver.GetCapabilities";
    GetDefaultAddressSpaces => "/IpamDriver.GetDefaultAddressSpaces";
    RequestPool => "/IpamDriver.RequestPool";
    ReleasePool => "/IpamDriver.ReleasePool";
    RequestAddress => "/IpamDriver.RequestAddress";
    ReleaseAddress => "/IpamDriver.ReleaseAddress";
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
    fn method_and_path() {
        assert_eq!(Call::Join.method(), "Join");
        assert_eq!(
            Call::IpamGetCapabilities.path(),
            "/IpamDriver.GetCapabilities"
        );
    }
}
