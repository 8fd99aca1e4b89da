#!/bin/bash
# Boot Debian's cloud kernel under qemu (TCG) with the base initramfs plus
# TEST_BINARY as /test, run it with ARGS, stream the console to stdout and to a
# log file, and exit 0 only if the guest printed "QK-RESULT: PASS".
#
# Usage: run.sh TEST_BINARY [ARGS...]
# Env:   VM_TIMEOUT=300   seconds for the whole VM run (boot + test + poweroff)
#        VM_LOG=FILE      console log (default $IPVLAN_RS_CACHE/vm/logs/<test>-<time>-<pid>.log)
#        VM_APPEND=...    extra kernel command line (NAME=value words become /test's env)
#        VM_MEM=512 VM_SMP=1 VM_CPU=max   guest memory (MiB), vCPUs, qemu -cpu model
#                         (ARCH=arm64: VM_CPU=cortex-a57 by default)
#        ARCH=amd64|arm64   the guest's architecture: the cache, qemu and kernel it uses
#                         (common.sh); TEST_BINARY must be of that architecture
#        VM_ALLOW_DYNAMIC=1  accept a dynamically linked TEST_BINARY (normally refused)
#        VM_FILES="host:guest ..."  more files for this run only (beside /test)
#        VM_DISKS="file ..."  raw images as virtio disks /dev/vda, /dev/vdb, ... (cache=none)
#        VM_DISK_OPTS=...   more -drive options for each of them (e.g. throttling.iops-total=200)
#        VM_SERIAL2=PATH    the guest's /dev/ttyS1 written to PATH (a file or a FIFO)
#        VM_PIDFILE=PATH    qemu writes its PID there (to cut the power: kill -KILL)
#        IPVLAN_RS_CACHE  cache root (see setup.sh); build-initramfs.sh's env applies too
# Exit:  0 PASS | 1 test failed | 2 timeout | 3 initramfs unpacking failed |
#        4 kernel panic | 5 /test missing in the guest | 6 no result / qemu error |
#        7 qemu killed by SIGKILL from outside (a power cut) |
#        8 the guest reset itself after announcing it (QK-RESET) |
#        64 usage error | 69 setup not done (run setup.sh)
set -uo pipefail
PROG=run.sh
# shellcheck source=common.sh
. "$(dirname "$(readlink -f "$0")")/common.sh"
T0=$EPOCHREALTIME
VM_TIMEOUT=${VM_TIMEOUT:-300}
[[ $VM_TIMEOUT =~ ^[0-9]+$ && $VM_TIMEOUT -gt 0 ]] || die "VM_TIMEOUT must be a positive number of seconds" 64

[[ $# -ge 1 ]] || die "usage: run.sh TEST_BINARY [ARGS...]" 64
TEST=$1; shift
[[ -f $TEST ]] || die "test binary '$TEST' does not exist" 64
[[ $(head -c 4 "$TEST" | od -An -c | tr -d ' ') == '177ELF' ]] || die "'$TEST' is not an ELF binary" 64
case $ARCH:$(readelf -h "$TEST" 2>/dev/null | sed -n 's/^ *Machine: *//p') in
  amd64:*X86-64*|arm64:AArch64) ;;
  *) die "'$TEST' is not an $ARCH binary (ARCH=$ARCH; readelf: $(readelf -h "$TEST" 2>&1 | sed -n 's/^ *Machine: *//p'))" 64 ;;
esac
if command -v readelf >/dev/null && readelf -lW "$TEST" 2>/dev/null | grep -q 'INTERP'; then
  [[ ${VM_ALLOW_DYNAMIC:-0} == 1 ]] ||
    die "'$TEST' is dynamically linked; the guest has no Rust runtime libraries. Build it static:
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target $RUST_TARGET
(or set VM_ALLOW_DYNAMIC=1)" 64
fi

