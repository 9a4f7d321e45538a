// The peer lookup on macOS, from libproc: every process's file descriptors
// (proc_listpids, proc_pidinfo PROC_PIDLISTFDS), each socket's TCP endpoints
// (proc_pidfdinfo PROC_PIDFDSOCKETINFO), and the uid of the process holding
// the match (proc_pidinfo PROC_PIDTBSDINFO, pbi_uid). macOS has no socket
// inode, so `inode` is 0, and the pid comes for free.
//
// Built and reviewed, and compiled here with -fsyntax-only against stub
// headers (test/peer-native-syntax.test.ts), but never run: no Mac here.
//
// Limits worth knowing:
// - An unprivileged caller sees only its own user's processes' descriptors
//   (PROC_PIDLISTFDS needs the same uid or root). A peer of another user is
//   then not found, and the caller refuses it: the lookup fails closed.
// - A scan, not a lookup: bounded by kMaxPids processes, kMaxFds descriptors
//   per process and kBudget of wall time (ETIMEDOUT past it).
// - A descriptor shared by two processes (inherited across fork) matches in
//   whichever the scan meets first.
#include <libproc.h>
#include <netinet/in.h>
#include <sys/proc_info.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "peer_address.h"
#include "peer_lookup.h"

namespace credport {

namespace {

constexpr int kMaxPids = 16384;
constexpr int kMaxFds = 16384;
constexpr auto kBudget = std::chrono::milliseconds(250);

using Clock = std::chrono::steady_clock;

// Darwin's TSI_S_* numbering onto the Linux numbers of the interface.
int LinuxState(int darwin_state) {
  switch (darwin_state) {
    case TSI_S_ESTABLISHED: return kTcpEstablished;
    case TSI_S_SYN_SENT: return kTcpSynSent;
    case TSI_S_SYN_RECEIVED: return kTcpSynRecv;
    case TSI_S_FIN_WAIT_1: return kTcpFinWait1;
    case TSI_S_FIN_WAIT_2: return kTcpFinWait2;
    case TSI_S_TIME_WAIT: return kTcpTimeWait;
    case TSI_S_CLOSED: return kTcpClose;
    case TSI_S__CLOSE_WAIT: return kTcpCloseWait;
    case TSI_S_LAST_ACK: return kTcpLastAck;
    case TSI_S_LISTEN: return kTcpListen;
    case TSI_S_CLOSING: return kTcpClosing;
    default: return 0;
  }
}

bool IsZero(const uint8_t* bytes, size_t n) {
  return std::all_of(bytes, bytes + n, [](uint8_t b) { return b == 0; });
}

// `address` is insi_laddr or insi_faddr; an IPv4 address sits in the last
// four bytes (in4in6_addr), also for an IPv6 socket talking IPv4.
bool SameAddress(const uint8_t* address_bytes, int af, const uint8_t* want) {
  if (af == AF_INET) return std::memcmp(address_bytes + 12, want, 4) == 0;
  return std::memcmp(address_bytes, want, 16) == 0;
}

bool Matches(const tcp_sockinfo& tcp, const peer::RawQuery& q) {
  const in_sockinfo& in = tcp.tcpsi_ini;
  if (q.af == AF_INET && !(in.insi_vflag & INI_IPV4)) return false;
  if (q.af == AF_INET6 && !(in.insi_vflag & INI_IPV6)) return false;
  // insi_lport and insi_fport hold the port in network byte order.
  if (ntohs(static_cast<uint16_t>(in.insi_lport)) != q.local.port) return false;
  const auto* laddr = reinterpret_cast<const uint8_t*>(&in.insi_laddr);
  const auto* faddr = reinterpret_cast<const uint8_t*>(&in.insi_faddr);
  if (q.listen) {
    if (tcp.tcpsi_state != TSI_S_LISTEN) return false;
    // A listener bound to the wildcard address owns the port on every address.
    return SameAddress(laddr, q.af, q.local.addr) || IsZero(laddr, 16);
  }
  if (tcp.tcpsi_state == TSI_S_LISTEN) return false;
  return ntohs(static_cast<uint16_t>(in.insi_fport)) == q.remote.port && SameAddress(laddr, q.af, q.local.addr) &&
         SameAddress(faddr, q.af, q.remote.addr);
}

std::vector<pid_t> AllPids() {
  const int bytes = proc_listpids(PROC_ALL_PIDS, 0, nullptr, 0);
  if (bytes <= 0) peer::ThrowErrno(errno, "proc_listpids");
  // Room for processes started since the size was asked.
  const int count = std::min(kMaxPids, bytes / static_cast<int>(sizeof(pid_t)) + 64);
  std::vector<pid_t> pids(static_cast<size_t>(count));
  const int got = proc_listpids(PROC_ALL_PIDS, 0, pids.data(), count * static_cast<int>(sizeof(pid_t)));
  if (got <= 0) peer::ThrowErrno(errno, "proc_listpids");
  pids.resize(static_cast<size_t>(got) / sizeof(pid_t));
  return pids;
}

// The socket descriptors of `pid`; empty when it has gone or is not ours to see.
std::vector<int32_t> SocketFds(pid_t pid, std::vector<proc_fdinfo>* scratch) {
  std::vector<int32_t> fds;
  const int bytes = proc_pidinfo(pid, PROC_PIDLISTFDS, 0, nullptr, 0);
  if (bytes <= 0) return fds;
  constexpr int kEntry = static_cast<int>(PROC_PIDLISTFD_SIZE);
  const int count = std::min(kMaxFds, bytes / kEntry + 16);
  scratch->resize(static_cast<size_t>(count));
  const int got = proc_pidinfo(pid, PROC_PIDLISTFDS, 0, scratch->data(), count * kEntry);
  if (got <= 0) return fds;
  const size_t n = static_cast<size_t>(got / kEntry);
  for (size_t i = 0; i < n; ++i) {
    if ((*scratch)[i].proc_fdtype == PROX_FDTYPE_SOCKET) fds.push_back((*scratch)[i].proc_fd);
  }
  return fds;
}

std::optional<uint32_t> ProcessUid(pid_t pid) {
  proc_bsdinfo info{};
  constexpr int kSize = static_cast<int>(PROC_PIDTBSDINFO_SIZE);
  if (proc_pidinfo(pid, PROC_PIDTBSDINFO, 0, &info, kSize) != kSize) {
    return std::nullopt;
  }
  return info.pbi_uid;
}

}  // namespace

std::optional<SocketOwnerInfo> FindSocketOwner(const PeerQuery& query) {
  const peer::RawQuery q = peer::Parse(query);
  const Clock::time_point deadline = Clock::now() + kBudget;
  std::vector<proc_fdinfo> scratch;
  for (const pid_t pid : AllPids()) {
    if (pid <= 0) continue;
    if (Clock::now() > deadline) {
      throw PeerLookupError("ETIMEDOUT", "the libproc socket scan took longer than its time budget");
    }
    for (const int32_t fd : SocketFds(pid, &scratch)) {
      socket_fdinfo si{};
      constexpr int kSize = static_cast<int>(PROC_PIDFDSOCKETINFO_SIZE);
      if (proc_pidfdinfo(pid, fd, PROC_PIDFDSOCKETINFO, &si, kSize) != kSize) {
        continue;  // closed meanwhile
      }
      if (si.psi.soi_kind != SOCKINFO_TCP || !Matches(si.psi.soi_proto.pri_tcp, q)) continue;
      const std::optional<uint32_t> uid = ProcessUid(pid);
      if (!uid) continue;  // exited meanwhile
      SocketOwnerInfo owner;
      owner.uid = *uid;
      owner.inode = 0;
      owner.state = LinuxState(si.psi.soi_proto.pri_tcp.tcpsi_state);
      owner.pid = pid;
      return owner;
    }
  }
  return std::nullopt;
}

}  // namespace credport
