// The whole JavaScript-visible surface of credport_enclave. Typed for the
// daemon in daemon/keys/native/addon.ts; keep the two in step.
//
//   pkcs11.listSlots(modulePath)                       -> Promise<SlotInfo[]>
//   pkcs11.openSession(modulePath, tokenSelector, {rescan?}) -> Promise<Pkcs11Session>
//     session.token() / login(pin) -> alreadyLoggedIn / logout() / findKey(sel)
//     session.generateKey({label, id, type?, bits?}) / deleteKey(sel) / readCertificates(sel) / storeCertificate(sel, der, subject)
//     session.sign(handle, digest, data?) / close()   (all Promises, run one at a time per session)
//   secureEnclave.available, secureEnclave.reason      (compiled in or not)
//   secureEnclave.probe()                              -> Promise<{available, reason}>
//   secureEnclave.create(userPresence)                 -> Promise<SecureEnclaveKey>
//   secureEnclave.open(tokenObject, publicKey, userPresence) -> Promise<SecureEnclaveKey>
//     key.info() (sync, cached: {publicKey, tokenObject, userPresence}) / key.sign(digest) -> Promise<Buffer>
//   der.toRaw(der, fieldSize) / der.fromRaw(raw) / der.unwrapEcPoint(value)   (sync)
//   errors.codes, errors.fromCkr(rv, stage) / fromOsStatus(status) / fromLocalAuth(code)
//     / fromCryptoTokenKit(code)
//     (the mapping tables, exposed so that tests check them on every platform)
//   socketOwner(family, localAddress, localPort, remoteAddress, remotePort)
//     -> {uid, inode, state, pid?} | null   (sync; throws an Error with an errno `code`)
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "async.h"
#include "der.h"
#include "errors.h"
#include "js_interop.h"
#include "key_store.h"
#include "peer_lookup.h"

namespace credport {

namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxLabel = 255;
constexpr size_t kMaxTokenLabel = 32;  // CK_TOKEN_INFO.label is 32 bytes
constexpr size_t kMaxTokenSerial = 16;
constexpr size_t kMaxTokenModel = 16;
constexpr size_t kMaxId = 255;
constexpr size_t kMaxPin = 256;
constexpr size_t kDigestSize = 32;
constexpr size_t kMaxSignedData = 1 << 20;  // a JWT or a CSR is a few KiB
constexpr uint64_t kMaxSafeInteger = 9007199254740991ULL;  // 2^53 - 1

// A slot id as a Number when a double holds it exactly, else as a BigInt:
// modules may use any CK_ULONG (p11-kit-proxy and some HSMs use large ones).
Napi::Value SlotIdToJs(Napi::Env env, uint64_t id) {
  if (id <= kMaxSafeInteger) return Napi::Number::New(env, static_cast<double>(id));
  return Napi::BigInt::New(env, id);
}
// A Secure Enclave token object id is a few hundred bytes.
constexpr size_t kMaxTokenObject = 16 * 1024;
constexpr size_t kP256Point = 65;

struct Constructors {
  Napi::FunctionReference session;
  Napi::FunctionReference enclave_key;
};

// Runs argument parsing; an invalid argument becomes a rejected Promise
// (like every other failure) rather than a synchronous throw.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const KeyError& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(js::ToJsError(env, e).Value());
    return deferred.Promise();
  }
}

// Sync functions throw instead.
template <typename Fn>
Napi::Value GuardSync(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const KeyError& e) {
    throw js::ToJsError(env, e);
  }
}

Napi::Object TokenToJs(Napi::Env env, const Pkcs11TokenInfo& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("slotId", SlotIdToJs(env, t.slot_id));
  o.Set("label", t.label);
  o.Set("manufacturer", t.manufacturer);
  o.Set("model", t.model);
  o.Set("serial", t.serial);
  o.Set("initialized", t.initialized);
  o.Set("loginRequired", t.login_required);
  o.Set("protectedAuthenticationPath", t.protected_authentication_path);
  o.Set("writeProtected", t.write_protected);
  o.Set("pinCountLow", t.pin_count_low);
  o.Set("pinFinalTry", t.pin_final_try);
  o.Set("pinLocked", t.pin_locked);
  return o;
}

