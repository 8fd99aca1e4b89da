//! Start-up: bring the kernel in line with the loaded state.

use crate::link::{self, Link};
use crate::names::{ALIAS_PREFIX, DUMMY_PREFIX, SLAVE_PREFIX, dummy_name};
use crate::{Driver, DriverError};
use std::collections::{HashMap, HashSet};

impl Driver {
    /// Bring the kernel in line with the state after a start or a crash:
    /// re-create created parents that are missing, delete container links
    /// and dummy parents that belong to no endpoint or network.
    pub async fn reconcile(&self) -> Result<(), DriverError> {
        self.link_group_durable().await?;
        let state = self.state.lock().await;
        let links = self.netlink.list().await?;
        let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
        for net in state.networks.values() {
            if by_name.contains_key(net.parent.as_str()) {
                continue;
            }
            match &net.created_parent {
                Some(created) => {
                    tracing::warn!(network = %net.id, parent = %net.parent, "created parent missing; re-creating");
                    if let Err(e) = self.create_parent(&net.id, &net.parent, created).await {
                        tracing::error!(network = %net.id, parent = %net.parent, error = %e, "could not re-create parent");
                    }
                }
                // the user's interface: not ours to create; Join looks it
                // up by name each time, so the network works again once
                // an interface of that name is back
                None => tracing::warn!(
                    network = %net.id,
                    parent = %net.parent,
                    "parent interface missing; containers cannot join this network until it exists again"
                ),
            }
        }
        let live_slaves = &state.links;
        let live_dummies: HashSet<String> =
            state.networks.keys().map(|id| dummy_name(id)).collect();
        for l in &links {
            let orphan_slave = l.name.starts_with(SLAVE_PREFIX)
                && link::is_slave_kind(l.kind.as_deref())
                && self.owns(l)
                && !live_slaves.contains(l.name.as_str());
            let ours = l.group == Some(self.link_group);
            let orphan_dummy = l.name.starts_with(DUMMY_PREFIX)
                && l.kind.as_deref() == Some("dummy")
                && ours
                && !live_dummies.contains(&l.name);
            let orphan_vlan = ours
                && l.kind.as_deref() == Some("vlan")
                && l.alias
                    .as_deref()
                    .and_then(|a| a.strip_prefix(ALIAS_PREFIX))
                    .is_some_and(|_| {
                        !state
                            .networks
                            .values()
                            .any(|n| n.parent == l.name && n.created_parent.is_some())
                    });
            if orphan_slave || orphan_dummy || orphan_vlan {
                tracing::info!(link = %l.name, kind = ?l.kind, "removing link that belongs to no endpoint or network");
                self.netlink.delete(l.index, &l.name).await?;
            }
        }
        Ok(())
    }
}
