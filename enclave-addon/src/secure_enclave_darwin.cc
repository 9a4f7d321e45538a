// The Secure Enclave key store (macOS), through Security.framework's C API.
// Mirrors pkcs11.cc: find / create / sign / delete, blocking calls that the
// binding runs off the JavaScript thread, failures thrown as KeyError through
// the shared mapping in errors.cc, DER signatures converted by der.cc.
//
// The Security.framework calls, all of them (docs/key-backends.md lists them
// for reviewers): SecAccessControlCreateWithFlags, SecKeyCreateRandomKey,
// SecItemCopyMatching, SecKeyCopyPublicKey, SecKeyCopyExternalRepresentation,
// SecKeyCreateSignature (kSecKeyAlgorithmECDSASignatureDigestX962SHA256) and
// SecItemDelete.
#include <CoreFoundation/CoreFoundation.h>
#include <Security/Security.h>

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

// Security.framework offers no public call that reads the flags back out of a
// key's SecAccessControl, so whether user presence was asked for is recorded
// in the key's label when credport creates it.
const char kLabelUnattended[] = "credport device key";
const char kLabelUserPresence[] = "credport device key (user presence)";

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

CFDataRef NewData(const std::string& s) {
  return CFDataCreate(kCFAllocatorDefault, reinterpret_cast<const UInt8*>(s.data()), static_cast<CFIndex>(s.size()));
}

// A CFError from Security.framework -> KeyError, through the shared tables.
KeyError FromCfError(const std::string& operation, CFErrorRef error) {
  if (error == nullptr) return KeyError(ErrorCode::kBackendError, operation + " failed without saying why");
  const CFIndex code = CFErrorGetCode(error);
  CfPtr<CFStringRef> description(CFErrorCopyDescription(error));
  const std::string detail = ToUtf8(description.get());
  const std::string domain = ToUtf8(CFErrorGetDomain(error));
  if (domain == "com.apple.LocalAuthentication") return LocalAuthError(operation, static_cast<long>(code), detail);
  if (domain == ToUtf8(kCFErrorDomainOSStatus)) return OsStatusError(operation, static_cast<int32_t>(code), detail);
  KeyError err(ErrorCode::kBackendError, operation + " failed (" + domain + " " + std::to_string(code) + ")" +
                                             (detail.empty() ? "" : ": " + detail));
  err.WithOsStatus(static_cast<int32_t>(code));
  return err;
}

