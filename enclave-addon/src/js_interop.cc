#include "js_interop.h"

#include <cstring>

namespace credport {
namespace js {

namespace {

[[noreturn]] void Invalid(const std::string& message) { throw KeyError(ErrorCode::kInvalidArgument, message); }

bool Missing(const Napi::Value& value) { return value.IsUndefined() || value.IsNull(); }

}  // namespace

Napi::Error ToJsError(Napi::Env env, const KeyError& error) {
  Napi::Error e = Napi::Error::New(env, error.what());
  e.Set("code", Napi::String::New(env, ErrorCodeName(error.code())));
  if (error.ckr()) e.Set("ckr", Napi::Number::New(env, static_cast<double>(*error.ckr())));
  if (error.os_status()) e.Set("osStatus", Napi::Number::New(env, *error.os_status()));
  return e;
}

std::string ArgumentName(const char* prefix, const char* key) { return std::string(prefix) + "." + key; }

Napi::Object Object(const Napi::Value& value, const char* name) {
  if (!value.IsObject()) Invalid(std::string(name) + " must be an object");
  return value.As<Napi::Object>();
}

std::string String(const Napi::Value& value, const char* name, size_t max_bytes) {
  if (!value.IsString()) Invalid(std::string(name) + " must be a string");
  std::string s = value.As<Napi::String>().Utf8Value();
  if (s.empty()) Invalid(std::string(name) + " must not be empty");
  if (s.size() > max_bytes) Invalid(std::string(name) + " is longer than " + std::to_string(max_bytes) + " bytes");
  if (s.find('\0') != std::string::npos) Invalid(std::string(name) + " must not contain NUL characters");
  return s;
}

std::optional<std::string> OptionalString(const Napi::Object& object, const char* key, size_t max_bytes) {
  const Napi::Value v = object.Get(key);
  if (Missing(v)) return std::nullopt;
  return String(v, key, max_bytes);
}

std::vector<uint8_t> Bytes(const Napi::Value& value, const char* name, size_t min_bytes, size_t max_bytes) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Invalid(std::string(name) + " must be a Uint8Array or Buffer");
  }
  const auto array = value.As<Napi::Uint8Array>();
  const size_t n = array.ByteLength();
  if (n < min_bytes || n > max_bytes) {
    Invalid(std::string(name) + (min_bytes == max_bytes ? " must be " + std::to_string(min_bytes) + " bytes"
                                                        : " must be " + std::to_string(min_bytes) + " to " +
                                                              std::to_string(max_bytes) + " bytes"));
  }
  return std::vector<uint8_t>(array.Data(), array.Data() + n);
}

std::optional<std::vector<uint8_t>> OptionalBytes(const Napi::Object& object, const char* key, size_t max_bytes) {
  const Napi::Value v = object.Get(key);
  if (Missing(v)) return std::nullopt;
  return Bytes(v, key, 1, max_bytes);
}

SecretBytes Secret(const Napi::Value& value, const char* name, size_t max_bytes) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Invalid(std::string(name) + " must be a Uint8Array or Buffer");
  }
  const auto array = value.As<Napi::Uint8Array>();
  // The length may be mentioned; the contents never are.
  if (array.ByteLength() > max_bytes) Invalid(std::string(name) + " is too long");
  return SecretBytes(array.Data(), array.ByteLength());
}

bool Bool(const Napi::Value& value, const char* name) {
  if (!value.IsBoolean()) Invalid(std::string(name) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::optional<uint64_t> OptionalIndex(const Napi::Object& object, const char* key) {
  const Napi::Value v = object.Get(key);
  if (Missing(v)) return std::nullopt;
  if (v.IsBigInt()) {
    // Slot ids beyond 2^53 come out of the addon as BigInts and go back in as such.
    bool lossless = false;
    const uint64_t n = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) Invalid(std::string(key) + " must be a non-negative 64-bit integer");
    return n;
  }
  if (!v.IsNumber()) Invalid(std::string(key) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || static_cast<double>(static_cast<uint64_t>(d)) != d) {
    Invalid(std::string(key) + " must be a non-negative integer");
  }
  return static_cast<uint64_t>(d);
}

uint64_t Handle(const Napi::Value& value, const char* name) {
  if (!value.IsBigInt()) Invalid(std::string(name) + " must be a bigint");
  bool lossless = false;
  const uint64_t h = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) Invalid(std::string(name) + " is not a valid handle");
  return h;
}

Napi::Buffer<uint8_t> ToBuffer(Napi::Env env, const std::vector<uint8_t>& bytes) {
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

}  // namespace js
}  // namespace credport
