#include "peer_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace credport {
namespace peer {

namespace {

[[noreturn]] void Invalid(const std::string& message) { throw PeerLookupError("EINVAL", message); }

bool IsZero(const uint8_t* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

// ::ffff:a.b.c.d
bool IsV4Mapped(const uint8_t* a) {
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kPrefix, sizeof(kPrefix)) == 0;
}

void ParseAddress(int af, const std::string& text, const char* name, uint8_t* out) {
  if (inet_pton(af, text.c_str(), out) != 1) {
    Invalid(std::string(name) + " is not an " + (af == AF_INET ? "IPv4" : "IPv6") + " address");
  }
}

void Unmap(RawEndpoint* e) {
  uint8_t v4[4];
  std::memcpy(v4, e->addr + 12, 4);
  std::memset(e->addr, 0, sizeof(e->addr));
  std::memcpy(e->addr, v4, 4);
}

}  // namespace

size_t AddressSize(int af) { return af == AF_INET ? 4 : 16; }

RawQuery Parse(const PeerQuery& query) {
  RawQuery q;
  if (query.family == 4) {
    q.af = AF_INET;
  } else if (query.family == 6) {
    q.af = AF_INET6;
  } else {
    Invalid("family must be 4 or 6");
  }
  ParseAddress(q.af, query.local.address, "localAddress", q.local.addr);
  ParseAddress(q.af, query.remote.address, "remoteAddress", q.remote.addr);
  q.local.port = query.local.port;
  q.remote.port = query.remote.port;
  if (q.local.port == 0) Invalid("localPort must be 1 to 65535");

  const bool remote_wildcard = IsZero(q.remote.addr, AddressSize(q.af));
  if (q.af == AF_INET6) {
    const bool local_mapped = IsV4Mapped(q.local.addr);
    const bool remote_mapped = IsV4Mapped(q.remote.addr);
    // A dual-stack socket talking IPv4 reports both ends as ::ffff:a.b.c.d;
    // the kernels keep such connections with the IPv4 ones.
    if (local_mapped && (remote_mapped || (remote_wildcard && q.remote.port == 0))) {
      q.af = AF_INET;
      Unmap(&q.local);
      if (remote_mapped) Unmap(&q.remote);
    } else if (local_mapped != remote_mapped && !remote_wildcard) {
      Invalid("localAddress and remoteAddress must both be IPv4-mapped or neither");
    }
  }
  const bool wildcard = IsZero(q.remote.addr, AddressSize(q.af));
  if (q.remote.port == 0) {
    if (!wildcard) Invalid("remotePort 0 is only for a LISTEN lookup, with remoteAddress 0.0.0.0 or ::");
    q.listen = true;
  }
  return q;
}

std::string ErrnoCode(int err) {
  switch (err) {
    case EPROTONOSUPPORT:
    case EAFNOSUPPORT:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
#if ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
#endif
      return "ENOTSUP";
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EINVAL: return "EINVAL";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EMSGSIZE: return "EMSGSIZE";
    case EINTR: return "EINTR";
    case EBADF: return "EBADF";
    case EPROTO: return "EPROTO";
    default: return "EIO";
  }
}

void ThrowErrno(int err, const std::string& what) {
  // std::system_category() instead of strerror(): safe on any thread.
  throw PeerLookupError(ErrnoCode(err), what + ": " + std::system_category().message(err));
}

}  // namespace peer
}  // namespace credport
