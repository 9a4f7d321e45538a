// A stand-in for objc/runtime.h: the two lookups src/secure_enclave_darwin.cc
// makes, with the SDK's signatures (see Security/Security.h).
#pragma once
#include <objc/objc.h>
extern "C" {
Class objc_getClass(const char* name);
SEL sel_registerName(const char* str);
}
