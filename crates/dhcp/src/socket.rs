//! The packet socket one exchange runs on: raw Ethernet frames in and out
//! of the parent.
//!
//! The only unsafe code of the crate: binding to a `sockaddr_ll` and
//! joining a unicast membership are plain `bind(2)`/`setsockopt(2)` calls
//! that neither socket2 nor nix offer safely for `AF_PACKET` (each passes
//! a fully initialised struct by pointer with its exact size), and tokio
//! registers a descriptor only through an unsafe call (the socket owns it).
#![allow(unsafe_code)]

use crate::Mac;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::io::Read;
use std::mem::size_of;
use std::os::fd::AsRawFd;
use tokio::io::unix::AsyncFd;

/// Largest frame read; longer ones are cut (and then fail to parse).
const FRAME_MAX: usize = 9216;

/// A packet socket bound to one interface, seeing every frame on it.
pub(crate) struct PacketSocket {
    fd: AsyncFd<Socket>,
}

impl PacketSocket {
    /// Opens a socket on interface `index`. `extra_mac`, when set, is added
    /// to the interface's unicast filter while the socket is open, so that
    /// a NIC delivers frames for a MAC no link has yet (a macvlan
    /// endpoint's, before Join).
    pub(crate) fn open(index: u32, extra_mac: Option<Mac>) -> io::Result<PacketSocket> {
        // protocol 0: nothing is queued until bind names the interface
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))?;
        socket.set_nonblocking(true)?;
        let ifindex =
            i32::try_from(index).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: ifindex,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `addr` is a complete sockaddr_ll and the length is its size
        let rc = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(mac) = extra_mac {
            let mut address = [0u8; 8];
            address[..6].copy_from_slice(&mac);
            let membership = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_UNICAST as u16,
                mr_alen: 6,
                mr_address: address,
            };
            // SAFETY: `membership` is a complete packet_mreq and the length is its size
            let rc = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_ADD_MEMBERSHIP,
                    (&raw const membership).cast::<libc::c_void>(),
                    size_of::<libc::packet_mreq>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: the Socket owns its descriptor, which stays open and the
        // same until the AsyncFd (which owns the Socket) is dropped
        let fd = unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)?;
        Ok(PacketSocket { fd })
    }

    /// Sends one whole frame out of the interface.
    pub(crate) async fn send(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|fd| fd.get_ref().send(frame)) {
                Ok(result) => return result.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives the next frame (in or out of the interface).
    pub(crate) async fn recv(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; FRAME_MAX];
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| (&mut fd.get_ref()).read(&mut buf)) {
                Ok(Ok(len)) => {
                    buf.truncate(len);
                    return Ok(buf);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}