Napi::Object SlotToJs(Napi::Env env, const Pkcs11SlotInfo& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("slotId", SlotIdToJs(env, s.slot_id));
  o.Set("description", s.description);
  o.Set("manufacturer", s.manufacturer);
  o.Set("tokenPresent", s.token_present);
  o.Set("removable", s.removable);
  o.Set("hardware", s.hardware);
  if (s.token) o.Set("token", TokenToJs(env, *s.token));
  if (!s.token_error.empty()) o.Set("tokenError", s.token_error);
  return o;
}

Napi::Object KeyToJs(Napi::Env env, const Pkcs11KeyInfo& k) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", Napi::BigInt::New(env, k.handle));
  o.Set("label", k.label);
  o.Set("id", js::ToBuffer(env, k.id));
  if (k.type == Pkcs11KeyType::kRsa) {
    o.Set("keyType", "rsa");
    o.Set("modulus", js::ToBuffer(env, k.modulus));
    o.Set("publicExponent", js::ToBuffer(env, k.public_exponent));
  } else {
    o.Set("keyType", "ec");
    o.Set("publicKey", js::ToBuffer(env, k.public_point));
  }
  o.Set("alwaysAuthenticate", k.always_authenticate);
  return o;
}

Napi::Object CertificateToJs(Napi::Env env, const Pkcs11CertificateInfo& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("label", c.label);
  o.Set("id", js::ToBuffer(env, c.id));
  o.Set("value", js::ToBuffer(env, c.value));
  return o;
}

Pkcs11KeySelector KeySelectorFromJs(const Napi::Value& value, const char* name = "key") {
  const Napi::Object o = js::Object(value, name);
  Pkcs11KeySelector sel;
  sel.label = js::OptionalString(o, "label", kMaxLabel);
  sel.id = js::OptionalBytes(o, "id", kMaxId);
  if (!sel.label && !sel.id) throw KeyError(ErrorCode::kInvalidArgument, std::string(name) + " needs a label, an id or both");
  return sel;
}

Pkcs11TokenSelector TokenSelectorFromJs(const Napi::Value& value) {
  const Napi::Object o = js::Object(value, "token");
  Pkcs11TokenSelector sel;
  sel.label = js::OptionalString(o, "label", kMaxTokenLabel);
  sel.serial = js::OptionalString(o, "serial", kMaxTokenSerial);
  sel.manufacturer = js::OptionalString(o, "manufacturer", kMaxTokenLabel);
  sel.model = js::OptionalString(o, "model", kMaxTokenModel);
  sel.slot_id = js::OptionalIndex(o, "slotId");
  return sel;
}

