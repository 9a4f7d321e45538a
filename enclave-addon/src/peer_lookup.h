// Peer identity: who owns the TCP socket at the other end of a loopback
// connection, found by its 4-tuple. One implementation per platform
// (peer_linux.cc: netlink sock_diag; peer_darwin.cc: libproc;
// peer_unsupported.cc: ENOTSUP), chosen in binding.gyp. Plain C++: no Node
// types, so binding.cc is the only file that talks to JavaScript.
#ifndef CREDPORT_PEER_LOOKUP_H_
#define CREDPORT_PEER_LOOKUP_H_

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace credport {

// One end of a TCP connection as the caller names it: the address as text
// (what Node's socket.remoteAddress/localAddress report) and a host-order port.
struct PeerEndpoint {
  std::string address;
  uint16_t port = 0;
};

// The socket whose LOCAL end is `local` and whose REMOTE end is `remote`.
// A remote of port 0 on the wildcard address ("0.0.0.0" or "::") asks for the
// socket LISTENING on `local` instead.
struct PeerQuery {
  int family = 4;  // 4 or 6, as the caller's socket reports it
  PeerEndpoint local;
  PeerEndpoint remote;
};

// Linux's TCP state numbers (include/net/tcp_states.h). They are the
// interface on every platform: macOS maps its own numbering onto them.
enum TcpState : int {
  kTcpEstablished = 1,
  kTcpSynSent = 2,
  kTcpSynRecv = 3,
  kTcpFinWait1 = 4,
  kTcpFinWait2 = 5,
  kTcpTimeWait = 6,
  kTcpClose = 7,
  kTcpCloseWait = 8,
  kTcpLastAck = 9,
  kTcpListen = 10,
  kTcpClosing = 11,
};

struct SocketOwnerInfo {
  uint32_t uid = 0;
  // The socket's inode (Linux); 0 where the platform has none (macOS) and for
  // a socket no process holds any more (TIME_WAIT: its uid is 0 too, which
  // does NOT mean root).
  uint64_t inode = 0;
  int state = 0;
  std::optional<int32_t> pid;  // where the lookup finds it for free (macOS)
};

// A lookup that could not be answered. `code` is an errno name ("ENOTSUP",
// "EINVAL", "ETIMEDOUT", ...), which becomes the JavaScript Error's `code`.
class PeerLookupError : public std::runtime_error {
 public:
  PeerLookupError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// nullopt when no such socket exists. Throws PeerLookupError. Synchronous and
// bounded in time (each platform file says how).
std::optional<SocketOwnerInfo> FindSocketOwner(const PeerQuery& query);

}  // namespace credport

#endif  // CREDPORT_PEER_LOOKUP_H_
