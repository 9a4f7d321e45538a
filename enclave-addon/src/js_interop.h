// Everything that crosses the JavaScript boundary, in one place: argument
// checks (each failure is an INVALID_ARGUMENT KeyError naming the argument)
// and the conversion of a KeyError into a JavaScript Error with `code`,
// `ckr` and `osStatus`.
#ifndef CREDPORT_JS_INTEROP_H_
#define CREDPORT_JS_INTEROP_H_

#include <napi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "key_store.h"

namespace credport {
namespace js {

Napi::Error ToJsError(Napi::Env env, const KeyError& error);

Napi::Object Object(const Napi::Value& value, const char* name);
// Non-empty, at most max_bytes of UTF-8, no NUL (it would cut C strings short).
std::string String(const Napi::Value& value, const char* name, size_t max_bytes);
// Missing (undefined or null) -> nullopt; otherwise as String().
std::optional<std::string> OptionalString(const Napi::Object& object, const char* key, size_t max_bytes);
// A Uint8Array (Buffer included) of min..max bytes, copied.
std::vector<uint8_t> Bytes(const Napi::Value& value, const char* name, size_t min_bytes, size_t max_bytes);
std::optional<std::vector<uint8_t>> OptionalBytes(const Napi::Object& object, const char* key, size_t max_bytes);
// Like Bytes() but the copy is zeroed when it is dropped. May be empty.
SecretBytes Secret(const Napi::Value& value, const char* name, size_t max_bytes);
bool Bool(const Napi::Value& value, const char* name);
// A non-negative safe integer.
std::optional<uint64_t> OptionalIndex(const Napi::Object& object, const char* key);
// An object handle as a BigInt (handles are unsigned long, wider than a safe Number).
uint64_t Handle(const Napi::Value& value, const char* name);
std::string ArgumentName(const char* prefix, const char* key);

Napi::Buffer<uint8_t> ToBuffer(Napi::Env env, const std::vector<uint8_t>& bytes);

}  // namespace js
}  // namespace credport

#endif  // CREDPORT_JS_INTEROP_H_