// ---- Pkcs11Session ---------------------------------------------------------

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Pkcs11Session",
                       {
                           InstanceMethod<&SessionWrap::Token>("token"),
                           InstanceMethod<&SessionWrap::Login>("login"),
                           InstanceMethod<&SessionWrap::Logout>("logout"),
                           InstanceMethod<&SessionWrap::FindKey>("findKey"),
                           InstanceMethod<&SessionWrap::GenerateKey>("generateKey"),
                           InstanceMethod<&SessionWrap::DeleteKey>("deleteKey"),
                           InstanceMethod<&SessionWrap::ReadCertificates>("readCertificates"),
                           InstanceMethod<&SessionWrap::StoreCertificate>("storeCertificate"),
                           InstanceMethod<&SessionWrap::Sign>("sign"),
                           InstanceMethod<&SessionWrap::Close>("close"),
                       });
  }

  // Only the addon creates sessions: it passes an External as a marker.
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "Pkcs11Session is created by pkcs11.openSession()");
    }
  }

  // Collected by the garbage collector without close(): C_CloseSession may
  // block, so the session is closed on a background thread.
  ~SessionWrap() override { Pkcs11ReleaseInBackground(std::move(session_)); }

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<Pkcs11Session> session) {
    Napi::Object obj = env.GetInstanceData<Constructors>()->session.New({Napi::External<void>::New(env, nullptr)});
    Unwrap(obj)->session_ = std::move(session);
    return obj;
  }

 private:
  template <typename T>
  Napi::Value Run(Napi::Env env, const char* name, typename PromiseWorker<T>::Work work,
                  typename PromiseWorker<T>::Convert convert) {
    return PromiseWorker<T>::Run(env, name, std::move(work), std::move(convert), queue_);
  }

  std::shared_ptr<Pkcs11Session> Session() const {
    if (!session_) throw KeyError(ErrorCode::kSessionInvalid, "this Pkcs11Session has no session");
    return session_;
  }

  Napi::Value Token(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      return Run<Pkcs11TokenInfo>(
          info.Env(), "credport:pkcs11.token", [s] { return s->Token(); },
          [](Napi::Env env, Pkcs11TokenInfo& t) -> Napi::Value { return TokenToJs(env, t); });
    });
  }

  Napi::Value Login(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      // Held in a shared_ptr so the std::function holding it stays copyable;
      // the bytes are zeroed by Login and again when the holder goes.
      auto pin = std::make_shared<SecretBytes>(js::Secret(info[0], "pin", kMaxPin));
      return Run<bool>(
          info.Env(), "credport:pkcs11.login", [s, pin] { return s->Login(std::move(*pin)); },
          [](Napi::Env env, bool& already) -> Napi::Value { return Napi::Boolean::New(env, already); });
    });
  }

  Napi::Value Logout(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      return Run<Done>(
          info.Env(), "credport:pkcs11.logout",
          [s] {
            s->Logout();
            return Done{};
          },
          [](Napi::Env env, Done&) -> Napi::Value { return env.Undefined(); });
    });
  }

  Napi::Value FindKey(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      auto sel = KeySelectorFromJs(info[0]);
      return Run<Pkcs11KeyInfo>(
          info.Env(), "credport:pkcs11.findKey", [s, sel] { return s->FindKey(sel); },
          [](Napi::Env env, Pkcs11KeyInfo& k) -> Napi::Value { return KeyToJs(env, k); });
    });
  }

  Napi::Value GenerateKey(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      const Napi::Object o = js::Object(info[0], "key");
      const std::string label = js::String(o.Get("label"), "key.label", kMaxLabel);
      const std::vector<uint8_t> id = js::Bytes(o.Get("id"), "key.id", 1, kMaxId);
      Pkcs11KeySpec spec;
      const auto type = js::OptionalString(o, "type", 8);
      if (type && *type != "ec" && *type != "rsa") {
        throw KeyError(ErrorCode::kInvalidArgument, "key.type must be \"ec\" or \"rsa\"");
      }
      if (type && *type == "rsa") {
        spec.type = Pkcs11KeyType::kRsa;
        const auto bits = js::OptionalIndex(o, "bits");
        spec.bits = static_cast<uint32_t>(bits.value_or(2048) > 65536 ? 0 : bits.value_or(2048));
      } else if (!o.Get("bits").IsUndefined()) {
        throw KeyError(ErrorCode::kInvalidArgument, "key.bits is for RSA keys only");
      }
      return Run<Pkcs11KeyInfo>(
          info.Env(), "credport:pkcs11.generateKey", [s, label, id, spec] { return s->GenerateKey(label, id, spec); },
          [](Napi::Env env, Pkcs11KeyInfo& k) -> Napi::Value { return KeyToJs(env, k); });
    });
  }

  Napi::Value DeleteKey(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      auto sel = KeySelectorFromJs(info[0]);
      return Run<size_t>(
          info.Env(), "credport:pkcs11.deleteKey", [s, sel] { return s->DeleteKey(sel); },
          [](Napi::Env env, size_t& n) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(n)); });
    });
  }

  Napi::Value ReadCertificates(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      auto sel = KeySelectorFromJs(info[0], "certificate");
      return Run<std::vector<Pkcs11CertificateInfo>>(
          info.Env(), "credport:pkcs11.readCertificates", [s, sel] { return s->ReadCertificates(sel); },
          [](Napi::Env env, std::vector<Pkcs11CertificateInfo>& certs) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, certs.size());
            for (size_t i = 0; i < certs.size(); ++i) a.Set(static_cast<uint32_t>(i), CertificateToJs(env, certs[i]));
            return a;
          });
    });
  }

  // storeCertificate({id, label}, der, subjectDer) -> Promise<number of old certificates destroyed>
  Napi::Value StoreCertificate(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      const Napi::Object o = js::Object(info[0], "certificate");
      const std::vector<uint8_t> id = js::Bytes(o.Get("id"), "certificate.id", 1, kMaxId);
      const std::string label = js::String(o.Get("label"), "certificate.label", kMaxLabel);
      const std::vector<uint8_t> der = js::Bytes(info[1], "der", 16, 64 * 1024);
      const std::vector<uint8_t> subject = js::Bytes(info[2], "subject", 2, 4096);
      return Run<size_t>(
          info.Env(), "credport:pkcs11.storeCertificate",
          [s, id, label, der, subject] { return s->StoreCertificate(id, label, der, subject); },
          [](Napi::Env env, size_t& n) -> Napi::Value { return Napi::Number::New(env, static_cast<double>(n)); });
    });
  }

  Napi::Value Sign(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      const uint64_t handle = js::Handle(info[0], "handle");
      auto digest = js::Bytes(info[1], "digest", kDigestSize, kDigestSize);
      std::optional<std::vector<uint8_t>> data;
      if (!info[2].IsUndefined()) data = js::Bytes(info[2], "data", 0, kMaxSignedData);
      return Run<std::vector<uint8_t>>(
          info.Env(), "credport:pkcs11.sign", [s, handle, digest, data] { return s->Sign(handle, digest, data); },
          [](Napi::Env env, std::vector<uint8_t>& sig) -> Napi::Value { return js::ToBuffer(env, sig); });
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      auto s = Session();
      return Run<Done>(
          info.Env(), "credport:pkcs11.close",
          [s] {
            s->Close();
            return Done{};
          },
          [](Napi::Env env, Done&) -> Napi::Value { return env.Undefined(); });
    });
  }

  std::shared_ptr<Pkcs11Session> session_;
  std::shared_ptr<SerialQueue> queue_ = std::make_shared<SerialQueue>();
};

