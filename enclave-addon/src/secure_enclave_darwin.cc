// The Secure Enclave key store (macOS), through Security.framework's C API,
// without the keychain.
//
// A permanent Secure Enclave key is a keychain item, and the data protection
// keychain admits only a process whose main executable carries a keychain
// entitlement, which needs a provisioning profile: a stock `node` gets
// errSecMissingEntitlement. So the key is made non-permanent, and what names
// it is its token object id (the "toid" attribute): an opaque blob, wrapped by
// this Mac's Secure Enclave, that only this Secure Enclave can use. The caller
// keeps the blob and the public point in a private file and hands both back to
// open the key, which is recreated from the blob with SecKeyCreateWithData.
//
// The calls, all of them (docs/key-backends.md lists them for reviewers):
// SecAccessControlCreateWithFlags, SecKeyCreateRandomKey, SecKeyCopyAttributes,
// SecKeyCreateWithData, SecKeyCopyPublicKey, SecKeyCopyExternalRepresentation,
// SecKeyCreateSignature (kSecKeyAlgorithmECDSASignatureDigestX962SHA256), and
// LocalAuthentication's LAContext through the Objective-C runtime (so that this
// file stays C++ and needs no Objective-C compiler mode).
#include <CoreFoundation/CoreFoundation.h>
#include <Security/Security.h>
#include <objc/message.h>
#include <objc/runtime.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "der.h"
#include "key_store.h"

namespace credport {

namespace {

constexpr size_t kDigestSize = 32;
constexpr size_t kP256FieldSize = 32;
constexpr size_t kP256PointSize = 65;
// A token object id is a few hundred bytes; anything far larger is not one.
constexpr size_t kMaxTokenObjectSize = 16 * 1024;

// The key of the token object id in SecKeyCopyAttributes' dictionary. Apple
// names it kSecAttrTokenOID only in its private headers; the value is stable
// and is what CryptoKit's SecureEnclave keys expose as dataRepresentation.
const char kTokenObjectIdKey[] = "toid";

// Shown by macOS in the Touch ID / password sheet of a user-presence key.
const char kPromptReason[] = "credport: sign a request for cloud credentials";

// Owns one Core Foundation reference (released once, when it goes).
template <typename T>
class CfPtr {
 public:
  CfPtr() = default;
  explicit CfPtr(T ref) : ref_(ref) {}
  CfPtr(const CfPtr&) = delete;
  CfPtr& operator=(const CfPtr&) = delete;
  ~CfPtr() {
    if (ref_ != nullptr) CFRelease(ref_);
  }
  T get() const { return ref_; }
  T* out() { return &ref_; }  // for "copy" out-parameters; only on an empty CfPtr
  explicit operator bool() const { return ref_ != nullptr; }

 private:
  T ref_ = nullptr;
};

// objc_msgSend typed for one method. Cast through void(*)(void), the one
// function type others convert to and from without a warning, whichever
// prototype the SDK declares (OBJC_OLD_DISPATCH_PROTOTYPES).
template <typename Fn>
Fn Msg() {
  return reinterpret_cast<Fn>(reinterpret_cast<void (*)(void)>(objc_msgSend));
}

// Owns one Objective-C object reference (+1, released once).
class ObjcPtr {
 public:
  explicit ObjcPtr(id obj) : obj_(obj) {}
  ObjcPtr(const ObjcPtr&) = delete;
  ObjcPtr& operator=(const ObjcPtr&) = delete;
  ~ObjcPtr() {
    if (obj_ != nullptr) Msg<void (*)(id, SEL)>()(obj_, sel_registerName("release"));
  }
  id get() const { return obj_; }

