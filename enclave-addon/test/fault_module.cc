// A test-only PKCS#11 module that injects the faults real tokens produce. It
// forwards every call to a real module (FAULT_PKCS11_TARGET, SoftHSM2 in the
// tests) and reads a small control file (FAULT_PKCS11_CONTROL, "key=value"
// lines) on each call, so a test switches faults on and off by rewriting it:
//
//   epoch=N       sessions opened before the epoch reached N fail every call
//                 with CKR_GENERAL_ERROR, as tpm2-pkcs11's do after tpm2-abrmd
//                 restarts; sessions opened since work.
//   finalize=N    the next call after N grew first calls the real module's
//                 C_Finalize, as another PKCS#11 user in the process would.
//   attr_error=T  C_GetAttributeValue for attribute type T (decimal) fails
//                 with CKR_DEVICE_ERROR and marks the length unavailable.
//   slot_offset=N every slot id is shown shifted by N (large ids, as some
//                 proxies and HSMs use), and shifted back on the way in.
//
// FAULT_PKCS11_LOG, when set, gets one line per C_CloseSession: "close main"
// when called on the process's main thread (the JavaScript thread), else
// "close worker". Being a different function list over the same library, this
// module is also "another entry for the same library" in the process.
// test/pkcs11-recovery.test.ts compiles it; it is never part of the addon.
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "pkcs11_abi.h"

using namespace credport::p11;  // NOLINT

namespace {

CK_FUNCTION_LIST g_list;
CK_FUNCTION_LIST* g_target = nullptr;
std::once_flag g_once;
std::mutex g_mu;
std::map<CK_SESSION_HANDLE, long> g_session_epoch;  // guarded by g_mu
long g_finalized = 0;                               // guarded by g_mu

struct Control {
  long epoch = 0;
  long finalize = 0;
  unsigned long attr_error = ~0UL;
  unsigned long slot_offset = 0;
};

Control ReadControl() {
  Control c;
  const char* path = std::getenv("FAULT_PKCS11_CONTROL");
  if (path == nullptr) return c;
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return c;
  char line[128];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    char* eq = std::strchr(line, '=');
    if (eq == nullptr) continue;
    *eq = '\0';
    const unsigned long long v = std::strtoull(eq + 1, nullptr, 10);
    if (std::strcmp(line, "epoch") == 0) c.epoch = static_cast<long>(v);
    if (std::strcmp(line, "finalize") == 0) c.finalize = static_cast<long>(v);
    if (std::strcmp(line, "attr_error") == 0) c.attr_error = static_cast<unsigned long>(v);
    if (std::strcmp(line, "slot_offset") == 0) c.slot_offset = static_cast<unsigned long>(v);
  }
  std::fclose(f);
  return c;
}

// Runs before every forwarded call: the control file, and a pending finalize.
Control Prelude() {
  Control c = ReadControl();
  std::lock_guard<std::mutex> lock(g_mu);
  if (c.finalize > g_finalized) {
    g_finalized = c.finalize;
    g_target->C_Finalize(nullptr);
  }
  return c;
}

bool Stale(CK_SESSION_HANDLE h, const Control& c) {
  std::lock_guard<std::mutex> lock(g_mu);
  const auto it = g_session_epoch.find(h);
  return it != g_session_epoch.end() && it->second < c.epoch;
}

#define SESSION_PRELUDE(h)              \
  const Control c = Prelude();          \
  if (Stale((h), c)) return CKR_GENERAL_ERROR;

CK_RV Initialize(CK_VOID_PTR args) { return g_target->C_Initialize(args); }

CK_RV GetSlotList(CK_BBOOL present, CK_SLOT_ID* list, CK_ULONG* count) {
  const Control c = Prelude();
  const CK_RV rv = g_target->C_GetSlotList(present, list, count);
  if (rv == CKR_OK && list != nullptr) {
    for (CK_ULONG i = 0; i < *count; ++i) list[i] += c.slot_offset;
  }
  return rv;
}