# --- setup must have been done: never fall back to anything, never pass silently
[[ -f $VM_CACHE/setup.stamp ]] || die "the VM cache $VM_CACHE is not set up: run $VM_RIG_DIR/setup.sh first" 69
[[ -x $QEMU_BIN ]] || die "qemu is missing ($QEMU_BIN): run $VM_RIG_DIR/setup.sh" 69
qemu --version >/dev/null 2>&1 || { qemu --version >&2; die "qemu does not run ($QEMU_BIN): run REFRESH=1 $VM_RIG_DIR/setup.sh" 69; }
VMLINUZ=$(kernel_image) || die "no kernel in $KERNEL_ROOT: run $VM_RIG_DIR/setup.sh" 69
BASE=$("$VM_RIG_DIR/build-initramfs.sh") || die "building the base initramfs failed" 69
VM_FILES=${VM_FILES:-}
for f in $VM_FILES; do
  [[ $f == *:/* && -f ${f%%:*} ]] || die "VM_FILES entry '$f' is not host:/guest/path with an existing host file" 64
done
DRIVES=()
for d in ${VM_DISKS:-}; do
  [[ -f $d && -w $d ]] || die "VM_DISKS: '$d' is not a writable file" 64
  DRIVES+=(-drive "file=$d,if=virtio,format=raw,cache=none${VM_DISK_OPTS:+,$VM_DISK_OPTS}")
done
SERIAL2=()
[[ -n ${VM_SERIAL2:-} ]] && SERIAL2=(-serial "file:$VM_SERIAL2")
PIDFILE=()
[[ -n ${VM_PIDFILE:-} ]] && PIDFILE=(-pidfile "$VM_PIDFILE")
[[ -s $BASE ]] || die "base initramfs $BASE missing" 69

# --- kernel command line: percent-encode each argument for guest-init
enc() {
  local LC_ALL=C
  local s=$1 out= c h i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._/=:,+@-]) out+=$c ;;
      *) printf -v h '%%%02X' "'$c"; out+=$h ;;
    esac
  done
  printf '%s' "$out"
}
QARGS=
for a in "$@"; do
  [[ -n $a ]] || die "empty arguments cannot be passed to the guest" 64
  QARGS+="${QARGS:+ }$(enc "$a")"
done
# no_timer_check: on a loaded host the emulated CPU is so slow that the
# kernel's check of the timer interrupt fails and it panics at boot ("IO-APIC
# + timer doesn't work"; seen with a load of 16 on 2 CPUs)
CMDLINE="console=$GUEST_CONSOLE quiet panic=-1 mitigations=off cryptomgr.notests no_timer_check RUST_BACKTRACE=1${VM_APPEND:+ $VM_APPEND}"
[[ -n $QARGS ]] && CMDLINE+=" qk.args=\"$QARGS\""
[[ ${#CMDLINE} -lt 2048 ]] || die "kernel command line too long (${#CMDLINE} bytes, limit 2047): fewer/shorter arguments" 64

# --- per-run initramfs: base + padding to 4 bytes + uncompressed cpio with /test
# and VM_FILES
W=$(mktemp -d "${TMPDIR:-/tmp}/qk-run.XXXXXX") || die "mktemp failed"
QPID=
cleanup() {
  [[ -n $QPID ]] && kill "$QPID" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM HUP
mkdir "$W/root"
cp -L "$TEST" "$W/root/test" && chmod 755 "$W/root/test" || die "cannot copy $TEST"
for f in $VM_FILES; do
  mkdir -p "$W/root$(dirname "${f#*:}")" && cp -L "${f%%:*}" "$W/root${f#*:}" ||
    die "cannot copy ${f%%:*} to ${f#*:}"
done
size=$(stat -c %s "$BASE")
# PITFALL: the kernel only finds a cpio member (or a compressed archive) at a
# 4-byte aligned offset; the gzip'ed base has an arbitrary length. Unpadded:
# "Initramfs unpacking failed: invalid magic at start of compressed archive".
{ cat "$BASE"; head -c $(( (4 - size % 4) % 4 )) /dev/zero
  ( cd "$W/root" && find . -mindepth 1 | LC_ALL=C sort | "$HOST_BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null )
} > "$W/initrd" || die "cannot build the per-run initramfs"

# --- log
if [[ -z ${VM_LOG:-} ]]; then
  mkdir -p "$VM_CACHE/logs"
  VM_LOG=$VM_CACHE/logs/$(basename "$TEST")-$(date +%Y%m%d-%H%M%S)-$$.log
  # keep the newest 200 logs
  ls -1t "$VM_CACHE/logs"/*.log 2>/dev/null | tail -n +200 | xargs -r rm -f
fi
exec 3>"$VM_LOG" || die "cannot write the log $VM_LOG"
{ echo "# run.sh $TEST $*"; echo "# kernel $VMLINUZ"; echo "# cmdline $CMDLINE"
  [[ -n $VM_FILES ]] && echo "# files $VM_FILES"
  [[ -n ${VM_DISKS:-} ]] && echo "# disks $VM_DISKS"; } >&3

# --- boot
mkfifo "$W/console"
# shellcheck disable=SC2046
timeout -k 5 "$VM_TIMEOUT" env \
  LD_LIBRARY_PATH="$QEMU_ROOT/usr/lib/x86_64-linux-gnu:$QEMU_ROOT/lib/x86_64-linux-gnu" \
  QEMU_MODULE_DIR="$QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu" \
  "$QEMU_BIN" $(qemu_fw_args) \
  $(qemu_machine_args) -smp "${VM_SMP:-1}" -m "${VM_MEM:-512}" \
  -nodefaults -no-user-config -display none -serial stdio "${SERIAL2[@]}" -no-reboot \
  "${DRIVES[@]}" "${PIDFILE[@]}" \
  -kernel "$VMLINUZ" -initrd "$W/initrd" -append "$CMDLINE" \
  </dev/null >"$W/console" 2>&1 &
QPID=$!
T_QEMU=$EPOCHREALTIME

RESULT= TEST_EXIT= PANIC= UNPACK= NOTEST= T_RESULT= T_BOOTED= STARTED= RESET=
while IFS= read -r line || [[ -n $line ]]; do
  line=${line%$'\r'}
  printf '%s\n' "$line"
  printf '%s\n' "$line" >&3
  case $line in
    *'QK-RESULT: PASS'*) RESULT=PASS; T_RESULT=$EPOCHREALTIME ;;
    *'QK-RESULT: FAIL'*) RESULT=FAIL; T_RESULT=$EPOCHREALTIME ;;
    *'QK-TEST-EXIT: '*) TEST_EXIT=${line##*QK-TEST-EXIT: } ;;
    *'QK-TEST-START:'*) STARTED=1 ;;
    *'QK-BOOTED:'*) T_BOOTED=$EPOCHREALTIME ;;
    *'QK-RESET:'*) RESET=1 ;;
    *'QK-ERROR: /test missing'*) NOTEST=1 ;;
    *'Kernel panic - not syncing'*) PANIC=$line ;;
    *'Initramfs unpacking failed'*) UNPACK=$line ;;
  esac
done <"$W/console"
wait "$QPID"; QRC=$?
QPID=
T_END=$EPOCHREALTIME

secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }
since() { if [[ -n $2 ]]; then echo "$(secs "$1" "$2")s"; else echo n/a; fi; }
TIMES="boot-to-result $(since "$T_QEMU" "$T_RESULT") (qemu start->QK-RESULT; ->QK-BOOTED $(since "$T_QEMU" "$T_BOOTED")), run.sh total $(secs "$T0" "$T_END")s"
finish() { # rc message
  local rc=$1; shift
  { echo "run.sh: $*"; echo "run.sh: $TIMES; log: $VM_LOG"; } | tee -a /dev/fd/3 >&2
  exit "$rc"
}
# timeout(1) exits 137 when qemu died of SIGKILL: its own -k kill comes
# 5 s after the deadline, so a SIGKILL before the deadline came from outside
if [[ $QRC == 137 ]] && awk -v a="$T_QEMU" -v b="$T_END" -v t="$VM_TIMEOUT" 'BEGIN{exit !(b-a < t)}'; then
  finish 7 "CUT: qemu was killed with SIGKILL from outside (a power cut)"
fi
if [[ $QRC == 124 || $QRC == 137 ]]; then
  finish 2 "FAIL: TIMEOUT after ${VM_TIMEOUT}s ($([[ -n $STARTED ]] && echo "/test was running" || echo "/test never started")); qemu killed"
fi
[[ -n $UNPACK ]] && finish 3 "FAIL: initramfs unpacking failed in the guest: ${UNPACK#*] }"
[[ -n $NOTEST ]] && finish 5 "FAIL: /test is missing in the guest (initramfs append broken?)"
[[ -n $PANIC ]] && finish 4 "FAIL: kernel panic: ${PANIC#*] }"
[[ $QRC == 0 ]] || finish 6 "FAIL: qemu exited with status $QRC (see the output above)"
[[ -n $RESET && -z $RESULT ]] && finish 8 "CUT: the guest reset itself as it announced (QK-RESET)"
if [[ $RESULT == PASS && $TEST_EXIT == 0 ]]; then
  finish 0 "PASS"
elif [[ $RESULT == FAIL ]]; then
  finish 1 "FAIL: the test failed (QK-TEST-EXIT: ${TEST_EXIT:-none})"
fi
finish 6 "FAIL: the guest ended without a QK-RESULT line"
