//! Device-mapper devices from the guest, without dmsetup (the VM has no
//! libdevmapper): the four ioctls of `/dev/mapper/control` the replay test
//! needs, as `include/uapi/linux/dm-ioctl.h` (interface 4.x) defines them.
//! A device is created, given a one-target table and resumed (which makes
//! the table live), sent target messages (`mark NAME` for log-writes), and
//! removed. No crate does this without bindgen and libdevmapper at build
//! time (devicemapper-sys), so this small module issues them itself; it is
//! the only unsafe code of the project, four `ioctl(2)` calls on a buffer
//! it owns and sizes.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

const CONTROL: &str = "/dev/mapper/control";

/// `sizeof(struct dm_ioctl)`: the header every command starts with; its
/// payload (target specs, a message) follows at this offset.
const HEADER: usize = 312;
/// `sizeof(struct dm_target_spec)`; its parameter string follows.
const SPEC: usize = 40;
/// Room for the header, one target spec and its parameters, or a message.
const BUFFER: usize = 4096;

// the header's fields (byte offsets in struct dm_ioctl)
const VERSION: usize = 0;
const DATA_SIZE: usize = 12;
const DATA_START: usize = 16;
const TARGET_COUNT: usize = 20;
const FLAGS: usize = 28;
const DEV: usize = 40;
const NAME: usize = 48;
const NAME_LEN: usize = 128;

// command numbers (enum in dm-ioctl.h)
const DEV_CREATE: u64 = 3;
const DEV_REMOVE: u64 = 4;
const DEV_SUSPEND: u64 = 6;
const TABLE_LOAD: u64 = 9;
const TARGET_MSG: u64 = 14;

/// `_IOWR(0xfd, cmd, struct dm_ioctl)`.
const fn request(cmd: u64) -> u64 {
    (3 << 30) | ((HEADER as u64) << 16) | (0xfd << 8) | cmd
}

/// A device-mapper device this process created (removed by [`Device::remove`]).
pub struct Device {
    control: File,
    name: String,
    /// A block node for it (made here: the guest has no udev).
    pub node: PathBuf,
}

/// One ioctl buffer: the header, then the payload.
struct Buffer(Vec<u8>);

impl Buffer {
    fn new(name: &str) -> Result<Buffer, String> {
        if name.is_empty() || name.len() >= NAME_LEN {
            return Err(format!("device-mapper name {name:?}: 1 to 127 bytes"));
        }
        let mut b = Buffer(vec![0; BUFFER]);
        b.put_u32(VERSION, 4);
        b.put_u32(DATA_SIZE, BUFFER as u32);
        b.put_u32(DATA_START, HEADER as u32);
        b.bytes()[NAME..NAME + name.len()].copy_from_slice(name.as_bytes());
        Ok(b)
    }

    fn bytes(&mut self) -> &mut [u8] {
        &mut self.0
    }

