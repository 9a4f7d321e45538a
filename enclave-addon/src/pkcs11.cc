// The PKCS#11 key store: loads a module, finds a token, and generates, finds,
// signs with and deletes P-256 key pairs on it, and reads the X.509
// certificates stored next to them. Blocking calls only; the binding runs
// them off the JavaScript thread.
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <utility>

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#include "der.h"
#include "key_store.h"
#include "pkcs11_abi.h"

namespace credport {

namespace {

using namespace p11;  // NOLINT: this file speaks PKCS#11 throughout

// DER of the prime256v1 / secp256r1 OID, the value of CKA_EC_PARAMS for P-256.
const uint8_t kP256Params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

struct NamedCurve {
  std::vector<uint8_t> params;
  const char* name;
};

// Curves a token may well hold, named so that the refusal says what was found.
const NamedCurve kOtherCurves[] = {
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, "P-384 (secp384r1)"},
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, "P-521 (secp521r1)"},
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}, "secp256k1"},
    {{0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07}, "brainpoolP256r1"},
};

constexpr size_t kDigestSize = 32;
constexpr size_t kP256FieldSize = 32;
// DER of DigestInfo { sha256, NULL } up to the digest (RFC 8017 section 9.2,
// note 1): what CKM_RSA_PKCS signs when the token cannot hash for us.
const uint8_t kSha256DigestInfoPrefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                           0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
constexpr uint32_t kMinRsaBits = 2048;
// Room for an RSA signature of up to 8192 bits and any ECDSA encoding.
constexpr size_t kMaxSignature = 1024;
// More certificates than this under one label or id is a misconfigured token,
// not a chain: refusing beats reading an unbounded number of objects.
constexpr size_t kMaxCertificates = 16;

std::string Hex(const std::vector<uint8_t>& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

// PKCS#11 strings are fixed-width and blank-padded (some tokens pad with NULs).
std::string PaddedString(const CK_UTF8CHAR* s, size_t n) {
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0')) --n;
  return std::string(reinterpret_cast<const char*>(s), n);
}

std::string CurveName(const std::vector<uint8_t>& params) {
  for (const auto& c : kOtherCurves) {
    if (c.params == params) return c.name;
  }
  return "an unrecognised curve (CKA_EC_PARAMS " + Hex(params) + ")";
}

bool IsP256(const std::vector<uint8_t>& params) {
  return params.size() == sizeof(kP256Params) && std::memcmp(params.data(), kP256Params, sizeof(kP256Params)) == 0;
}

std::string DescribeSelector(const Pkcs11KeySelector& key) {
  std::string out;
  if (key.label) out += "label \"" + *key.label + "\"";
  if (key.id) out += std::string(out.empty() ? "" : " and ") + "id " + Hex(*key.id);
  return out;
}

// ---- Modules ---------------------------------------------------------------

// One initialised module. C_Initialize runs once per process and the module
// stays initialised: C_Finalize is process-wide, so finalising when our last
// session closes would pull the module from under any other user of the same
// library in this process (a second entry through p11-kit-proxy, another
// addon), whose next call then fails with CKR_CRYPTOKI_NOT_INITIALIZED for
// good or crashes inside the module. The one exception is RescanModule.
struct Module {
  CK_FUNCTION_LIST* f = nullptr;
  std::string path;
  bool owns_init = false;  // false if something else in the process initialised it
  bool serialize = false;  // the module cannot lock for itself: one call at a time
  std::mutex call_lock;
  // Every call holds it shared; C_Finalize and C_Initialize hold it
  // exclusively, so that no call of ours is inside the module meanwhile.
  std::shared_mutex life;
  size_t refs = 0;
  size_t sessions = 0;  // SessionImpls open on it (guarded by g_modules_mu)
};

std::mutex g_modules_mu;

std::map<CK_FUNCTION_LIST*, std::unique_ptr<Module>>& Modules() {
  // Deliberately never destroyed: a session still open at process exit must
  // not find its module freed by static destructors.
  static auto* modules = new std::map<CK_FUNCTION_LIST*, std::unique_ptr<Module>>();
  return *modules;
}

CK_FUNCTION_LIST* LoadFunctionList(const std::string& path) {
  // The library is never unloaded: many modules start threads or register
  // exit handlers and crash if unmapped, and a second dlopen of the same file
  // only bumps a reference count.
  CK_C_GetFunctionList get = nullptr;
#if defined(_WIN32)
  HMODULE lib = LoadLibraryA(path.c_str());
  if (lib == nullptr) {
    throw KeyError(ErrorCode::kModuleLoadFailed,
                   "cannot load PKCS#11 module " + path + " (Windows error " + std::to_string(GetLastError()) + ")");
  }
  get = reinterpret_cast<CK_C_GetFunctionList>(reinterpret_cast<void*>(GetProcAddress(lib, "C_GetFunctionList")));
#else
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    throw KeyError(ErrorCode::kModuleLoadFailed,
                   "cannot load PKCS#11 module " + path + ": " + (why != nullptr ? why : "unknown error"));
  }
  get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
#endif
  if (get == nullptr) {
    throw KeyError(ErrorCode::kModuleLoadFailed, path + " is not a PKCS#11 module (it has no C_GetFunctionList)");
  }
  CK_FUNCTION_LIST* list = nullptr;
  const CK_RV rv = get(&list);
  if (rv != CKR_OK || list == nullptr) {
    KeyError err(ErrorCode::kModuleLoadFailed, "C_GetFunctionList of " + path + " failed: " + CkrName(rv));
    err.WithCkr(rv);
    throw err;
  }
  if (list->version.major < 2) {
    throw KeyError(ErrorCode::kModuleLoadFailed, path + " implements Cryptoki " + std::to_string(list->version.major) +
                                                     "." + std::to_string(list->version.minor) +
                                                     "; credport needs version 2 or later");
  }
  return list;
}

