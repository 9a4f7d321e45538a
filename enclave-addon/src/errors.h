// The typed errors every backend raises, and the one place where a backend's
// native status (a PKCS#11 CK_RV, a macOS OSStatus, a LocalAuthentication
// code) becomes one of them. Plain C++: no Node, no platform headers, so the
// mapping of every platform is compiled and unit-tested on every platform.
#ifndef CREDPORT_ERRORS_H_
#define CREDPORT_ERRORS_H_

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace credport {

// The `code` of the JavaScript Error. Keep in step with kErrorCodeNames in
// errors.cc and KeyBackendErrorCode in daemon/keys/errors.ts.
enum class ErrorCode {
  kKeyNotFound,
  kTokenNotPresent,
  kPinIncorrect,
  kPinLocked,
  kUserCancelled,
  kModuleLoadFailed,
  kUnsupportedCurve,
  kSessionInvalid,
  kKeyExists,
  kCertificateNotFound,
  kInvalidArgument,
  kBackendError,
  // A key that needs the user (user presence) asked where no prompt can be
  // shown: a LaunchDaemon, an ssh session, a locked screen.
  kInteractionNotAllowed,
};
// The last ErrorCode: keep it the last one listed above.
constexpr ErrorCode kLastErrorCode = ErrorCode::kInteractionNotAllowed;

const char* ErrorCodeName(ErrorCode code);

class KeyError : public std::runtime_error {
 public:
  KeyError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  const std::optional<unsigned long>& ckr() const { return ckr_; }
  const std::optional<int32_t>& os_status() const { return os_status_; }
  KeyError& WithCkr(unsigned long rv) {
    ckr_ = rv;
    return *this;
  }
  KeyError& WithOsStatus(int32_t status) {
    os_status_ = status;
    return *this;
  }

 private:
  ErrorCode code_;
  std::optional<unsigned long> ckr_;
  std::optional<int32_t> os_status_;
};

// Where a PKCS#11 call failed. A token that vanishes before a session exists
// is TOKEN_NOT_PRESENT; once a session is open, the same return value means
// the session is gone and must be re-opened (SESSION_INVALID).
enum class CkrStage { kModule, kSession };

// The specification's name for a return value ("CKR_PIN_INCORRECT"), or a hex
// string for values this addon does not know.
std::string CkrName(unsigned long rv);

// `operation` names the call for the message ("C_Login", "signing").
KeyError Pkcs11Error(const std::string& operation, unsigned long rv, CkrStage stage);

// Security.framework status codes (and errors in NSOSStatusErrorDomain).
KeyError OsStatusError(const std::string& operation, int32_t status, const std::string& detail);

// Errors in the com.apple.LocalAuthentication domain (Touch ID, password).
KeyError LocalAuthError(const std::string& operation, long code, const std::string& detail);

// Errors in the CryptoTokenKit domain (TKErrorDomain), which is what the
// Secure Enclave's token reports through SecKey calls.
KeyError CryptoTokenKitError(const std::string& operation, long code, const std::string& detail);

// Overwrites memory that held a secret in a way the optimiser keeps.
void SecureZero(void* data, size_t size);

}  // namespace credport

#endif  // CREDPORT_ERRORS_H_
