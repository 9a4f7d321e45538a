// A stand-in for the Objective-C runtime's objc/objc.h, declaring only the
// types src/secure_enclave_darwin.cc uses (see Security/Security.h for why and
// how these stubs mirror the SDK). BOOL is bool on arm64 and signed char on
// x86_64, as in the SDK. YES and NO are left out: the SDK defines them as
// Objective-C literals, so the source does not use them.
#pragma once
typedef struct objc_class* Class;
typedef struct objc_object* id;
typedef struct objc_selector* SEL;
#if defined(__arm64__) || defined(__aarch64__)
typedef bool BOOL;
#else
typedef signed char BOOL;
#endif