CK_RV GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO* info) {
  const Control c = Prelude();
  return g_target->C_GetSlotInfo(slot - c.slot_offset, info);
}

CK_RV GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO* info) {
  const Control c = Prelude();
  return g_target->C_GetTokenInfo(slot - c.slot_offset, info);
}

CK_RV OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE* h) {
  const Control c = Prelude();
  const CK_RV rv = g_target->C_OpenSession(slot - c.slot_offset, flags, app, notify, h);
  if (rv == CKR_OK) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_session_epoch[*h] = c.epoch;
  }
  return rv;
}

CK_RV CloseSession(CK_SESSION_HANDLE h) {
  if (const char* log = std::getenv("FAULT_PKCS11_LOG")) {
    const bool main_thread = static_cast<pid_t>(syscall(SYS_gettid)) == getpid();
    if (FILE* f = std::fopen(log, "a")) {
      std::fprintf(f, "close %s\n", main_thread ? "main" : "worker");
      std::fclose(f);
    }
  }
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_session_epoch.erase(h);
  }
  return g_target->C_CloseSession(h);
}

CK_RV Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR* pin, CK_ULONG len) {
  SESSION_PRELUDE(h);
  return g_target->C_Login(h, user, pin, len);
}

CK_RV Logout(CK_SESSION_HANDLE h) {
  SESSION_PRELUDE(h);
  return g_target->C_Logout(h);
}

CK_RV GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE* t, CK_ULONG n) {
  SESSION_PRELUDE(h);
  for (CK_ULONG i = 0; i < n; ++i) {
    if (t[i].type == c.attr_error) {
      for (CK_ULONG j = 0; j < n; ++j) t[j].ulValueLen = CK_UNAVAILABLE_INFORMATION;
      return CKR_DEVICE_ERROR;
    }
  }
  return g_target->C_GetAttributeValue(h, o, t, n);
}

CK_RV FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE* t, CK_ULONG n) {
  SESSION_PRELUDE(h);
  return g_target->C_FindObjectsInit(h, t, n);
}

CK_RV FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE* o, CK_ULONG max, CK_ULONG* count) {
  SESSION_PRELUDE(h);
  return g_target->C_FindObjects(h, o, max, count);
}

CK_RV SignInit(CK_SESSION_HANDLE h, CK_MECHANISM* m, CK_OBJECT_HANDLE k) {
  SESSION_PRELUDE(h);
  return g_target->C_SignInit(h, m, k);
}

CK_RV Sign(CK_SESSION_HANDLE h, CK_BYTE* d, CK_ULONG dl, CK_BYTE* s, CK_ULONG* sl) {
  SESSION_PRELUDE(h);
  return g_target->C_Sign(h, d, dl, s, sl);
}

void Load() {
  const char* target = std::getenv("FAULT_PKCS11_TARGET");
  if (target == nullptr) return;
  void* lib = dlopen(target, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return;
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
  if (get == nullptr || get(&g_target) != CKR_OK || g_target == nullptr) return;
  g_list = *g_target;
  g_list.C_Initialize = Initialize;
  g_list.C_GetSlotList = GetSlotList;
  g_list.C_GetSlotInfo = GetSlotInfo;
  g_list.C_GetTokenInfo = GetTokenInfo;
  g_list.C_OpenSession = OpenSession;
  g_list.C_CloseSession = CloseSession;
  g_list.C_Login = Login;
  g_list.C_Logout = Logout;
  g_list.C_GetAttributeValue = GetAttributeValue;
  g_list.C_FindObjectsInit = FindObjectsInit;
  g_list.C_FindObjects = FindObjects;
  g_list.C_SignInit = SignInit;
  g_list.C_Sign = Sign;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST** out) {
  std::call_once(g_once, Load);
  if (g_target == nullptr || out == nullptr) return CKR_GENERAL_ERROR;
  *out = &g_list;
  return CKR_OK;
}
