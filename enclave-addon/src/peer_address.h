// The POSIX half of the peer lookup shared by Linux and macOS: the text
// addresses of a PeerQuery parsed into bytes (IPv4-mapped IPv6 addresses
// turned into IPv4, since that is how the kernels file those connections),
// and errno values turned into PeerLookupError codes.
#ifndef CREDPORT_PEER_ADDRESS_H_
#define CREDPORT_PEER_ADDRESS_H_

#include <cstdint>
#include <string>

#include "peer_lookup.h"

namespace credport {
namespace peer {

struct RawEndpoint {
  uint8_t addr[16] = {};  // network order; IPv4 uses the first 4 bytes
  uint16_t port = 0;      // host order
};

struct RawQuery {
  int af = 0;  // AF_INET or AF_INET6
  RawEndpoint local;
  RawEndpoint remote;
  bool listen = false;  // remote is the wildcard address with port 0
};

// Throws PeerLookupError("EINVAL") for an address that is not of the family,
// a local port 0, a remote port 0 on a non-wildcard address, or a mapped
// address paired with a plain IPv6 one.
RawQuery Parse(const PeerQuery& query);

size_t AddressSize(int af);

// "EINVAL", "ETIMEDOUT", ...; unavailable-protocol errors become "ENOTSUP".
std::string ErrnoCode(int err);
[[noreturn]] void ThrowErrno(int err, const std::string& what);

}  // namespace peer
}  // namespace credport

#endif  // CREDPORT_PEER_ADDRESS_H_
