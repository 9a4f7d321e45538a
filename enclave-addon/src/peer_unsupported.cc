// The peer lookup where the addon has none (Windows, the BSDs): the caller
// falls back to what the platform offers in TypeScript, or refuses.
#include "peer_lookup.h"

namespace credport {

std::optional<SocketOwnerInfo> FindSocketOwner(const PeerQuery&) {
  throw PeerLookupError("ENOTSUP", "the native peer lookup exists only on Linux and macOS");
}

}  // namespace credport