    fn put_u32(&mut self, at: usize, v: u32) {
        self.bytes()[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put_u64(&mut self, at: usize, v: u64) {
        self.bytes()[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }

    fn get_u64(&mut self, at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.bytes()[at..at + 8]);
        u64::from_ne_bytes(v)
    }

    /// A NUL-terminated string at `at` of the payload area.
    fn put_str(&mut self, at: usize, s: &str) -> Result<(), String> {
        if s.contains('\0') || at + s.len() + 1 > BUFFER {
            return Err(format!("device-mapper parameter too long: {s:?}"));
        }
        self.bytes()[at..at + s.len()].copy_from_slice(s.as_bytes());
        self.bytes()[at + s.len()] = 0;
        Ok(())
    }

    fn call(&mut self, control: &File, cmd: u64, what: &str) -> Result<(), String> {
        // SAFETY: the buffer is BUFFER bytes, starting with a struct
        // dm_ioctl whose data_size says BUFFER: the kernel copies in and
        // out of it within those bytes only.
        let rc = unsafe {
            nix::libc::ioctl(
                control.as_raw_fd(),
                request(cmd) as _,
                self.0.as_mut_ptr().cast::<nix::libc::c_void>(),
            )
        };
        if rc < 0 {
            return Err(format!(
                "device-mapper {what}: {} (the kernel log says more)",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}

impl Device {
    /// Creates device `name` with one target `kind` over `sectors` 512-byte
    /// sectors with `params` (e.g. `log-writes` with "253:0 253:16") and
    /// makes it live.
    pub fn create(name: &str, kind: &str, sectors: u64, params: &str) -> Result<Device, String> {
        let control = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(CONTROL)
            .map_err(|e| format!("{CONTROL}: {e} (is dm_mod loaded?)"))?;
        let mut b = Buffer::new(name)?;
        b.call(&control, DEV_CREATE, &format!("create {name}"))?;
        // huge_encode_dev(): minor's low byte, major, minor's high bits
        let dev = b.get_u64(DEV);
        let major = (dev >> 8) & 0xfff;
        let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
        let node = PathBuf::from(format!("/run/dm-{name}"));
        let _ = std::fs::remove_file(&node);
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(major, minor),
        )
        .map_err(|e| format!("mknod {} ({major}:{minor}): {e}", node.display()))?;
        let device = Device {
            control,
            name: name.to_string(),
            node,
        };

        let mut b = Buffer::new(name)?;
        if kind.len() >= 16 {
            return Err(format!("target type {kind:?} too long"));
        }
        b.put_u32(TARGET_COUNT, 1);
        let spec = HEADER;
        b.put_u64(spec, 0); // sector_start
        b.put_u64(spec + 8, sectors); // length
        let next = (SPEC + params.len() + 1).next_multiple_of(8);
        b.put_u32(spec + 20, next as u32);
        b.put_str(spec + 24, kind)?;
        b.put_str(spec + SPEC, params)?;
        b.call(
            &device.control,
            TABLE_LOAD,
            &format!("load {name}: {kind} {params}"),
        )?;
        // DEV_SUSPEND without the suspend flag resumes: the loaded table goes live
        let mut b = Buffer::new(name)?;
        b.put_u32(FLAGS, 0);
        b.call(&device.control, DEV_SUSPEND, &format!("resume {name}"))?;
        Ok(device)
    }

    /// Sends a target message (`mark i12` to log-writes).
    pub fn message(&self, text: &str) -> Result<(), String> {
        let mut b = Buffer::new(&self.name)?;
        b.put_u64(HEADER, 0); // struct dm_target_msg: sector
        b.put_str(HEADER + 8, text)?;
        b.call(
            &self.control,
            TARGET_MSG,
            &format!("message {:?} to {}", text, self.name),
        )
    }

    /// Removes the device (for log-writes: its log is complete after this).
    pub fn remove(self) -> Result<(), String> {
        let mut b = Buffer::new(&self.name)?;
        b.call(&self.control, DEV_REMOVE, &format!("remove {}", self.name))?;
        let _ = std::fs::remove_file(&self.node);
        Ok(())
    }
}

/// `major:minor` of block device `name` (e.g. `vda`), from sysfs.
pub fn dev_numbers(name: &str) -> Result<String, String> {
    let p = format!("/sys/block/{name}/dev");
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{p}: {e}"))
}

/// Size of block device `name` in 512-byte sectors, from sysfs.
pub fn sectors(name: &str) -> Result<u64, String> {
    let p = format!("/sys/block/{name}/size");
    std::fs::read_to_string(&p)
        .map_err(|e| format!("{p}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{p}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_header() {
        // DM_DEV_CREATE and DM_TARGET_MSG as <linux/dm-ioctl.h> computes them
        assert_eq!(request(DEV_CREATE), 0xc138_fd03);
        assert_eq!(request(TARGET_MSG), 0xc138_fd0e);
    }
}