// The query that names "our" keys: Secure Enclave private keys with this
// application tag, in the data protection keychain (where such keys live).
CFMutableDictionaryRef NewKeyQuery(CFDataRef tag) {
  CFMutableDictionaryRef q = NewDictionary();
  CFDictionarySetValue(q, kSecClass, kSecClassKey);
  CFDictionarySetValue(q, kSecAttrKeyClass, kSecAttrKeyClassPrivate);
  CFDictionarySetValue(q, kSecAttrApplicationTag, tag);
  CFDictionarySetValue(q, kSecAttrTokenID, kSecAttrTokenIDSecureEnclave);
  CFDictionarySetValue(q, kSecUseDataProtectionKeychain, kCFBooleanTrue);
  return q;
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

class EnclaveKey final : public SecureEnclaveKey {
 public:
  // Takes over one reference to `key`.
  EnclaveKey(SecKeyRef key, SecureEnclaveKeyInfo info) : key_(key), info_(std::move(info)) {}

  SecureEnclaveKeyInfo Info() const override { return info_; }

  std::vector<uint8_t> Sign(const std::vector<uint8_t>& digest) override {
    if (digest.size() != kDigestSize) {
      throw KeyError(ErrorCode::kInvalidArgument, "the digest to sign must be 32 bytes (SHA-256)");
    }
    // One signature at a time per key: with user presence each is a prompt,
    // and prompts must not pile up on the screen.
    std::lock_guard<std::mutex> lock(mu_);
    CfPtr<CFDataRef> data(CFDataCreate(kCFAllocatorDefault, digest.data(), static_cast<CFIndex>(digest.size())));
    CfPtr<CFErrorRef> error;
    CfPtr<CFDataRef> sig(
        SecKeyCreateSignature(key_.get(), kSecKeyAlgorithmECDSASignatureDigestX962SHA256, data.get(), error.out()));
    if (!sig) throw FromCfError("SecKeyCreateSignature", error.get());
    // X9.62 signatures are DER; JWS wants r||s.
    std::vector<uint8_t> raw;
    std::string why;
    if (!der::EcdsaDerToRaw(CFDataGetBytePtr(sig.get()), static_cast<size_t>(CFDataGetLength(sig.get())),
                            kP256FieldSize, &raw, &why)) {
      throw KeyError(ErrorCode::kBackendError, "the Secure Enclave returned an unreadable signature: " + why);
    }
    return raw;
  }

 private:
  std::mutex mu_;
  CfPtr<SecKeyRef> key_;
  const SecureEnclaveKeyInfo info_;
};

// Every Secure Enclave private key with this tag, as (retained key, label).
struct Found {
  SecKeyRef key;  // retained; the caller takes it over
  std::string label;
};

std::vector<Found> FindAll(const std::string& tag) {
  CfPtr<CFDataRef> tag_data(NewData(tag));
  CfPtr<CFMutableDictionaryRef> q(NewKeyQuery(tag_data.get()));
  CFDictionarySetValue(q.get(), kSecReturnRef, kCFBooleanTrue);
  CFDictionarySetValue(q.get(), kSecReturnAttributes, kCFBooleanTrue);
  CFDictionarySetValue(q.get(), kSecMatchLimit, kSecMatchLimitAll);
  CfPtr<CFTypeRef> result;
  const OSStatus status = SecItemCopyMatching(q.get(), result.out());
  if (status == errSecItemNotFound) return {};
  if (status != errSecSuccess) throw OsStatusError("SecItemCopyMatching", status, "");
  std::vector<Found> found;
  if (!result || CFGetTypeID(result.get()) != CFArrayGetTypeID()) return found;
  const auto items = static_cast<CFArrayRef>(result.get());
  for (CFIndex i = 0; i < CFArrayGetCount(items); ++i) {
    const auto item = static_cast<CFDictionaryRef>(CFArrayGetValueAtIndex(items, i));
    if (item == nullptr || CFGetTypeID(item) != CFDictionaryGetTypeID()) continue;
    const void* ref = CFDictionaryGetValue(item, kSecValueRef);
    if (ref == nullptr || CFGetTypeID(ref) != SecKeyGetTypeID()) continue;
    const void* label = CFDictionaryGetValue(item, kSecAttrLabel);
    Found f;
    f.key = static_cast<SecKeyRef>(const_cast<void*>(CFRetain(ref)));
    f.label = label != nullptr && CFGetTypeID(label) == CFStringGetTypeID() ? ToUtf8(static_cast<CFStringRef>(label)) : "";
    found.push_back(f);
  }
  return found;
}

// `key` stays owned by the caller; the returned object holds its own
// reference. The public point is read once, here: signing never re-reads it.
std::shared_ptr<SecureEnclaveKey> MakeKey(SecKeyRef key, const std::string& tag, bool user_presence) {
  SecureEnclaveKeyInfo info{tag, PublicPoint(key), user_presence};
  CFRetain(key);
  return std::make_shared<EnclaveKey>(key, std::move(info));
}

}  // namespace

bool SecureEnclaveAvailable(std::string* reason) {
  // Whether this Mac has a Secure Enclave (Apple silicon, or Intel with a T2)
  // shows only when a key is created: older Macs fail with errSecUnimplemented
  // or errSecNotAvailable, mapped to a clear message in errors.cc.
  reason->clear();
  return true;
}

