//! The shape of a link: its configuration as the kernel reports it, and how two shapes differ.

use rtnetlink::packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};

/// The configuration of a link as the kernel reports it, without what
/// identifies it (name, index, MAC) or merely counts and reports (carrier,
/// statistics, operational state, per-protocol state, which a move between
/// namespaces resets anyway). Two links of equal shape on one parent are
/// interchangeable: the kernel and the engine treat them alike.
///
/// Deliberately strict: any attribute not known to be volatile counts, so
/// a kernel that reports something new makes links unequal, never equal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkShape {
    flags: u32,
    attributes: Vec<LinkAttribute>,
}

/// Interface flags the kernel derives from the carrier, not configuration.
const OPERATIONAL_FLAGS: u32 = 0x40 /* RUNNING */ | 0x1_0000 /* LOWER_UP */ | 0x2_0000 /* DORMANT */;
const IFF_NOARP: u32 = 0x80;

impl LinkShape {
    pub(super) fn from_message(msg: &LinkMessage) -> LinkShape {
        let attributes = msg
            .attributes
            .iter()
            .filter(|a| {
                !matches!(
                    a,
                    LinkAttribute::IfName(_)
                        | LinkAttribute::Address(_)
                        | LinkAttribute::PermAddress(_)
                        | LinkAttribute::Carrier(_)
                        | LinkAttribute::CarrierChanges(_)
                        | LinkAttribute::CarrierUpCount(_)
                        | LinkAttribute::CarrierDownCount(_)
                        | LinkAttribute::OperState(_)
                        | LinkAttribute::Stats(_)
                        | LinkAttribute::Stats64(_)
                        | LinkAttribute::Event(_)
                        | LinkAttribute::NewNetnsId(_)
                        | LinkAttribute::IfNetnsId(_)
                        | LinkAttribute::NewIfIndex(_)
                        | LinkAttribute::AfSpecUnspec(_)
                        | LinkAttribute::AfSpecBridge(_)
                        | LinkAttribute::AfSpecUnknown(_)
                        | LinkAttribute::ProtoInfoInet6(_)
                        | LinkAttribute::Other(_)
                )
            })
            .cloned()
            .collect();
        // ipvlan sets or clears NOARP from the port's mode at every open
        let is_ipvlan = msg.attributes.iter().any(|a| {
            matches!(a, LinkAttribute::LinkInfo(infos)
                if infos.iter().any(|i| matches!(i, LinkInfo::Kind(k) if k.to_string() == "ipvlan")))
        });
        let derived = OPERATIONAL_FLAGS | if is_ipvlan { IFF_NOARP } else { 0 };
        LinkShape {
            flags: msg.header.flags.bits() & !derived,
            attributes,
        }
    }

    /// The first difference from `other`, for logs; `None` if equal.
    pub fn difference(&self, other: &LinkShape) -> Option<String> {
        if self.flags != other.flags {
            return Some(format!("flags {:#x} != {:#x}", self.flags, other.flags));
        }
        if self.attributes.len() != other.attributes.len() {
            return Some(format!(
                "{} attributes != {}",
                self.attributes.len(),
                other.attributes.len()
            ));
        }
        self.attributes
            .iter()
            .zip(&other.attributes)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("{a:?} != {b:?}"))
    }
}