void InitializeModule(Module* m) {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;  // we call from several threads; the module may use OS locks
  CK_RV rv = m->f->C_Initialize(&args);
  if (rv == CKR_CANT_LOCK) {
    // The module can only be used single-threaded: initialise it without
    // locking and serialise every call to it ourselves.
    rv = m->f->C_Initialize(nullptr);
    m->serialize = true;
  }
  if (rv == CKR_OK) {
    m->owns_init = true;
  } else if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    m->owns_init = false;  // another library in this process initialised it; it also finalises it
  } else {
    KeyError err(ErrorCode::kModuleLoadFailed, "C_Initialize of PKCS#11 module " + m->path + " failed: " + CkrName(rv));
    err.WithCkr(rv);
    throw err;
  }
}

void ReleaseModule(Module* m) {
  std::lock_guard<std::mutex> lock(g_modules_mu);
  --m->refs;  // kept, initialised, for the process's life (see Module)
}

// Someone else in this process finalised the module (CKR_CRYPTOKI_NOT_INITIALIZED):
// initialise it again so that a re-open can succeed.
void ReinitializeModule(Module& m) {
  std::lock_guard<std::mutex> lock(g_modules_mu);
  std::unique_lock<std::shared_mutex> quiet(m.life);
  InitializeModule(&m);
}

// Finalises and initialises the module again, which is the only way some
// modules notice a token that was removed and came back (SoftHSM2) or a
// resource manager that restarted (tpm2-pkcs11). Only when the token sought is
// missing, or a re-open asks for it after a fresh session failed too, and this
// addon initialised the module and holds no session on it: then nothing of
// ours can be hurt, and the steady state never gets here.
bool RescanModule(Module& m) {
  std::lock_guard<std::mutex> lock(g_modules_mu);
  if (!m.owns_init || m.sessions > 0) return false;
  std::unique_lock<std::shared_mutex> quiet(m.life);
  m.f->C_Finalize(nullptr);
  InitializeModule(&m);
  return true;
}

std::shared_ptr<Module> AcquireModule(const std::string& path) {
  CK_FUNCTION_LIST* f = LoadFunctionList(path);
  // Held across C_Initialize/C_Finalize so that a module is never initialised
  // by one thread while another finalises it.
  std::lock_guard<std::mutex> lock(g_modules_mu);
  auto& entry = Modules()[f];
  if (!entry) {
    auto m = std::make_unique<Module>();
    m->f = f;
    m->path = path;
    try {
      InitializeModule(m.get());
    } catch (...) {
      Modules().erase(f);
      throw;
    }
    entry = std::move(m);
  }
  entry->refs++;
  return std::shared_ptr<Module>(entry.get(), ReleaseModule);
}

// Taken around every call into a module: keeps C_Finalize/C_Initialize out
// and, for a module that cannot lock for itself, every other call too.
class CallGuard {
 public:
  explicit CallGuard(Module& m) : life_(m.life) {
    if (m.serialize) lock_ = std::unique_lock<std::mutex>(m.call_lock);
  }

 private:
  std::shared_lock<std::shared_mutex> life_;
  std::unique_lock<std::mutex> lock_;
};

void CheckModule(CK_RV rv, const char* operation) {
  if (rv != CKR_OK) throw Pkcs11Error(operation, rv, CkrStage::kModule);
}

Pkcs11TokenInfo ToTokenInfo(CK_SLOT_ID slot, const CK_TOKEN_INFO& t) {
  Pkcs11TokenInfo info;
  info.slot_id = slot;
  info.label = PaddedString(t.label, sizeof(t.label));
  info.manufacturer = PaddedString(t.manufacturerID, sizeof(t.manufacturerID));
  info.model = PaddedString(t.model, sizeof(t.model));
  info.serial = PaddedString(t.serialNumber, sizeof(t.serialNumber));
  info.initialized = (t.flags & CKF_TOKEN_INITIALIZED) != 0;
  info.login_required = (t.flags & CKF_LOGIN_REQUIRED) != 0;
  info.protected_authentication_path = (t.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
  info.write_protected = (t.flags & CKF_WRITE_PROTECTED) != 0;
  info.pin_count_low = (t.flags & CKF_USER_PIN_COUNT_LOW) != 0;
  info.pin_final_try = (t.flags & CKF_USER_PIN_FINAL_TRY) != 0;
  info.pin_locked = (t.flags & CKF_USER_PIN_LOCKED) != 0;
  return info;
}

std::vector<Pkcs11SlotInfo> ListSlotsOnce(Module& m) {
  CallGuard call(m);
  std::vector<CK_SLOT_ID> ids;
  // The slot list can grow between the two calls (a reader plugged in), in
  // which case the second call reports CKR_BUFFER_TOO_SMALL: ask again.
  for (int attempt = 0;; ++attempt) {
    CK_ULONG count = 0;
    CheckModule(m.f->C_GetSlotList(CK_FALSE, nullptr, &count), "C_GetSlotList");
    ids.resize(count);
    if (count == 0) break;
    const CK_RV rv = m.f->C_GetSlotList(CK_FALSE, ids.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL && attempt < 3) continue;
    CheckModule(rv, "C_GetSlotList");
    ids.resize(count);
    break;
  }
  std::vector<Pkcs11SlotInfo> slots;
  for (CK_SLOT_ID id : ids) {
    CK_SLOT_INFO s{};
    CK_RV rv = m.f->C_GetSlotInfo(id, &s);
    if (rv == CKR_SLOT_ID_INVALID || rv == CKR_DEVICE_REMOVED) continue;  // vanished since the list was read
    CheckModule(rv, "C_GetSlotInfo");
    Pkcs11SlotInfo slot;
    slot.slot_id = id;
    slot.description = PaddedString(s.slotDescription, sizeof(s.slotDescription));
    slot.manufacturer = PaddedString(s.manufacturerID, sizeof(s.manufacturerID));
    slot.token_present = (s.flags & CKF_TOKEN_PRESENT) != 0;
    slot.removable = (s.flags & CKF_REMOVABLE_DEVICE) != 0;
    slot.hardware = (s.flags & CKF_HW_SLOT) != 0;
    if (slot.token_present) {
      CK_TOKEN_INFO t{};
      rv = m.f->C_GetTokenInfo(id, &t);
      if (rv == CKR_OK) {
        slot.token = ToTokenInfo(id, t);
      } else if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED) {
        slot.token_present = false;  // pulled out since C_GetSlotInfo
      } else if (rv == CKR_HOST_MEMORY || rv == CKR_CRYPTOKI_NOT_INITIALIZED) {
        CheckModule(rv, "C_GetTokenInfo");
      } else {
        // One broken token (unrecognised, mid-reset, its storage gone) must
        // not hide the others: it is listed as present but unreadable.
        slot.token_error = CkrName(rv);
      }
    }
    slots.push_back(std::move(slot));
  }
  return slots;
}