// ---- SecureEnclaveKey ------------------------------------------------------

class EnclaveKeyWrap : public Napi::ObjectWrap<EnclaveKeyWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SecureEnclaveKey",
                       {
                           InstanceMethod<&EnclaveKeyWrap::Info>("info"),
                           InstanceMethod<&EnclaveKeyWrap::Sign>("sign"),
                       });
  }

  explicit EnclaveKeyWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EnclaveKeyWrap>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw Napi::TypeError::New(info.Env(), "SecureEnclaveKey is created by secureEnclave.open() or create()");
    }
  }

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<SecureEnclaveKey> key) {
    Napi::Object obj = env.GetInstanceData<Constructors>()->enclave_key.New({Napi::External<void>::New(env, nullptr)});
    EnclaveKeyWrap* wrap = Unwrap(obj);
    wrap->info_ = key->Info();
    wrap->key_ = std::move(key);
    return obj;
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("publicKey", js::ToBuffer(env, info_.public_point));
    o.Set("tokenObject", js::ToBuffer(env, info_.token_object));
    o.Set("userPresence", info_.user_presence);
    return o;
  }

  Napi::Value Sign(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      if (!key_) throw KeyError(ErrorCode::kSessionInvalid, "this SecureEnclaveKey has no key");
      auto k = key_;
      auto digest = js::Bytes(info[0], "digest", kDigestSize, kDigestSize);
      return PromiseWorker<std::vector<uint8_t>>::Run(
          info.Env(), "credport:secureEnclave.sign", [k, digest] { return k->Sign(digest); },
          [](Napi::Env env, std::vector<uint8_t>& sig) -> Napi::Value { return js::ToBuffer(env, sig); });
    });
  }

  std::shared_ptr<SecureEnclaveKey> key_;
  SecureEnclaveKeyInfo info_;
};

