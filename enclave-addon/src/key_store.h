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

struct Pkcs11KeyInfo {
  uint64_t handle = 0;  // the private key's object handle, valid in this session
  std::string label;
  std::vector<uint8_t> id;
  std::vector<uint8_t> public_point;  // 65 bytes: 04 || X || Y
  bool always_authenticate = false;   // CKA_ALWAYS_AUTHENTICATE: a PIN per signature
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
  virtual void Login(SecretBytes pin) = 0;
  virtual Pkcs11KeyInfo FindKey(const Pkcs11KeySelector& key) = 0;
  // Generates a P-256 pair on the token; KEY_EXISTS when the label or id is taken.
  virtual Pkcs11KeyInfo GenerateKey(const std::string& label, const std::vector<uint8_t>& id) = 0;
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
  // ECDSA over a 32-byte digest with the private key `handle`; returns r||s (64 bytes).
  virtual std::vector<uint8_t> Sign(uint64_t handle, const std::vector<uint8_t>& digest) = 0;
  // Idempotent; later calls on the session fail with SESSION_INVALID.
  virtual void Close() = 0;
};

// Loads (dlopen) and initialises the module once per process while anyone
// uses it, then lists its slots.
std::vector<Pkcs11SlotInfo> Pkcs11ListSlots(const std::string& module_path);

// Opens a read-write session (read-only if the token is write-protected) on
// the one token the selector matches.
std::shared_ptr<Pkcs11Session> Pkcs11OpenSession(const std::string& module_path, const Pkcs11TokenSelector& token);

// ---- Secure Enclave --------------------------------------------------------

struct SecureEnclaveKeyInfo {
  std::string tag;
  std::vector<uint8_t> public_point;  // 65 bytes: 04 || X || Y
  bool user_presence = false;
};

// A private key held in the Secure Enclave, found by its application tag.
class SecureEnclaveKey {
 public:
  virtual ~SecureEnclaveKey() = default;
  virtual SecureEnclaveKeyInfo Info() const = 0;
  // ECDSA over a 32-byte digest; returns r||s (64 bytes).
  virtual std::vector<uint8_t> Sign(const std::vector<uint8_t>& digest) = 0;
};

// Whether this build can reach a Secure Enclave; when not, *reason says why.
bool SecureEnclaveAvailable(std::string* reason);
std::shared_ptr<SecureEnclaveKey> SecureEnclaveCreate(const std::string& tag, bool user_presence);
std::shared_ptr<SecureEnclaveKey> SecureEnclaveOpen(const std::string& tag);
void SecureEnclaveDelete(const std::string& tag);

}  // namespace credport

#endif  // CREDPORT_KEY_STORE_H_
