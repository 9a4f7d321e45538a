// The key stores behind the addon, as the binding sees them. One
// implementation file per store: pkcs11.cc (every platform) and
// secure_enclave_darwin.cc (macOS; secure_enclave_unsupported.cc elsewhere),
// chosen in binding.gyp. Everything here is blocking and thread-safe; the
// binding runs each call on a worker thread, never on the JavaScript thread.
// Failures are thrown as credport::KeyError (errors.h).
#ifndef CREDPORT_KEY_STORE_H_
#define CREDPORT_KEY_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"

namespace credport {

// Bytes that held a secret (a PIN): zeroed when they go away.
class SecretBytes {
 public:
  SecretBytes() = default;
  SecretBytes(const uint8_t* data, size_t size) : bytes_(data, data + size) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {}
  ~SecretBytes() { Clear(); }
  void Clear() {
    if (!bytes_.empty()) SecureZero(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
  uint8_t* data() { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

// ---- PKCS#11 ---------------------------------------------------------------

struct Pkcs11TokenInfo {
  uint64_t slot_id = 0;
  std::string label;  // blank padding removed
  std::string manufacturer;
  std::string model;
  std::string serial;
  bool initialized = false;
  bool login_required = false;
  bool protected_authentication_path = false;  // PIN pad: log in with an empty PIN
  bool write_protected = false;
  bool pin_count_low = false;
  bool pin_final_try = false;
  bool pin_locked = false;
};

struct Pkcs11SlotInfo {
  uint64_t slot_id = 0;
  std::string description;
  std::string manufacturer;
  bool token_present = false;
  bool removable = false;
  bool hardware = false;
  std::optional<Pkcs11TokenInfo> token;  // when a token is present and readable
  std::string token_error;               // when present but C_GetTokenInfo failed: the CKR name
};

// Which token to use; every field given must match. With none given, the
// module must have exactly one token.
struct Pkcs11TokenSelector {
  std::optional<std::string> label;
  std::optional<std::string> serial;
  std::optional<std::string> manufacturer;
  std::optional<std::string> model;
  std::optional<uint64_t> slot_id;
};

// A key pair by CKA_LABEL and/or CKA_ID (at least one).
struct Pkcs11KeySelector {
  std::optional<std::string> label;
  std::optional<std::vector<uint8_t>> id;
};

enum class Pkcs11KeyType { kEc, kRsa };

struct Pkcs11KeyInfo {
  uint64_t handle = 0;  // the private key's object handle, valid in this session
  std::string label;
  std::vector<uint8_t> id;
  Pkcs11KeyType type = Pkcs11KeyType::kEc;
  std::vector<uint8_t> public_point;     // EC: 65 bytes, 04 || X || Y
  std::vector<uint8_t> modulus;          // RSA: CKA_MODULUS, big-endian
  std::vector<uint8_t> public_exponent;  // RSA: CKA_PUBLIC_EXPONENT, big-endian
  bool always_authenticate = false;      // CKA_ALWAYS_AUTHENTICATE: a PIN per signature
};

// What GenerateKey makes: P-256, or RSA of `bits` (2048, 3072 or 4096) with exponent 65537.
struct Pkcs11KeySpec {
  Pkcs11KeyType type = Pkcs11KeyType::kEc;
  uint32_t bits = 0;
};

// An X.509 certificate object (CKO_CERTIFICATE, CKC_X_509) stored on the token.
struct Pkcs11CertificateInfo {
  std::string label;
  std::vector<uint8_t> id;
  std::vector<uint8_t> value;  // CKA_VALUE: the certificate, DER
};

// One session on one token of one module. Calls on a session are serialised
// by the session (a PKCS#11 session is not thread-safe); calls on different
// sessions run in parallel (the module is initialised with CKF_OS_LOCKING_OK).
class Pkcs11Session {
 public:
  virtual ~Pkcs11Session() = default;
  virtual Pkcs11TokenInfo Token() = 0;
  // An empty PIN logs in through the token's protected authentication path.
  // Returns true when the token said CKR_USER_ALREADY_LOGGED_IN: it then
  // checked nothing, and the caller must verify the PIN some other way.
  virtual bool Login(SecretBytes pin) = 0;
  // C_Logout; logs out every session of this process on the token.
  virtual void Logout() = 0;
  virtual Pkcs11KeyInfo FindKey(const Pkcs11KeySelector& key) = 0;
  // Generates a pair on the token; KEY_EXISTS when the label or id is taken.
  virtual Pkcs11KeyInfo GenerateKey(const std::string& label, const std::vector<uint8_t>& id,
                                    const Pkcs11KeySpec& spec) = 0;
  // Destroys the private key and its public key; returns how many objects went.
  virtual size_t DeleteKey(const Pkcs11KeySelector& key) = 0;
  // The X.509 certificates with the selector's CKA_LABEL and/or CKA_ID, in the
  // token's order; CERTIFICATE_NOT_FOUND when there is none with a value.
  virtual std::vector<Pkcs11CertificateInfo> ReadCertificates(const Pkcs11KeySelector& selector) = 0;
  // Stores an X.509 certificate (DER, its subject name DER) as a token object
  // with this CKA_ID and CKA_LABEL, then destroys the other certificates with
  // that CKA_ID: a renewed certificate replaces the old one. Returns how many
  // were destroyed.
  virtual size_t StoreCertificate(const std::vector<uint8_t>& id, const std::string& label,
                                  const std::vector<uint8_t>& der, const std::vector<uint8_t>& subject) = 0;
  // Signs with the private key `handle`. EC: ECDSA over the 32-byte SHA-256
  // `digest`, returns r||s (64 bytes). RSA: PKCS#1 v1.5 with SHA-256, over
  // `data` with CKM_SHA256_RSA_PKCS when given and supported, else over the
  // DigestInfo of `digest` with CKM_RSA_PKCS.
  virtual std::vector<uint8_t> Sign(uint64_t handle, const std::vector<uint8_t>& digest,
                                    const std::optional<std::vector<uint8_t>>& data) = 0;
  // Idempotent; later calls on the session fail with SESSION_INVALID.
  virtual void Close() = 0;
};

// Loads (dlopen) and initialises the module once per process, then lists its
// slots. A module is never finalised while the process runs (another user of
// the same library in this process would lose its sessions, or crash inside
// the module); one found finalised by someone else is initialised again.
std::vector<Pkcs11SlotInfo> Pkcs11ListSlots(const std::string& module_path);

// Opens a read-write session (read-only if the token is write-protected) on
// the one token the selector matches. When none matches and this process
// holds no other session on the module, the module is finalised and
// initialised once more first: some modules (SoftHSM2) only see a token that
// came back after a re-initialisation. `rescan` asks for that re-initialisation
// even when a token matches (same condition: no other session of ours on the
// module): tpm2-pkcs11 answers CKR_GENERAL_ERROR on every session, old or new,
// after its resource manager restarted, until the module is initialised again.
std::shared_ptr<Pkcs11Session> Pkcs11OpenSession(const std::string& module_path, const Pkcs11TokenSelector& token,
                                                 bool rescan = false);

// Drops `session` on a background thread: C_CloseSession can block (a USB
// round trip, a daemon behind the module), which a garbage-collector finaliser
// on the JavaScript thread must not.
void Pkcs11ReleaseInBackground(std::shared_ptr<Pkcs11Session> session);

// ---- Secure Enclave --------------------------------------------------------

struct SecureEnclaveKeyInfo {
  std::vector<uint8_t> public_point;  // 65 bytes: 04 || X || Y
  // The key's token object id: an opaque blob only this Mac's Secure Enclave
  // can turn back into the key. Not secret on its own, but it is the key's
  // only handle: the caller keeps it (with the public point) in a private file.
  std::vector<uint8_t> token_object;
  bool user_presence = false;
};

// A private key held in the Secure Enclave, outside the keychain.
class SecureEnclaveKey {
 public:
  virtual ~SecureEnclaveKey() = default;
  virtual SecureEnclaveKeyInfo Info() const = 0;
  // ECDSA over a 32-byte digest; returns r||s (64 bytes). With user presence,
  // each call asks the user; where no prompt can be shown it fails with
  // INTERACTION_NOT_ALLOWED.
  virtual std::vector<uint8_t> Sign(const std::vector<uint8_t>& digest) = 0;
};

// Whether this build has a Secure Enclave store at all; when not, *reason says why.
bool SecureEnclaveAvailable(std::string* reason);
// Whether this Mac can make Secure Enclave keys (it makes a throwaway one);
// when not, *reason says why. Blocking.
bool SecureEnclaveProbe(std::string* reason);
// A new key (not in the keychain: no entitlement needed).
std::shared_ptr<SecureEnclaveKey> SecureEnclaveCreate(bool user_presence);
// The key a token object id names, proven to be the one whose public point is
// given (KEY_NOT_FOUND otherwise, or when the Secure Enclave refuses the blob).
std::shared_ptr<SecureEnclaveKey> SecureEnclaveOpen(const std::vector<uint8_t>& token_object,
                                                    const std::vector<uint8_t>& public_point, bool user_presence);

}  // namespace credport

#endif  // CREDPORT_KEY_STORE_H_