// ---- Module functions ------------------------------------------------------

Napi::Value ListSlots(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = js::String(info[0], "modulePath", kMaxPath);
    return PromiseWorker<std::vector<Pkcs11SlotInfo>>::Run(
        info.Env(), "credport:pkcs11.listSlots", [path] { return Pkcs11ListSlots(path); },
        [](Napi::Env env, std::vector<Pkcs11SlotInfo>& slots) -> Napi::Value {
          Napi::Array a = Napi::Array::New(env, slots.size());
          for (size_t i = 0; i < slots.size(); ++i) a.Set(static_cast<uint32_t>(i), SlotToJs(env, slots[i]));
          return a;
        });
  });
}

Napi::Value OpenSession(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const std::string path = js::String(info[0], "modulePath", kMaxPath);
    const Pkcs11TokenSelector sel = TokenSelectorFromJs(info[1]);
    bool rescan = false;
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsObject()) throw KeyError(ErrorCode::kInvalidArgument, "openSession options must be an object");
      const Napi::Value v = info[2].As<Napi::Object>().Get("rescan");
      if (!v.IsUndefined()) rescan = js::Bool(v, "rescan");
    }
    return PromiseWorker<std::shared_ptr<Pkcs11Session>>::Run(
        info.Env(), "credport:pkcs11.openSession", [path, sel, rescan] { return Pkcs11OpenSession(path, sel, rescan); },
        [](Napi::Env env, std::shared_ptr<Pkcs11Session>& s) -> Napi::Value {
          return SessionWrap::Wrap(env, std::move(s));
        });
  });
}

Napi::Value EnclaveProbe(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    struct Probe {
      bool available = false;
      std::string reason;
    };
    return PromiseWorker<Probe>::Run(
        info.Env(), "credport:secureEnclave.probe",
        [] {
          Probe p;
          p.available = SecureEnclaveProbe(&p.reason);
          return p;
        },
        [](Napi::Env env, Probe& p) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("available", p.available);
          o.Set("reason", p.reason);
          return o;
        });
  });
}

Napi::Value EnclaveCreate(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const bool user_presence = js::Bool(info[0], "userPresence");
    return PromiseWorker<std::shared_ptr<SecureEnclaveKey>>::Run(
        info.Env(), "credport:secureEnclave.create", [user_presence] { return SecureEnclaveCreate(user_presence); },
        [](Napi::Env env, std::shared_ptr<SecureEnclaveKey>& k) -> Napi::Value {
          return EnclaveKeyWrap::Wrap(env, std::move(k));
        });
  });
}

Napi::Value EnclaveOpen(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const auto token_object = js::Bytes(info[0], "tokenObject", 1, kMaxTokenObject);
    const auto public_point = js::Bytes(info[1], "publicKey", kP256Point, kP256Point);
    const bool user_presence = js::Bool(info[2], "userPresence");
    return PromiseWorker<std::shared_ptr<SecureEnclaveKey>>::Run(
        info.Env(), "credport:secureEnclave.open",
        [token_object, public_point, user_presence] {
          return SecureEnclaveOpen(token_object, public_point, user_presence);
        },
        [](Napi::Env env, std::shared_ptr<SecureEnclaveKey>& k) -> Napi::Value {
          return EnclaveKeyWrap::Wrap(env, std::move(k));
        });
  });
}

