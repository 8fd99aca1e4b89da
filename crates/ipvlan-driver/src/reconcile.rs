//! Start-up: bring the kernel in line with the loaded state.

use crate::link::{self, Link};
use crate::names::{ALIAS_PREFIX, DUMMY_PREFIX, HOST_LINK_PREFIX, SLAVE_PREFIX, dummy_name};
use crate::options::ParentSpec;
use crate::records::{NETWORKS, NetworkRecord};
use crate::state::{State, put};
use crate::{Driver, DriverError};
use std::collections::{HashMap, HashSet};

impl Driver {
    /// Bring the kernel in line with the state after a start or a crash:
    /// re-create created parents that are missing, delete container links,
    /// host links and dummy parents that belong to no endpoint or network,
    /// and make each host link and its routes as the records say.
    pub async fn reconcile(&self) -> Result<(), DriverError> {
        self.link_group_durable().await?;
        let mut state = self.state.lock().await;
        let links = self.netlink.list().await?;
        let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
        // parents re-created here: several networks may share one
        let mut recreated = HashSet::new();
        let mut renamed = Vec::new();
        for net in state.networks.values() {
            if by_name.contains_key(net.parent.as_str()) || recreated.contains(&net.parent) {
                continue;
            }
            match &net.created_parent {
                Some(created) => {
                    tracing::warn!(network = %net.id, parent = %net.parent, "created parent missing; re-creating");
                    match self
                        .create_parent(&net.id, &net.parent, created, net.options.mtu)
                        .await
                    {
                        Ok(()) => {
                            recreated.insert(net.parent.clone());
                        }
                        Err(e) => {
                            tracing::error!(network = %net.id, parent = %net.parent, error = %e, "could not re-create parent")
                        }
                    }
                }
                // the user's interface: not ours to create. A record of
                // an earlier release may hold an alternative name, and a
                // device may have been renamed while its alternative name
                // stayed: the name typed still finds the device.
                None => match self.parent_device(net).await {
                    Some(device) => renamed.push((net.id.clone(), device)),
                    // Join looks the parent up by name each time, so the
                    // network works again once an interface of that name
                    // is back
                    None => tracing::warn!(
                        network = %net.id,
                        parent = %net.parent,
                        "parent interface missing; containers cannot join this network until it exists again"
                    ),
                },
            }
        }
        for (id, device) in renamed {
            self.rename_parent(&mut state, &id, device).await?;
        }
        let live_slaves = &state.links;
        let live_dummies: HashSet<String> =
            state.networks.keys().map(|id| dummy_name(id)).collect();
        let live_host_links: HashSet<&str> = state
            .networks
            .values()
            .filter_map(|n| n.host_link.as_ref().map(|h| h.name.as_str()))
            .collect();
        for l in &links {
            let orphan_slave = l.name.starts_with(SLAVE_PREFIX)
                && link::is_slave_kind(l.kind.as_deref())
                && self.owns(l)
                && !live_slaves.contains(l.name.as_str());
            let ours = l.group == Some(self.link_group);
            let orphan_host_link = l.name.starts_with(HOST_LINK_PREFIX)
                && link::is_slave_kind(l.kind.as_deref())
                && ours
                && !live_host_links.contains(l.name.as_str());
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
            if orphan_slave || orphan_dummy || orphan_vlan || orphan_host_link {
                tracing::info!(link = %l.name, kind = ?l.kind, "removing link that belongs to no endpoint or network");
                self.netlink.delete(l.index, &l.name).await?;
            }
        }
        for net in state.networks.values() {
            // a network whose parent is missing waits for it, as its Joins do
            if let Err(e) = self.restore_host_link(net, state.endpoints.values()).await {
                tracing::error!(network = %net.id, error = %e, "could not restore the host link");
            }
        }
        Ok(())
    }

    /// The device a network's parent names now, found by the name the
    /// user typed when the stored name is gone.
    async fn parent_device(&self, net: &NetworkRecord) -> Option<String> {
        let ParentSpec::Named { name } = &net.options.parent else {
            return None;
        };
        match self.netlink.get(name).await {
            Ok(Some(link)) if link.name != net.parent => Some(link.name),
            _ => None,
        }
    }

    /// Records that network `id`'s parent is the device `device` now.
    async fn rename_parent(
        &self,
        state: &mut State,
        id: &str,
        device: String,
    ) -> Result<(), DriverError> {
        let Some(mut record) = state.networks.get(id).cloned() else {
            return Ok(());
        };
        tracing::info!(network = id, parent = %record.parent, device = %device, "parent found under the device's name");
        record.parent = device;
        self.store
            .submit(vec![put(NETWORKS, id, &record)?])
            .durable()
            .await?;
        state.networks.insert(id.to_string(), record);
        Ok(())
    }
}