std::shared_ptr<SecureEnclaveKey> SecureEnclaveOpen(const std::string& tag) {
  auto found = FindAll(tag);
  if (found.empty()) {
    KeyError err(ErrorCode::kKeyNotFound, "no Secure Enclave key with tag \"" + tag + "\"");
    err.WithOsStatus(errSecItemNotFound);
    throw err;
  }
  if (found.size() > 1) {
    for (auto& f : found) CFRelease(f.key);
    throw KeyError(ErrorCode::kInvalidArgument, std::to_string(found.size()) + " Secure Enclave keys have tag \"" + tag +
                                                    "\"; remove the extra ones or use another tag");
  }
  CfPtr<SecKeyRef> key(found[0].key);
  // A key credport did not create says nothing about its access control, so
  // assume a person may be needed: such a key cannot promise unattended refresh.
  const bool user_presence = found[0].label != kLabelUnattended;
  return MakeKey(key.get(), tag, user_presence);
}

std::shared_ptr<SecureEnclaveKey> SecureEnclaveCreate(const std::string& tag, bool user_presence) {
  // Tags are not unique in the keychain, so a second key would silently join
  // the first: refuse instead.
  {
    auto existing = FindAll(tag);
    for (auto& f : existing) CFRelease(f.key);
    if (!existing.empty()) {
      KeyError err(ErrorCode::kKeyExists, "a Secure Enclave key with tag \"" + tag + "\" already exists");
      err.WithOsStatus(errSecDuplicateItem);
      throw err;
    }
  }
  CfPtr<CFErrorRef> error;
  SecAccessControlCreateFlags flags = kSecAccessControlPrivateKeyUsage;
  if (user_presence) flags |= kSecAccessControlUserPresence;
  CfPtr<SecAccessControlRef> access(SecAccessControlCreateWithFlags(
      kCFAllocatorDefault, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, error.out()));
  if (!access) throw FromCfError("SecAccessControlCreateWithFlags", error.get());

  CfPtr<CFDataRef> tag_data(NewData(tag));
  CfPtr<CFStringRef> label(NewString(user_presence ? kLabelUserPresence : kLabelUnattended));
  CfPtr<CFMutableDictionaryRef> private_attrs(NewDictionary());
  CFDictionarySetValue(private_attrs.get(), kSecAttrIsPermanent, kCFBooleanTrue);
  CFDictionarySetValue(private_attrs.get(), kSecAttrApplicationTag, tag_data.get());
  CFDictionarySetValue(private_attrs.get(), kSecAttrAccessControl, access.get());
  CFDictionarySetValue(private_attrs.get(), kSecAttrLabel, label.get());

  int bits = 256;
  CfPtr<CFNumberRef> size(CFNumberCreate(kCFAllocatorDefault, kCFNumberIntType, &bits));
  CfPtr<CFMutableDictionaryRef> attrs(NewDictionary());
  CFDictionarySetValue(attrs.get(), kSecAttrKeyType, kSecAttrKeyTypeECSECPrimeRandom);
  CFDictionarySetValue(attrs.get(), kSecAttrKeySizeInBits, size.get());
  CFDictionarySetValue(attrs.get(), kSecAttrTokenID, kSecAttrTokenIDSecureEnclave);
  CFDictionarySetValue(attrs.get(), kSecUseDataProtectionKeychain, kCFBooleanTrue);
  CFDictionarySetValue(attrs.get(), kSecPrivateKeyAttrs, private_attrs.get());

  CfPtr<CFErrorRef> create_error;
  CfPtr<SecKeyRef> key(SecKeyCreateRandomKey(attrs.get(), create_error.out()));
  if (!key) throw FromCfError("SecKeyCreateRandomKey", create_error.get());
  return MakeKey(key.get(), tag, user_presence);
}

void SecureEnclaveDelete(const std::string& tag) {
  CfPtr<CFDataRef> tag_data(NewData(tag));
  CfPtr<CFMutableDictionaryRef> q(NewKeyQuery(tag_data.get()));
  const OSStatus status = SecItemDelete(q.get());
  if (status == errSecItemNotFound) {
    KeyError err(ErrorCode::kKeyNotFound, "no Secure Enclave key with tag \"" + tag + "\"");
    err.WithOsStatus(status);
    throw err;
  }
  if (status != errSecSuccess) throw OsStatusError("SecItemDelete", status, "");
}

}  // namespace credport