Napi::Value DerToRaw(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    const auto der = js::Bytes(info[0], "der", 1, 1024);
    if (!info[1].IsNumber()) throw KeyError(ErrorCode::kInvalidArgument, "fieldSize must be a number");
    const int64_t field = info[1].As<Napi::Number>().Int64Value();
    if (field < 1 || field > 66) throw KeyError(ErrorCode::kInvalidArgument, "fieldSize must be 1 to 66");
    std::vector<uint8_t> raw;
    std::string why;
    if (!der::EcdsaDerToRaw(der.data(), der.size(), static_cast<size_t>(field), &raw, &why)) {
      throw KeyError(ErrorCode::kInvalidArgument, "not a DER ECDSA signature: " + why);
    }
    return js::ToBuffer(info.Env(), raw);
  });
}

Napi::Value RawToDer(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    const auto raw = js::Bytes(info[0], "raw", 2, 132);
    std::vector<uint8_t> out;
    std::string why;
    if (!der::EcdsaRawToDer(raw.data(), raw.size(), &out, &why)) throw KeyError(ErrorCode::kInvalidArgument, why);
    return js::ToBuffer(info.Env(), out);
  });
}

Napi::Value UnwrapEcPoint(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    const auto value = js::Bytes(info[0], "value", 1, 1024);
    std::vector<uint8_t> point;
    std::string why;
    if (!der::UnwrapEcPoint(value.data(), value.size(), &point, &why)) {
      throw KeyError(ErrorCode::kInvalidArgument, why);
    }
    return js::ToBuffer(info.Env(), point);
  });
}

Napi::Value MappedToJs(Napi::Env env, const KeyError& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", ErrorCodeName(e.code()));
  o.Set("message", e.what());
  return o;
}

double NumberArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw KeyError(ErrorCode::kInvalidArgument, std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

Napi::Value FromCkr(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    const double rv = NumberArg(info, 0, "rv");
    const std::string stage = js::String(info[1], "stage", 16);
    if (stage != "module" && stage != "session") {
      throw KeyError(ErrorCode::kInvalidArgument, "stage must be \"module\" or \"session\"");
    }
    return MappedToJs(info.Env(), Pkcs11Error("C_Test", static_cast<unsigned long>(rv),
                                              stage == "session" ? CkrStage::kSession : CkrStage::kModule));
  });
}

Napi::Value FromOsStatus(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    return MappedToJs(info.Env(), OsStatusError("SecTest", static_cast<int32_t>(NumberArg(info, 0, "status")), ""));
  });
}

Napi::Value FromLocalAuth(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    return MappedToJs(info.Env(), LocalAuthError("SecTest", static_cast<long>(NumberArg(info, 0, "code")), ""));
  });
}

Napi::Value FromCryptoTokenKit(const Napi::CallbackInfo& info) {
  return GuardSync(info.Env(), [&]() -> Napi::Value {
    return MappedToJs(info.Env(), CryptoTokenKitError("SecTest", static_cast<long>(NumberArg(info, 0, "code")), ""));
  });
}

// ---- Peer lookup -----------------------------------------------------------

constexpr size_t kMaxAddress = 64;  // the longest IPv6 text form is 45

[[noreturn]] void InvalidPeerArgument(const std::string& message) { throw PeerLookupError("EINVAL", message); }

std::string AddressArg(const Napi::Value& value, const char* name) {
  if (!value.IsString()) InvalidPeerArgument(std::string(name) + " must be a string");
  std::string s = value.As<Napi::String>().Utf8Value();
  if (s.empty() || s.size() > kMaxAddress || s.find('\0') != std::string::npos) {
    InvalidPeerArgument(std::string(name) + " must be an IP address");
  }
  return s;
}

uint16_t PortArg(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) InvalidPeerArgument(std::string(name) + " must be a number");
  const double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 65535) || std::floor(d) != d) InvalidPeerArgument(std::string(name) + " must be 0 to 65535");
  return static_cast<uint16_t>(d);
}