// A module found finalised by another user in the process is initialised
// again and asked once more.
std::vector<Pkcs11SlotInfo> ListSlots(Module& m) {
  try {
    return ListSlotsOnce(m);
  } catch (const KeyError& e) {
    if (e.ckr() != CKR_CRYPTOKI_NOT_INITIALIZED) throw;
  }
  ReinitializeModule(m);
  return ListSlotsOnce(m);
}

bool Matches(const Pkcs11TokenSelector& sel, const Pkcs11TokenInfo& t) {
  return (!sel.label || *sel.label == t.label) && (!sel.serial || *sel.serial == t.serial) &&
         (!sel.manufacturer || *sel.manufacturer == t.manufacturer) && (!sel.model || *sel.model == t.model) &&
         (!sel.slot_id || *sel.slot_id == t.slot_id);
}

std::string DescribeToken(const Pkcs11TokenInfo& t) {
  if (!t.initialized) return "an uninitialised token (slot " + std::to_string(t.slot_id) + ")";
  return "\"" + t.label + "\" (slot " + std::to_string(t.slot_id) + ", serial " + t.serial + ")";
}

std::string DescribeTokenSelector(const Pkcs11TokenSelector& sel) {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (sel.label) add("label \"" + *sel.label + "\"");
  if (sel.serial) add("serial \"" + *sel.serial + "\"");
  if (sel.manufacturer) add("manufacturer \"" + *sel.manufacturer + "\"");
  if (sel.model) add("model \"" + *sel.model + "\"");
  if (sel.slot_id) add("slot " + std::to_string(*sel.slot_id));
  return out.empty() ? "any token" : out;
}

// ---- Sessions --------------------------------------------------------------

class SessionImpl final : public Pkcs11Session {
 public:
  SessionImpl(std::shared_ptr<Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle)
      : module_(std::move(module)), slot_(slot), handle_(handle) {
    std::lock_guard<std::mutex> lock(g_modules_mu);
    module_->sessions++;
  }
  ~SessionImpl() override { Close(); }

  Pkcs11TokenInfo Token() override {
    return WithSession([this](CK_FUNCTION_LIST* f) {
      CK_TOKEN_INFO t{};
      Check(f->C_GetTokenInfo(slot_, &t), "C_GetTokenInfo");
      return ToTokenInfo(slot_, t);
    });
  }

  bool Login(SecretBytes pin) override {
    return WithSession([&](CK_FUNCTION_LIST* f) {
      const CK_RV rv = f->C_Login(handle_, CKU_USER, pin.size() > 0 ? pin.data() : nullptr, pin.size());
      pin.Clear();
      if (rv == CKR_OK) return false;
      // Login state belongs to the token, not the session: another session of
      // this process logged in, and the token did not look at this PIN. Said
      // to the caller, who must not take it as proof that the PIN is right.
      if (rv == CKR_USER_ALREADY_LOGGED_IN) return true;
      KeyError err = Pkcs11Error("C_Login", rv, CkrStage::kSession);
      if (err.code() == ErrorCode::kPinIncorrect) {
        // Say how close the PIN is to locking, from the token's own flags.
        CK_TOKEN_INFO t{};
        if (f->C_GetTokenInfo(slot_, &t) == CKR_OK) {
          if ((t.flags & CKF_USER_PIN_LOCKED) != 0) {
            KeyError locked(ErrorCode::kPinLocked, "C_Login failed: the user PIN is now locked; unblock it with the "
                                                   "token's SO PIN or PUK");
            locked.WithCkr(rv);
            throw locked;
          }
          if ((t.flags & CKF_USER_PIN_FINAL_TRY) != 0) {
            KeyError last(ErrorCode::kPinIncorrect, std::string(err.what()) + "; one attempt is left before it locks");
            last.WithCkr(rv);
            throw last;
          }
        }
      }
      throw err;
    });
  }

  void Logout() override {
    WithSession([&](CK_FUNCTION_LIST* f) {
      const CK_RV rv = f->C_Logout(handle_);
      if (rv != CKR_USER_NOT_LOGGED_IN) Check(rv, "C_Logout");
      return 0;
    });
  }

  Pkcs11KeyInfo FindKey(const Pkcs11KeySelector& key) override {
    return WithSession([&](CK_FUNCTION_LIST* f) {
      const auto privs = FindKeys(f, CKO_PRIVATE_KEY, key, 2);
      if (privs.empty()) {
        throw KeyError(ErrorCode::kKeyNotFound, "no private key with " + DescribeSelector(key) + " on the token");
      }
      if (privs.size() > 1) {
        throw KeyError(ErrorCode::kInvalidArgument,
                       "several private keys have " + DescribeSelector(key) + "; select the key by label and id");
      }
      return Describe(f, privs[0], key);
    });
  }