 private:
  id obj_;
};

std::string ToUtf8(CFStringRef s) {
  if (s == nullptr) return "";
  const CFIndex max = CFStringGetMaximumSizeForEncoding(CFStringGetLength(s), kCFStringEncodingUTF8) + 1;
  std::vector<char> buf(static_cast<size_t>(max));
  if (!CFStringGetCString(s, buf.data(), max, kCFStringEncodingUTF8)) return "";
  return std::string(buf.data());
}

CFStringRef NewString(const char* s) { return CFStringCreateWithCString(kCFAllocatorDefault, s, kCFStringEncodingUTF8); }

CFMutableDictionaryRef NewDictionary() {
  return CFDictionaryCreateMutable(kCFAllocatorDefault, 0, &kCFTypeDictionaryKeyCallBacks,
                                   &kCFTypeDictionaryValueCallBacks);
}

CFDataRef NewData(const std::vector<uint8_t>& bytes) {
  return CFDataCreate(kCFAllocatorDefault, bytes.data(), static_cast<CFIndex>(bytes.size()));
}

// A CFError from Security.framework -> KeyError, through the shared tables.
KeyError FromCfError(const std::string& operation, CFErrorRef error) {
  if (error == nullptr) return KeyError(ErrorCode::kBackendError, operation + " failed without saying why");
  const CFIndex code = CFErrorGetCode(error);
  CfPtr<CFStringRef> description(CFErrorCopyDescription(error));
  const std::string detail = ToUtf8(description.get());
  const std::string domain = ToUtf8(CFErrorGetDomain(error));
  if (domain == "com.apple.LocalAuthentication") return LocalAuthError(operation, static_cast<long>(code), detail);
  if (domain == "CryptoTokenKit") return CryptoTokenKitError(operation, static_cast<long>(code), detail);
  if (domain == ToUtf8(kCFErrorDomainOSStatus)) return OsStatusError(operation, static_cast<int32_t>(code), detail);
  KeyError err(ErrorCode::kBackendError, operation + " failed (" + domain + " " + std::to_string(code) + ")" +
                                             (detail.empty() ? "" : ": " + detail));
  err.WithOsStatus(static_cast<int32_t>(code));
  return err;
}

// An LAContext for one key. Unattended keys get one that may never show UI, so
// that a key whose access control unexpectedly wants the user fails at once
// (errSecInteractionNotAllowed) instead of blocking a worker thread on a sheet
// nobody sees. User-presence keys get one that may prompt, with our reason.
id NewAuthenticationContext(bool may_prompt) {
  Class cls = objc_getClass("LAContext");
  if (cls == nullptr) throw KeyError(ErrorCode::kBackendError, "LocalAuthentication.framework is not loaded");
  id ctx = Msg<id (*)(Class, SEL)>()(cls, sel_registerName("new"));
  if (ctx == nullptr) throw KeyError(ErrorCode::kBackendError, "could not create an LAContext");
  if (may_prompt) {
    CfPtr<CFStringRef> reason(NewString(kPromptReason));
    // NSString and CFString are toll-free bridged.
    Msg<void (*)(id, SEL, id)>()(ctx, sel_registerName("setLocalizedReason:"),
                                 reinterpret_cast<id>(const_cast<void*>(static_cast<const void*>(reason.get()))));
  } else {
    // Not YES: the SDK spells it as an Objective-C literal outside C++'s reach.
    Msg<void (*)(id, SEL, BOOL)>()(ctx, sel_registerName("setInteractionNotAllowed:"), static_cast<BOOL>(1));
  }
  return ctx;
}

std::vector<uint8_t> PublicPoint(SecKeyRef private_key) {
  CfPtr<SecKeyRef> pub(SecKeyCopyPublicKey(private_key));
  if (!pub) throw KeyError(ErrorCode::kBackendError, "SecKeyCopyPublicKey returned no public key");
  CfPtr<CFErrorRef> error;
  CfPtr<CFDataRef> data(SecKeyCopyExternalRepresentation(pub.get(), error.out()));
  if (!data) throw FromCfError("SecKeyCopyExternalRepresentation", error.get());
  const UInt8* bytes = CFDataGetBytePtr(data.get());
  const size_t len = static_cast<size_t>(CFDataGetLength(data.get()));
  // For an EC public key the external representation is the X9.63 point 04||X||Y.
  if (len != kP256PointSize || bytes[0] != 0x04) {
    throw KeyError(ErrorCode::kUnsupportedCurve, "the Secure Enclave key is not an uncompressed P-256 point");
  }
  return std::vector<uint8_t>(bytes, bytes + len);
}

std::vector<uint8_t> TokenObjectId(SecKeyRef private_key) {
  CfPtr<CFDictionaryRef> attrs(SecKeyCopyAttributes(private_key));
  if (!attrs) throw KeyError(ErrorCode::kBackendError, "SecKeyCopyAttributes returned nothing for the new key");
  CfPtr<CFStringRef> key(NewString(kTokenObjectIdKey));
  const void* value = CFDictionaryGetValue(attrs.get(), key.get());
  if (value == nullptr || CFGetTypeID(value) != CFDataGetTypeID()) {
    throw KeyError(ErrorCode::kBackendError,
                   "the new Secure Enclave key has no token object id; this macOS cannot keep a key outside the keychain");
  }
  const auto data = static_cast<CFDataRef>(value);
  const size_t len = static_cast<size_t>(CFDataGetLength(data));
  if (len == 0 || len > kMaxTokenObjectSize) {
    throw KeyError(ErrorCode::kBackendError, "the Secure Enclave key's token object id has an unexpected size");
  }
  const UInt8* bytes = CFDataGetBytePtr(data);
  return std::vector<uint8_t>(bytes, bytes + len);
}

SecAccessControlRef NewAccessControl(bool user_presence) {
  // PrivateKeyUsage alone: the daemon may sign without anyone there. Never
  // BiometryCurrentSet: it destroys the key when a fingerprint is added.
  SecAccessControlCreateFlags flags = kSecAccessControlPrivateKeyUsage;
  if (user_presence) flags |= kSecAccessControlUserPresence;
  // Unattended keys must sign while the screen is locked (refresh at night);
  // a presence key can prompt only while it is unlocked anyway.
  CFTypeRef protection =
      user_presence ? kSecAttrAccessibleWhenUnlockedThisDeviceOnly : kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly;
  CfPtr<CFErrorRef> error;
  SecAccessControlRef access = SecAccessControlCreateWithFlags(kCFAllocatorDefault, protection, flags, error.out());
  if (access == nullptr) throw FromCfError("SecAccessControlCreateWithFlags", error.get());
  return access;
}

// A new Secure Enclave P-256 key that lives only as long as its SecKeyRef
// (kSecAttrIsPermanent = false: no keychain item, so no entitlement).
SecKeyRef NewEphemeralEnclaveKey(bool user_presence) {
  CfPtr<SecAccessControlRef> access(NewAccessControl(user_presence));
  CfPtr<CFMutableDictionaryRef> private_attrs(NewDictionary());
  CFDictionarySetValue(private_attrs.get(), kSecAttrIsPermanent, kCFBooleanFalse);
  CFDictionarySetValue(private_attrs.get(), kSecAttrAccessControl, access.get());

  int bits = 256;
  CfPtr<CFNumberRef> size(CFNumberCreate(kCFAllocatorDefault, kCFNumberIntType, &bits));
  CfPtr<CFMutableDictionaryRef> attrs(NewDictionary());
  CFDictionarySetValue(attrs.get(), kSecAttrKeyType, kSecAttrKeyTypeECSECPrimeRandom);
  CFDictionarySetValue(attrs.get(), kSecAttrKeySizeInBits, size.get());
  CFDictionarySetValue(attrs.get(), kSecAttrTokenID, kSecAttrTokenIDSecureEnclave);
  CFDictionarySetValue(attrs.get(), kSecPrivateKeyAttrs, private_attrs.get());

  CfPtr<CFErrorRef> error;
  SecKeyRef key = SecKeyCreateRandomKey(attrs.get(), error.out());
  if (key == nullptr) throw FromCfError("SecKeyCreateRandomKey", error.get());
  return key;
}

// A SecKeyRef recreated from the token object id, with the LAContext it was
// made with (which must outlive it). Released together.
class LiveKey {
 public:
  LiveKey(SecKeyRef key, id context) : context_(context), key_(key) {}
  SecKeyRef get() const { return key_.get(); }

