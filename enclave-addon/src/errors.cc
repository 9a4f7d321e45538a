#include "errors.h"

#include <cstdio>

#include "pkcs11_abi.h"

namespace credport {

namespace {

const char* const kErrorCodeNames[] = {
    "KEY_NOT_FOUND",
    "TOKEN_NOT_PRESENT",
    "PIN_INCORRECT",
    "PIN_LOCKED",
    "USER_CANCELLED",
    "MODULE_LOAD_FAILED",
    "UNSUPPORTED_CURVE",
    "SESSION_INVALID",
    "KEY_EXISTS",
    "CERTIFICATE_NOT_FOUND",
    "INVALID_ARGUMENT",
    "BACKEND_ERROR",
    "INTERACTION_NOT_ALLOWED",
};
static_assert(sizeof(kErrorCodeNames) / sizeof(kErrorCodeNames[0]) == static_cast<size_t>(kLastErrorCode) + 1,
              "one name per ErrorCode");

struct CkrEntry {
  unsigned long rv;
  const char* name;
};

// Names for the return values a caller is likely to see in a message.
const CkrEntry kCkrNames[] = {
    {p11::CKR_OK, "CKR_OK"},
    {p11::CKR_CANCEL, "CKR_CANCEL"},
    {p11::CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {p11::CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {p11::CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {p11::CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {p11::CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {p11::CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS"},
    {p11::CKR_CANT_LOCK, "CKR_CANT_LOCK"},
    {p11::CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {p11::CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {p11::CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {p11::CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {p11::CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {p11::CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {p11::CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
    {p11::CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"},
    {p11::CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
    {p11::CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {p11::CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {p11::CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {p11::CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {p11::CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {p11::CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {p11::CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {p11::CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {p11::CKR_PIN_INVALID, "CKR_PIN_INVALID"},
    {p11::CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
    {p11::CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
    {p11::CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {p11::CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
    {p11::CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
    {p11::CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {p11::CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
    {p11::CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {p11::CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {p11::CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {p11::CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
    {p11::CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
    {p11::CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {p11::CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {p11::CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {p11::CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
    {p11::CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"},
    {p11::CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"},
    {p11::CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {p11::CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {p11::CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
};

// OSStatus values from <Security/SecBase.h>, repeated as numbers so this file
// needs no Apple header.
constexpr int32_t kErrSecUnimplemented = -4;
constexpr int32_t kErrSecParam = -50;
constexpr int32_t kErrSecUserCanceled = -128;
constexpr int32_t kErrSecNotAvailable = -25291;
constexpr int32_t kErrSecAuthFailed = -25293;
constexpr int32_t kErrSecDuplicateItem = -25299;
constexpr int32_t kErrSecItemNotFound = -25300;
constexpr int32_t kErrSecInteractionNotAllowed = -25308;
constexpr int32_t kErrSecMissingEntitlement = -34018;

// LAError codes from <LocalAuthentication/LAError.h>.
constexpr long kLaAuthenticationFailed = -1;
constexpr long kLaUserCancel = -2;
constexpr long kLaUserFallback = -3;
constexpr long kLaSystemCancel = -4;
constexpr long kLaPasscodeNotSet = -5;
constexpr long kLaBiometryLockout = -8;
constexpr long kLaAppCancel = -9;
constexpr long kLaNotInteractive = -1004;

// TKErrorCode (CryptoTokenKit/TKError.h).
constexpr long kTkCorruptedData = -3;
constexpr long kTkCanceledByUser = -4;
constexpr long kTkAuthenticationFailed = -5;
constexpr long kTkObjectNotFound = -6;
constexpr long kTkTokenNotFound = -7;
constexpr long kTkBadParameter = -8;
constexpr long kTkAuthenticationNeeded = -9;

std::string WithDetail(const std::string& message, const std::string& detail) {
  return detail.empty() ? message : message + " (" + detail + ")";
}

}  // namespace

const char* ErrorCodeName(ErrorCode code) { return kErrorCodeNames[static_cast<size_t>(code)]; }

std::string CkrName(unsigned long rv) {
  for (const auto& e : kCkrNames) {
    if (e.rv == rv) return e.name;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "CKR 0x%08lX", rv);
  return buf;
}

KeyError Pkcs11Error(const std::string& operation, unsigned long rv, CkrStage stage) {
  const std::string what = operation + " failed: " + CkrName(rv);
  ErrorCode code = ErrorCode::kBackendError;
  std::string hint;
  switch (rv) {
    case p11::CKR_PIN_INCORRECT:
    case p11::CKR_PIN_INVALID:
    case p11::CKR_PIN_LEN_RANGE:
      code = ErrorCode::kPinIncorrect;
      hint = "the token refused the PIN";
      break;
    case p11::CKR_PIN_LOCKED:
      code = ErrorCode::kPinLocked;
      hint = "the user PIN is locked; unblock it with the token's SO PIN or PUK";
      break;
    case p11::CKR_PIN_EXPIRED:
      code = ErrorCode::kPinLocked;
      hint = "the user PIN has expired; set a new one with the token's tools";
      break;
    case p11::CKR_USER_PIN_NOT_INITIALIZED:
      code = ErrorCode::kPinLocked;
      hint = "the token has no user PIN yet; initialise it with the token's tools";
      break;
    case p11::CKR_SESSION_HANDLE_INVALID:
    case p11::CKR_SESSION_CLOSED:
    case p11::CKR_USER_NOT_LOGGED_IN:
    case p11::CKR_DEVICE_REMOVED:
      code = ErrorCode::kSessionInvalid;
      hint = "the session is gone (token removed or reset); it must be re-opened";
      break;
    case p11::CKR_TOKEN_NOT_PRESENT:
      code = stage == CkrStage::kSession ? ErrorCode::kSessionInvalid : ErrorCode::kTokenNotPresent;
      hint = "the token is not present";
      break;
    case p11::CKR_CRYPTOKI_NOT_INITIALIZED:
      // Someone else in the process finalised the module: recoverable by
      // initialising it again and re-opening.
      code = stage == CkrStage::kSession ? ErrorCode::kSessionInvalid : ErrorCode::kBackendError;
      hint = "the module was finalised by another user of it in this process; it is initialised again on re-open";
      break;
    case p11::CKR_TOKEN_NOT_RECOGNIZED:
    case p11::CKR_SLOT_ID_INVALID:
      code = ErrorCode::kTokenNotPresent;
      hint = "no usable token in that slot";
      break;
    case p11::CKR_CANCEL:
    case p11::CKR_FUNCTION_CANCELED:
      code = ErrorCode::kUserCancelled;
      hint = "cancelled on the token or its PIN pad";
      break;
    case p11::CKR_CURVE_NOT_SUPPORTED:
    case p11::CKR_DOMAIN_PARAMS_INVALID:
      code = ErrorCode::kUnsupportedCurve;
      hint = "the token does not support P-256";
      break;
    case p11::CKR_TOKEN_WRITE_PROTECTED:
    case p11::CKR_SESSION_READ_ONLY:
      hint = "the token is write-protected";
      break;
    case p11::CKR_KEY_FUNCTION_NOT_PERMITTED:
      hint = "the key is not allowed to sign (CKA_SIGN is false)";
      break;
    default:
      break;
  }
  KeyError err(code, hint.empty() ? what : what + "; " + hint);
  err.WithCkr(rv);
  return err;
}

KeyError OsStatusError(const std::string& operation, int32_t status, const std::string& detail) {
  const std::string what = operation + " failed (OSStatus " + std::to_string(status) + ")";
  ErrorCode code = ErrorCode::kBackendError;
  std::string hint;
  switch (status) {
    case kErrSecItemNotFound:
      code = ErrorCode::kKeyNotFound;
      hint = "the Secure Enclave key was not found";
      break;
    case kErrSecDuplicateItem:
      code = ErrorCode::kKeyExists;
      hint = "the key already exists";
      break;
    case kErrSecUserCanceled:
      code = ErrorCode::kUserCancelled;
      hint = "the user cancelled the prompt";
      break;
    case kErrSecAuthFailed:
      code = ErrorCode::kPinIncorrect;
      hint = "authentication (Touch ID or password) failed";
      break;
    case kErrSecInteractionNotAllowed:
      code = ErrorCode::kInteractionNotAllowed;
      hint = "the key needs the user but no prompt can be shown (screen locked or no GUI session)";
      break;
    case kErrSecMissingEntitlement:
      hint =
          "the process lacks an entitlement Security.framework asked for; credport's Secure Enclave keys stay out of "
          "the keychain so that none is needed: please report this with your macOS version";
      break;
    case kErrSecUnimplemented:
    case kErrSecNotAvailable:
      hint = "this Mac has no Secure Enclave, or it is unavailable";
      break;
    case kErrSecParam:
      code = ErrorCode::kInvalidArgument;
      hint = "Security.framework rejected a parameter";
      break;
    default:
      break;
  }
  KeyError err(code, WithDetail(hint.empty() ? what : what + "; " + hint, detail));
  err.WithOsStatus(status);
  return err;
}

KeyError LocalAuthError(const std::string& operation, long code, const std::string& detail) {
  const std::string what = operation + " failed (LocalAuthentication error " + std::to_string(code) + ")";
  ErrorCode mapped = ErrorCode::kBackendError;
  std::string hint;
  switch (code) {
    case kLaUserCancel:
    case kLaSystemCancel:
    case kLaAppCancel:
    case kLaUserFallback:
      mapped = ErrorCode::kUserCancelled;
      hint = "the prompt was cancelled";
      break;
    case kLaAuthenticationFailed:
      mapped = ErrorCode::kPinIncorrect;
      hint = "authentication failed";
      break;
    case kLaBiometryLockout:
      mapped = ErrorCode::kPinLocked;
      hint = "biometry is locked out; unlock with the password first";
      break;
    case kLaPasscodeNotSet:
      hint = "the Mac has no login password, which user presence needs";
      break;
    case kLaNotInteractive:
      mapped = ErrorCode::kInteractionNotAllowed;
      hint = "the key needs the user but no prompt can be shown (a LaunchDaemon, an ssh session, a locked screen)";
      break;
    default:
      break;
  }
  KeyError err(mapped, WithDetail(hint.empty() ? what : what + "; " + hint, detail));
  err.WithOsStatus(static_cast<int32_t>(code));
  return err;
}

KeyError CryptoTokenKitError(const std::string& operation, long code, const std::string& detail) {
  const std::string what = operation + " failed (CryptoTokenKit error " + std::to_string(code) + ")";
  ErrorCode mapped = ErrorCode::kBackendError;
  std::string hint;
  switch (code) {
    case kTkCanceledByUser:
      mapped = ErrorCode::kUserCancelled;
      hint = "the prompt was cancelled";
      break;
    case kTkAuthenticationFailed:
      mapped = ErrorCode::kPinIncorrect;
      hint = "authentication (Touch ID or password) failed";
      break;
    case kTkAuthenticationNeeded:
      mapped = ErrorCode::kInteractionNotAllowed;
      hint = "the key needs the user but no prompt could be shown";
      break;
    case kTkObjectNotFound:
    case kTkCorruptedData:
      // The key file's blob is wrapped by this Mac's Secure Enclave: after an
      // erase, a reinstall or on another Mac it names nothing.
      mapped = ErrorCode::kKeyNotFound;
      hint =
          "the Secure Enclave no longer accepts this key (the Mac was erased or reinstalled, or the key file comes from "
          "another Mac); create a new key with 'credport init' and publish its kid";
      break;
    case kTkTokenNotFound:
      hint = "this Mac has no Secure Enclave, or it is unavailable";
      break;
    case kTkBadParameter:
      mapped = ErrorCode::kInvalidArgument;
      hint = "the Secure Enclave rejected a parameter";
      break;
    default:
      break;
  }
  KeyError err(mapped, WithDetail(hint.empty() ? what : what + "; " + hint, detail));
  err.WithOsStatus(static_cast<int32_t>(code));
  return err;
}

void SecureZero(void* data, size_t size) {
  // Writes through a volatile pointer are observable side effects, so the
  // compiler cannot drop them as dead stores the way it may drop memset.
  volatile unsigned char* p = static_cast<volatile unsigned char*>(data);
  while (size-- > 0) *p++ = 0;
}

}  // namespace credport
