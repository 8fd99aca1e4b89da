//! Start-up: bring the kernel in line with the loaded state.

use crate::link::{self, Link};
use crate::names::{ALIAS_PREFIX, DUMMY_PREFIX, HOST_LINK_PREFIX, SLAVE_PREFIX, dummy_name};
use crate::options::ParentSpec;
use crate::records::{NETWORKS, NetworkRecord};
use crate::state::{State, put};
use crate::{Driver, DriverError};
use std::collections::{HashMap, HashSet};

/// A link of this instance that belongs to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orphan {
    /// A container link of no endpoint (nor spare).
    ContainerLink,
    /// A dummy parent of no network.
    DummyParent,
    /// An 802.1Q parent no network created.
    VlanParent,
    /// A host link (`-o host_link`) of no network.
    HostLink,
}

impl Orphan {
    /// What it is, in words.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Orphan::ContainerLink => "container link",
            Orphan::DummyParent => "dummy parent",
            Orphan::VlanParent => "802.1Q parent",
            Orphan::HostLink => "host link",
        }
    }
}

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
                    Ok(Some(device)) if device.name != net.parent => {
                        renamed.push((net.id.clone(), net.parent.clone(), device.name))
                    }
                    // back meanwhile
                    Ok(Some(_)) => {}
                    // Join looks the parent up by name each time, so the
                    // network works again once an interface of that name
                    // is back
                    Ok(None) => tracing::warn!(
                        network = %net.id,
                        parent = %net.parent,
                        "parent interface missing; containers cannot join this network until it exists again"
                    ),
                    Err(e) => tracing::warn!(
                        network = %net.id,
                        parent = %net.parent,
                        error = %e,
                        "could not look the parent interface up"
                    ),
                },
            }
        }
        for (id, from, device) in renamed {
            self.rename_parent(&mut state, &id, &from, &device)?
                .durable()
                .await?;
        }
        self.note_parent_indexes(&mut state).await?;
        for l in &links {
            if let Some(orphan) = self.orphan(&state, l) {
                tracing::info!(link = %l.name, kind = ?l.kind, "removing link that belongs to no endpoint or network");
                if self.netlink.delete(l.index, &l.name).await? {
                    match orphan {
                        Orphan::ContainerLink => self.counters.links_deleted(1),
                        Orphan::DummyParent | Orphan::VlanParent => self.counters.parent_deleted(),
                        // neither a container link nor a parent: not counted
                        Orphan::HostLink => {}
                    }
                }
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

    /// What `l` is if it is a link this instance made that nothing in
    /// `state` accounts for: a container link of no endpoint or spare, a
    /// dummy parent of no network, an 802.1Q parent no network created, a
    /// host link of no network.
    /// Reconcile deletes these; the operator's view lists them as drift.
    pub(crate) fn orphan(&self, state: &State, l: &Link) -> Option<Orphan> {
        let ours = l.group == Some(self.link_group);
        if l.name.starts_with(SLAVE_PREFIX)
            && link::is_slave_kind(l.kind.as_deref())
            && self.owns(l)
            && !state.links.contains(l.name.as_str())
        {
            return Some(Orphan::ContainerLink);
        }
        if ours
            && l.name.starts_with(DUMMY_PREFIX)
            && l.kind.as_deref() == Some("dummy")
            && !state.networks.keys().any(|id| dummy_name(id) == l.name)
        {
            return Some(Orphan::DummyParent);
        }
        if ours
            && l.name.starts_with(HOST_LINK_PREFIX)
            && link::is_slave_kind(l.kind.as_deref())
            && !state
                .networks
                .values()
                .any(|n| n.host_link.as_ref().is_some_and(|h| h.name == l.name))
        {
            return Some(Orphan::HostLink);
        }
        let tagged = l
            .alias
            .as_deref()
            .is_some_and(|a| a.starts_with(ALIAS_PREFIX));
        if ours
            && l.kind.as_deref() == Some("vlan")
            && tagged
            && !state
                .networks
                .values()
                .any(|n| n.parent == l.name && n.created_parent.is_some())
        {
            return Some(Orphan::VlanParent);
        }
        None
    }

    /// The device a network's parent is now: the one of its stored name,
    /// or, when no device has that name any more, the one the name the
    /// user typed finds (an alternative name kept across a rename, or a
    /// record of an earlier release that holds an alternative name).
    /// Changes no record: callers that may follow a rename do so with
    /// [`Driver::follow_parent`]. Parents this driver created are known
    /// by their stored name only.
    pub(crate) async fn parent_device(
        &self,
        net: &NetworkRecord,
    ) -> Result<Option<Link>, DriverError> {
        if let Some(link) = self.netlink.get(&net.parent).await? {
            return Ok(Some(link));
        }
        match &net.options.parent {
            ParentSpec::Named { name } if net.created_parent.is_none() && *name != net.parent => {
                Ok(self.netlink.get(name).await?)
            }
            _ => Ok(None),
        }
    }

    /// Records each present parent's interface index where it is not the
    /// recorded one (a parent re-created above or while the plugin was
    /// down, or a record of an older release), in one commit. Endpoints
    /// keep theirs: their links went with the earlier parent, and the
    /// operator's view lists them.
    async fn note_parent_indexes(&self, state: &mut State) -> Result<(), DriverError> {
        let links = self.netlink.list().await?;
        let index_of: HashMap<&str, u32> =
            links.iter().map(|l| (l.name.as_str(), l.index)).collect();
        let changed: Vec<NetworkRecord> = state
            .networks
            .values()
            .filter_map(|n| {
                let now = *index_of.get(n.parent.as_str())?;
                (n.parent_index != Some(now)).then(|| NetworkRecord {
                    parent_index: Some(now),
                    ..n.clone()
                })
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let ops = changed
            .iter()
            .map(|n| put(NETWORKS, &n.id, n))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.submit(ops).durable().await?;
        for n in changed {
            tracing::info!(network = %n.id, parent = %n.parent, index = ?n.parent_index, "recorded the parent's interface index");
            state.networks.insert(n.id.clone(), n);
        }
        Ok(())
    }

    /// Makes network `network`'s record follow its parent `device` if the
    /// device was found under another name than the stored one (renamed,
    /// [`Driver::parent_device`]): durable before this returns, so the
    /// answer of the call that found it never runs ahead of the record.
    /// Takes the state lock: never call it while holding it.
    pub(crate) async fn follow_parent(
        &self,
        network: &NetworkRecord,
        device: &Link,
    ) -> Result<(), DriverError> {
        if device.name == network.parent {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        let commit = self.rename_parent(&mut state, &network.id, &network.parent, &device.name)?;
        drop(state);
        Ok(commit.durable().await?)
    }

    /// Records that network `id`'s parent, stored as `from`, is the device
    /// `device` now; applied to the state at once, durable when the
    /// returned commit resolves. A record renamed meanwhile (by a
    /// concurrent call), or gone, is left as it is, and the commit then
    /// resolves once what came before it is durable.
    fn rename_parent(
        &self,
        state: &mut State,
        id: &str,
        from: &str,
        device: &str,
    ) -> Result<store::Commit, DriverError> {
        let Some(mut record) = state.networks.get(id).filter(|r| r.parent == from).cloned() else {
            return Ok(self.store.submit(Vec::new()));
        };
        tracing::info!(network = id, parent = %record.parent, device = %device, "parent found under the device's name");
        record.parent = device.to_string();
        let commit = self.store.submit(vec![put(NETWORKS, id, &record)?]);
        state.networks.insert(id.to_string(), record);
        Ok(commit)
    }
}