 private:
  // Declared first, destroyed last: the key may refer to the context until it goes.
  ObjcPtr context_;
  CfPtr<SecKeyRef> key_;
};

std::unique_ptr<LiveKey> KeyFromTokenObject(const std::vector<uint8_t>& token_object,
                                            const std::vector<uint8_t>& public_point, bool may_prompt) {
  id context = NewAuthenticationContext(may_prompt);
  CfPtr<CFMutableDictionaryRef> attrs(NewDictionary());
  CFDictionarySetValue(attrs.get(), kSecAttrKeyType, kSecAttrKeyTypeECSECPrimeRandom);
  CFDictionarySetValue(attrs.get(), kSecAttrKeyClass, kSecAttrKeyClassPrivate);
  CFDictionarySetValue(attrs.get(), kSecAttrTokenID, kSecAttrTokenIDSecureEnclave);
  CFDictionarySetValue(attrs.get(), kSecUseAuthenticationContext, context);
  CfPtr<CFDataRef> blob(NewData(token_object));
  CfPtr<CFErrorRef> error;
  SecKeyRef raw = SecKeyCreateWithData(blob.get(), attrs.get(), error.out());
  auto live = std::make_unique<LiveKey>(raw, context);
  if (raw == nullptr) {
    KeyError e = FromCfError("SecKeyCreateWithData", error.get());
    if (e.code() != ErrorCode::kBackendError && e.code() != ErrorCode::kInvalidArgument) throw e;
    // The blob is sealed to this Secure Enclave; after an erase or on another
    // Mac it is refused, and that is a key that is gone, not a bug.
    KeyError gone(ErrorCode::kKeyNotFound, std::string(e.what()) +
                                               "; the Secure Enclave no longer accepts this key (the Mac was erased or "
                                               "reinstalled, or the key file comes from another Mac): create a new key "
                                               "with 'credport init' and publish its kid");
    if (e.os_status()) gone.WithOsStatus(*e.os_status());
    throw gone;
  }
  // A wrong or damaged blob can yield some other key without an error: only
  // the public point recorded at creation proves it is ours.
  if (PublicPoint(raw) != public_point) {
    throw KeyError(ErrorCode::kKeyNotFound,
                   "the Secure Enclave returned a different key than the one this key file was created with; the file "
                   "is damaged or was edited: create a new key with 'credport init'");
  }
  return live;
}

std::vector<uint8_t> SignWith(SecKeyRef key, const std::vector<uint8_t>& digest) {
  CfPtr<CFDataRef> data(NewData(digest));
  CfPtr<CFErrorRef> error;
  CfPtr<CFDataRef> sig(SecKeyCreateSignature(key, kSecKeyAlgorithmECDSASignatureDigestX962SHA256, data.get(), error.out()));
  if (!sig) throw FromCfError("SecKeyCreateSignature", error.get());
  // X9.62 signatures are DER; JWS wants r||s.
  std::vector<uint8_t> raw;
  std::string why;
  if (!der::EcdsaDerToRaw(CFDataGetBytePtr(sig.get()), static_cast<size_t>(CFDataGetLength(sig.get())), kP256FieldSize,
                          &raw, &why)) {
    throw KeyError(ErrorCode::kBackendError, "the Secure Enclave returned an unreadable signature: " + why);
  }
  return raw;
}

class EnclaveKey final : public SecureEnclaveKey {
 public:
  // `live` is the key as created or opened; a user-presence key drops it and
  // recreates the key for each signature (see Sign).
  EnclaveKey(std::unique_ptr<LiveKey> live, SecureEnclaveKeyInfo info) : live_(std::move(live)), info_(std::move(info)) {}

