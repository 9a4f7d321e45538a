// The Secure Enclave key store on platforms that have none: it reports itself
// unavailable, and every call fails with that reason.
#include "key_store.h"

namespace credport {

namespace {

const char kReason[] =
    "the Secure Enclave backend exists only on macOS; use the pkcs11 backend (YubiKey, TPM, HSM) or the file "
    "backend here";

[[noreturn]] void Unavailable() { throw KeyError(ErrorCode::kBackendError, kReason); }

}  // namespace

bool SecureEnclaveAvailable(std::string* reason) {
  *reason = kReason;
  return false;
}

bool SecureEnclaveProbe(std::string* reason) {
  *reason = kReason;
  return false;
}

std::shared_ptr<SecureEnclaveKey> SecureEnclaveCreate(bool) { Unavailable(); }
std::shared_ptr<SecureEnclaveKey> SecureEnclaveOpen(const std::vector<uint8_t>&, const std::vector<uint8_t>&, bool) {
  Unavailable();
}

}  // namespace credport
