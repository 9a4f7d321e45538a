// A test-only PKCS#11 module that behaves like a slow token: it forwards
// every call to a real module (SLOW_PKCS11_TARGET, e.g. SoftHSM2) but makes
// each C_Sign take SLOW_PKCS11_DELAY_MS longer, as a smart card or a TPM does.
// test/pkcs11-concurrency.test.ts compiles it to check that signatures run off
// the JavaScript thread, with the token's time spent sleeping rather than
// computing so that the check holds on a busy machine. It uses the addon's
// own ABI header; it is never part of the addon.
#include <dlfcn.h>
#include <time.h>

#include <cstdlib>
#include <mutex>

#include "pkcs11_abi.h"

using namespace credport::p11;  // NOLINT

namespace {

CK_FUNCTION_LIST g_list;
CK_FUNCTION_LIST* g_target = nullptr;
long g_delay_ms = 0;
std::once_flag g_once;

CK_RV SlowSign(CK_SESSION_HANDLE session, CK_BYTE* data, CK_ULONG len, CK_BYTE* sig, CK_ULONG* sig_len) {
  if (sig != nullptr && g_delay_ms > 0) {
    struct timespec ts = {g_delay_ms / 1000, (g_delay_ms % 1000) * 1000000L};
    nanosleep(&ts, nullptr);
  }
  return g_target->C_Sign(session, data, len, sig, sig_len);
}

void Load() {
  const char* target = std::getenv("SLOW_PKCS11_TARGET");
  const char* delay = std::getenv("SLOW_PKCS11_DELAY_MS");
  g_delay_ms = delay != nullptr ? std::atol(delay) : 0;
  if (target == nullptr) return;
  void* lib = dlopen(target, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return;
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
  if (get == nullptr || get(&g_target) != CKR_OK || g_target == nullptr) return;
  g_list = *g_target;
  g_list.C_Sign = SlowSign;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST** out) {
  std::call_once(g_once, Load);
  if (g_target == nullptr || out == nullptr) return CKR_GENERAL_ERROR;
  *out = &g_list;
  return CKR_OK;
}