  SecureEnclaveKeyInfo Info() const override { return info_; }

  std::vector<uint8_t> Sign(const std::vector<uint8_t>& digest) override {
    if (digest.size() != kDigestSize) {
      throw KeyError(ErrorCode::kInvalidArgument, "the digest to sign must be 32 bytes (SHA-256)");
    }
    // One signature at a time per key: with user presence each is a prompt,
    // and prompts must not pile up on the screen.
    std::lock_guard<std::mutex> lock(mu_);
    if (!info_.user_presence) {
      if (!live_) live_ = KeyFromTokenObject(info_.token_object, info_.public_point, false);
      return SignWith(live_->get(), digest);
    }
    // An LAContext that has once been authenticated lets its key sign again
    // without asking; a fresh context per signature keeps "every signature
    // asks" true.
    live_.reset();
    auto once = KeyFromTokenObject(info_.token_object, info_.public_point, true);
    return SignWith(once->get(), digest);
  }

 private:
  std::mutex mu_;
  std::unique_ptr<LiveKey> live_;
  const SecureEnclaveKeyInfo info_;
};

}  // namespace

bool SecureEnclaveAvailable(std::string* reason) {
  // Compiled in; whether this Mac has one is SecureEnclaveProbe's question.
  reason->clear();
  return true;
}

bool SecureEnclaveProbe(std::string* reason) {
  // Virtual machines and Intel Macs without a T2 have no Secure Enclave, and
  // nothing but trying says so: make a throwaway key. It is not permanent, so
  // nothing is left behind, and it asks nobody for anything.
  reason->clear();
  try {
    CfPtr<SecKeyRef> key(NewEphemeralEnclaveKey(false));
    PublicPoint(key.get());
    return true;
  } catch (const KeyError& e) {
    *reason = std::string("this Mac cannot make Secure Enclave keys (a virtual machine, or an Intel Mac without a T2 "
                          "chip, has no Secure Enclave): ") +
              e.what();
    return false;
  }
}

std::shared_ptr<SecureEnclaveKey> SecureEnclaveCreate(bool user_presence) {
  CfPtr<SecKeyRef> key(NewEphemeralEnclaveKey(user_presence));
  SecureEnclaveKeyInfo info;
  info.public_point = PublicPoint(key.get());
  info.token_object = TokenObjectId(key.get());
  info.user_presence = user_presence;
  // Signing goes through the blob from the start, exactly as after a restart:
  // a blob that does not give this key back fails here, before anyone keeps it.
  // Reading the public key needs no authentication, so this never prompts.
  auto live = KeyFromTokenObject(info.token_object, info.public_point, false);
  if (user_presence) live.reset();
  return std::make_shared<EnclaveKey>(std::move(live), std::move(info));
}

std::shared_ptr<SecureEnclaveKey> SecureEnclaveOpen(const std::vector<uint8_t>& token_object,
                                                    const std::vector<uint8_t>& public_point, bool user_presence) {
  if (token_object.empty() || token_object.size() > kMaxTokenObjectSize) {
    throw KeyError(ErrorCode::kInvalidArgument, "the Secure Enclave key's token object id has an unexpected size");
  }
  if (public_point.size() != kP256PointSize || public_point[0] != 0x04) {
    throw KeyError(ErrorCode::kInvalidArgument, "the stored public key is not an uncompressed P-256 point");
  }
  SecureEnclaveKeyInfo info;
  info.public_point = public_point;
  info.token_object = token_object;
  info.user_presence = user_presence;
  // Checked now, without a prompt (the public key needs no authentication);
  // a presence key is recreated with a context that may prompt at each signature.
  auto live = KeyFromTokenObject(token_object, public_point, false);
  if (user_presence) live.reset();
  return std::make_shared<EnclaveKey>(std::move(live), std::move(info));
}

}  // namespace credport