  Pkcs11KeyInfo GenerateKey(const std::string& label, const std::vector<uint8_t>& id,
                            const Pkcs11KeySpec& spec) override {
    const bool rsa = spec.type == Pkcs11KeyType::kRsa;
    if (rsa && spec.bits != 2048 && spec.bits != 3072 && spec.bits != 4096) {
      throw KeyError(ErrorCode::kInvalidArgument, "an RSA key must have 2048, 3072 or 4096 bits");
    }
    return WithSession([&](CK_FUNCTION_LIST* f) {
      Pkcs11KeySelector by_label{label, std::nullopt};
      Pkcs11KeySelector by_id{std::nullopt, id};
      for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
        if (!FindKeys(f, cls, by_label, 1).empty()) {
          throw KeyError(ErrorCode::kKeyExists, "the token already holds a key labelled \"" + label + "\"");
        }
        if (!id.empty() && !FindKeys(f, cls, by_id, 1).empty()) {
          throw KeyError(ErrorCode::kKeyExists, "the token already holds a key with id " + Hex(id));
        }
      }
      CK_BBOOL yes = CK_TRUE;
      CK_BBOOL no = CK_FALSE;
      std::vector<uint8_t> params(kP256Params, kP256Params + sizeof(kP256Params));
      CK_ULONG bits = spec.bits;
      uint8_t exponent[] = {0x01, 0x00, 0x01};  // 65537
      std::string label_copy = label;
      std::vector<uint8_t> id_copy = id;
      std::vector<CK_ATTRIBUTE> pub = {
          {CKA_TOKEN, &yes, sizeof(yes)},
          {CKA_PRIVATE, &no, sizeof(no)},  // a public key: readable without logging in
          {CKA_VERIFY, &yes, sizeof(yes)},
          {CKA_LABEL, label_copy.data(), static_cast<CK_ULONG>(label_copy.size())},
          {CKA_ID, id_copy.data(), static_cast<CK_ULONG>(id_copy.size())},
      };
      if (rsa) {
        pub.push_back({CKA_MODULUS_BITS, &bits, sizeof(bits)});
        pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent)});
      } else {
        pub.push_back({CKA_EC_PARAMS, params.data(), static_cast<CK_ULONG>(params.size())});
      }
      CK_ATTRIBUTE priv[] = {
          {CKA_TOKEN, &yes, sizeof(yes)},
          {CKA_PRIVATE, &yes, sizeof(yes)},
          {CKA_SENSITIVE, &yes, sizeof(yes)},
          {CKA_EXTRACTABLE, &no, sizeof(no)},
          {CKA_SIGN, &yes, sizeof(yes)},
          {CKA_LABEL, label_copy.data(), static_cast<CK_ULONG>(label_copy.size())},
          {CKA_ID, id_copy.data(), static_cast<CK_ULONG>(id_copy.size())},
      };
      CK_MECHANISM mech{rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr, 0};
      CK_OBJECT_HANDLE pub_handle = 0;
      CK_OBJECT_HANDLE priv_handle = 0;
      Check(f->C_GenerateKeyPair(handle_, &mech, pub.data(), static_cast<CK_ULONG>(pub.size()), priv,
                                 sizeof(priv) / sizeof(priv[0]), &pub_handle, &priv_handle),
            "C_GenerateKeyPair");
      Pkcs11KeyInfo info;
      info.handle = priv_handle;
      info.label = label;
      info.id = id;
      info.type = spec.type;
      key_types_[priv_handle] = rsa ? CKK_RSA : CKK_EC;
      std::string why;
      if (rsa) {
        auto modulus = GetBytes(f, pub_handle, CKA_MODULUS);
        auto e = GetBytes(f, pub_handle, CKA_PUBLIC_EXPONENT);
        if (modulus && e && !modulus->empty() && !e->empty()) {
          info.modulus = std::move(*modulus);
          info.public_exponent = std::move(*e);
          return info;
        }
        f->C_DestroyObject(handle_, pub_handle);
        f->C_DestroyObject(handle_, priv_handle);
        throw KeyError(ErrorCode::kBackendError, "the token generated an RSA key but its public key is unreadable");
      }
      const auto point = GetBytes(f, pub_handle, CKA_EC_POINT);
      if (!point || !der::UnwrapEcPoint(point->data(), point->size(), &info.public_point, &why)) {
        // A pair whose public half we cannot read is useless: do not leave it behind.
        f->C_DestroyObject(handle_, pub_handle);
        f->C_DestroyObject(handle_, priv_handle);
        throw KeyError(ErrorCode::kBackendError,
                       "the token generated a key but its public point is unreadable" + (why.empty() ? "" : ": " + why));
      }
      return info;
    });
  }

  size_t DeleteKey(const Pkcs11KeySelector& key) override {
    return WithSession([&](CK_FUNCTION_LIST* f) {
      const auto privs = FindKeys(f, CKO_PRIVATE_KEY, key, 2);
      const auto pubs = FindKeys(f, CKO_PUBLIC_KEY, key, 2);
      if (privs.size() > 1 || pubs.size() > 1) {
        throw KeyError(ErrorCode::kInvalidArgument,
                       "several keys have " + DescribeSelector(key) + "; refusing to delete more than one pair");
      }
      if (privs.empty() && pubs.empty()) {
        throw KeyError(ErrorCode::kKeyNotFound, "no key with " + DescribeSelector(key) + " on the token");
      }
      size_t destroyed = 0;
      for (const auto* list : {&pubs, &privs}) {
        for (CK_OBJECT_HANDLE h : *list) {
          Check(f->C_DestroyObject(handle_, h), "C_DestroyObject");
          key_types_.erase(h);  // the token may hand the handle to a new object of another type
          ++destroyed;
        }
      }
      return destroyed;
    });
  }

  std::vector<Pkcs11CertificateInfo> ReadCertificates(const Pkcs11KeySelector& selector) override {
    return WithSession([&](CK_FUNCTION_LIST* f) {
      // X.509 only: other certificate types (WTLS, X.509 attribute
      // certificates) cannot sign a Roles Anywhere request.
      CK_CERTIFICATE_TYPE x509 = CKC_X_509;
      const auto handles = FindObjects(f, CKO_CERTIFICATE, selector, kMaxCertificates,
                                       {{CKA_CERTIFICATE_TYPE, &x509, sizeof(x509)}});
      if (handles.size() > kMaxCertificates) {
        throw KeyError(ErrorCode::kInvalidArgument, "more than " + std::to_string(kMaxCertificates) +
                                                        " certificates have " + DescribeSelector(selector) +
                                                        " on the token; remove the ones that are not needed");
      }
      std::vector<Pkcs11CertificateInfo> certs;
      size_t without_value = 0;
      for (CK_OBJECT_HANDLE h : handles) {
        // A handle that went stale between the find and the read means the
        // token was removed or reset under us: SESSION_INVALID, as in signing.
        auto value = GetBytes(f, h, CKA_VALUE, CheckObject);
        if (!value || value->empty()) {
          // Certificates may be stored by reference (CKA_URL) with an empty
          // CKA_VALUE; there is nothing here to send, so they are skipped.
          ++without_value;
          continue;
        }
        Pkcs11CertificateInfo cert;
        cert.value = std::move(*value);
        const auto label = GetBytes(f, h, CKA_LABEL, CheckObject);
        if (label) cert.label.assign(label->begin(), label->end());
        cert.id = GetBytes(f, h, CKA_ID, CheckObject).value_or(std::vector<uint8_t>());
        certs.push_back(std::move(cert));
      }
      if (certs.empty()) {
        throw KeyError(ErrorCode::kCertificateNotFound,
                       "no X.509 certificate with " + DescribeSelector(selector) + " on the token" +
                           (without_value > 0 ? " (" + std::to_string(without_value) +
                                                    " found, but stored without a value, by reference only)"
                                              : ""));
      }
      return certs;
    });
  }

  size_t StoreCertificate(const std::vector<uint8_t>& id, const std::string& label, const std::vector<uint8_t>& der,
                          const std::vector<uint8_t>& subject) override {
    return WithSession([&](CK_FUNCTION_LIST* f) {
      CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
      CK_CERTIFICATE_TYPE x509 = CKC_X_509;
      CK_BBOOL yes = CK_TRUE;
      CK_BBOOL no = CK_FALSE;
      std::vector<uint8_t> id_copy(id), der_copy(der), subject_copy(subject);
      std::string label_copy(label);
      CK_ATTRIBUTE tmpl[] = {
          {CKA_CLASS, &cls, sizeof(cls)},
          {CKA_CERTIFICATE_TYPE, &x509, sizeof(x509)},
          {CKA_TOKEN, &yes, sizeof(yes)},
          {CKA_PRIVATE, &no, sizeof(no)},  // certificates are public, readable without a login
          {CKA_ID, id_copy.data(), static_cast<CK_ULONG>(id_copy.size())},
          {CKA_LABEL, label_copy.data(), static_cast<CK_ULONG>(label_copy.size())},
          {CKA_SUBJECT, subject_copy.data(), static_cast<CK_ULONG>(subject_copy.size())},
          {CKA_VALUE, der_copy.data(), static_cast<CK_ULONG>(der_copy.size())},
      };
      // Existing ones first: the new object must not be among those replaced.
      Pkcs11KeySelector by_id;
      by_id.id = id;
      const auto old = FindObjects(f, CKO_CERTIFICATE, by_id, kMaxCertificates, {{CKA_CERTIFICATE_TYPE, &x509, sizeof(x509)}});
      CK_OBJECT_HANDLE created = 0;
      Check(f->C_CreateObject(handle_, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &created), "C_CreateObject");
      size_t destroyed = 0;
      for (CK_OBJECT_HANDLE h : old) {
        if (h == created) continue;
        // The new certificate is stored: an old one that will not go is left
        // for the reader, which picks the newest valid leaf.
        if (f->C_DestroyObject(handle_, h) == CKR_OK) ++destroyed;
      }
      return destroyed;
    });
  }

  std::vector<uint8_t> Sign(uint64_t key, const std::vector<uint8_t>& digest,
                            const std::optional<std::vector<uint8_t>>& data) override {
    if (digest.size() != kDigestSize) {
      throw KeyError(ErrorCode::kInvalidArgument, "the digest to sign must be 32 bytes (SHA-256)");
    }
    return WithSession([&](CK_FUNCTION_LIST* f) {
      const CK_OBJECT_HANDLE obj = static_cast<CK_OBJECT_HANDLE>(key);
      if (KeyType(f, obj) == CKK_RSA) return SignRsa(f, obj, digest, data);
      CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
      CheckObject(f->C_SignInit(handle_, &mech, static_cast<CK_OBJECT_HANDLE>(key)), "C_SignInit");
      CK_BYTE data[kDigestSize];
      std::memcpy(data, digest.data(), kDigestSize);
      // Large enough for r||s and for the DER form a non-conforming token may
      // return, so one call does it (no separate length query).
      CK_BYTE sig[160];
      CK_ULONG sig_len = sizeof(sig);
      CheckObject(f->C_Sign(handle_, data, kDigestSize, sig, &sig_len), "C_Sign");
      if (sig_len == 2 * kP256FieldSize) return std::vector<uint8_t>(sig, sig + sig_len);
      std::vector<uint8_t> raw;
      std::string why;
      if (sig_len > 0 && sig[0] == 0x30 && der::EcdsaDerToRaw(sig, sig_len, kP256FieldSize, &raw, &why)) return raw;
      throw KeyError(ErrorCode::kBackendError,
                     "the token returned a " + std::to_string(sig_len) + "-byte ECDSA signature, not r||s");
    });
  }

  void Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!module_) return;
    {
      CallGuard call(*module_);
      // Errors are ignored: the session may already be gone with its token.
      module_->f->C_CloseSession(handle_);
    }
    {
      // After the call guard is gone: g_modules_mu is always taken before a module's life lock.
      std::lock_guard<std::mutex> modules(g_modules_mu);
      module_->sessions--;
    }
    module_.reset();
  }

 private:
  // Runs `fn` holding the session's lock (a PKCS#11 session must not be used
  // by two threads at once) and, for modules that cannot lock, the module's.
  template <typename Fn>
  auto WithSession(Fn&& fn) -> decltype(fn(static_cast<CK_FUNCTION_LIST*>(nullptr))) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!module_) throw KeyError(ErrorCode::kSessionInvalid, "the PKCS#11 session was closed");
    CallGuard call(*module_);
    return fn(module_->f);
  }

  // CKK_EC or CKK_RSA, remembered per handle from FindKey and GenerateKey;
  // asked of the token for a handle this session has not described.
  CK_KEY_TYPE KeyType(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE obj) {
    const auto known = key_types_.find(obj);
    if (known != key_types_.end()) return known->second;
    const auto type = GetUlong(f, obj, CKA_KEY_TYPE, CheckObject);
    return type.value_or(CKK_EC);
  }

  std::vector<uint8_t> SignRsa(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE key, const std::vector<uint8_t>& digest,
                               const std::optional<std::vector<uint8_t>>& data) {
    if (data && !no_sha256_rsa_) {
      CK_MECHANISM mech{CKM_SHA256_RSA_PKCS, nullptr, 0};
      const CK_RV rv = f->C_SignInit(handle_, &mech, key);
      if (rv != CKR_MECHANISM_INVALID) {
        CheckObject(rv, "C_SignInit");
        return SignInitialised(f, *data);
      }
      no_sha256_rsa_ = true;  // the token cannot hash: ask it once, not per signature
    }
    std::vector<uint8_t> info(kSha256DigestInfoPrefix, kSha256DigestInfoPrefix + sizeof(kSha256DigestInfoPrefix));
    info.insert(info.end(), digest.begin(), digest.end());
    CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
    CheckObject(f->C_SignInit(handle_, &mech, key), "C_SignInit");
    return SignInitialised(f, info);
  }

  std::vector<uint8_t> SignInitialised(CK_FUNCTION_LIST* f, std::vector<uint8_t> input) {
    std::vector<uint8_t> sig(kMaxSignature);
    CK_ULONG sig_len = static_cast<CK_ULONG>(sig.size());
    CheckObject(f->C_Sign(handle_, input.data(), static_cast<CK_ULONG>(input.size()), sig.data(), &sig_len), "C_Sign");
    if (sig_len == 0 || sig_len > sig.size()) {
      throw KeyError(ErrorCode::kBackendError, "the token returned a " + std::to_string(sig_len) + "-byte signature");
    }
    sig.resize(sig_len);
    return sig;
  }

  static void Check(CK_RV rv, const char* operation) {
    if (rv != CKR_OK) throw Pkcs11Error(operation, rv, CkrStage::kSession);
  }

  // While signing or reading an object found a moment ago, an object handle
  // that stopped being valid means the token was removed and re-inserted (or
  // reset) under us: the session's view is stale and re-opening it and
  // finding the object again is the cure, the same as for a dead session.
  static void CheckObject(CK_RV rv, const char* operation) {
    if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
      KeyError err(ErrorCode::kSessionInvalid,
                   std::string(operation) + " failed: " + CkrName(rv) +
                       "; the object handle is stale (token removed or reset); the session must be re-opened");
      err.WithCkr(rv);
      throw err;
    }
    Check(rv, operation);
  }

  std::vector<CK_OBJECT_HANDLE> FindKeys(CK_FUNCTION_LIST* f, CK_OBJECT_CLASS cls, const Pkcs11KeySelector& key,
                                         size_t max) {
    return FindObjects(f, cls, key, max, {});
  }

  // Objects of class `cls` with the selector's label and/or id and every
  // attribute in `extra` (whose values must outlive the call).
  std::vector<CK_OBJECT_HANDLE> FindObjects(CK_FUNCTION_LIST* f, CK_OBJECT_CLASS cls, const Pkcs11KeySelector& key,
                                            size_t max, const std::vector<CK_ATTRIBUTE>& extra) {
    std::string label = key.label.value_or("");
    std::vector<uint8_t> id = key.id.value_or(std::vector<uint8_t>());
    std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &cls, sizeof(cls)}};
    if (key.label) tmpl.push_back({CKA_LABEL, label.data(), static_cast<CK_ULONG>(label.size())});
    if (key.id) tmpl.push_back({CKA_ID, id.data(), static_cast<CK_ULONG>(id.size())});
    tmpl.insert(tmpl.end(), extra.begin(), extra.end());
    Check(f->C_FindObjectsInit(handle_, tmpl.data(), static_cast<CK_ULONG>(tmpl.size())), "C_FindObjectsInit");
    // C_FindObjectsFinal must follow every successful init, or the session
    // stays in a find operation and every later call fails.
    struct Finaliser {
      CK_FUNCTION_LIST* f;
      CK_SESSION_HANDLE h;
      ~Finaliser() { f->C_FindObjectsFinal(h); }
    } finaliser{f, handle_};
    // Up to max + 1, so that callers can tell "exactly max" from "more". A
    // token may hand out fewer objects per call than asked for: keep asking.
    std::vector<CK_OBJECT_HANDLE> found;
    CK_OBJECT_HANDLE batch[8];
    while (found.size() <= max) {
      const size_t want = std::min(max + 1 - found.size(), sizeof(batch) / sizeof(batch[0]));
      CK_ULONG count = 0;
      Check(f->C_FindObjects(handle_, batch, static_cast<CK_ULONG>(want), &count), "C_FindObjects");
      if (count == 0) break;
      found.insert(found.end(), batch, batch + std::min<size_t>(count, want));
    }
    return found;
  }

  // Reads a variable-length attribute in the specification's two passes (the
  // length, then the value); nullopt when the object lacks it or it is
  // sensitive. `check` decides what a failure means (CheckObject where a stale
  // handle should lead to a re-open).
  std::optional<std::vector<uint8_t>> GetBytes(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                                               void (*check)(CK_RV, const char*) = Check) {
    // The value can grow between the two passes (an object rewritten by
    // another process): CKR_BUFFER_TOO_SMALL then, and the length is asked again.
    for (int attempt = 0;; ++attempt) {
      CK_ATTRIBUTE a{type, nullptr, 0};
      CK_RV rv = f->C_GetAttributeValue(handle_, obj, &a, 1);
      if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) return std::nullopt;
      // The return value first: a failing token also marks the length
      // unavailable, and that must not read as "the object lacks it".
      check(rv, "C_GetAttributeValue");
      if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
      std::vector<uint8_t> value(a.ulValueLen);
      a.pValue = value.data();
      rv = f->C_GetAttributeValue(handle_, obj, &a, 1);
      if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) return std::nullopt;
      if (rv == CKR_BUFFER_TOO_SMALL && attempt < 2) continue;
      check(rv, "C_GetAttributeValue");
      value.resize(a.ulValueLen);
      return value;
    }
  }

  std::optional<CK_ULONG> GetUlong(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                                   void (*check)(CK_RV, const char*) = Check) {
    CK_ULONG value = 0;
    CK_ATTRIBUTE a{type, &value, sizeof(value)};
    const CK_RV rv = f->C_GetAttributeValue(handle_, obj, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) return std::nullopt;
    check(rv, "C_GetAttributeValue");
    if (a.ulValueLen != sizeof(value)) return std::nullopt;
    return value;
  }

  // An attribute the object lacks is false; a failing token is an error, not
  // "false" (CKA_ALWAYS_AUTHENTICATE read as false would be a silent lie).
  bool GetBool(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type) {
    CK_BBOOL value = CK_FALSE;
    CK_ATTRIBUTE a{type, &value, sizeof(value)};
    const CK_RV rv = f->C_GetAttributeValue(handle_, obj, &a, 1);
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE) return false;
    Check(rv, "C_GetAttributeValue");
    return a.ulValueLen == sizeof(value) && value == CK_TRUE;
  }

  // The private key `priv` plus its public half: checks the key is EC P-256
  // or RSA of at least 2048 bits and reads the public key. The caller proves
  // the two halves belong together by signing once (the public object is only
  // found by sharing CKA_ID, which nothing on the token enforces).
  Pkcs11KeyInfo Describe(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE priv, const Pkcs11KeySelector& key) {
    const std::string what = "the key with " + DescribeSelector(key);
    const auto key_type = GetUlong(f, priv, CKA_KEY_TYPE);
    if (key_type && *key_type != CKK_EC && *key_type != CKK_RSA) {
      const char* kind = *key_type == CKK_DSA ? "a DSA" : "an unsupported";
      throw KeyError(ErrorCode::kUnsupportedCurve,
                     what + " is " + kind + " key; credport needs an EC P-256 or an RSA key");
    }
    Pkcs11KeyInfo info;
    info.handle = priv;
    info.label = [&] {
      const auto v = GetBytes(f, priv, CKA_LABEL);
      return v ? std::string(v->begin(), v->end()) : std::string();
    }();
    info.id = GetBytes(f, priv, CKA_ID).value_or(std::vector<uint8_t>());
    info.always_authenticate = GetBool(f, priv, CKA_ALWAYS_AUTHENTICATE);

    // The public object shares the private key's CKA_ID (the convention every
    // tool follows); without an id, its label.
    Pkcs11KeySelector pub_sel;
    if (!info.id.empty()) {
      pub_sel.id = info.id;
    } else {
      pub_sel.label = info.label;
    }
    const auto pubs = FindKeys(f, CKO_PUBLIC_KEY, pub_sel, 1);
    const CK_OBJECT_HANDLE pub = pubs.empty() ? priv : pubs[0];
    if (key_type && *key_type == CKK_RSA) {
      key_types_[priv] = CKK_RSA;
      info.type = Pkcs11KeyType::kRsa;
      DescribeRsa(f, priv, pub, what, &info);
      return info;
    }
    key_types_[priv] = CKK_EC;

    auto params = GetBytes(f, priv, CKA_EC_PARAMS);
    if (!params && !pubs.empty()) params = GetBytes(f, pub, CKA_EC_PARAMS);
    if (!params) throw KeyError(ErrorCode::kBackendError, "the token does not say which curve " + what + " uses");
    if (!IsP256(*params)) {
      throw KeyError(ErrorCode::kUnsupportedCurve, what + " is on " + CurveName(*params) + "; credport needs P-256");
    }
    // Some tokens keep no public key object but expose CKA_EC_POINT on the
    // private key, so that is tried when there is no public object.
    const auto point = GetBytes(f, pub, CKA_EC_POINT);
    if (!point) {
      throw KeyError(ErrorCode::kKeyNotFound,
                     "the token has no public key for " + what + " (no public key object with its CKA_ID)");
    }
    std::string why;
    if (!der::UnwrapEcPoint(point->data(), point->size(), &info.public_point, &why)) {
      throw KeyError(ErrorCode::kBackendError, "cannot read the public key of " + what + ": " + why);
    }
    return info;
  }

  // An RSA private key carries its own modulus and exponent on every token we
  // know; the public object is the fallback.
  void DescribeRsa(CK_FUNCTION_LIST* f, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub, const std::string& what,
                   Pkcs11KeyInfo* info) {
    auto modulus = GetBytes(f, priv, CKA_MODULUS);
    auto exponent = GetBytes(f, priv, CKA_PUBLIC_EXPONENT);
    if (!modulus || modulus->empty()) modulus = GetBytes(f, pub, CKA_MODULUS);
    if (!exponent || exponent->empty()) exponent = GetBytes(f, pub, CKA_PUBLIC_EXPONENT);
    if (!modulus || modulus->empty() || !exponent || exponent->empty()) {
      throw KeyError(ErrorCode::kKeyNotFound, "the token has no readable public key (modulus and exponent) for " + what);
    }
    size_t leading = 0;
    while (leading < modulus->size() && (*modulus)[leading] == 0) ++leading;
    modulus->erase(modulus->begin(), modulus->begin() + static_cast<std::ptrdiff_t>(leading));
    if (modulus->size() * 8 < kMinRsaBits) {
      throw KeyError(ErrorCode::kUnsupportedCurve, what + " is an RSA key of about " +
                                                       std::to_string(modulus->size() * 8) +
                                                       " bits; credport needs at least 2048");
    }
    info->modulus = std::move(*modulus);
    info->public_exponent = std::move(*exponent);
  }

  std::mutex mu_;
  std::map<CK_OBJECT_HANDLE, CK_KEY_TYPE> key_types_;  // guarded by mu_
  bool no_sha256_rsa_ = false;                         // CKM_SHA256_RSA_PKCS refused once; guarded by mu_
  std::shared_ptr<Module> module_;  // null once closed
  const CK_SLOT_ID slot_;
  const CK_SESSION_HANDLE handle_;
};

}  // namespace