Napi::Value SocketOwner(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    PeerQuery query;
    if (!info[0].IsNumber()) InvalidPeerArgument("family must be 4 or 6");
    const double family = info[0].As<Napi::Number>().DoubleValue();
    if (family != 4 && family != 6) InvalidPeerArgument("family must be 4 or 6");
    query.family = static_cast<int>(family);
    query.local.address = AddressArg(info[1], "localAddress");
    query.local.port = PortArg(info[2], "localPort");
    query.remote.address = AddressArg(info[3], "remoteAddress");
    query.remote.port = PortArg(info[4], "remotePort");

    const std::optional<SocketOwnerInfo> owner = FindSocketOwner(query);
    if (!owner) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("uid", Napi::Number::New(env, owner->uid));
    o.Set("inode", Napi::Number::New(env, static_cast<double>(owner->inode)));
    o.Set("state", Napi::Number::New(env, owner->state));
    if (owner->pid) o.Set("pid", Napi::Number::New(env, *owner->pid));
    return o;
  } catch (const PeerLookupError& e) {
    Napi::Error error = Napi::Error::New(env, e.what());
    error.Set("code", Napi::String::New(env, e.code()));
    throw error;
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* ctors = new Constructors();
  ctors->session = Napi::Persistent(SessionWrap::Define(env));
  ctors->enclave_key = Napi::Persistent(EnclaveKeyWrap::Define(env));
  env.SetInstanceData<Constructors>(ctors);  // freed by Node with the environment (worker threads too)

  Napi::Object pkcs11 = Napi::Object::New(env);
  pkcs11.Set("listSlots", Napi::Function::New(env, ListSlots, "listSlots"));
  pkcs11.Set("openSession", Napi::Function::New(env, OpenSession, "openSession"));
  exports.Set("pkcs11", pkcs11);

  Napi::Object enclave = Napi::Object::New(env);
  std::string reason;
  const bool available = SecureEnclaveAvailable(&reason);
  enclave.Set("available", available);
  enclave.Set("reason", reason);
  enclave.Set("probe", Napi::Function::New(env, EnclaveProbe, "probe"));
  enclave.Set("create", Napi::Function::New(env, EnclaveCreate, "create"));
  enclave.Set("open", Napi::Function::New(env, EnclaveOpen, "open"));
  exports.Set("secureEnclave", enclave);

  Napi::Object der_fns = Napi::Object::New(env);
  der_fns.Set("toRaw", Napi::Function::New(env, DerToRaw, "toRaw"));
  der_fns.Set("fromRaw", Napi::Function::New(env, RawToDer, "fromRaw"));
  der_fns.Set("unwrapEcPoint", Napi::Function::New(env, UnwrapEcPoint, "unwrapEcPoint"));
  exports.Set("der", der_fns);

  Napi::Object errors = Napi::Object::New(env);
  Napi::Array codes = Napi::Array::New(env);
  for (int c = 0; c <= static_cast<int>(kLastErrorCode); ++c) {
    codes.Set(static_cast<uint32_t>(c), ErrorCodeName(static_cast<ErrorCode>(c)));
  }
  errors.Set("codes", codes);
  errors.Set("fromCkr", Napi::Function::New(env, FromCkr, "fromCkr"));
  errors.Set("fromOsStatus", Napi::Function::New(env, FromOsStatus, "fromOsStatus"));
  errors.Set("fromLocalAuth", Napi::Function::New(env, FromLocalAuth, "fromLocalAuth"));
  errors.Set("fromCryptoTokenKit", Napi::Function::New(env, FromCryptoTokenKit, "fromCryptoTokenKit"));
  exports.Set("errors", errors);

  exports.Set("socketOwner", Napi::Function::New(env, SocketOwner, "socketOwner"));
  return exports;
}

}  // namespace

}  // namespace credport

// NODE_API_MODULE pastes the name into an identifier, so it must be unqualified.
static Napi::Object InitCredportEnclave(Napi::Env env, Napi::Object exports) { return credport::Init(env, exports); }

NODE_API_MODULE(credport_enclave, InitCredportEnclave)