std::vector<Pkcs11SlotInfo> Pkcs11ListSlots(const std::string& module_path) {
  const auto module = AcquireModule(module_path);
  return ListSlots(*module);
}

std::shared_ptr<Pkcs11Session> Pkcs11OpenSession(const std::string& module_path, const Pkcs11TokenSelector& sel,
                                                 bool rescan) {
  auto module = AcquireModule(module_path);
  if (rescan) RescanModule(*module);
  auto slots = ListSlots(*module);
  const auto any_match = [&sel](const std::vector<Pkcs11SlotInfo>& list) {
    return std::any_of(list.begin(), list.end(), [&sel](const Pkcs11SlotInfo& s) { return s.token && Matches(sel, *s.token); });
  };
  if (!any_match(slots) && RescanModule(*module)) slots = ListSlots(*module);
  std::vector<const Pkcs11TokenInfo*> matches;
  std::string present;
  for (const auto& slot : slots) {
    if (!slot.token_error.empty()) {
      present += (present.empty() ? "" : ", ") + std::string("an unreadable token (slot ") +
                 std::to_string(slot.slot_id) + ": " + slot.token_error + ")";
    }
    if (!slot.token) continue;
    present += (present.empty() ? "" : ", ") + DescribeToken(*slot.token);
    if (Matches(sel, *slot.token)) matches.push_back(&*slot.token);
  }
  if (matches.empty()) {
    throw KeyError(ErrorCode::kTokenNotPresent,
                   "no token with " + DescribeTokenSelector(sel) + " in PKCS#11 module " + module_path +
                       (present.empty() ? "; no token is present" : "; tokens present: " + present));
  }
  if (matches.size() > 1) {
    throw KeyError(ErrorCode::kInvalidArgument, std::to_string(matches.size()) + " tokens match " +
                                                    DescribeTokenSelector(sel) + " (" + present +
                                                    "); choose one by label, serial or slot");
  }
  const CK_SLOT_ID slot = matches[0]->slot_id;
  CK_SESSION_HANDLE handle = 0;
  CK_RV rv;
  {
    CallGuard call(*module);
    rv = module->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &handle);
    if (rv == CKR_TOKEN_WRITE_PROTECTED) {
      // Signing needs no write access; creating or deleting keys will say so.
      rv = module->f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &handle);
    }
  }
  CheckModule(rv, "C_OpenSession");
  return std::make_shared<SessionImpl>(std::move(module), slot, handle);
}

void Pkcs11ReleaseInBackground(std::shared_ptr<Pkcs11Session> session) {
  if (!session) return;
  // One thread for the whole process, started on first use; deliberately
  // never destroyed (like Modules()), so that exit does not race it.
  struct Reaper {
    std::mutex mu;
    std::condition_variable ready;
    std::deque<std::shared_ptr<Pkcs11Session>> queue;
    bool started = false;
  };
  static auto* reaper = new Reaper();
  std::lock_guard<std::mutex> lock(reaper->mu);
  reaper->queue.push_back(std::move(session));
  if (!reaper->started) {
    reaper->started = true;
    std::thread([] {
      for (;;) {
        std::shared_ptr<Pkcs11Session> next;
        {
          std::unique_lock<std::mutex> wait(reaper->mu);
          reaper->ready.wait(wait, [] { return !reaper->queue.empty(); });
          next = std::move(reaper->queue.front());
          reaper->queue.pop_front();
        }
        next.reset();  // the last reference closes the session here
      }
    }).detach();
  }
  reaper->ready.notify_one();
}

}  // namespace credport
